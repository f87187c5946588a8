#include "sys/sys.hpp"

#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>

namespace grove::sys {
namespace {

// No function-local statics in this file: their guards may call
// syscall(SYS_futex), which the shim interposes.
GROVE_LOAD_DATA constinit std::atomic<void*> libc{nullptr};

// libc.so.6's address range, from its program headers; lo == hi == 1 once
// looked for and not found.
GROVE_LOAD_DATA constinit std::atomic<std::uintptr_t> libc_lo{0};
GROVE_LOAD_DATA constinit std::atomic<std::uintptr_t> libc_hi{0};

int note_libc(struct dl_phdr_info* info, std::size_t, void*) noexcept {
    const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
    const char* slash = std::strrchr(name, '/');
    if (std::strncmp(slash != nullptr ? slash + 1 : name, "libc.so.", 8) != 0) {
        return 0;
    }
    std::uintptr_t lo = UINTPTR_MAX;
    std::uintptr_t hi = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const auto& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_LOAD) {
            lo = std::min<std::uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
            hi = std::max<std::uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        }
    }
    if (lo < hi) {
        libc_lo.store(lo, std::memory_order_relaxed);
        libc_hi.store(hi, std::memory_order_release);  // hi published last: lo is set once hi is
        return 1;
    }
    return 0;
}

bool in_libc(const void* p) noexcept {
    std::uintptr_t hi = libc_hi.load(std::memory_order_acquire);
    if (hi == 0) {
        ::dl_iterate_phdr(note_libc, nullptr);
        hi = libc_hi.load(std::memory_order_acquire);
        if (hi == 0) {
            libc_lo.store(1, std::memory_order_relaxed);
            libc_hi.store(1, std::memory_order_release);
            hi = 1;
        }
    }
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return a >= libc_lo.load(std::memory_order_relaxed) && a < hi;
}

// libc's own handle. glibc's dlopen of an object loaded as a dependency,
// even with RTLD_NOLOAD, builds its dependency list (the process's first
// malloc, with the heap's system calls): tens of microseconds, so it is
// only taken when the next object after the caller does not answer from
// libc itself.
void* libc_handle() noexcept {
    void* h = libc.load(std::memory_order_acquire);
    if (h == nullptr) {
        // libc.so.6 is always loaded already: found by name, no file access.
        h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        if (h == nullptr) {
            h = RTLD_NEXT;
        }
        libc.store(h, std::memory_order_release);
    }
    return h;
}

[[noreturn]] void missing(const char* name) noexcept {
    std::fprintf(stderr, "grove: libc has no %s\n", name);
    std::abort();
}

// epoll_pwait2 is missing from older glibc; fall back to the raw syscall,
// which reports ENOSYS on kernels before 5.11 (the hub then uses epoll_wait).
int epoll_pwait2_syscall(int e, struct epoll_event* ev, int n, const struct timespec* t, const sigset_t* s) {
    return static_cast<int>(::syscall(SYS_epoll_pwait2, e, ev, n, t, s, _NSIG / 8));
}

template <class Fn>
Fn fallback_for(const char*) noexcept {
    return nullptr;
}
template <>
epoll_pwait2_fn fallback_for<epoll_pwait2_fn>(const char*) noexcept {
    return &epoll_pwait2_syscall;
}

// The entry's final value: libc's function, or the fallback, or a clear
// stop when libc lacks it.
template <class Fn>
Fn find(const char* name) noexcept {
    if (auto p = reinterpret_cast<Fn>(lookup(name))) {
        return p;
    }
    if (Fn f = fallback_for<Fn>(name)) {
        return f;
    }
    missing(name);
}

#define GROVE_SYS_FWD(name, ret, params, args) ret name##_lazy params;
GROVE_SYS_FUNCTIONS(GROVE_SYS_FWD)
#undef GROVE_SYS_FWD

}  // namespace

void* lookup(const char* name) noexcept {
    const int saved = errno;  // a lookup inside a call must not change its errno
    // What the next object after this one defines, if it is libc's, is
    // what libc's own handle would give (its default version, the same
    // IFUNC resolution). Anything else (another interposer between us and
    // libc, or a libgrove.so searched before the shim) asks libc itself.
    void* p = dlsym(RTLD_NEXT, name);
    if (p == nullptr || !in_libc(p)) {
        if (void* own = dlsym(libc_handle(), name)) {
            p = own;
        }
    }
    errno = saved;
    return p;
}

#define GROVE_SYS_DEFINE(name, ret, params, args) std::atomic<name##_fn> name##_ptr{&name##_lazy};
GROVE_SYS_FUNCTIONS(GROVE_SYS_DEFINE)
#undef GROVE_SYS_DEFINE

namespace {

// Each entry starts at its stub: the first call looks the function up,
// stores it, and calls through.
#define GROVE_SYS_LAZY(name, ret, params, args)                          \
    ret name##_lazy params {                                             \
        const name##_fn real_ = find<name##_fn>(#name);                  \
        name##_ptr.store(real_, std::memory_order_relaxed);              \
        return real_ args;                                               \
    }
GROVE_SYS_FUNCTIONS(GROVE_SYS_LAZY)
#undef GROVE_SYS_LAZY

using fcntl_fn = int (*)(int, int, ...);
using ioctl_fn = int (*)(int, unsigned long, ...);
GROVE_LOAD_DATA constinit std::atomic<fcntl_fn> real_fcntl{nullptr};
GROVE_LOAD_DATA constinit std::atomic<ioctl_fn> real_ioctl{nullptr};

}  // namespace

void resolve() noexcept {
#define GROVE_SYS_RESOLVE(name, ret, params, args)                       \
    if (name##_ptr.load(std::memory_order_relaxed) == &name##_lazy) {    \
        name##_ptr.store(find<name##_fn>(#name), std::memory_order_relaxed); \
    }
    GROVE_SYS_FUNCTIONS(GROVE_SYS_RESOLVE)
#undef GROVE_SYS_RESOLVE
    if (real_fcntl.load(std::memory_order_relaxed) == nullptr) {
        real_fcntl.store(find<fcntl_fn>("fcntl"), std::memory_order_relaxed);
    }
    if (real_ioctl.load(std::memory_order_relaxed) == nullptr) {
        real_ioctl.store(find<ioctl_fn>("ioctl"), std::memory_order_relaxed);
    }
}

int fcntl(int fd, int cmd, long arg) {
    fcntl_fn f = real_fcntl.load(std::memory_order_relaxed);
    if (f == nullptr) [[unlikely]] {
        f = find<fcntl_fn>("fcntl");
        real_fcntl.store(f, std::memory_order_relaxed);
    }
    return f(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, void* arg) {
    ioctl_fn f = real_ioctl.load(std::memory_order_relaxed);
    if (f == nullptr) [[unlikely]] {
        f = find<ioctl_fn>("ioctl");
        real_ioctl.store(f, std::memory_order_relaxed);
    }
    return f(fd, request, arg);
}

}  // namespace grove::sys

#include "sys/sys.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace grove::sys {
namespace {

void* libc_handle() noexcept {
    static void* handle = [] {
        void* h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        return h != nullptr ? h : RTLD_NEXT;
    }();
    return handle;
}

void* lookup(const char* name) noexcept {
    void* p = dlsym(libc_handle(), name);
    if (p == nullptr) {
        p = dlsym(RTLD_NEXT, name);
    }
    return p;
}

// epoll_pwait2 is missing from older glibc; fall back to the raw syscall,
// which reports ENOSYS on kernels before 5.11 (the hub then uses epoll_wait).
int epoll_pwait2_syscall(int e, struct epoll_event* ev, int n, const struct timespec* t, const sigset_t* s) {
    return static_cast<int>(::syscall(SYS_epoll_pwait2, e, ev, n, t, s, _NSIG / 8));
}

}  // namespace

// Each entry starts at a resolver that fills the whole table, then calls
// through: correct even for calls made before the load-time constructor.
#define GROVE_SYS_LAZY(name, ret, params, args) \
    ret name##_lazy params {                    \
        resolve();                              \
        return name##_ptr args;                 \
    }
namespace {
#define GROVE_SYS_FWD(name, ret, params, args) ret name##_lazy params;
GROVE_SYS_FUNCTIONS(GROVE_SYS_FWD)
#undef GROVE_SYS_FWD
}  // namespace

#define GROVE_SYS_DEFINE(name, ret, params, args) name##_fn name##_ptr = &name##_lazy;
GROVE_SYS_FUNCTIONS(GROVE_SYS_DEFINE)
#undef GROVE_SYS_DEFINE

namespace {
GROVE_SYS_FUNCTIONS(GROVE_SYS_LAZY)
#undef GROVE_SYS_LAZY
}  // namespace

void resolve() noexcept {
#define GROVE_SYS_RESOLVE(name, ret, params, args)                               \
    if (name##_ptr == &name##_lazy) {                                            \
        auto p = reinterpret_cast<name##_fn>(lookup(#name));                     \
        if (p == nullptr) {                                                      \
            std::fprintf(stderr, "grove: libc has no %s\n", #name);              \
            std::abort();                                                        \
        }                                                                        \
        name##_ptr = p;                                                          \
    }
#define GROVE_SYS_RESOLVE_OPTIONAL(name, fallback)                         \
    if (name##_ptr == &name##_lazy) {                                      \
        auto p = reinterpret_cast<name##_fn>(lookup(#name));               \
        name##_ptr = p != nullptr ? p : (fallback);                        \
    }
    GROVE_SYS_RESOLVE_OPTIONAL(epoll_pwait2, &epoll_pwait2_syscall)
    GROVE_SYS_FUNCTIONS(GROVE_SYS_RESOLVE)
#undef GROVE_SYS_RESOLVE
#undef GROVE_SYS_RESOLVE_OPTIONAL
}

namespace {
using fcntl_fn = int (*)(int, int, ...);
using ioctl_fn = int (*)(int, unsigned long, ...);
fcntl_fn real_fcntl = nullptr;
ioctl_fn real_ioctl = nullptr;

__attribute__((constructor(101))) void resolve_at_load() {
    resolve();
    real_fcntl = reinterpret_cast<fcntl_fn>(lookup("fcntl"));
    real_ioctl = reinterpret_cast<ioctl_fn>(lookup("ioctl"));
}
}  // namespace

int fcntl(int fd, int cmd, long arg) {
    if (real_fcntl == nullptr) {
        real_fcntl = reinterpret_cast<fcntl_fn>(lookup("fcntl"));
    }
    return real_fcntl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, void* arg) {
    if (real_ioctl == nullptr) {
        real_ioctl = reinterpret_cast<ioctl_fn>(lookup("ioctl"));
    }
    return real_ioctl(fd, request, arg);
}

}  // namespace grove::sys

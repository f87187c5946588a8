// The shim's settings, its start-up, and the per-call decisions (shim.hpp).

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shim.hpp"

// What load-time code calls of libc costs a program that never calls the
// shim a lazy binding each (the process's first ~10 us here, each later
// one ~1 us: programs are mostly linked to bind at their own start). So
// the constructor reads the environment and compares names itself, and
// the one libc function it needs is bound at load (noplt: through the GOT).
extern "C" int dl_iterate_phdr(int (*)(struct dl_phdr_info*, std::size_t, void*), void*) noexcept
    __attribute__((noplt));

namespace grove::shim {

GROVE_LOAD_DATA Config config;
GROVE_LOAD_DATA std::atomic<bool> ready{false};

namespace {

// Bumped by every mode change seen (F_SETFL, FIONBIO, SO_*TIMEO): a change
// through one fd may concern others (dups share the open file).
std::atomic<std::uint32_t> mode_generation{1};

// The names read at load, beside the settings rather than in .rodata: one
// page fewer touched.
GROVE_LOAD_DATA char name_disable[] = "GROVE_DISABLE";
GROVE_LOAD_DATA char name_main_hub[] = "GROVE_MAIN_HUB";
GROVE_LOAD_DATA char name_threads[] = "GROVE_THREADS";
GROVE_LOAD_DATA char name_thread_stack[] = "GROVE_THREAD_STACK_SIZE";
GROVE_LOAD_DATA char value_green[] = "green";
GROVE_LOAD_DATA char libgrove_name[] = "libgrove.so";
GROVE_LOAD_DATA char libgomp_name[] = "libgomp.so";

// getenv's answer, without calling it.
GROVE_LOAD_TEXT const char* env_value(const char* name) noexcept {
    if (environ == nullptr) {
        return nullptr;
    }
    for (char** e = environ; *e != nullptr; ++e) {
        const char* a = *e;
        const char* b = name;
        while (*b != '\0' && *a == *b) {
            ++a;
            ++b;
        }
        if (*b == '\0' && *a == '=') {
            return a + 1;
        }
    }
    return nullptr;
}

GROVE_LOAD_TEXT bool same_string(const char* a, const char* b) noexcept {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

// Set, and not "0".
GROVE_LOAD_TEXT bool env_on(const char* name) noexcept {
    const char* v = env_value(name);
    return v != nullptr && v[0] != '\0' && !(v[0] == '0' && v[1] == '\0');
}


// ---- one grove per process ------------------------------------------------------
//
// The self-contained preload library carries its own copy of libgrove. A
// program that loads libgrove.so as well (through a library of its own:
// grove-run sees only the program's direct needs) would run two hubs per
// thread, each blind to the other's fibers. That is found before main runs,
// and the process starts over with libgrove_shim.so, which shares the
// program's libgrove, preloaded in this library's place.

// What the objects loaded at start say about how the shim can run.
struct Loaded {
    bool libgrove = false;  // a libgrove.so of the program's own
    bool libgomp = false;   // OpenMP's runtime
};

// Whether `s` begins with `prefix`.
GROVE_LOAD_TEXT bool starts_with(const char* s, const char* prefix) noexcept {
    while (*prefix != '\0' && *s == *prefix) {
        ++s;
        ++prefix;
    }
    return *prefix == '\0';
}

GROVE_LOAD_TEXT int note_loaded(struct dl_phdr_info* info, std::size_t, void* out) {
    auto* loaded = static_cast<Loaded*>(out);
    const char* base = info->dlpi_name != nullptr ? info->dlpi_name : "";
    for (const char* p = base; *p != '\0'; ++p) {
        if (*p == '/') {
            base = p + 1;
        }
    }
    if (starts_with(base, libgrove_name)) {
        loaded->libgrove = true;
    } else if (starts_with(base, libgomp_name)) {
        loaded->libgomp = true;
    }
    return 0;
}

const char* base_name(const char* path, std::size_t len) noexcept {
    const char* b = path;
    for (std::size_t i = 0; i < len; ++i) {
        if (path[i] == '/') {
            b = path + i + 1;
        }
    }
    return b;
}

// LD_PRELOAD=... with every entry naming a file called as `self` is
// replaced by `shared`.
char* replaced_preload(const char* entry, const char* self, const char* shared) {
    const char* self_base = base_name(self, std::strlen(self));
    const std::size_t n = std::strlen(entry) + std::strlen(shared) * (std::strlen(entry) / 2 + 1) + 1;
    char* out = static_cast<char*>(std::malloc(n));
    if (out == nullptr) {
        return nullptr;
    }
    std::strcpy(out, "LD_PRELOAD=");
    const char* p = entry + std::strlen("LD_PRELOAD=");
    while (*p != '\0') {
        const std::size_t sep = std::strspn(p, ": ");
        std::strncat(out, p, sep);
        p += sep;
        const std::size_t len = std::strcspn(p, ": ");
        const char* b = base_name(p, len);
        if (static_cast<std::size_t>(p + len - b) == std::strlen(self_base) &&
            std::strncmp(b, self_base, std::strlen(self_base)) == 0) {
            std::strcat(out, shared);
        } else {
            std::strncat(out, p, len);
        }
        p += len;
    }
    return out;
}

GROVE_LOAD_TEXT void restart_with_shared_shim(char** argv, char** envp) {
    Dl_info self{};
    if (::dladdr(reinterpret_cast<void*>(&note_loaded), &self) == 0 || self.dli_fname == nullptr) {
        return;
    }
    Dl_info lib{};
    if (::dladdr(reinterpret_cast<void*>(&detail::assert_fail), &lib) == 0 || lib.dli_fbase != self.dli_fbase) {
        return;  // the shim and libgrove are apart: this is libgrove_shim.so
    }
    char shared[4096];
    const char* slash = std::strrchr(self.dli_fname, '/');
    const int dir = slash != nullptr ? static_cast<int>(slash - self.dli_fname + 1) : 0;
    std::snprintf(shared, sizeof shared, "%.*slibgrove_shim.so", dir, self.dli_fname);
    const char* why = "libgrove_shim.so is not beside it";
    if (argv != nullptr && envp != nullptr && ::access(shared, R_OK) == 0) {
        std::size_t n = 0;
        while (envp[n] != nullptr) {
            ++n;
        }
        char** env = static_cast<char**>(std::calloc(n + 1, sizeof(char*)));
        for (std::size_t i = 0; env != nullptr && i < n; ++i) {
            env[i] = std::strncmp(envp[i], "LD_PRELOAD=", 11) == 0
                         ? replaced_preload(envp[i], self.dli_fname, shared)
                         : envp[i];
            if (env[i] == nullptr) {
                env = nullptr;
            }
        }
        if (env != nullptr) {
            ::execve("/proc/self/exe", argv, env);
        }
        why = std::strerror(errno);
    }
    // Two hubs on a thread would be worse than none: pass every call through.
    std::fprintf(stderr,
                 "grove: this program loads libgrove.so, and %s carries its own copy; cannot start over with "
                 "libgrove_shim.so (%s): the shim is disabled\n",
                 self.dli_fname, why);
    config.disabled = true;
}

// Load-time work is a few getenv calls: no lookups, no syscalls (the raw
// table in lib/sys fills itself entry by entry on first use), so preloading
// the shim onto a program that never blocks costs it nothing measurable.
// glibc passes the program's arguments and environment to constructors.
GROVE_LOAD_TEXT __attribute__((constructor(110))) void shim_init(int, char** argv, char** envp) {
    read_settings();
    if (!config.disabled && config.libgrove_loaded) {
        restart_with_shared_shim(argv, envp);
    }
    detail::set_fd_life(&fd_life_of);
    ready.store(true, std::memory_order_release);
}

Nanos timeo_of(int fd, int name) noexcept {
    struct timeval tv{};
    socklen_t len = sizeof tv;
    if (sys::getsockopt(fd, SOL_SOCKET, name, &tv, &len) != 0) {
        return 0;
    }
    return static_cast<Nanos>(tv.tv_sec) * 1'000'000'000 + static_cast<Nanos>(tv.tv_usec) * 1000;
}

}  // namespace

GROVE_LOAD_TEXT void read_settings() noexcept {
    if (config.read) {
        return;
    }
    config.disabled = env_on(name_disable);
    const char* threads = env_value(name_threads);
    config.green_threads = !config.disabled && threads != nullptr && same_string(threads, value_green);
    // Green threads need no hub before the first one starts (pthread_create
    // makes the creating thread's): until then the main thread has no fiber
    // to hand the thread to, and libc's own call is the same wait, without
    // a hub's start-up (hundreds of microseconds) in every short program.
    config.main_hub = env_on(name_main_hub);
    if (!config.disabled) {
        // The objects loaded at start, once (every one is mapped before the
        // first constructor runs). OpenMP's runtime waits at its barriers by
        // spinning and with raw futex system calls, which no interposer
        // sees: on green threads a parallel region would never end. Where it
        // is loaded at start, its threads stay OS threads. This runs before
        // its constructor makes the first pthread call.
        Loaded loaded;
        ::dl_iterate_phdr(note_loaded, &loaded);
        config.libgrove_loaded = loaded.libgrove;
        config.green_threads = config.green_threads && !loaded.libgomp;
    }
    if (const char* size = env_value(name_thread_stack)) {
        config.thread_stack = detail::parse_byte_size(size, 0, 0);
    }
    config.read = true;
}

bool is_main_thread() noexcept {
    static thread_local int cached = 0;  // 0 unknown, 1 main, 2 other
    if (cached == 0) {
        cached = ::syscall(SYS_gettid) == ::getpid() ? 1 : 2;
    }
    return cached == 1;
}

Hub* hub_for_call() noexcept {
    if (!ready.load(std::memory_order_acquire) || config.disabled || in_vfork_child()) [[unlikely]] {
        return nullptr;
    }
    Hub* h = Hub::current_if_any();
    if (h == nullptr) {
        if (!config.main_hub || !is_main_thread()) {
            return nullptr;
        }
        h = &Hub::current();
    }
    return h->in_hub_fiber() ? nullptr : h;
}

bool nap(Hub* hub, Nanos d) noexcept {
    detail::Waiter w;
    detail::WakeReason why;
    {
        SignalWindow window(hub);
        why = hub->park(w, detail::now_ns() + d, true);
    }
    if (why == detail::WakeReason::timed_out) {
        return true;
    }
    if (why == detail::WakeReason::interrupted) {
        if (restarts(hub, false)) {
            return true;
        }
        errno = EINTR;
        return false;
    }
    errno = detail::defer_interruption(w);
    return false;
}

namespace {
// Whether a call on this thread could park at all, without making a hub:
// where none can (a thread that never used grove, a bare LD_PRELOAD without
// GROVE_MAIN_HUB, GROVE_DISABLE), the fd need not be classified (an fstat
// per new fd, and the table's pages).
bool may_park() noexcept {
    if (!ready.load(std::memory_order_acquire) || config.disabled || in_vfork_child()) [[unlikely]] {
        return false;
    }
    return Hub::current_if_any() != nullptr || (config.main_hub && is_main_thread());
}
}  // namespace

std::uint32_t fd_bits_for_call(int fd, Hub*& hub) noexcept {
    if (!may_park()) {
        return kind_file;
    }
    FdEntry* e = fd_entry(fd);
    if (e == nullptr) {
        return kind_file;
    }
    std::uint32_t bits = e->bits.load(std::memory_order_acquire);
    if ((bits & kKindMask) == kind_unknown) {
        if (fd_classify(fd, e) == kind_unknown) {
            return kind_file;  // fstat failed: the real call reports it
        }
        bits = e->bits.load(std::memory_order_acquire);
    }
    if ((bits & kKindMask) == kind_file) {
        return kind_file;
    }
    hub = hub_for_call();
    if (hub == nullptr) {
        return kind_file;
    }
    hub->count_call();  // before the call: a fiber whose fd is always ready still lets the others run
    hub->fd_sync(fd, e->life.load(std::memory_order_acquire));
    return bits;
}

namespace {
void forget_in_hub(int fd) noexcept {
    if (Hub* h = Hub::current_if_any()) {
        h->fd_forget(fd);  // after the table's reset: takes the new life
    }
}
}  // namespace

// A vfork child's fds are its own table's, and go with its exec: the
// parent's entries and registrations stay as they are.
void note_fd_created(int fd, FdKind kind, std::uint32_t extra) noexcept {
    if (in_vfork_child()) [[unlikely]] {
        return;
    }
    fd_created(fd, kind, extra);
    forget_in_hub(fd);
}

void note_fd_duplicated(int from, int to) noexcept {
    if (in_vfork_child()) [[unlikely]] {
        return;
    }
    fd_duplicated(from, to);
    forget_in_hub(to);
}

void note_fd_closing(int fd) noexcept {
    if (in_vfork_child()) [[unlikely]] {
        return;
    }
    fd_released(fd);
    forget_in_hub(fd);
}

bool reclassify(int fd) noexcept {
    note_fd_closing(fd);
    FdEntry* e = fd_entry(fd);
    return e != nullptr && fd_classify(fd, e) != kind_unknown && (e->bits.load() & kKindMask) != kind_socket;
}

FdMode fd_mode(int fd) noexcept {
    FdMode m;
    FdEntry* e = fd_entry(fd);
    const std::uint32_t gen = mode_generation.load(std::memory_order_acquire);
    if (e != nullptr && e->mode_gen.load(std::memory_order_acquire) == gen) {
        m.nonblock = e->nonblock.load(std::memory_order_relaxed);
        m.readable = e->readable.load(std::memory_order_relaxed);
        m.writable = e->writable.load(std::memory_order_relaxed);
        m.rcvtimeo = e->rcvtimeo.load(std::memory_order_relaxed);
        m.sndtimeo = e->sndtimeo.load(std::memory_order_relaxed);
        return m;
    }
    ErrnoGuard keep;
    const int fl = sys::fcntl(fd, F_GETFL);
    m.nonblock = fl >= 0 && (fl & O_NONBLOCK) != 0;
    if (fl >= 0) {
        m.readable = (fl & O_ACCMODE) != O_WRONLY;
        m.writable = (fl & O_ACCMODE) != O_RDONLY;
    }
    const std::uint32_t bits = e != nullptr ? e->bits.load(std::memory_order_acquire) : 0;
    if ((bits & kKindMask) == kind_socket) {
        m.rcvtimeo = (bits & kNegRcvTimeo) != 0 ? -1 : timeo_of(fd, SO_RCVTIMEO);
        m.sndtimeo = (bits & kNegSndTimeo) != 0 ? -1 : timeo_of(fd, SO_SNDTIMEO);
    }
    if (e != nullptr && fl >= 0) {
        e->nonblock.store(m.nonblock, std::memory_order_relaxed);
        e->readable.store(m.readable, std::memory_order_relaxed);
        e->writable.store(m.writable, std::memory_order_relaxed);
        e->rcvtimeo.store(m.rcvtimeo, std::memory_order_relaxed);
        e->sndtimeo.store(m.sndtimeo, std::memory_order_relaxed);
        e->mode_gen.store(gen, std::memory_order_release);
    }
    return m;
}

namespace {
std::atomic<pid_t> self_pid{0};

pid_t my_pid() noexcept {
    pid_t p = self_pid.load(std::memory_order_relaxed);
    if (p == 0) {
        p = ::getpid();
        self_pid.store(p, std::memory_order_relaxed);
    }
    return p;
}
}  // namespace

void note_fork_child() noexcept {
    self_pid.store(0, std::memory_order_relaxed);
}

bool copy_from_user(void* dst, const void* src, std::size_t n) noexcept {
    struct iovec local{dst, n};
    struct iovec remote{const_cast<void*>(src), n};
    if (::process_vm_readv(my_pid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n)) {
        return true;
    }
    errno = EFAULT;
    return false;
}

bool copy_to_user(void* dst, const void* src, std::size_t n) noexcept {
    struct iovec local{const_cast<void*>(src), n};
    struct iovec remote{dst, n};
    if (::process_vm_writev(my_pid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n)) {
        return true;
    }
    errno = EFAULT;
    return false;
}

void fd_modes_changed() noexcept {
    mode_generation.fetch_add(1, std::memory_order_acq_rel);
}

Wait wait_fd(Hub* hub, int fd, short events, Nanos deadline, bool restartable) noexcept {
    for (;;) {
        int w;
        {
            SignalWindow window(hub);
            w = detail::io_await(fd, (events & POLLOUT) != 0, deadline);
        }
        if (w == 0) {
            return Wait::ready;
        }
        if (errno == ETIMEDOUT && deadline != kNoDeadline && detail::now_ns() >= deadline) {
            return Wait::timed_out;
        }
        if (errno == EINTR && restartable && restarts(hub, deadline != kNoDeadline)) {
            continue;
        }
        return Wait::failed;
    }
}

bool ring_recv(Hub* hub, int fd, void* buf, std::size_t n, Nanos deadline, long& out) noexcept {
    for (;;) {
        long r;
        {
            SignalWindow window(hub);
            r = detail::io_ring_recv(fd, buf, n, deadline);
        }
        if (r >= 0) {
            out = r;
            return true;
        }
        if (errno == EAGAIN) {
            return false;  // the ring cannot take it
        }
        if (errno == ETIMEDOUT && deadline != kNoDeadline && detail::now_ns() >= deadline) {
            errno = EAGAIN;  // a socket timeout, as Linux reports it
        } else if (errno == EINTR && restarts(hub, deadline != kNoDeadline)) {
            continue;
        }
        out = -1;
        return true;
    }
}

bool wait_again(Hub* hub, int fd, short events, bool sending, Nanos& deadline, bool& known,
                bool restartable) noexcept {
    if (!known) {
        const FdMode m = fd_mode(fd);
        if (m.nonblock) {
            errno = EAGAIN;  // the user's own non-blocking file
            return false;
        }
        deadline = timeout_deadline(sending ? m.sndtimeo : m.rcvtimeo);
        known = true;
    }
    switch (wait_fd(hub, fd, events, deadline, restartable)) {
        case Wait::ready:
            return true;
        case Wait::timed_out:
            errno = EAGAIN;  // a socket timeout, as Linux reports it
            return false;
        case Wait::failed:
            return false;
    }
    return false;
}

}  // namespace grove::shim

// Calls that create, duplicate, configure or close fds. They keep the fd
// table (fd_table.hpp) in step with the numbers the program sees; none of
// them changes an fd's flags behind the program's back (shim.hpp), so
// fcntl, ioctl and getsockopt pass through and only note that a mode may
// have changed. The blocking lock calls (flock, lockf F_LOCK, fcntl
// F_SETLKW/F_OFD_SETLKW) are the exception: the kernel offers no readiness
// for a lock, so a fiber polls the non-blocking form (lock_wait).

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "hub/own_fd.hpp"
#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {


std::uint32_t socket_type_bits(int type) noexcept {
    switch (type & 0xf) {
        case SOCK_STREAM:
            return kStreamSocket;
        case SOCK_SEQPACKET:
            return kSeqpacket;
        default:
            return 0;
    }
}

// The real flock and lockf: lib/sys does not list them, and a lock call
// is never made on the fiber switch path, so a cached lookup does.
int real_flock(int fd, int op) noexcept {
    using Fn = int (*)(int, int);
    const auto fn = GROVE_LIBC("flock", Fn);
    if (fn == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    return fn(fd, op);
}

// Not noexcept: lockf(F_LOCK) is a cancellation point, whose cancellation
// in an OS thread glibc unwinds through this frame.
int real_lockf(int fd, int cmd, off_t len) {
    using Fn = int (*)(int, int, off_t);
    const auto fn = GROVE_LIBC("lockf64", Fn);
    if (fn == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    return fn(fd, cmd, len);
}

// A blocking lock, cooperatively: `attempt()` is the non-blocking form of
// the call; while it says the lock is held elsewhere (`busy(errno)`), the
// fiber sleeps and tries again, backing off from 1 ms to 25 ms.
//
// The trade-off: the kernel has no readiness notification for locks, so
// this polls. A lock freed while the fiber sleeps is seen up to 25 ms late
// (1 ms for a lock held briefly), an idle waiter costs one syscall per
// 25 ms, and waiters are not queued: a fiber may lose the lock to a
// process that asks between two attempts, where the kernel's queue would
// have served it. The kernel's deadlock check (EDEADLK for F_SETLKW) needs
// a sleeping waiter, so it never fires here: two processes each waiting
// for the other's lock both wait until something else ends it.
// Signals behave as for the blocking call: EINTR, or the wait goes on when
// every handler that ran has SA_RESTART (flock and F_SETLKW restart,
// signal(7)). A kill gives ECANCELED, a grove::Timeout ETIMEDOUT.
constexpr Nanos kLockBackoffFirst = 1'000'000;
constexpr Nanos kLockBackoffMax = 25'000'000;

template <class Attempt, class Busy>
int lock_wait(Hub* hub, Attempt&& attempt, Busy&& busy) noexcept {
    const int saved = errno;
    Nanos backoff = kLockBackoffFirst;
    for (;;) {
        const int r = attempt();
        if (r != -1) {
            errno = saved;
            return r;
        }
        if (!busy(errno)) {
            return r;
        }
        if (!nap(hub, backoff)) {
            return -1;
        }
        backoff = std::min(backoff * 2, kLockBackoffMax);
    }
}

bool lock_busy(int err) noexcept {
    return err == EAGAIN || err == EACCES;  // F_SETLK says either (POSIX)
}

// The library's own fds (hub/own_fd.hpp) are not open as far as the
// program can tell. A dup2 or dup3 onto one moves the library's out of the
// way, then runs the program's call; if that fails, the number is closed,
// as the program found it.
template <class Call>
int onto_own_fd(int to, Call&& call) noexcept {
    if (!detail::own_fd_move(to)) {
        return -1;
    }
    const int r = call();
    if (r < 0) {
        ErrnoGuard keep;
        sys::close(to);
    }
    return r;
}

int real_close_range(unsigned first, unsigned last, int flags) noexcept {
    using Fn = int (*)(unsigned, unsigned, int);
    const auto fn = GROVE_LIBC("close_range", Fn);
    if (fn == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    return fn(first, last, flags);
}

// close_range over [first, last] but around the library's fds: the pieces
// between them, each with the caller's flags.
int close_range_around_own(unsigned first, unsigned last, int flags) noexcept {
    int own[detail::kOwnFdMax];
    const int n = detail::own_fds_in(first, last, own, detail::kOwnFdMax);
    unsigned from = first;
    bool called = false;
    for (int i = 0; i <= n; ++i) {
        const bool end = i == n;
        const unsigned to = end ? last : static_cast<unsigned>(own[i]) - 1;
        if (from <= to && (end || static_cast<unsigned>(own[i]) > from)) {
            if (real_close_range(from, to, flags) != 0) {
                return -1;
            }
            called = true;
        }
        if (end || static_cast<unsigned>(own[i]) == last) {
            break;
        }
        from = static_cast<unsigned>(own[i]) + 1;
    }
    if (!called && (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) != 0) {
        errno = EINVAL;  // the kernel checks the flags even for a range with nothing open
        return -1;
    }
    return 0;
}

}  // namespace

extern "C" {

int flock(int fd, int op) noexcept {
    Hub* hub = (op & LOCK_NB) != 0 || (op & (LOCK_SH | LOCK_EX)) == 0 ? nullptr : hub_for_call();
    if (hub == nullptr) {
        return real_flock(fd, op);
    }
    return lock_wait(
        hub, [&] { return real_flock(fd, op | LOCK_NB); }, [](int err) { return err == EWOULDBLOCK; });
}

// glibc's lockf makes fcntl calls no interposer sees: F_LOCK is F_SETLKW
// of a write lock from the current offset over len bytes.
int lockf64(int fd, int cmd, off_t len) {
    if (cmd == F_LOCK) {
        GROVE_CANCELLATION_POINT(-1);
    }
    Hub* hub = cmd == F_LOCK ? hub_for_call() : nullptr;
    if (hub == nullptr) {
        return real_lockf(fd, cmd, len);
    }
    return lock_wait(hub, [&] { return real_lockf(fd, F_TLOCK, len); }, lock_busy);
}

int lockf(int fd, int cmd, off_t len) {
    return lockf64(fd, cmd, len);
}

int socket(int domain, int type, int protocol) noexcept {
    const int fd = sys::socket(domain, type, protocol);
    if (fd >= 0) {
        note_fd_created(fd, kind_socket, socket_type_bits(type));
    }
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
    const int r = sys::socketpair(domain, type, protocol, sv);
    if (r == 0) {
        note_fd_created(sv[0], kind_socket, socket_type_bits(type));
        note_fd_created(sv[1], kind_socket, socket_type_bits(type));
    }
    return r;
}

// Whether fd is a listening socket (remembered once seen): accept on
// anything else fails at once, and must not wait.
static bool listening(int fd, std::uint32_t bits) noexcept {  // static: not an exported C name
    if ((bits & kListening) != 0) {
        return true;
    }
    int on = 0;
    socklen_t len = sizeof on;
    ErrnoGuard keep;
    if (sys::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || on == 0) {
        return false;
    }
    if (FdEntry* e = fd_entry(fd)) {
        e->bits.fetch_or(kListening, std::memory_order_acq_rel);
    }
    return true;
}

// accept has no per-call non-blocking flag: wait for readiness, then the
// plain accept, which then finds the connection waiting.
int accept4(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    int r = -1;
    if ((bits & kKindMask) != kind_socket || !listening(fd, bits) || fd_mode(fd).nonblock) {
        r = sys::accept4(fd, addr, len, flags);
    } else {
        const int saved = errno;
        Nanos deadline = kNoDeadline;
        bool known = false;
        for (;;) {
            struct pollfd p{fd, POLLIN, 0};
            if (sys::poll(&p, 1, 0) != 0) {
                errno = saved;
                r = sys::accept4(fd, addr, len, flags);
                break;
            }
            if (!wait_again(hub, fd, POLLIN, false, deadline, known)) {
                return -1;
            }
        }
    }
    if (r >= 0) {
        note_fd_created(r, kind_socket, bits & (kStreamSocket | kSeqpacket));
    }
    return r;
}

int accept(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict len) {
    GROVE_CANCELLATION_POINT(-1);
    return accept4(fd, addr, len, 0);
}

// A blocking connect, cooperatively: the socket is non-blocking for the
// connect call alone, then the fiber waits for writability and asks connect
// again for the outcome (0, or the error it consumes, as a blocking connect
// would report it). With SO_SNDTIMEO expired, Linux says EINPROGRESS.
int connect(int fd, const struct sockaddr* addr, socklen_t len) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::connect(fd, addr, len);
    }
    const int fl = sys::fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK) != 0) {
        return sys::connect(fd, addr, len);
    }
    const int saved = errno;
    Nanos backoff = 1'000'000;
    int r;
    int err;
    for (;;) {
        sys::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        r = sys::connect(fd, addr, len);
        err = errno;
        sys::fcntl(fd, F_SETFL, fl);
        // A unix socket whose listener's backlog is full says EAGAIN; a
        // blocking connect waits for room.
        if (r != 0 && err == EAGAIN) {
            if (!nap(hub, backoff)) {
                return -1;
            }
            backoff = std::min<Nanos>(backoff * 2, 50'000'000);
            continue;
        }
        break;
    }
    if (r == 0) {
        errno = saved;
        return 0;
    }
    if (err != EINPROGRESS) {
        errno = err;
        return -1;
    }
    const Nanos deadline = timeout_deadline(fd_mode(fd).sndtimeo);
    for (;;) {
        switch (wait_fd(hub, fd, POLLOUT, deadline)) {
            case Wait::ready:
                break;
            case Wait::timed_out:
                errno = EINPROGRESS;
                return -1;
            case Wait::failed:
                return -1;  // EINTR: the connect goes on, as after a signal
        }
        struct pollfd p{fd, POLLOUT, 0};
        if (sys::poll(&p, 1, 0) == 0) {
            continue;  // not done yet: a wake-up that was not the connect's
        }
        r = sys::connect(fd, addr, len);
        if (r == 0 || errno == EISCONN) {
            errno = saved;
            return 0;
        }
        return -1;
    }
}

int close(int fd) {
    GROVE_CANCELLATION_POINT(-1);
    if (detail::own_fd_is(fd)) [[unlikely]] {
        errno = EBADF;
        return -1;
    }
    if (fd >= 0) {
        // Before the real close: once it returns, another thread may be
        // handed the same number, and its entry must not be wiped.
        note_fd_closing(fd);
    }
    return sys::close(fd);
}

int dup(int fd) noexcept {
    const int r = sys::dup(fd);
    if (r >= 0) {
        note_fd_duplicated(fd, r);
    }
    return r;
}

int dup2(int from, int to) noexcept {
    int r;
    // (In a vfork child the number is the child's to take: the library's fd
    // there is a copy the exec closes.)
    if (detail::own_fd_is(to) && !in_vfork_child()) [[unlikely]] {
        if (from == to) {
            errno = EBADF;  // dup2 of a number that is not open onto itself
            return -1;
        }
        r = onto_own_fd(to, [&] { return sys::dup2(from, to); });
    } else {
        r = sys::dup2(from, to);
    }
    if (r >= 0 && from != to) {
        note_fd_duplicated(from, r);
    }
    return r;
}

int dup3(int from, int to, int flags) noexcept {
    const int r = detail::own_fd_is(to) && from != to && !in_vfork_child()
                      ? onto_own_fd(to, [&] { return sys::dup3(from, to, flags); })
                      : sys::dup3(from, to, flags);
    if (r >= 0) {
        note_fd_duplicated(from, r);
    }
    return r;
}

int close_range(unsigned int first, unsigned int last, int flags) noexcept {
    if (first <= last && (flags & CLOSE_RANGE_CLOEXEC) == 0 && !in_vfork_child()) {
        // As close does, before the real call.
        fd_released_range(first, last);
        if (Hub* h = Hub::current_if_any()) {
            h->fd_forget_range(first, last);
        }
    }
    if (first > last || !detail::own_fd_overlaps(first, last)) [[likely]] {
        return real_close_range(first, last, flags);
    }
    return close_range_around_own(first, last, flags);
}

// glibc's closefrom calls its own close_range, which no interposer sees.
void closefrom(int lowfd) noexcept {
    const unsigned first = lowfd < 0 ? 0 : static_cast<unsigned>(lowfd);
    if (close_range(first, ~0U, 0) != 0) {
        // No close_range in this kernel: one close per number, as glibc does.
        struct rlimit rl;
        const rlim_t top = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        for (rlim_t fd = first; fd < top; ++fd) {
            close(static_cast<int>(fd));
        }
    }
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    const long arg = va_arg(ap, long);
    va_end(ap);
    if (cmd == F_SETLKW || cmd == F_OFD_SETLKW) {
        GROVE_CANCELLATION_POINT(-1);
        if (Hub* hub = hub_for_call()) {
            const int try_cmd = cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK;
            return lock_wait(hub, [&] { return sys::fcntl(fd, try_cmd, arg); }, lock_busy);
        }
    }
    const int r = sys::fcntl(fd, cmd, arg);
    if (r >= 0) {
        if (cmd == F_SETFL) {
            fd_modes_changed();
        } else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
            note_fd_duplicated(fd, r);
        }
    }
    return r;
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    const long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    const int r = sys::ioctl(fd, request, arg);
    if (r == 0 && request == FIONBIO) {
        fd_modes_changed();
    }
    return r;
}

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
    const int r = sys::setsockopt(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        // The kernel read *val, so it is readable. A negative time makes
        // calls fail at once, yet reads back as 0: remember it here.
        const bool negative = len >= static_cast<socklen_t>(sizeof(struct timeval)) &&
                              static_cast<const struct timeval*>(val)->tv_sec < 0;
        if (FdEntry* e = fd_entry(fd)) {
            const std::uint32_t bit = name == SO_RCVTIMEO ? kNegRcvTimeo : kNegSndTimeo;
            if (negative) {
                e->bits.fetch_or(bit, std::memory_order_acq_rel);
            } else {
                e->bits.fetch_and(~bit, std::memory_order_acq_rel);
            }
        }
        fd_modes_changed();
    }
    return r;
}

int getsockopt(int fd, int level, int name, void* __restrict val, socklen_t* __restrict len) noexcept {
    return sys::getsockopt(fd, level, name, val, len);
}

int shutdown(int fd, int how) noexcept {
    return sys::shutdown(fd, how);
}

int pipe2(int fds[2], int flags) noexcept {
    const int r = sys::pipe2(fds, flags);
    if (r == 0) {
        note_fd_created(fds[0], kind_stream, kFifo);
        note_fd_created(fds[1], kind_stream, kFifo);
    }
    return r;
}

int pipe(int fds[2]) noexcept {
    return pipe2(fds, 0);
}

int eventfd(unsigned int initval, int flags) noexcept {
    const int fd = sys::eventfd(initval, flags);
    if (fd >= 0) {
        note_fd_created(fd, kind_stream, kCounter);
    }
    return fd;
}

int timerfd_create(int clockid, int flags) noexcept {
    const int fd = sys::timerfd_create(clockid, flags);
    if (fd >= 0) {
        note_fd_created(fd, kind_stream, kCounter);
    }
    return fd;
}

}  // extern "C"

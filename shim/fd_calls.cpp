// Calls that create, duplicate, configure or close fds. They keep the fd
// table (fd_table.hpp) true to what the user asked for, and show the user
// only that: F_GETFL never reveals the O_NONBLOCK the shim set itself.

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdarg>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

void forget_in_hub(int fd) noexcept {
    if (Hub* h = Hub::current_if_any()) {
        h->fd_forget(fd);
    }
}

void duplicated(int from, int to) noexcept {
    fd_duplicated(from, to);
    forget_in_hub(to);
}

// Records the user's O_NONBLOCK choice for fd; returns whether the real
// flag must stay on regardless (the shim relies on it).
bool set_user_nonblock(int fd, bool on) noexcept {
    FdEntry* e = fd_entry(fd);
    if (e == nullptr) {
        return false;
    }
    if ((e->bits.load(std::memory_order_acquire) & kKindMask) == kind_unknown) {
        fd_classify(fd, e);
    }
    if (on) {
        e->bits.fetch_or(kUserNonblock, std::memory_order_acq_rel);
    } else {
        e->bits.fetch_and(~kUserNonblock, std::memory_order_acq_rel);
    }
    return (e->bits.load(std::memory_order_acquire) & kInternalNonblock) != 0;
}

bool internal_nonblock(int fd) noexcept {
    const FdEntry* e = fd_entry(fd);
    return e != nullptr && (e->bits.load(std::memory_order_acquire) & (kInternalNonblock | kUserNonblock)) ==
                               kInternalNonblock;
}

Nanos timeval_ns(const void* val, socklen_t len) noexcept {
    if (val == nullptr || len < static_cast<socklen_t>(sizeof(struct timeval))) {
        return 0;
    }
    const auto* tv = static_cast<const struct timeval*>(val);
    if (tv->tv_sec < 0) {
        return -1;  // the kernel's "time out at once"
    }
    return static_cast<Nanos>(tv->tv_sec) * 1'000'000'000 + static_cast<Nanos>(tv->tv_usec) * 1000;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) noexcept {
    const int fd = sys::socket(domain, type, protocol);
    if (fd >= 0) {
        adopt_new_fd(fd, kind_socket, (type & SOCK_NONBLOCK) != 0);
    }
    return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
    const int r = sys::socketpair(domain, type, protocol, sv);
    if (r == 0) {
        adopt_new_fd(sv[0], kind_socket, (type & SOCK_NONBLOCK) != 0);
        adopt_new_fd(sv[1], kind_socket, (type & SOCK_NONBLOCK) != 0);
    }
    return r;
}

int accept4(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
    Hub* hub = nullptr;
    FdEntry* e = nullptr;
    const Path path = fd_path(fd, hub, e);
    // When a fiber may wait, the new socket is made non-blocking at birth:
    // it saves an fcntl at its first wait.
    const bool add_nonblock = path == Path::retry && (flags & SOCK_NONBLOCK) == 0;
    const int real_flags = add_nonblock ? flags | SOCK_NONBLOCK : flags;
    const int r = path == Path::passthrough ? sys::accept4(fd, addr, len, flags)
                                            : call_fd(fd, false, [&] { return sys::accept4(fd, addr, len, real_flags); });
    if (r >= 0) {
        adopt_new_fd(r, kind_socket, (flags & SOCK_NONBLOCK) != 0);
        if (add_nonblock) {
            fd_entry(r)->bits.fetch_or(kInternalNonblock, std::memory_order_acq_rel);
        }
    }
    return r;
}

int accept(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict len) {
    return accept4(fd, addr, len, 0);
}

// A blocking connect, cooperatively: start it non-blocking, wait for
// writability, read the outcome from SO_ERROR. With SO_SNDTIMEO expired,
// Linux reports EINPROGRESS (the connect goes on in the background).
int connect(int fd, const struct sockaddr* addr, socklen_t len) {
    Hub* hub = nullptr;
    FdEntry* e = nullptr;
    const Path path = fd_path(fd, hub, e);
    if (path == Path::passthrough || path == Path::ready_first) {
        return sys::connect(fd, addr, len);
    }
    if (sys::connect(fd, addr, len) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS) {
        return -1;
    }
    const Nanos deadline = sockopt_deadline(e, true);
    for (;;) {
        int w;
        if (path == Path::emulate) {
            w = block_until_ready(fd, POLLOUT, deadline);
        } else {
            SignalWindow window(hub);
            w = detail::io_await(fd, true, deadline);
        }
        if (w != 0 && errno == EINTR && restarts(hub, deadline != kNoDeadline)) {
            continue;
        }
        if (w != 0) {
            if ((errno == ETIMEDOUT || errno == EAGAIN) && deadline != kNoDeadline && detail::now_ns() >= deadline) {
                errno = EINPROGRESS;
            }
            return -1;
        }
        int err = 0;
        socklen_t err_len = sizeof err;
        if (sys::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
            return -1;
        }
        if (err != 0) {
            errno = err;
            return -1;
        }
        struct pollfd p{fd, POLLOUT, 0};
        if (sys::poll(&p, 1, 0) > 0) {
            return 0;
        }
    }
}

int close(int fd) {
    if (fd >= 0) {
        // Before the real close: once it returns, another thread may be
        // handed the same number, and its entry must not be wiped.
        forget_in_hub(fd);
        fd_released(fd);
    }
    return sys::close(fd);
}

int dup(int fd) noexcept {
    const int r = sys::dup(fd);
    if (r >= 0) {
        duplicated(fd, r);
    }
    return r;
}

int dup2(int from, int to) noexcept {
    if (from == to) {
        return sys::dup2(from, to);
    }
    const int r = sys::dup2(from, to);
    if (r >= 0) {
        duplicated(from, r);
    }
    return r;
}

int dup3(int from, int to, int flags) noexcept {
    const int r = sys::dup3(from, to, flags);
    if (r >= 0) {
        duplicated(from, r);
    }
    return r;
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    const long arg = va_arg(ap, long);
    va_end(ap);
    switch (cmd) {
        case F_GETFL: {
            const int r = sys::fcntl(fd, F_GETFL);
            if (r >= 0 && internal_nonblock(fd)) {
                return r & ~O_NONBLOCK;
            }
            return r;
        }
        case F_SETFL: {
            // Validate the fd first, so a failed call changes nothing.
            const int cur = sys::fcntl(fd, F_GETFL);
            if (cur < 0) {
                return -1;
            }
            const bool keep = set_user_nonblock(fd, (arg & O_NONBLOCK) != 0);
            return sys::fcntl(fd, F_SETFL, keep ? (arg | O_NONBLOCK) : arg);
        }
        case F_DUPFD:
        case F_DUPFD_CLOEXEC: {
            const int r = sys::fcntl(fd, cmd, arg);
            if (r >= 0) {
                duplicated(fd, r);
            }
            return r;
        }
        default:
            return sys::fcntl(fd, cmd, arg);
    }
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
    if (request == FIONBIO && arg != nullptr) {
        const int on = *static_cast<const int*>(arg);
        if (sys::fcntl(fd, F_GETFL) < 0) {
            return -1;  // EBADF, as ioctl reports it
        }
        const bool keep = set_user_nonblock(fd, on != 0);
        int real = (keep || on != 0) ? 1 : 0;
        return sys::ioctl(fd, FIONBIO, &real);
    }
    return sys::ioctl(fd, request, arg);
}

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
    const int r = sys::setsockopt(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (FdEntry* e = fd_entry(fd)) {
            (name == SO_RCVTIMEO ? e->rcvtimeo : e->sndtimeo).store(timeval_ns(val, len), std::memory_order_relaxed);
        }
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
        adopt_new_fd(fds[0], kind_stream, (flags & O_NONBLOCK) != 0);
        adopt_new_fd(fds[1], kind_stream, (flags & O_NONBLOCK) != 0);
    }
    return r;
}

int pipe(int fds[2]) noexcept {
    return pipe2(fds, 0);
}

int eventfd(unsigned int initval, int flags) noexcept {
    const int fd = sys::eventfd(initval, flags);
    if (fd >= 0) {
        adopt_new_fd(fd, kind_stream, (flags & EFD_NONBLOCK) != 0);
    }
    return fd;
}

int timerfd_create(int clockid, int flags) noexcept {
    const int fd = sys::timerfd_create(clockid, flags);
    if (fd >= 0) {
        adopt_new_fd(fd, kind_stream, (flags & TFD_NONBLOCK) != 0);
    }
    return fd;
}

}  // extern "C"

// Cooperative POSIX-style I/O (include/grove/io.hpp) on top of the hub's
// fd readiness wait. Every operation is one call of io_retry (io/io.hpp):
// try, and on EAGAIN wait for the edge and try again.
//
// Why the fast path never waits first: the poller is edge-triggered, so a
// wait is only sound after the kernel has said EAGAIN (or poll(2) has said
// "not ready") with no switch in between; any data arriving after that
// raises a new edge. Waiting before the first attempt could sleep through
// data that was already there.

#include "io/io.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>
#include <system_error>

#include <grove/io.hpp>

#include "hub/hub.hpp"
#include "sys/sys.hpp"

namespace grove::detail {

namespace {

// Thread-blocking fallback for fds the poller refuses (EPERM: regular files,
// directories). poll(2) calls those always ready, so this returns at once in
// practice; it exists so that such an fd behaves as a blocking call would.
// TODO: a non-pollable fd that keeps answering EAGAIN (a file under a
// mandatory lock) makes io_retry spin on the thread until it stops.
int poll_blocking(int fd, short events, Nanos deadline) noexcept {
    for (;;) {
        int ms = -1;
        if (deadline != kNoDeadline) {
            const Nanos left = deadline - now_ns();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            ms = static_cast<int>(std::min<Nanos>((left + 999'999) / 1'000'000, 0x7fffffff));
        }
        struct pollfd p{fd, events, 0};
        const int r = sys::poll(&p, 1, ms);
        if (r > 0) {
            if ((p.revents & POLLNVAL) != 0) {
                errno = EBADF;
                return -1;
            }
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
}

// One non-blocking look at fd: 1 ready (errors and hang-ups count, as they
// do for poll), 0 not ready, -1 + errno (EBADF for a bad fd).
int poll_now(int fd, short events) noexcept {
    for (;;) {
        struct pollfd p{fd, events, 0};
        const int r = sys::poll(&p, 1, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r > 0 && (p.revents & POLLNVAL) != 0) {
            errno = EBADF;
            return -1;
        }
        return r > 0 ? 1 : 0;
    }
}

bool passed(Nanos deadline) noexcept {
    return deadline != kNoDeadline && deadline <= now_ns();
}

// The scope whose expiry woke a wait with scope_timeout: the armed one
// with the nearest deadline, innermost on a tie, as park() chose it.
const Timeout* fired_scope(FiberCore* self) noexcept {
    const Timeout* fired = nullptr;
    Nanos nearest = kNoDeadline;
    for (Timeout* t = self->timeouts; t != nullptr; t = timeout_outer(t)) {
        if (timeout_armed(t) && timeout_deadline(t) < nearest) {
            nearest = timeout_deadline(t);
            fired = t;
        }
    }
    return fired;
}

// The hub's answer to a wait, as the io calls report it.
int wake_to_result(Hub& hub, WakeReason why, int fd, short events, Nanos deadline) noexcept {
    switch (why) {
        case WakeReason::ready:
            return 0;
        case WakeReason::timed_out:
            errno = ETIMEDOUT;
            return -1;
        case WakeReason::killed:
        case WakeReason::scope_timeout: {
            // The caller may be C code that cannot throw: the kill or the
            // fired scope is recorded as deferred, so the next C++
            // suspension point (or throw_pending) raises it, and a retry of
            // this call parks instead of being woken again at once.
            Waiter w;
            w.fiber = hub.running();
            w.why = why;
            w.scope = why == WakeReason::scope_timeout ? fired_scope(w.fiber) : nullptr;
            if (why == WakeReason::scope_timeout && w.scope == nullptr) {
                errno = ETIMEDOUT;  // cancelled meanwhile; nothing to raise
                return -1;
            }
            errno = defer_interruption(w);
            return -1;
        }
        case WakeReason::closed:
            errno = EBADF;
            return -1;
        case WakeReason::interrupted:
            // A signal handler ran (shim waits only); the shim restarts or
            // fails the call as the handler's SA_RESTART says.
            errno = EINTR;
            return -1;
        case WakeReason::none:
            if (errno == EPERM) {
                return poll_blocking(fd, events, deadline);
            }
            return -1;
    }
    errno = EINVAL;
    return -1;
}

}  // namespace

int io_prepare(int fd) noexcept {
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    Hub& hub = Hub::current();
    if (const FdState* s = hub.fd_state_if_any(fd); s != nullptr && s->nonblock) {
        return 0;
    }
    // F_GETFL first: it also rejects a bad fd before the hub grows a slot
    // for a number that may be huge.
    const int fl = sys::fcntl(fd, F_GETFL);
    if (fl < 0) {
        return -1;
    }
    if ((fl & O_NONBLOCK) == 0 && sys::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -1;
    }
    try {
        hub.fd_state(fd).nonblock = true;
    } catch (const std::bad_alloc&) {
        // Not remembered: the next call pays for F_GETFL again, no more.
    }
    return 0;
}

int io_await(int fd, bool want_write, Nanos deadline) noexcept {
    if (passed(deadline)) {
        errno = ETIMEDOUT;
        return -1;
    }
    Hub& hub = Hub::current();
    const WakeReason why = hub.wait_fd(fd, want_write, deadline);
    return wake_to_result(hub, why, fd, want_write ? POLLOUT : POLLIN, deadline);
}

void io_adopt(int fd, bool nonblock) noexcept {
    if (fd < 0) {
        return;
    }
    Hub& hub = Hub::current();
    hub.fd_forget(fd);
    if (!nonblock) {
        return;
    }
    try {
        hub.fd_state(fd).nonblock = true;
    } catch (const std::bad_alloc&) {
        // io_prepare will find out with F_GETFL.
    }
}

int io_wait(int fd, short events, Nanos deadline) noexcept {
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    const bool want_read = (events & (POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP)) != 0;
    const bool want_write = (events & (POLLOUT | POLLWRNORM | POLLWRBAND)) != 0;
    const bool both = want_read && want_write;
    // A fiber waits in one of the fd's two slots. For both directions it
    // sits in the reader slot and looks for writability between slices.
    // TODO(hub): a wait in both slots at once; until then POLLIN|POLLOUT
    // notices writability up to kMaxSlice late.
    constexpr Nanos kFirstSlice = 1'000'000;
    constexpr Nanos kMaxSlice = 50'000'000;
    Nanos slice = kFirstSlice;
    for (;;) {
        const int r = poll_now(fd, events);
        if (r != 0) {
            return r > 0 ? 0 : -1;
        }
        if (passed(deadline)) {
            errno = ETIMEDOUT;
            return -1;
        }
        Nanos until = deadline;
        if (both) {
            const Nanos now = now_ns();
            if (deadline == kNoDeadline || deadline - now > slice) {
                until = now + slice;
            }
            slice = std::min(slice * 2, kMaxSlice);
        }
        Hub& hub = Hub::current();
        const WakeReason why = hub.wait_fd(fd, want_write && !both, until);
        if (why == WakeReason::timed_out && until != deadline) {
            continue;  // a slice ended, not the wait
        }
        if (wake_to_result(hub, why, fd, events, deadline) != 0) {
            return -1;
        }
        // Ready: loop once more so the answer is the kernel's, not the edge's.
    }
}

namespace {

// With the hub's ring (GROVE_IO=uring), a write is handed to the ring at
// once, so a message costs no send syscall of its own; false: a plain send
// first, and the ring only where that says EAGAIN.
// (Measured on an echo server: ring sends first cost less CPU per message.)
constexpr bool kRingSendFirst = true;

// Whether a recv/send of n bytes on fd goes through the hub's ring: a ring
// is wanted and can be made, and fd is a stream socket (the ring's recv and
// send ignore O_NONBLOCK on sockets; on other files they would not).
bool use_ring(Hub& hub, int fd, std::size_t n) noexcept {
    return n > 0 && hub.ring_enabled() && hub.stream_socket(fd) && hub.ring() != nullptr;
}

// One recv/send through the ring (Hub::ring_call), as the io calls report
// it. Data that came before a cancel is returned, whatever ended the wait;
// a kill that came with it is raised at the next suspension point.
ssize_t ring_transfer(Hub& hub, bool write, int fd, const void* buf, std::size_t n, int flags,
                      Nanos deadline) noexcept {
    WakeReason early = WakeReason::none;
    const long r = hub.ring_call(write, fd, buf, n, flags, deadline, early);
    if (early == WakeReason::closed) {
        errno = EBADF;
        return -1;
    }
    if (r >= 0) {
        if (early == WakeReason::killed) {
            hub.running()->kill_pending = true;
        }
        return r;
    }
    if (early != WakeReason::none && r == -ECANCELED) {
        return wake_to_result(hub, early, fd, write ? POLLOUT : POLLIN, deadline);
    }
    if (write && r == -EPIPE && (flags & MSG_NOSIGNAL) == 0) {
        // A plain send raises SIGPIPE at the calling thread; the ring's
        // completion does not: raise it here, as the kernel would have.
        ::syscall(SYS_tgkill, ::getpid(), ::gettid(), SIGPIPE);
    }
    errno = static_cast<int>(-r);
    return -1;
}

// read/recv: as io_retry, but skips the attempt that the hub's readiness
// hint says can only fail (a stream socket seen drained), and feeds the
// hint from each result. Where it would wait, a ring recv waits instead
// when the ring is in use (`ring_ok`: flags the ring's recv takes as is).
template <class Op>
ssize_t read_hinted(int fd, void* buf, std::size_t n, int flags, bool ring_ok, Nanos deadline, Op&& op) noexcept {
    if (io_prepare(fd) != 0) {
        return -1;
    }
    Hub& hub = Hub::current();
    // A deadline already passed means "try once": never skip that try.
    bool attempt = n == 0 || hub.maybe_readable(fd) || passed(deadline);
    for (;;) {
        if (attempt) {
            const ssize_t r = op();
            if (r >= 0) {
                hub.note_read(fd, r, n);
                return r;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return r;
            }
            hub.note_read(fd, -1, n);
        }
        attempt = true;
        if (ring_ok && !passed(deadline) && use_ring(hub, fd, n)) {
            const ssize_t r = ring_transfer(hub, false, fd, buf, n, flags, deadline);
            if (r >= 0) {
                hub.note_read(fd, r, n, true);
                return r;
            }
            if (errno != EAGAIN) {
                return -1;
            }
            // The ring could not take it: wait on epoll.
        }
        if (io_await(fd, false, deadline) != 0) {
            return -1;
        }
    }
}

// write/send on a stream socket with the ring in use: a ring send (or a
// plain send first, see kRingSendFirst), then ring sends where the plain
// one says EAGAIN. Otherwise exactly io_retry.
template <class Op>
ssize_t write_ringed(int fd, const void* buf, std::size_t n, int flags, Nanos deadline, Op&& op) noexcept {
    if (io_prepare(fd) != 0) {
        return -1;
    }
    Hub& hub = Hub::current();
    const bool ring = use_ring(hub, fd, n);
    if (ring && kRingSendFirst && !passed(deadline)) {
        const ssize_t r = ring_transfer(hub, true, fd, buf, n, flags, deadline);
        if (r >= 0 || errno != EAGAIN) {
            return r;
        }
    }
    for (;;) {
        const ssize_t r = op();
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            return r;
        }
        if (ring && !passed(deadline)) {
            const ssize_t w = ring_transfer(hub, true, fd, buf, n, flags, deadline);
            if (w >= 0 || errno != EAGAIN) {
                return w;
            }
        }
        if (io_await(fd, true, deadline) != 0) {
            return -1;
        }
    }
}

}  // namespace

ssize_t io_ring_recv(int fd, void* buf, std::size_t n, Nanos deadline) noexcept {
    Hub& hub = Hub::current();
    if (passed(deadline) || !use_ring(hub, fd, n)) {
        errno = EAGAIN;
        return -1;
    }
    return ring_transfer(hub, false, fd, buf, n, 0, deadline);
}

ssize_t io_read(int fd, void* buf, std::size_t n, Nanos deadline) noexcept {
    return read_hinted(fd, buf, n, 0, true, deadline, [&] { return sys::read(fd, buf, n); });
}

ssize_t io_write(int fd, const void* buf, std::size_t n, Nanos deadline) noexcept {
    return write_ringed(fd, buf, n, 0, deadline, [&] { return sys::write(fd, buf, n); });
}

ssize_t io_write_all(int fd, const void* buf, std::size_t n, Nanos deadline) noexcept {
    const char* p = static_cast<const char*>(buf);
    std::size_t left = n;
    // do/while: a zero-length write still reaches the kernel, so a bad fd
    // reports EBADF as write(2) would.
    do {
        const ssize_t w = io_write(fd, p, left, deadline);
        if (w < 0) {
            return -1;
        }
        p += w;
        left -= static_cast<std::size_t>(w);
    } while (left > 0);
    return static_cast<ssize_t>(n);
}

ssize_t io_readv(int fd, const struct iovec* iov, int n, Nanos deadline) noexcept {
    return io_retry(fd, false, deadline, [&] { return sys::readv(fd, iov, n); });
}

ssize_t io_writev(int fd, const struct iovec* iov, int n, Nanos deadline) noexcept {
    return io_retry(fd, true, deadline, [&] { return sys::writev(fd, iov, n); });
}

ssize_t io_recv(int fd, void* buf, std::size_t n, int flags, Nanos deadline) noexcept {
    if ((flags & (MSG_PEEK | MSG_WAITALL)) != 0) {
        return io_retry(fd, false, deadline, [&] { return sys::recv(fd, buf, n, flags); });
    }
    return read_hinted(fd, buf, n, flags, flags == 0, deadline, [&] { return sys::recv(fd, buf, n, flags); });
}

ssize_t io_send(int fd, const void* buf, std::size_t n, int flags, Nanos deadline) noexcept {
    if ((flags & ~(MSG_NOSIGNAL | MSG_MORE)) != 0) {
        return io_retry(fd, true, deadline, [&] { return sys::send(fd, buf, n, flags); });
    }
    return write_ringed(fd, buf, n, flags, deadline, [&] { return sys::send(fd, buf, n, flags); });
}

ssize_t io_recvfrom(int fd, void* buf, std::size_t n, int flags, struct sockaddr* from, socklen_t* fromlen,
                    Nanos deadline) noexcept {
    return io_retry(fd, false, deadline, [&] { return sys::recvfrom(fd, buf, n, flags, from, fromlen); });
}

ssize_t io_sendto(int fd, const void* buf, std::size_t n, int flags, const struct sockaddr* to, socklen_t tolen,
                  Nanos deadline) noexcept {
    return io_retry(fd, true, deadline, [&] { return sys::sendto(fd, buf, n, flags, to, tolen); });
}

ssize_t io_recvmsg(int fd, struct msghdr* msg, int flags, Nanos deadline) noexcept {
    return io_retry(fd, false, deadline, [&] { return sys::recvmsg(fd, msg, flags); });
}

ssize_t io_sendmsg(int fd, const struct msghdr* msg, int flags, Nanos deadline) noexcept {
    return io_retry(fd, true, deadline, [&] { return sys::sendmsg(fd, msg, flags); });
}

int io_accept(int fd, struct sockaddr* addr, socklen_t* len, int flags, Nanos deadline) noexcept {
    const int r = io_retry(fd, false, deadline, [&] { return sys::accept4(fd, addr, len, flags | SOCK_NONBLOCK); });
    if (r >= 0) {
        io_adopt(r, true);
    }
    return r;
}

int io_connect(int fd, const struct sockaddr* addr, socklen_t len, Nanos deadline) noexcept {
    if (io_prepare(fd) != 0) {
        return -1;
    }
    if (sys::connect(fd, addr, len) == 0) {
        return 0;
    }
    // EINTR: a non-blocking connect carries on in the background, exactly as
    // after EINPROGRESS. Anything else (ECONNREFUSED on a unix socket,
    // EISCONN, EALREADY...) is the answer.
    // TODO: EAGAIN from a unix socket whose listener's backlog is full is
    // passed back rather than waited out; a blocking connect would wait.
    if (errno != EINPROGRESS && errno != EINTR) {
        return -1;
    }
    for (;;) {
        if (io_await(fd, true, deadline) != 0) {
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
        // No error yet may also mean "still connecting" after a wake-up that
        // was not the connect's; only writability says it is done.
        const int ready = poll_now(fd, POLLOUT);
        if (ready != 0) {
            return ready > 0 ? 0 : -1;
        }
    }
}

int io_socket(int domain, int type, int protocol) noexcept {
    const int fd = sys::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd >= 0) {
        io_adopt(fd, true);
    }
    return fd;
}

int io_close(int fd) noexcept {
    if (fd >= 0) {
        if (Hub* hub = Hub::current_if_any()) {
            hub->fd_forget(fd);
        }
    }
    return sys::close(fd);
}

// ---- C++ API --------------------------------------------------------------------

bool wait_fd_or_throw(int fd, bool want_write, Nanos deadline) {
    const char* what = want_write ? "grove::wait_writable" : "grove::wait_readable";
    const short events = want_write ? POLLOUT : POLLIN;
    if (fd < 0) {
        throw std::system_error(EBADF, std::generic_category(), what);
    }
    const int r = poll_now(fd, events);
    if (r != 0) {
        if (r < 0) {
            throw std::system_error(errno, std::generic_category(), what);
        }
        return true;
    }
    Hub& hub = Hub::current();
    // A deferred kill or Timeout (reported earlier to a POSIX-style call)
    // is due here, as at any C++ suspension point.
    raise_if_due(hub.running());
    for (;;) {
        switch (hub.wait_fd(fd, want_write, deadline)) {
            case WakeReason::ready:
                return true;
            case WakeReason::timed_out:
                return false;
            case WakeReason::killed:
                throw FiberExit();
            case WakeReason::scope_timeout:
                raise_if_due(hub.running());
                return false;
            case WakeReason::closed:
                throw std::system_error(EBADF, std::generic_category(),
                                        std::string(what) + ": the fd was closed while this fiber waited on it");
            case WakeReason::interrupted:
                continue;  // only interposed calls care about signals
            case WakeReason::none:
                if (errno == EPERM) {
                    return true;  // not pollable, and poll(2) calls such files always ready
                }
                throw std::system_error(errno, std::generic_category(), what);
        }
        return false;
    }
}

void throw_pending() {
    if (Hub* hub = Hub::current_if_any()) {
        raise_if_due(hub->running());
    }
}

}  // namespace grove::detail

// ---- grove::io: timeouts in, deadlines down ----------------------------------------

namespace grove::io {

namespace {

detail::Nanos to_deadline(std::chrono::nanoseconds timeout) noexcept {
    return timeout == forever ? detail::kNoDeadline : detail::deadline_after(timeout);
}

}  // namespace

int wait(int fd, short events, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_wait(fd, events, to_deadline(timeout));
}

ssize_t read(int fd, void* buf, std::size_t n, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_read(fd, buf, n, to_deadline(timeout));
}

ssize_t write(int fd, const void* buf, std::size_t n, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_write(fd, buf, n, to_deadline(timeout));
}

ssize_t write_all(int fd, const void* buf, std::size_t n, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_write_all(fd, buf, n, to_deadline(timeout));
}

ssize_t readv(int fd, const struct iovec* iov, int n, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_readv(fd, iov, n, to_deadline(timeout));
}

ssize_t writev(int fd, const struct iovec* iov, int n, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_writev(fd, iov, n, to_deadline(timeout));
}

ssize_t recv(int fd, void* buf, std::size_t n, int flags, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_recv(fd, buf, n, flags, to_deadline(timeout));
}

ssize_t send(int fd, const void* buf, std::size_t n, int flags, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_send(fd, buf, n, flags, to_deadline(timeout));
}

ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, struct sockaddr* from, socklen_t* fromlen,
                 std::chrono::nanoseconds timeout) noexcept {
    return detail::io_recvfrom(fd, buf, n, flags, from, fromlen, to_deadline(timeout));
}

ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const struct sockaddr* to, socklen_t tolen,
               std::chrono::nanoseconds timeout) noexcept {
    return detail::io_sendto(fd, buf, n, flags, to, tolen, to_deadline(timeout));
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_recvmsg(fd, msg, flags, to_deadline(timeout));
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_sendmsg(fd, msg, flags, to_deadline(timeout));
}

int accept(int fd, struct sockaddr* addr, socklen_t* len, int flags, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_accept(fd, addr, len, flags, to_deadline(timeout));
}

int connect(int fd, const struct sockaddr* addr, socklen_t len, std::chrono::nanoseconds timeout) noexcept {
    return detail::io_connect(fd, addr, len, to_deadline(timeout));
}

int socket(int domain, int type, int protocol) noexcept {
    return detail::io_socket(domain, type, protocol);
}

int close(int fd) noexcept {
    return detail::io_close(fd);
}

}  // namespace grove::io

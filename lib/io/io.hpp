// Cooperative I/O on absolute deadlines: the layer under grove::io:: (which
// only turns timeouts into deadlines) and the future LD_PRELOAD shim (which
// decides per call whether to come here at all, and with which deadline:
// SO_RCVTIMEO, say).
//
// Contract of every call here:
// - The operation is tried first; the fiber waits only after the kernel
//   said EAGAIN, then tries again. No wait, no switch, no epoll_ctl on the
//   fast path.
// - Results are POSIX: a count, or -1 with errno. The wait itself adds
//   ETIMEDOUT (deadline or an enclosing grove::Timeout), ECANCELED (killed),
//   EBADF (the fd was closed by another fiber while this one waited) and,
//   in waits the shim marked signal-interruptible, EINTR. A kill or a fired
//   Timeout is recorded as deferred (FiberCore::kill_deferred,
//   timeout_deferred): the next C++ suspension point or throw_pending()
//   raises it, and C code that retries parks normally, without a busy loop.
// - `deadline` is absolute CLOCK_MONOTONIC ns; kNoDeadline waits forever; a
//   deadline already passed tries once and never parks.
// - The fd is made O_NONBLOCK on first use, remembered in FdState::nonblock
//   until fd_forget(). An fd closed behind our back (plain ::close without
//   the shim) and reused keeps that mark: close with io_close.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>

#include <grove/detail/time.hpp>

namespace grove::detail {

// Makes fd non-blocking unless the hub already knows it is. 0, or -1 + errno
// (EBADF for a bad fd, before any hub state is made for it).
int io_prepare(int fd) noexcept;

// After an EAGAIN on fd: parks until it is ready in that direction. 0 means
// "try again"; -1 + errno ends the call (ETIMEDOUT, ECANCELED, EBADF...).
// Fds the poller refuses (regular files: EPERM) are waited for with a
// thread-blocking poll(2) instead, as a plain blocking call would.
int io_await(int fd, bool want_write, Nanos deadline) noexcept;

// The one retry loop every operation goes through. `op` makes one attempt
// and returns the syscall's result (-1 + errno on failure).
template <class Op>
auto io_retry(int fd, bool want_write, Nanos deadline, Op&& op) noexcept -> decltype(op()) {
    if (io_prepare(fd) != 0) {
        return -1;
    }
    for (;;) {
        const auto r = op();
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            return r;
        }
        if (io_await(fd, want_write, deadline) != 0) {
            return -1;
        }
    }
}

// A new fd number exists that grove did not create (pipe2, socketpair,
// dup2 onto a number): forgets whatever the hub knew of the old file there
// and records whether the new one is already O_NONBLOCK.
void io_adopt(int fd, bool nonblock) noexcept;

int io_wait(int fd, short events, Nanos deadline) noexcept;

ssize_t io_read(int fd, void* buf, std::size_t n, Nanos deadline) noexcept;
ssize_t io_write(int fd, const void* buf, std::size_t n, Nanos deadline) noexcept;
ssize_t io_write_all(int fd, const void* buf, std::size_t n, Nanos deadline) noexcept;
ssize_t io_readv(int fd, const struct iovec* iov, int n, Nanos deadline) noexcept;
ssize_t io_writev(int fd, const struct iovec* iov, int n, Nanos deadline) noexcept;
ssize_t io_recv(int fd, void* buf, std::size_t n, int flags, Nanos deadline) noexcept;
ssize_t io_send(int fd, const void* buf, std::size_t n, int flags, Nanos deadline) noexcept;
ssize_t io_recvfrom(int fd, void* buf, std::size_t n, int flags, struct sockaddr* from, socklen_t* fromlen,
                    Nanos deadline) noexcept;
ssize_t io_sendto(int fd, const void* buf, std::size_t n, int flags, const struct sockaddr* to, socklen_t tolen,
                  Nanos deadline) noexcept;
ssize_t io_recvmsg(int fd, struct msghdr* msg, int flags, Nanos deadline) noexcept;
ssize_t io_sendmsg(int fd, const struct msghdr* msg, int flags, Nanos deadline) noexcept;

// One recv without flags on a stream socket through the hub's ring
// (GROVE_IO=uring): parks until data, EOF or an error, as a blocking recv
// would; ETIMEDOUT, ECANCELED, EBADF, EINTR as io_await says them. -1 with
// errno EAGAIN when the ring cannot take it (none here, or full): the
// caller waits on readiness instead.
ssize_t io_ring_recv(int fd, void* buf, std::size_t n, Nanos deadline) noexcept;

// accept4 with SOCK_NONBLOCK added to `flags`; the new fd starts with fresh
// hub state.
int io_accept(int fd, struct sockaddr* addr, socklen_t* len, int flags, Nanos deadline) noexcept;
// Non-blocking connect, then a wait for writability and SO_ERROR: the
// connect's own error (ECONNREFUSED...) comes back in errno.
int io_connect(int fd, const struct sockaddr* addr, socklen_t len, Nanos deadline) noexcept;

int io_socket(int domain, int type, int protocol) noexcept;
// Wakes the fd's waiters (EBADF), forgets it in the hub, closes it.
int io_close(int fd) noexcept;

}  // namespace grove::detail

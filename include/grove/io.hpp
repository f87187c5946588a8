// Cooperative POSIX-style I/O. Each call tries the operation first and only
// parks the fiber (never the thread) when the kernel says EAGAIN, then
// retries. Results are POSIX: the byte count, or -1 with errno. Extra
// errno values for the waiting itself:
//   ETIMEDOUT  the call's timeout, or an enclosing grove::Timeout, passed
//   ECANCELED  the fiber was killed (FiberExit is thrown at its next
//              C++ suspension point: sleep, join, Event::wait...)
//   EBADF      the fd was closed by another fiber while this one waited
// The fds these functions touch are switched to O_NONBLOCK on first use.
// Close them with grove::io::close (or under the shim with plain close), so
// the hub forgets their registration before the number is reused.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>

#include <grove/detail/time.hpp>

namespace grove {

namespace io {

// "No limit" for the timeout parameters below. A negative timeout counts
// as zero: try once, never wait.
inline constexpr std::chrono::nanoseconds forever = std::chrono::nanoseconds::max();

// 0 when fd is ready for `events` (POLLIN and/or POLLOUT), else -1 + errno.
int wait(int fd, short events, std::chrono::nanoseconds timeout = forever) noexcept;

ssize_t read(int fd, void* buf, std::size_t n, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t write(int fd, const void* buf, std::size_t n, std::chrono::nanoseconds timeout = forever) noexcept;
// Loops until all n bytes are written (or an error: then returns -1, and
// errno tells; bytes written before the error are lost to the count).
ssize_t write_all(int fd, const void* buf, std::size_t n, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t readv(int fd, const struct iovec* iov, int n, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t writev(int fd, const struct iovec* iov, int n, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t recv(int fd, void* buf, std::size_t n, int flags, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t send(int fd, const void* buf, std::size_t n, int flags, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, struct sockaddr* from, socklen_t* fromlen,
                 std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const struct sockaddr* to, socklen_t tolen,
               std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t recvmsg(int fd, struct msghdr* msg, int flags, std::chrono::nanoseconds timeout = forever) noexcept;
ssize_t sendmsg(int fd, const struct msghdr* msg, int flags, std::chrono::nanoseconds timeout = forever) noexcept;

// accept4(2); the new fd is non-blocking (the grove way) plus `flags`.
int accept(int fd, struct sockaddr* addr, socklen_t* len, int flags = SOCK_CLOEXEC,
           std::chrono::nanoseconds timeout = forever) noexcept;
// connect(2) that waits for completion; the connect's own error (ECONNREFUSED
// ...) comes back through errno, as a blocking connect reports it.
int connect(int fd, const struct sockaddr* addr, socklen_t len, std::chrono::nanoseconds timeout = forever) noexcept;

// socket(2), non-blocking and close-on-exec, with fresh hub state.
int socket(int domain, int type, int protocol) noexcept;
// Wakes every fiber waiting on fd (they get EBADF), forgets it, closes it.
int close(int fd) noexcept;

}  // namespace io

// The readiness primitive all I/O uses, C++-style: true when ready, false
// when the timeout passed. Throws FiberExit when killed, TimeoutError for an
// enclosing grove::Timeout, std::system_error for a bad or closed fd.
bool wait_readable(int fd);
bool wait_writable(int fd);
template <class Rep, class Period>
bool wait_readable(int fd, std::chrono::duration<Rep, Period> d);
template <class Rep, class Period>
bool wait_writable(int fd, std::chrono::duration<Rep, Period> d);

namespace detail {
bool wait_fd_or_throw(int fd, bool want_write, Nanos deadline);
// After a grove::io call failed with ECANCELED or ETIMEDOUT: throws the
// FiberExit or TimeoutError that is due, if one is; otherwise returns.
void throw_pending();
}  // namespace detail

inline bool wait_readable(int fd) { return detail::wait_fd_or_throw(fd, false, detail::kNoDeadline); }
inline bool wait_writable(int fd) { return detail::wait_fd_or_throw(fd, true, detail::kNoDeadline); }
template <class Rep, class Period>
bool wait_readable(int fd, std::chrono::duration<Rep, Period> d) {
    return detail::wait_fd_or_throw(fd, false, detail::deadline_after(d));
}
template <class Rep, class Period>
bool wait_writable(int fd, std::chrono::duration<Rep, Period> d) {
    return detail::wait_fd_or_throw(fd, true, detail::deadline_after(d));
}

}  // namespace grove

// read/write and the socket send/receive family. Each is one call_fd()
// around one attempt of the real call (shim.hpp); pread/pwrite never wait
// on anything pollable (files; ESPIPE on sockets and pipes) and pass through.

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

bool dontwait(int flags) noexcept {
    return (flags & MSG_DONTWAIT) != 0;
}

}  // namespace

extern "C" {

void __chk_fail(void) __attribute__((noreturn));

ssize_t read(int fd, void* buf, size_t n) {
    return call_fd(fd, false, [&] { return sys::read(fd, buf, n); });
}

ssize_t write(int fd, const void* buf, size_t n) {
    return call_fd(fd, true, [&] { return sys::write(fd, buf, n); });
}

ssize_t readv(int fd, const struct iovec* iov, int n) {
    return call_fd(fd, false, [&] { return sys::readv(fd, iov, n); });
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
    return call_fd(fd, true, [&] { return sys::writev(fd, iov, n); });
}

ssize_t pread(int fd, void* buf, size_t n, off_t off) {
    return sys::pread(fd, buf, n, off);
}
ssize_t pread64(int fd, void* buf, size_t n, off_t off) {
    return sys::pread(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
    return sys::pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
    return sys::pwrite(fd, buf, n, off);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    if (dontwait(flags)) {
        return sys::recv(fd, buf, n, flags);
    }
    return call_fd(fd, false, [&] { return sys::recv(fd, buf, n, flags); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    if (dontwait(flags)) {
        return sys::send(fd, buf, n, flags);
    }
    return call_fd(fd, true, [&] { return sys::send(fd, buf, n, flags); });
}

ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags, struct sockaddr* __restrict from,
                 socklen_t* __restrict fromlen) {
    if (dontwait(flags)) {
        return sys::recvfrom(fd, buf, n, flags, from, fromlen);
    }
    return call_fd(fd, false, [&] { return sys::recvfrom(fd, buf, n, flags, from, fromlen); });
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* to, socklen_t tolen) {
    if (dontwait(flags)) {
        return sys::sendto(fd, buf, n, flags, to, tolen);
    }
    return call_fd(fd, true, [&] { return sys::sendto(fd, buf, n, flags, to, tolen); });
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
    if (dontwait(flags)) {
        return sys::recvmsg(fd, msg, flags);
    }
    return call_fd(fd, false, [&] { return sys::recvmsg(fd, msg, flags); });
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
    if (dontwait(flags)) {
        return sys::sendmsg(fd, msg, flags);
    }
    return call_fd(fd, true, [&] { return sys::sendmsg(fd, msg, flags); });
}

// A blocking recvmmsg waits for all vlen messages (or one, with
// MSG_WAITFORONE); on a non-blocking socket it takes what is there. So the
// cooperative version gathers until it has what the blocking call would.
int recvmmsg(int fd, struct mmsghdr* vec, unsigned int vlen, int flags, struct timespec* timeout) {
    auto real = sys::recvmmsg;
    Hub* hub = nullptr;
    FdEntry* e = nullptr;
    const Path path = dontwait(flags) || timeout != nullptr ? Path::passthrough : fd_path(fd, hub, e);
    if (path == Path::passthrough || path == Path::ready_first) {
        return real(fd, vec, vlen, flags, timeout);
    }
    const Nanos deadline = sockopt_deadline(e, false);
    unsigned got = 0;
    for (;;) {
        const int r = real(fd, vec + got, vlen - got, flags | MSG_DONTWAIT, nullptr);
        if (r > 0) {
            got += static_cast<unsigned>(r);
            if (got == vlen || (flags & MSG_WAITFORONE) != 0) {
                return static_cast<int>(got);
            }
            continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return got > 0 ? static_cast<int>(got) : -1;
        }
        const int w = path == Path::emulate ? block_until_ready(fd, POLLIN, deadline)
                                            : detail::io_await(fd, false, deadline);
        if (w != 0) {
            if (got > 0) {
                return static_cast<int>(got);
            }
            if (errno == ETIMEDOUT && deadline != kNoDeadline) {
                errno = EAGAIN;
            }
            return -1;
        }
    }
}

int sendmmsg(int fd, struct mmsghdr* vec, unsigned int vlen, int flags) {
    auto real = sys::sendmmsg;
    if (dontwait(flags)) {
        return real(fd, vec, vlen, flags);
    }
    return call_fd(fd, true, [&] { return real(fd, vec, vlen, flags); });
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
    return call_fd(out_fd, true, [&] { return sys::sendfile(out_fd, in_fd, offset, count); });
}
ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) {
    return sendfile(out_fd, in_fd, offset, count);
}

// _FORTIFY_SOURCE builds (most distribution binaries) call these instead.
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    if (n > buflen) {
        __chk_fail();
    }
    return read(fd, buf, n);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) {
        __chk_fail();
    }
    return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void* __restrict buf, size_t n, size_t buflen, int flags,
                       struct sockaddr* __restrict from, socklen_t* __restrict fromlen) {
    if (n > buflen) {
        __chk_fail();
    }
    return recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t __pread_chk(int fd, void* buf, size_t n, off_t off, size_t buflen) {
    if (n > buflen) {
        __chk_fail();
    }
    return sys::pread(fd, buf, n, off);
}
ssize_t __pread64_chk(int fd, void* buf, size_t n, off_t off, size_t buflen) {
    return __pread_chk(fd, buf, n, off, buflen);
}

}  // extern "C"

// read/write and the socket send/receive family (shim.hpp for the policy).
// On sockets every attempt carries MSG_DONTWAIT (read and write become recv
// and send, which the kernel treats alike on a socket; write on a
// SOCK_SEQPACKET socket adds MSG_EOR as the kernel does). Blocking semantics
// are then rebuilt: a send goes on until all of a stream is sent,
// MSG_WAITALL gathers. On pipes and other streams the call follows
// readiness. pread/pwrite never wait on anything pollable and pass through.

#include <fcntl.h>
#include <limits.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

bool dontwait(int flags) noexcept {
    return (flags & MSG_DONTWAIT) != 0;
}

// A private, advancing copy of an iovec array (partial sends, gathers).
class IovCursor {
public:
    static constexpr int kMax = 128;

    // False if the array is too long to copy: the caller then makes a
    // single attempt (a short count, as a signal could also cause).
    // `iov` must be known readable (the kernel has already read it).
    bool init(const struct iovec* iov, int n) noexcept {
        if (n < 0 || n > kMax) {
            return false;
        }
        std::memcpy(local_, iov, sizeof(struct iovec) * static_cast<std::size_t>(n));
        v_ = local_;
        n_ = n;
        return true;
    }
    // As init, for an array the kernel has not seen yet: a bad pointer is
    // EFAULT (errno set, false), as readv/writev would report it.
    bool init_checked(const struct iovec* iov, int n, bool& fault) noexcept {
        fault = false;
        if (n < 0 || n > kMax) {
            return false;
        }
        if (n > 0 && !copy_from_user(local_, iov, sizeof(struct iovec) * static_cast<std::size_t>(n))) {
            fault = true;
            return false;
        }
        v_ = local_;
        n_ = n;
        return true;
    }
    struct iovec* iov() noexcept { return v_; }
    int count() const noexcept { return n_; }
    std::size_t bytes() const noexcept {
        std::size_t b = 0;
        for (int i = 0; i < n_; ++i) {
            b += v_[i].iov_len;
        }
        return b;
    }
    // Moves past `done` bytes; false when nothing is left.
    bool advance(std::size_t done) noexcept {
        while (n_ > 0 && done >= v_->iov_len) {
            done -= v_->iov_len;
            ++v_;
            --n_;
        }
        if (n_ > 0 && done > 0) {
            v_->iov_base = static_cast<char*>(v_->iov_base) + done;
            v_->iov_len -= done;
        }
        while (n_ > 0 && v_->iov_len == 0) {
            ++v_;
            --n_;
        }
        return n_ > 0;
    }
    // The first at most `limit` bytes as an iovec array in `out`.
    int head(std::size_t limit, struct iovec* out) const noexcept {
        int k = 0;
        for (int i = 0; i < n_ && limit > 0; ++i) {
            out[k] = v_[i];
            out[k].iov_len = std::min(out[k].iov_len, limit);
            limit -= out[k].iov_len;
            ++k;
        }
        return k;
    }

private:
    struct iovec local_[kMax];
    struct iovec* v_ = local_;
    int n_ = 0;
};

// A blocking write on a pipe or other stream: readiness, then the plain
// write of what cannot block (PIPE_BUF at a time on a pipe: poll's POLLOUT
// promises that much room), until all is written. `put(limit)` writes at
// most `limit` bytes and returns the count; `advance(done)` moves on.
template <class Put, class Advance>
ssize_t stream_write(Hub* hub, int fd, bool fifo, std::size_t total, Put&& put, Advance&& advance) noexcept {
    const FdMode m = fd_mode(fd);
    if (total == 0 || m.nonblock || !m.writable) {
        return put(total);
    }
    const int saved = errno;
    std::size_t done = 0;
    for (;;) {
        struct pollfd p{fd, POLLOUT, 0};
        if (sys::poll(&p, 1, 0) != 0) {
            const ssize_t r = put(fifo ? std::min<std::size_t>(total - done, PIPE_BUF) : total - done);
            if (r < 0) {
                return done > 0 ? static_cast<ssize_t>(done) : r;
            }
            done += static_cast<std::size_t>(r);
            if (done >= total || !advance(static_cast<std::size_t>(r))) {
                errno = saved;
                return static_cast<ssize_t>(done);
            }
            continue;
        }
        if (wait_fd(hub, fd, POLLOUT, kNoDeadline) != Wait::ready) {
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
    }
}

// recv-style gather for MSG_WAITALL on a stream socket: until n bytes, EOF,
// an error, a timeout or a signal (then the count so far, as the kernel).
template <class Op>
ssize_t recv_all(Hub* hub, int fd, std::size_t n, int flags, Op&& op) noexcept {
    std::size_t got = 0;
    for (;;) {
        const ssize_t r = socket_recv(hub, fd, flags & ~MSG_WAITALL, [&](int fl) { return op(got, fl); });
        if (r <= 0) {
            return got > 0 ? static_cast<ssize_t>(got) : r;
        }
        got += static_cast<std::size_t>(r);
        if (got >= n) {
            return static_cast<ssize_t>(got);
        }
    }
}

bool gathers(std::uint32_t bits, int flags) noexcept {
    return (flags & MSG_WAITALL) != 0 && (flags & MSG_PEEK) == 0 && (bits & kStreamSocket) != 0;
}

int eor(std::uint32_t bits) noexcept {
    return (bits & kSeqpacket) != 0 ? MSG_EOR : 0;
}

}  // namespace

extern "C" {

void __chk_fail(void) __attribute__((noreturn));

ssize_t read(int fd, void* buf, size_t n) {
    Hub* hub = nullptr;
    // A zero-length call never blocks: the kernel answers it as it is.
    const std::uint32_t bits = n == 0 ? kind_file : fd_bits_for_call(fd, hub);
    switch (bits & kKindMask) {
        case kind_socket: {
            const ssize_t r = socket_recv(hub, fd, 0, [&](int fl) { return sys::recv(fd, buf, n, fl); });
            if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
                return read(fd, buf, n);
            }
            return r;
        }
        case kind_stream:
            if (n == 0 || ((bits & kCounter) != 0 && n < 8)) {
                return sys::read(fd, buf, n);  // answered at once by the kernel
            }
            return stream_read(hub, fd, [&] { return sys::read(fd, buf, n); });
        default:
            return sys::read(fd, buf, n);
    }
}

ssize_t write(int fd, const void* buf, size_t n) {
    Hub* hub = nullptr;
    const std::uint32_t bits = n == 0 ? kind_file : fd_bits_for_call(fd, hub);
    const char* p = static_cast<const char*>(buf);
    std::size_t left = n;
    auto advance = [&](std::size_t done) {
        p += done;
        left -= done;
        return left > 0;
    };
    switch (bits & kKindMask) {
        case kind_socket: {
            const bool stream = (bits & kStreamSocket) != 0;
            const ssize_t r = socket_send(
                hub, fd, eor(bits), n, [&](int fl) { return sys::send(fd, p, left, fl); },
                [&](std::size_t done) { return stream && advance(done); });
            if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
                return write(fd, buf, n);
            }
            return r;
        }
        case kind_stream:
            if ((bits & kCounter) != 0 && n < 8) {
                return sys::write(fd, buf, n);
            }
            return stream_write(
                hub, fd, (bits & kFifo) != 0, n, [&](std::size_t limit) { return sys::write(fd, p, std::min(limit, left)); },
                advance);
        default:
            return sys::write(fd, buf, n);
    }
}

ssize_t readv(int fd, const struct iovec* iov, int n) {
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    switch (bits & kKindMask) {
        case kind_socket: {
            IovCursor cur;
            bool fault = false;
            if (!cur.init_checked(iov, n, fault) || cur.bytes() == 0) {
                return sys::readv(fd, iov, n);  // the kernel answers at once (EINVAL, EFAULT, 0)
            }
            struct msghdr msg{};
            msg.msg_iov = const_cast<struct iovec*>(iov);
            msg.msg_iovlen = static_cast<std::size_t>(n);
            const ssize_t r = socket_recv(hub, fd, 0, [&](int fl) { return sys::recvmsg(fd, &msg, fl); });
            if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
                return readv(fd, iov, n);
            }
            return r;
        }
        case kind_stream: {
            IovCursor cur;
            bool fault = false;
            if (!cur.init_checked(iov, n, fault) || cur.bytes() == 0) {
                return sys::readv(fd, iov, n);  // the kernel answers at once (EINVAL, EFAULT, 0)
            }
            return stream_read(hub, fd, [&] { return sys::readv(fd, iov, n); });
        }
        default:
            return sys::readv(fd, iov, n);
    }
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    const std::uint32_t kind = bits & kKindMask;
    if (kind == kind_socket && n >= 0 && n <= IOV_MAX) {
        // The first attempt hands the user's array to the kernel as it is
        // (which checks it); a cursor is copied only for a partial send.
        const bool stream = (bits & kStreamSocket) != 0;
        IovCursor cur;
        bool have_cursor = false;
        struct msghdr msg{};
        const ssize_t r = socket_send(
            hub, fd, eor(bits), ~std::size_t{0},
            [&](int fl) {
                msg.msg_iov = have_cursor ? cur.iov() : const_cast<struct iovec*>(iov);
                msg.msg_iovlen = static_cast<std::size_t>(have_cursor ? cur.count() : n);
                return sys::sendmsg(fd, &msg, fl);
            },
            [&](std::size_t done) {
                if (!stream) {
                    return false;
                }
                if (!have_cursor) {
                    have_cursor = cur.init(iov, n);
                    if (!have_cursor) {
                        return false;  // too long to copy: a short count
                    }
                }
                return cur.advance(done);
            });
        if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
            return writev(fd, iov, n);
        }
        return r;
    }
    IovCursor cur;
    bool fault = false;
    if (kind != kind_stream || !cur.init_checked(iov, n, fault) || cur.bytes() == 0) {
        return sys::writev(fd, iov, n);  // EINVAL, EFAULT or 0 from the kernel, or a plain file
    }
    struct iovec piece[IovCursor::kMax];
    return stream_write(
        hub, fd, (bits & kFifo) != 0, cur.bytes(),
        [&](std::size_t limit) { return sys::writev(fd, piece, cur.head(limit, piece)); },
        [&](std::size_t done) { return cur.advance(done); });
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
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) || n == 0 ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::recv(fd, buf, n, flags);
    }
    if (gathers(bits, flags)) {
        return recv_all(hub, fd, n, flags, [&](std::size_t got, int fl) {
            return sys::recv(fd, static_cast<char*>(buf) + got, n - got, fl);
        });
    }
    return socket_recv(hub, fd, flags, [&](int fl) { return sys::recv(fd, buf, n, fl); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) || n == 0 ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::send(fd, buf, n, flags);
    }
    const char* p = static_cast<const char*>(buf);
    std::size_t left = n;
    const bool stream = (bits & kStreamSocket) != 0;
    return socket_send(
        hub, fd, flags, n, [&](int fl) { return sys::send(fd, p, left, fl); },
        [&](std::size_t done) {
            p += done;
            left -= done;
            return stream && left > 0;
        });
}

ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags, struct sockaddr* __restrict from,
                 socklen_t* __restrict fromlen) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) || n == 0 ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::recvfrom(fd, buf, n, flags, from, fromlen);
    }
    if (gathers(bits, flags)) {
        return recv_all(hub, fd, n, flags, [&](std::size_t got, int fl) {
            return sys::recvfrom(fd, static_cast<char*>(buf) + got, n - got, fl, from, fromlen);
        });
    }
    return socket_recv(hub, fd, flags, [&](int fl) { return sys::recvfrom(fd, buf, n, fl, from, fromlen); });
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* to, socklen_t tolen) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::sendto(fd, buf, n, flags, to, tolen);
    }
    const char* p = static_cast<const char*>(buf);
    std::size_t left = n;
    const bool stream = (bits & kStreamSocket) != 0;
    return socket_send(
        hub, fd, flags, n, [&](int fl) { return sys::sendto(fd, p, left, fl, to, tolen); },
        [&](std::size_t done) {
            p += done;
            left -= done;
            return stream && left > 0;
        });
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket || msg == nullptr) {
        return sys::recvmsg(fd, msg, flags);
    }
    IovCursor cur;
    if (gathers(bits, flags) && msg->msg_iovlen <= IovCursor::kMax &&
        cur.init(msg->msg_iov, static_cast<int>(msg->msg_iovlen))) {
        const std::size_t want = cur.bytes();
        struct iovec* const user_iov = msg->msg_iov;
        const std::size_t user_len = msg->msg_iovlen;
        const ssize_t r = recv_all(hub, fd, want, flags, [&](std::size_t got, int fl) {
            if (got > 0) {
                cur.init(user_iov, static_cast<int>(user_len));
                cur.advance(got);
            }
            msg->msg_iov = cur.iov();
            msg->msg_iovlen = static_cast<std::size_t>(cur.count());
            return sys::recvmsg(fd, msg, fl);
        });
        msg->msg_iov = user_iov;
        msg->msg_iovlen = user_len;
        return r;
    }
    return socket_recv(hub, fd, flags, [&](int fl) { return sys::recvmsg(fd, msg, fl); });
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) ? kind_file : fd_bits_for_call(fd, hub);
    IovCursor cur;
    if ((bits & kKindMask) != kind_socket || msg == nullptr || msg->msg_iovlen > IovCursor::kMax ||
        !cur.init(msg->msg_iov, static_cast<int>(msg->msg_iovlen))) {
        if ((bits & kKindMask) == kind_socket && msg != nullptr) {
            return socket_send(
                hub, fd, flags, ~std::size_t{0}, [&](int fl) { return sys::sendmsg(fd, msg, fl); },
                [](std::size_t) { return false; });
        }
        return sys::sendmsg(fd, msg, flags);
    }
    const bool stream = (bits & kStreamSocket) != 0;
    struct msghdr m = *msg;
    bool first = true;
    return socket_send(
        hub, fd, flags, cur.bytes(),
        [&](int fl) {
            m.msg_iov = cur.iov();
            m.msg_iovlen = static_cast<std::size_t>(cur.count());
            if (!first) {
                m.msg_control = nullptr;  // ancillary data goes with the first byte only
                m.msg_controllen = 0;
            }
            return sys::sendmsg(fd, &m, fl);
        },
        [&](std::size_t done) {
            first = false;
            return stream && cur.advance(done);
        });
}

// A blocking recvmmsg waits for all vlen messages (or one, with
// MSG_WAITFORONE); on a non-blocking socket it takes what is there. So the
// cooperative version gathers until it has what the blocking call would.
int recvmmsg(int fd, struct mmsghdr* vec, unsigned int vlen, int flags, struct timespec* timeout) {
    Hub* hub = nullptr;
    const std::uint32_t bits =
        dontwait(flags) || timeout != nullptr || vlen == 0 ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::recvmmsg(fd, vec, vlen, flags, timeout);
    }
    unsigned got = 0;
    for (;;) {
        const int r = socket_recv(hub, fd, flags & ~MSG_WAITFORONE,
                                  [&](int fl) { return sys::recvmmsg(fd, vec + got, vlen - got, fl, nullptr); });
        if (r <= 0) {
            return got > 0 ? static_cast<int>(got) : r;
        }
        got += static_cast<unsigned>(r);
        if (got >= vlen || (flags & MSG_WAITFORONE) != 0) {
            return static_cast<int>(got);
        }
    }
}

int sendmmsg(int fd, struct mmsghdr* vec, unsigned int vlen, int flags) {
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) || vlen == 0 ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket) {
        return sys::sendmmsg(fd, vec, vlen, flags);
    }
    unsigned sent = 0;
    const int r = socket_send(
        hub, fd, flags, vlen, [&](int fl) { return sys::sendmmsg(fd, vec + sent, vlen - sent, fl); },
        [&](std::size_t done) {
            sent += static_cast<unsigned>(done);
            return sent < vlen;
        });
    return r;
}

// sendfile has no per-call flag: the socket is made non-blocking for the
// call alone (it is hardly ever shared while a file is sent through it).
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(out_fd, hub);
    if ((bits & kKindMask) != kind_socket || count == 0) {
        return sys::sendfile(out_fd, in_fd, offset, count);
    }
    const int fl = sys::fcntl(out_fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK) != 0) {
        return sys::sendfile(out_fd, in_fd, offset, count);
    }
    const int saved = errno;
    ssize_t sent = 0;
    Nanos deadline = kNoDeadline;
    bool known = false;
    for (;;) {
        sys::fcntl(out_fd, F_SETFL, fl | O_NONBLOCK);
        const ssize_t r = sys::sendfile(out_fd, in_fd, offset, count - static_cast<std::size_t>(sent));
        const int err = errno;
        sys::fcntl(out_fd, F_SETFL, fl);
        if (r > 0) {
            sent += r;
            if (static_cast<std::size_t>(sent) >= count) {
                errno = saved;
                return sent;
            }
            continue;
        }
        if (r == 0) {
            errno = saved;
            return sent;  // end of the input file
        }
        if (err != EAGAIN) {
            errno = err;
            return sent > 0 ? sent : -1;
        }
        if (!wait_again(hub, out_fd, POLLOUT, true, deadline, known)) {
            return sent > 0 ? sent : -1;
        }
    }
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

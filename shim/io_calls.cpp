// read/write and the socket send/receive family (shim.hpp for the policy).
// On sockets every attempt carries MSG_DONTWAIT (read and write become recv
// and send, which the kernel treats alike on a socket; write on a
// SOCK_SEQPACKET socket adds MSG_EOR as the kernel does). Blocking semantics
// are then rebuilt: a send goes on until all of a stream is sent,
// MSG_WAITALL gathers. On pipes and other streams the call follows
// readiness. pread/pwrite and preadv/pwritev never wait on anything
// pollable and pass through (on a pipe or socket they fail with ESPIPE at
// once); preadv2/pwritev2 at the current position are readv/writev. Vectored calls work
// for any count up to IOV_MAX without allocating (IovCursor).

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

// Buffers the kernel answers at once, as readv/writev would, without any
// wait: a count outside 0..IOV_MAX (EINVAL), an array that is not readable
// (EFAULT), a length that does not fit ssize_t (EINVAL). Returns false for
// those (the caller makes the plain call); else true with the byte total.
// Reads the array in chunks: nothing is allocated, whatever the count.
bool check_iov(const struct iovec* iov, std::size_t n, std::size_t& total) noexcept {
    total = 0;
    if (n > IOV_MAX) {
        return false;
    }
    constexpr std::size_t kChunk = 64;
    struct iovec chunk[kChunk];
    for (std::size_t i = 0; i < n; i += kChunk) {
        const std::size_t k = std::min(kChunk, n - i);
        if (!copy_from_user(chunk, iov + i, sizeof(struct iovec) * k)) {
            return false;
        }
        for (std::size_t j = 0; j < k; ++j) {
            if (chunk[j].iov_len > static_cast<std::size_t>(SSIZE_MAX)) {
                return false;
            }
            total = std::min(total + chunk[j].iov_len, static_cast<std::size_t>(SSIZE_MAX));
        }
    }
    return true;
}

// A position in a user's iovec array (partial sends, gathers) that copies
// nothing: it reads the array in place (the kernel has already read it, so
// it is readable) and hands out windows of at most kWindow buffers, built
// in a fixed array, so any count up to IOV_MAX works without allocation.
class IovCursor {
public:
    static constexpr std::size_t kWindow = 128;

    void init(const struct iovec* iov, std::size_t n) noexcept {
        base_ = iov;
        n_ = n;
        i_ = 0;
        off_ = 0;
        skip_empty();
    }
    // Moves past `done` bytes; false when nothing is left.
    bool advance(std::size_t done) noexcept {
        while (done > 0 && i_ < n_) {
            const std::size_t left = base_[i_].iov_len - off_;
            if (done < left) {
                off_ += done;
                done = 0;
            } else {
                done -= left;
                ++i_;
                off_ = 0;
            }
        }
        skip_empty();
        return i_ < n_;
    }
    // The next at most kWindow buffers, at most `limit` bytes in all, in
    // window(); returns how many.
    int fill(std::size_t limit) noexcept {
        std::size_t k = 0;
        for (std::size_t j = i_; j < n_ && k < kWindow && limit > 0; ++j) {
            struct iovec v = base_[j];
            if (j == i_) {
                v.iov_base = static_cast<char*>(v.iov_base) + off_;
                v.iov_len -= off_;
            }
            v.iov_len = std::min(v.iov_len, limit);
            limit -= v.iov_len;
            win_[k++] = v;
        }
        return static_cast<int>(k);
    }
    struct iovec* window() noexcept { return win_; }

private:
    void skip_empty() noexcept {
        while (i_ < n_ && base_[i_].iov_len == off_) {
            ++i_;
            off_ = 0;
        }
    }
    const struct iovec* base_ = nullptr;
    std::size_t n_ = 0;
    std::size_t i_ = 0;    // the first buffer not wholly done
    std::size_t off_ = 0;  // bytes of base_[i_] done
    struct iovec win_[kWindow];
};

// A blocking write on a pipe or other stream, until all is written (at
// most kMaxRw bytes, as the kernel's one write). `put(limit, nowait)`
// writes what is left, at most `limit` bytes, with RWF_NOWAIT (pwritev2 at
// the current position) or plainly. On a pipe, with the flag: the pipe
// takes what fits, all of it in one call when there is room, and says
// EAGAIN when full; then a wait for room. Other files (a named FIFO, which
// refuses the flag, a tty, a device, an eventfd) get readiness first, then
// the plain write: of PIPE_BUF bytes on a FIFO, which readiness promises
// room for; elsewhere of the whole rest, as
// one write (a device may take a write as one message, and a tty's write
// is not interleaved with other writers'). Readiness promises less room
// there and the file is never made non-blocking, not even for the call (a
// tty is shared with the shell and its other programs, an eventfd with
// forked workers: two processes restoring the flag around their calls can
// leave it set for good), so a write to a tty with too little room holds
// the thread until the terminal takes it, and so does an eventfd write of
// more than 1 that would take the counter to its maximum. Both return the
// count written; `advance(done)` moves on and says whether anything is
// left. After part of it is written, a signal ends the call with the
// count, handled with SA_RESTART or not (signal(7)).
template <class Put, class Advance>
ssize_t stream_write(Hub* hub, int fd, std::uint32_t bits, std::size_t total, Put&& put, Advance&& advance) noexcept {
    const FdMode m = fd_mode(fd);
    if (total == 0 || m.nonblock || !m.writable) {
        return put(total, false);
    }
    total = std::min(total, kMaxRw);
    const int saved = errno;
    const bool fifo = (bits & kFifo) != 0;
    bool nowait = nowait_usable(bits, true);
    std::size_t done = 0;
    for (;;) {
        ssize_t r = -1;
        bool room = true;
        if (nowait) {
            r = put(total - done, true);
            if (r < 0 && errno == EAGAIN) {
                room = false;
            } else if (r < 0 && done == 0 && nowait_refused(fd, true, errno)) {
                nowait = false;
                errno = saved;
                continue;
            }
        } else {
            struct pollfd p{fd, POLLOUT, 0};
            room = sys::poll(&p, 1, 0) != 0;
            if (room) {
                r = put(fifo ? std::min<std::size_t>(total - done, PIPE_BUF) : total - done, false);
            }
        }
        if (room) {
            if (r < 0) {
                break;
            }
            done += static_cast<std::size_t>(r);
            if (done >= total || !advance(static_cast<std::size_t>(r))) {
                errno = saved;
                return static_cast<ssize_t>(done);
            }
            continue;
        }
        if (wait_fd(hub, fd, POLLOUT, kNoDeadline, done == 0) != Wait::ready) {
            break;
        }
    }
    if (done == 0) {
        return -1;
    }
    errno = saved;
    return static_cast<ssize_t>(done);
}

// recv-style gather for MSG_WAITALL on a stream socket: until n bytes, EOF,
// an error, a timeout or a signal (then the count so far, as the kernel,
// with SA_RESTART or not).
template <class Op>
ssize_t recv_all(Hub* hub, int fd, std::size_t n, int flags, Op&& op) noexcept {
    const int saved = errno;
    std::size_t got = 0;
    for (;;) {
        const ssize_t r =
            socket_recv(hub, fd, flags & ~MSG_WAITALL, [&](int fl) { return op(got, fl); }, got == 0);
        if (r <= 0) {
            if (got == 0) {
                return r;
            }
            errno = saved;
            return static_cast<ssize_t>(got);
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
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    // A zero-length call never blocks, nor does one no buffer can have
    // (EFAULT): the kernel answers it as it is.
    const std::uint32_t bits = n == 0 || n >= kPastUserSpace ? kind_file : fd_bits_for_call(fd, hub);
    switch (bits & kKindMask) {
        case kind_socket: {
            const ssize_t r =
                stream_socket_recv(hub, fd, bits, buf, n, [&](int fl) { return sys::recv(fd, buf, n, fl); });
            if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
                return read(fd, buf, n);
            }
            return r;
        }
        case kind_stream:
            if (n == 0 || ((bits & kCounter) != 0 && n < 8)) {
                return sys::read(fd, buf, n);  // answered at once by the kernel
            }
            return stream_read(hub, fd, bits, [&](bool nowait) {
                struct iovec v{buf, n};
                return nowait ? sys::preadv2(fd, &v, 1, -1, RWF_NOWAIT) : sys::read(fd, buf, n);
            });
        default:
            return sys::read(fd, buf, n);
    }
}

ssize_t write(int fd, const void* buf, size_t n) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = n == 0 || n >= kPastUserSpace ? kind_file : fd_bits_for_call(fd, hub);
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
                hub, fd, bits, n,
                [&](std::size_t limit, bool nowait) {
                    struct iovec v{const_cast<char*>(p), std::min(limit, left)};
                    return nowait ? sys::pwritev2(fd, &v, 1, -1, RWF_NOWAIT) : sys::write(fd, v.iov_base, v.iov_len);
                },
                advance);
        default:
            return sys::write(fd, buf, n);
    }
}

ssize_t readv(int fd, const struct iovec* iov, int n) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    const std::uint32_t kind = bits & kKindMask;
    std::size_t total = 0;
    if ((kind != kind_socket && kind != kind_stream) || !check_iov(iov, static_cast<std::size_t>(n), total) ||
        total == 0) {
        return sys::readv(fd, iov, n);  // the kernel answers at once (EINVAL, EFAULT, 0), or a plain file
    }
    if (kind == kind_stream) {
        return stream_read(hub, fd, bits, [&](bool nowait) {
            return nowait ? sys::preadv2(fd, iov, n, -1, RWF_NOWAIT) : sys::readv(fd, iov, n);
        });
    }
    // The user's array goes to the kernel as it is (n <= IOV_MAX, checked).
    struct msghdr msg{};
    msg.msg_iov = const_cast<struct iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(n);
    const ssize_t r = socket_recv(hub, fd, 0, [&](int fl) { return sys::recvmsg(fd, &msg, fl); });
    if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
        return readv(fd, iov, n);
    }
    return r;
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = fd_bits_for_call(fd, hub);
    const std::uint32_t kind = bits & kKindMask;
    if (kind == kind_socket && n >= 0 && n <= IOV_MAX) {
        // The first attempt hands the user's array to the kernel as it is
        // (which checks it); the cursor serves only after a partial send.
        const bool stream = (bits & kStreamSocket) != 0;
        IovCursor cur;
        bool have_cursor = false;
        struct msghdr msg{};
        const ssize_t r = socket_send(
            hub, fd, eor(bits), ~std::size_t{0},
            [&](int fl) {
                if (have_cursor) {
                    msg.msg_iovlen = static_cast<std::size_t>(cur.fill(~std::size_t{0}));
                    msg.msg_iov = cur.window();
                } else {
                    msg.msg_iov = const_cast<struct iovec*>(iov);
                    msg.msg_iovlen = static_cast<std::size_t>(n);
                }
                return sys::sendmsg(fd, &msg, fl);
            },
            [&](std::size_t done) {
                if (!stream) {
                    return false;
                }
                if (!have_cursor) {
                    cur.init(iov, static_cast<std::size_t>(n));
                    have_cursor = true;
                }
                return cur.advance(done);
            });
        if (r < 0 && errno == ENOTSOCK && reclassify(fd)) {
            return writev(fd, iov, n);
        }
        return r;
    }
    std::size_t total = 0;
    if (kind != kind_stream || !check_iov(iov, static_cast<std::size_t>(n), total) || total == 0) {
        return sys::writev(fd, iov, n);  // EINVAL, EFAULT or 0 from the kernel, or a plain file
    }
    // A first piece that is all of it goes as the user's own array: a pipe
    // write of at most PIPE_BUF bytes stays atomic, whatever the count.
    IovCursor cur;
    cur.init(iov, static_cast<std::size_t>(n));
    bool started = false;
    return stream_write(
        hub, fd, bits, total,
        [&](std::size_t limit, bool nowait) {
            const struct iovec* v = iov;
            int k = n;
            if (started || limit < total) {
                k = cur.fill(limit);
                v = cur.window();
            }
            return nowait ? sys::pwritev2(fd, v, k, -1, RWF_NOWAIT) : sys::writev(fd, v, k);
        },
        [&](std::size_t done) {
            started = true;
            return cur.advance(done);
        });
}

ssize_t pread(int fd, void* buf, size_t n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::pread(fd, buf, n, off);
}

ssize_t pread64(int fd, void* buf, size_t n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::pread(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::pwrite(fd, buf, n, off);
}

// preadv2/pwritev2 at the current position (offset -1) and without flags
// are readv/writev: the kernel takes the same path, so they wait as those
// do. With an offset they read or write a file at a place (a pipe or socket
// says ESPIPE at once); with flags the caller chose RWF_NOWAIT's own
// non-blocking call, or file semantics (RWF_HIPRI, RWF_DSYNC, RWF_APPEND...)
// the shim does not remake: both pass through, as preadv and pwritev do.
ssize_t preadv2(int fd, const struct iovec* iov, int n, off_t off, int flags) {
    if (off == -1 && flags == 0) {
        return readv(fd, iov, n);
    }
    GROVE_CANCELLATION_POINT(-1);
    return sys::preadv2(fd, iov, n, off, flags);
}

ssize_t preadv64v2(int fd, const struct iovec* iov, int n, off_t off, int flags) {
    return preadv2(fd, iov, n, off, flags);
}

ssize_t pwritev2(int fd, const struct iovec* iov, int n, off_t off, int flags) {
    if (off == -1 && flags == 0) {
        return writev(fd, iov, n);
    }
    GROVE_CANCELLATION_POINT(-1);
    return sys::pwritev2(fd, iov, n, off, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec* iov, int n, off_t off, int flags) {
    return pwritev2(fd, iov, n, off, flags);
}

ssize_t preadv(int fd, const struct iovec* iov, int n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::preadv(fd, iov, n, off);
}

ssize_t preadv64(int fd, const struct iovec* iov, int n, off_t off) {
    return preadv(fd, iov, n, off);
}

ssize_t pwritev(int fd, const struct iovec* iov, int n, off_t off) {
    GROVE_CANCELLATION_POINT(-1);
    return sys::pwritev(fd, iov, n, off);
}

ssize_t pwritev64(int fd, const struct iovec* iov, int n, off_t off) {
    return pwritev(fd, iov, n, off);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    GROVE_CANCELLATION_POINT(-1);
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
    if (flags == 0) {
        return stream_socket_recv(hub, fd, bits, buf, n, [&](int fl) { return sys::recv(fd, buf, n, fl); });
    }
    return socket_recv(hub, fd, flags, [&](int fl) { return sys::recv(fd, buf, n, fl); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    GROVE_CANCELLATION_POINT(-1);
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
    GROVE_CANCELLATION_POINT(-1);
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
    GROVE_CANCELLATION_POINT(-1);
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
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket || msg == nullptr) {
        return sys::recvmsg(fd, msg, flags);
    }
    struct msghdr head;
    std::size_t want = 0;
    if (gathers(bits, flags) && copy_from_user(&head, msg, sizeof head) &&
        check_iov(head.msg_iov, head.msg_iovlen, want)) {
        // Each attempt after the first receives into the rest of the
        // user's buffers, a window of them at a time.
        struct iovec* const user_iov = head.msg_iov;
        const std::size_t user_len = head.msg_iovlen;
        IovCursor cur;
        cur.init(user_iov, user_len);
        std::size_t at = 0;
        const ssize_t r = recv_all(hub, fd, want, flags, [&](std::size_t got, int fl) {
            if (got > 0) {
                cur.advance(got - at);
                at = got;
                msg->msg_iovlen = static_cast<std::size_t>(cur.fill(~std::size_t{0}));
                msg->msg_iov = cur.window();
            }
            return sys::recvmsg(fd, msg, fl);
        });
        msg->msg_iov = user_iov;
        msg->msg_iovlen = user_len;
        return r;
    }
    return socket_recv(hub, fd, flags, [&](int fl) { return sys::recvmsg(fd, msg, fl); });
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = nullptr;
    const std::uint32_t bits = dontwait(flags) ? kind_file : fd_bits_for_call(fd, hub);
    if ((bits & kKindMask) != kind_socket || msg == nullptr) {
        return sys::sendmsg(fd, msg, flags);
    }
    // The first attempt sends the user's message as it is (the kernel
    // checks it: EFAULT, EMSGSIZE beyond IOV_MAX...); after a partial send
    // of a stream, the rest goes a window of buffers at a time, without
    // the ancillary data, which travels with the first byte only.
    const bool stream = (bits & kStreamSocket) != 0;
    struct msghdr m{};
    IovCursor cur;
    bool have_cursor = false;
    return socket_send(
        hub, fd, flags, ~std::size_t{0},
        [&](int fl) {
            if (!have_cursor) {
                return sys::sendmsg(fd, msg, fl);
            }
            m.msg_iovlen = static_cast<std::size_t>(cur.fill(~std::size_t{0}));
            m.msg_iov = cur.window();
            return sys::sendmsg(fd, &m, fl);
        },
        [&](std::size_t done) {
            if (!stream) {
                return false;
            }
            if (!have_cursor) {
                m = *msg;  // the kernel has read it: readable
                m.msg_control = nullptr;
                m.msg_controllen = 0;
                cur.init(msg->msg_iov, msg->msg_iovlen);
                have_cursor = true;
            }
            return cur.advance(done);
        });
}

// A blocking recvmmsg waits for all vlen messages (or one, with
// MSG_WAITFORONE); on a non-blocking socket it takes what is there. So the
// cooperative version gathers until it has what the blocking call would.
int recvmmsg(int fd, struct mmsghdr* vec, unsigned int vlen, int flags, struct timespec* timeout) {
    GROVE_CANCELLATION_POINT(-1);
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
    GROVE_CANCELLATION_POINT(-1);
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

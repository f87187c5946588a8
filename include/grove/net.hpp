// RAII sockets over grove::io, gevent.socket / gevent.server style: calls
// block the fiber, never the thread, and failures throw.
//
//     grove::net::StreamServer server(grove::net::Address("127.0.0.1:9000"),
//                                     [](grove::net::TcpStream& s) {
//         char buf[4096];
//         while (std::size_t n = s.read_some(buf, sizeof buf)) {
//             s.write_all(buf, n);
//         }
//     });
//     server.serve_forever();
//
// Errors: std::system_error with the errno of the failed call (generic
// category) and a message naming what was attempted. A kill surfaces as
// grove::FiberExit and an expired grove::Timeout scope as
// grove::TimeoutError, never as a system_error. A call's own timeout
// (TcpStream::connect's) is system_error(ETIMEDOUT).
//
// Each object owns its fd and closes it through grove::io::close, which
// first wakes any fiber still waiting on it (that fiber gets EBADF).
// Objects belong to the thread (hub) that made them.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <grove/io.hpp>

namespace grove::net {

// ---------------------------------------------------------------- Address --
// An IPv4 or IPv6 socket address with a port (or, as seen from accept on a
// unix socket, a unix path). A value type; empty (family AF_UNSPEC) when
// default-constructed.
class Address {
public:
    Address() noexcept;
    // "127.0.0.1:8080", "[::1]:80", "[fe80::1%eth0]:80". Host names are not
    // resolved here: "localhost:80" throws std::invalid_argument saying so.
    explicit Address(std::string_view host_port);
    // A numeric host and a port: Address("::1", 80).
    Address(std::string_view host, std::uint16_t port);
    // Copies a kernel address (as accept/recvfrom/getsockname fill in).
    // Throws std::invalid_argument if len does not fit.
    Address(const struct sockaddr* sa, socklen_t len);

    static Address loopback_v4(std::uint16_t port = 0) { return Address("127.0.0.1", port); }
    static Address any_v4(std::uint16_t port = 0) { return Address("0.0.0.0", port); }

    int family() const noexcept { return storage_.ss_family; }
    bool empty() const noexcept { return family() == AF_UNSPEC; }
    // 0 for an address without a port.
    std::uint16_t port() const noexcept;
    // "127.0.0.1:8080", "[::1]:80", a unix path, or "" when empty.
    std::string to_string() const;
    // The host alone: "127.0.0.1", "::1".
    std::string host() const;

    const struct sockaddr* sockaddr() const noexcept { return reinterpret_cast<const struct sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return len_; }

    friend bool operator==(const Address& a, const Address& b) noexcept;

private:
    struct sockaddr_storage storage_;
    socklen_t len_;
};

// ----------------------------------------------------------------- Socket --
// What every socket class shares: one owned fd (-1 when empty), closed by
// the destructor. Move-only.
class Socket {
public:
    Socket() noexcept = default;
    // Adopts fd; the fd should come from grove::io::socket/accept, or have
    // gone through grove::detail::io_adopt if made otherwise.
    explicit Socket(int fd) noexcept : fd_(fd) {}
    Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Socket& operator=(Socket&& o) noexcept;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket();

    int fd() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return is_open(); }
    // Gives up ownership without closing.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes now (waking fibers waiting on it with EBADF); idempotent.
    void close() noexcept;

    // getsockname / getpeername.
    Address local_address() const;
    Address peer_address() const;

    // setsockopt; throws on failure.
    void set_option(int level, int name, int value);

protected:
    int fd_ = -1;
};

// ----------------------------------------------------------------- Stream --
// A connected byte stream: what TcpStream and UnixStream share.
class Stream : public Socket {
public:
    using Socket::Socket;

    // Waits until some bytes are there; returns how many were read (at most
    // n), 0 at end of stream.
    std::size_t read_some(void* buf, std::size_t n);
    // Reads until n bytes or end of stream; returns the count, which is
    // less than n only when the peer closed first.
    [[nodiscard]] std::size_t read_exact(void* buf, std::size_t n);
    // One write; returns how many bytes the kernel took (at least 1 unless
    // n is 0).
    std::size_t write(const void* buf, std::size_t n);
    // Writes all n bytes.
    void write_all(const void* buf, std::size_t n);
    void write_all(std::string_view s) { write_all(s.data(), s.size()); }

    enum class Shut { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };
    // shutdown(2): Shut::write sends end-of-stream to the peer.
    void shutdown(Shut how = Shut::write);
};

// -------------------------------------------------------------- TcpStream --
class TcpStream : public Stream {
public:
    using Stream::Stream;

    // Connects a new socket; throws system_error (ECONNREFUSED,
    // ETIMEDOUT when `timeout` passes...).
    static TcpStream connect(const Address& to, std::chrono::nanoseconds timeout = io::forever);

    // TCP_NODELAY.
    void set_nodelay(bool on = true);
};

// ------------------------------------------------------------- UnixStream --
class UnixStream : public Stream {
public:
    using Stream::Stream;

    // Connects to a SOCK_STREAM unix socket bound at `path`.
    static UnixStream connect(const std::string& path);
    // socketpair(AF_UNIX, SOCK_STREAM): two connected ends.
    static std::pair<UnixStream, UnixStream> pair();
};

// ------------------------------------------------------------ TcpListener --
class TcpListener : public Socket {
public:
    TcpListener() noexcept = default;
    // bind (with SO_REUSEADDR) + listen. Port 0 picks a free port:
    // local_address() tells which.
    explicit TcpListener(const Address& at, int backlog = SOMAXCONN);

    // Waits for the next connection.
    TcpStream accept();
    // The same, also filling in the peer's address.
    TcpStream accept(Address& peer);
};

// -------------------------------------------------------------- UdpSocket --
class UdpSocket : public Socket {
public:
    UdpSocket() noexcept = default;
    // A socket bound to `at` (port 0: any free port).
    explicit UdpSocket(const Address& at);

    // One datagram; returns the bytes sent.
    std::size_t send_to(const void* buf, std::size_t n, const Address& to);
    // Waits for one datagram; returns its size (truncated to n) and its
    // sender in `from`.
    std::size_t recv_from(void* buf, std::size_t n, Address& from);
};

// ----------------------------------------------------------- StreamServer --
// gevent.server.StreamServer: a listener plus one fiber per accepted
// connection, running the handler. The handler takes
//     void(TcpStream&)          the stream is closed when it returns, or
//     void(TcpStream, Address)  the stream and the peer's address, owned.
// A handler's std::exception ends its connection and is printed to stderr,
// except routine peer-gone errors (ECONNRESET, EPIPE), which are not.
// The handler is stored in a std::function, so it must be copyable; all
// connections share that one copy. A moved-from server may only be
// destroyed or assigned to.
class StreamServer {
public:
    using Handler = std::function<void(TcpStream&, Address&)>;

    template <class F>
        requires std::is_invocable_v<F&, TcpStream&> || std::is_invocable_v<F&, TcpStream&&, Address&&>
    StreamServer(const Address& at, F handler) : StreamServer(at, wrap(std::move(handler)), 0) {}

    // Serves on a listener made elsewhere.
    template <class F>
        requires std::is_invocable_v<F&, TcpStream&> || std::is_invocable_v<F&, TcpStream&&, Address&&>
    StreamServer(TcpListener listener, F handler) : StreamServer(std::move(listener), wrap(std::move(handler)), 0) {}

    StreamServer(StreamServer&&) noexcept;
    StreamServer& operator=(StreamServer&&) noexcept;
    // stop().
    ~StreamServer();

    // Binds and listens (unless given a listener), then spawns the accept
    // fiber and returns at once. Throws system_error if it cannot bind.
    void start();
    // start() if needed, then waits until stop().
    void serve_forever();
    // Closes the listener, kills every connection fiber and waits for them
    // to end. Called from inside a handler it also ends that handler (with
    // FiberExit, at once). Idempotent.
    void stop();

    // The listening address (the real port once started with port 0).
    Address address() const;
    bool started() const noexcept;
    // Connection fibers currently running.
    std::size_t connections() const noexcept;

private:
    struct Impl;
    StreamServer(const Address& at, Handler h, int);
    StreamServer(TcpListener listener, Handler h, int);

    template <class F>
    static Handler wrap(F f) {
        if constexpr (std::is_invocable_v<F&, TcpStream&&, Address&&>) {
            return [f = std::move(f)](TcpStream& s, Address& a) mutable { f(std::move(s), std::move(a)); };
        } else {
            return [f = std::move(f)](TcpStream& s, Address&) mutable { f(s); };
        }
    }

    std::unique_ptr<Impl> impl_;
};

}  // namespace grove::net

// grove::net: RAII sockets and StreamServer over grove::io.
//
// Error rule, in one place (fail()): an io call that failed with ECANCELED
// or ETIMEDOUT may be the visible end of a kill or of an expired
// grove::Timeout scope; throw_pending() raises those as FiberExit /
// TimeoutError. Only what is left becomes std::system_error.
//
// bind, listen, getsockname and getpeername are called by their libc names:
// they never block, so the shim has no reason to interpose them (grove::sys
// does not carry them).

#include <grove/net.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <grove/fiber.hpp>
#include <grove/sync.hpp>

#include "io/io.hpp"
#include "sys/sys.hpp"

namespace grove::net {

namespace {

[[noreturn]] void fail(int err, std::string_view what, const Address* addr = nullptr) {
    if (err == ECANCELED || err == ETIMEDOUT) {
        detail::throw_pending();
    }
    std::string msg = "grove::net: ";
    msg += what;
    if (addr != nullptr) {
        msg += ' ';
        msg += addr->to_string();
    }
    throw std::system_error(err, std::generic_category(), msg);
}

[[noreturn]] void bad_address(std::string_view text, const char* why) {
    std::string msg = "grove::net::Address: \"";
    msg += text;
    msg += "\": ";
    msg += why;
    throw std::invalid_argument(msg);
}

// A new socket of `type`, or throws.
int new_socket(int family, int type, const char* what) {
    const int fd = io::socket(family, type, 0);
    if (fd < 0) {
        fail(errno, what);
    }
    return fd;
}

}  // namespace

// ---- Address ------------------------------------------------------------------------

Address::Address() noexcept : storage_{}, len_(0) {}

Address::Address(std::string_view host_port) : Address() {
    std::string_view host;
    std::string_view port;
    if (!host_port.empty() && host_port.front() == '[') {
        const auto close = host_port.find(']');
        if (close == std::string_view::npos) {
            bad_address(host_port, "missing ']'");
        }
        host = host_port.substr(1, close - 1);
        const std::string_view rest = host_port.substr(close + 1);
        if (rest.size() < 2 || rest.front() != ':') {
            bad_address(host_port, "expected \"[host]:port\"");
        }
        port = rest.substr(1);
    } else {
        const auto colon = host_port.rfind(':');
        if (colon == std::string_view::npos) {
            bad_address(host_port, "expected \"host:port\"");
        }
        host = host_port.substr(0, colon);
        port = host_port.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            bad_address(host_port, "an IPv6 address with a port needs brackets, as in \"[::1]:80\"");
        }
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
        bad_address(host_port, "the port must be a number from 0 to 65535");
    }
    *this = Address(host, static_cast<std::uint16_t>(value));
}

Address::Address(std::string_view host, std::uint16_t port) : Address() {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string text(host);  // inet_pton wants a terminated string
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage_);
    if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len_ = sizeof(sockaddr_in);
        return;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage_);
    const auto pct = text.find('%');
    const std::string addr = text.substr(0, pct);
    if (::inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
        if (pct != std::string::npos) {
            const std::string scope = text.substr(pct + 1);
            unsigned id = ::if_nametoindex(scope.c_str());
            if (id == 0) {
                const auto [end, ec] = std::from_chars(scope.data(), scope.data() + scope.size(), id);
                if (scope.empty() || ec != std::errc() || end != scope.data() + scope.size()) {
                    bad_address(host, "unknown IPv6 scope (interface)");
                }
            }
            v6->sin6_scope_id = id;
        }
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len_ = sizeof(sockaddr_in6);
        return;
    }
    storage_ = {};
    bad_address(host, "not a numeric IPv4 or IPv6 address (host names are not resolved here; "
                      "use grove::dns, or 127.0.0.1 for localhost)");
}

Address::Address(const struct sockaddr* sa, socklen_t len) : Address() {
    if (len > sizeof storage_) {
        throw std::invalid_argument("grove::net::Address: sockaddr longer than sockaddr_storage");
    }
    if (sa != nullptr && len > 0) {
        std::memcpy(&storage_, sa, len);
        len_ = len;
    }
}

std::uint16_t Address::port() const noexcept {
    switch (family()) {
        case AF_INET:
            return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
        case AF_INET6:
            return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
        default:
            return 0;
    }
}

std::string Address::host() const {
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    switch (family()) {
        case AF_INET: {
            const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage_);
            return ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf) != nullptr ? buf : "";
        }
        case AF_INET6: {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
            if (::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf) == nullptr) {
                return "";
            }
            std::string out = buf;
            if (v6->sin6_scope_id != 0) {
                char name[IF_NAMESIZE];
                out += '%';
                out += ::if_indextoname(v6->sin6_scope_id, name) != nullptr ? std::string(name)
                                                                           : std::to_string(v6->sin6_scope_id);
            }
            return out;
        }
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
            const std::size_t off = offsetof(sockaddr_un, sun_path);
            if (len_ <= off) {
                return "";  // unnamed (a socketpair end, an unbound client)
            }
            const std::size_t n = len_ - off;
            if (un->sun_path[0] == '\0') {
                std::string out(n, '@');  // abstract namespace: "@name"
                out.replace(1, n - 1, un->sun_path + 1, n - 1);
                return out;
            }
            return std::string(un->sun_path, strnlen(un->sun_path, n));
        }
        default:
            return "";
    }
}

std::string Address::to_string() const {
    switch (family()) {
        case AF_INET:
            return host() + ':' + std::to_string(port());
        case AF_INET6:
            return '[' + host() + "]:" + std::to_string(port());
        default:
            return host();
    }
}

bool operator==(const Address& a, const Address& b) noexcept {
    if (a.family() != b.family()) {
        return false;
    }
    switch (a.family()) {
        case AF_UNSPEC:
            return true;
        case AF_INET: {
            const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
            const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
            return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        case AF_INET6: {
            const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
            const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
            return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
                   std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
        }
        default:
            return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
    }
}

// ---- Socket ---------------------------------------------------------------------------

Socket& Socket::operator=(Socket&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

Socket::~Socket() {
    close();
}

void Socket::close() noexcept {
    if (fd_ >= 0) {
        io::close(std::exchange(fd_, -1));
    }
}

Address Socket::local_address() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        fail(errno, "getsockname");
    }
    return Address(reinterpret_cast<sockaddr*>(&ss), len);
}

Address Socket::peer_address() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        fail(errno, "getpeername");
    }
    return Address(reinterpret_cast<sockaddr*>(&ss), len);
}

void Socket::set_option(int level, int name, int value) {
    if (sys::setsockopt(fd_, level, name, &value, sizeof value) != 0) {
        fail(errno, "setsockopt");
    }
}

// ---- Stream ---------------------------------------------------------------------------

std::size_t Stream::read_some(void* buf, std::size_t n) {
    const ssize_t r = io::read(fd_, buf, n);
    if (r < 0) {
        fail(errno, "read");
    }
    return static_cast<std::size_t>(r);
}

std::size_t Stream::read_exact(void* buf, std::size_t n) {
    auto* p = static_cast<char*>(buf);
    std::size_t got = 0;
    while (got < n) {
        const std::size_t r = read_some(p + got, n - got);
        if (r == 0) {
            break;
        }
        got += r;
    }
    return got;
}

// send(MSG_NOSIGNAL), not write: a peer that went away is an EPIPE
// exception here, not a SIGPIPE that ends the process.
std::size_t Stream::write(const void* buf, std::size_t n) {
    const ssize_t r = io::send(fd_, buf, n, MSG_NOSIGNAL);
    if (r < 0) {
        fail(errno, "write");
    }
    return static_cast<std::size_t>(r);
}

void Stream::write_all(const void* buf, std::size_t n) {
    const auto* p = static_cast<const char*>(buf);
    while (n > 0) {
        const std::size_t w = write(p, n);
        p += w;
        n -= w;
    }
}

void Stream::shutdown(Shut how) {
    if (sys::shutdown(fd_, static_cast<int>(how)) != 0) {
        fail(errno, "shutdown");
    }
}

// ---- TcpStream / UnixStream -----------------------------------------------------------

TcpStream TcpStream::connect(const Address& to, std::chrono::nanoseconds timeout) {
    TcpStream s(new_socket(to.empty() ? AF_INET : to.family(), SOCK_STREAM, "socket"));
    if (io::connect(s.fd(), to.sockaddr(), to.size(), timeout) != 0) {
        const int err = errno;
        s.close();
        fail(err, "connect to", &to);
    }
    return s;
}

void TcpStream::set_nodelay(bool on) {
    set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

UnixStream UnixStream::connect(const std::string& path) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (path.size() >= sizeof un.sun_path) {
        fail(ENAMETOOLONG, "connect to unix socket " + path);
    }
    std::memcpy(un.sun_path, path.data(), path.size());
    UnixStream s(new_socket(AF_UNIX, SOCK_STREAM, "socket"));
    if (io::connect(s.fd(), reinterpret_cast<sockaddr*>(&un), sizeof un, io::forever) != 0) {
        const int err = errno;
        s.close();
        fail(err, "connect to unix socket " + path);
    }
    return s;
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
    int sv[2];
    if (sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        fail(errno, "socketpair");
    }
    detail::io_adopt(sv[0], true);
    detail::io_adopt(sv[1], true);
    return {UnixStream(sv[0]), UnixStream(sv[1])};
}

// ---- TcpListener ----------------------------------------------------------------------

TcpListener::TcpListener(const Address& at, int backlog)
    : Socket(new_socket(at.empty() ? AF_INET : at.family(), SOCK_STREAM, "socket")) {
    set_option(SOL_SOCKET, SO_REUSEADDR, 1);
    if (::bind(fd_, at.sockaddr(), at.size()) != 0) {
        fail(errno, "bind", &at);
    }
    if (::listen(fd_, backlog) != 0) {
        fail(errno, "listen on", &at);
    }
}

TcpStream TcpListener::accept() {
    const int fd = io::accept(fd_, nullptr, nullptr);
    if (fd < 0) {
        fail(errno, "accept");
    }
    return TcpStream(fd);
}

TcpStream TcpListener::accept(Address& peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = io::accept(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    if (fd < 0) {
        fail(errno, "accept");
    }
    TcpStream s(fd);
    peer = Address(reinterpret_cast<sockaddr*>(&ss), len);
    return s;
}

// ---- UdpSocket ------------------------------------------------------------------------

UdpSocket::UdpSocket(const Address& at) : Socket(new_socket(at.empty() ? AF_INET : at.family(), SOCK_DGRAM, "socket")) {
    if (::bind(fd_, at.sockaddr(), at.size()) != 0) {
        fail(errno, "bind", &at);
    }
}

std::size_t UdpSocket::send_to(const void* buf, std::size_t n, const Address& to) {
    const ssize_t r = io::sendto(fd_, buf, n, MSG_NOSIGNAL, to.sockaddr(), to.size());
    if (r < 0) {
        fail(errno, "send to", &to);
    }
    return static_cast<std::size_t>(r);
}

std::size_t UdpSocket::recv_from(void* buf, std::size_t n, Address& from) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const ssize_t r = io::recvfrom(fd_, buf, n, 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r < 0) {
        fail(errno, "recvfrom");
    }
    from = Address(reinterpret_cast<sockaddr*>(&ss), len);
    return static_cast<std::size_t>(r);
}

// ---- StreamServer ---------------------------------------------------------------------
//
// Ownership: the Impl is on the heap, so the fibers' pointer to it survives
// a move of the StreamServer. The accept fiber and every connection fiber
// are members of `fibers`, declared last so that it is destroyed first: its
// destructor kills the members and waits for them, uninterruptibly, before
// the handler and listener they use go away.

struct StreamServer::Impl {
    Address at;
    Handler handler;
    TcpListener listener;
    Event stopped;
    bool started = false;
    bool stopping = false;
    Fiber<void> acceptor;  // also one of `fibers`
    Group fibers;

    void accept_loop();
    void serve(TcpStream& s, Address& peer);
    // The part of stop() that cannot fail or suspend.
    void close_down() noexcept {
        stopping = true;
        listener.close();  // wakes the accept fiber with EBADF
        stopped.set();
    }
};

namespace {

bool transient_accept_error(int e) noexcept {
    // Failures of one connection (Linux passes pending network errors of
    // the new socket to accept), not of the listener.
    switch (e) {
        case ECONNABORTED:
        case EINTR:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            return true;
        default:
            return false;
    }
}

bool out_of_resources(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

bool peer_gone(const std::error_code& ec) noexcept {
    return ec.category() == std::generic_category() &&
           (ec.value() == ECONNRESET || ec.value() == EPIPE || ec.value() == ENOTCONN);
}

}  // namespace

void StreamServer::Impl::accept_loop() {
    bool warned = false;
    while (!stopping) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int fd = io::accept(listener.fd(), reinterpret_cast<sockaddr*>(&ss), &len);
        if (fd < 0) {
            const int e = errno;
            if (stopping) {
                return;
            }
            if (e == ECANCELED || e == ETIMEDOUT) {
                detail::throw_pending();
                continue;
            }
            if (transient_accept_error(e)) {
                continue;
            }
            if (out_of_resources(e)) {
                // The connection stays queued; try again once some close.
                if (!warned) {
                    std::fprintf(stderr, "grove::net::StreamServer %s: accept: %s (retrying)\n",
                                 at.to_string().c_str(), std::strerror(e));
                    warned = true;
                }
                this_fiber::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            std::fprintf(stderr, "grove::net::StreamServer %s: accept: %s; no longer accepting\n",
                         at.to_string().c_str(), std::strerror(e));
            return;
        }
        warned = false;
        TcpStream stream(fd);
        Address peer(reinterpret_cast<sockaddr*>(&ss), len);
        // Queued, not run: the accept fiber drains the backlog first, then
        // the new handlers run when it parks.
        fibers.spawn([this](TcpStream s, Address a) { serve(s, a); }, std::move(stream), std::move(peer)).detach();
    }
}

void StreamServer::Impl::serve(TcpStream& s, Address& peer) {
    try {
        handler(s, peer);
    } catch (const std::system_error& e) {
        if (!peer_gone(e.code())) {
            std::fprintf(stderr, "grove::net::StreamServer: connection from %s: %s\n", peer.to_string().c_str(),
                         e.what());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "grove::net::StreamServer: connection from %s: %s\n", peer.to_string().c_str(),
                     e.what());
    }
    // FiberExit (a kill) is no std::exception: it ends the fiber as a kill.
}

StreamServer::StreamServer(const Address& at, Handler h, int) : impl_(std::make_unique<Impl>()) {
    impl_->at = at;
    impl_->handler = std::move(h);
}

StreamServer::StreamServer(TcpListener listener, Handler h, int) : impl_(std::make_unique<Impl>()) {
    impl_->at = listener.local_address();
    impl_->listener = std::move(listener);
    impl_->handler = std::move(h);
}

StreamServer::StreamServer(StreamServer&&) noexcept = default;

StreamServer& StreamServer::operator=(StreamServer&& o) noexcept {
    if (this != &o) {
        if (impl_) {
            impl_->close_down();
        }
        impl_ = std::move(o.impl_);
    }
    return *this;
}

StreamServer::~StreamServer() {
    if (impl_) {
        impl_->close_down();
    }
    // ~Impl: ~Group kills what still runs and waits for it.
}

void StreamServer::start() {
    Impl& s = *impl_;
    if (s.started) {
        return;
    }
    if (s.stopping) {
        throw std::logic_error("grove::net::StreamServer: start() after stop()");
    }
    if (!s.listener.is_open()) {
        s.listener = TcpListener(s.at);
    }
    s.at = s.listener.local_address();
    s.started = true;
    s.acceptor = s.fibers.spawn([&s] { s.accept_loop(); });
}

void StreamServer::serve_forever() {
    start();
    impl_->stopped.wait();
}

void StreamServer::stop() {
    if (!impl_) {
        return;
    }
    impl_->close_down();
    impl_->fibers.kill(false);
    // A handler that stops its own server is one of the killed: it ends
    // here, with FiberExit, rather than wait for itself.
    detail::throw_pending();
    impl_->fibers.join();
}

Address StreamServer::address() const {
    return impl_->at;
}

bool StreamServer::started() const noexcept {
    return impl_->started;
}

std::size_t StreamServer::connections() const noexcept {
    const std::size_t n = impl_->fibers.size();
    const bool accepting = impl_->acceptor.valid() && !impl_->acceptor.ready();
    return accepting && n > 0 ? n - 1 : n;
}

}  // namespace grove::net

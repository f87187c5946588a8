// Cooperative name resolution: a lookup parks the calling fiber, never the
// thread.
//
//     auto r = grove::dns::resolve("example.com", "443");
//     for (const auto& a : r.addresses) { connect(fd, a.addr(), a.len); ... }
//     std::string name = grove::dns::reverse(r.addresses[0]);
//
// Answers are those glibc's getaddrinfo/getnameinfo would give (/etc/hosts,
// resolv.conf's servers, search, ndots, timeout and attempts). Two backends:
// `thread` (glibc's own function in a worker thread: exact under any NSS
// set-up; the default) and `ares` (c-ares inside the hub: no thread per
// lookup). GROVE_RESOLVER=ares|thread and GROVE_DNS_SERVERS=ip[:port],...
// set the defaults; Options overrides them per call.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grove::dns {

inline constexpr std::chrono::nanoseconds forever = std::chrono::nanoseconds::max();

enum class Backend {
    default_backend,  // GROVE_RESOLVER, else thread
    ares,
    thread,
};

struct Options {
    Backend backend = Backend::default_backend;
    // "ip[:port][,ip[:port]...]": "192.0.2.53", "192.0.2.53:5353", "2001:db8::53",
    // "[2001:db8::53]:5353"; empty: GROVE_DNS_SERVERS, else resolv.conf's. The
    // thread backend takes at most three (glibc's MAXNS). A malformed list throws Error (Kind::other,
    // code EAI_SYSTEM with errno EINVAL) naming the bad entry.
    std::string servers;
    // A limit on top of resolv.conf's own timeout and attempts.
    std::chrono::nanoseconds timeout = forever;
};

// getaddrinfo's hints.
struct Hints {
    int flags = AI_V4MAPPED | AI_ADDRCONFIG;  // glibc's default with no hints
    int family = AF_UNSPEC;
    int socktype = 0;
    int protocol = 0;
};

struct Address {
    struct sockaddr_storage storage {};
    socklen_t len = 0;
    int family = AF_UNSPEC;
    int socktype = 0;
    int protocol = 0;

    const struct sockaddr* addr() const noexcept { return reinterpret_cast<const struct sockaddr*>(&storage); }
    // "192.0.2.1" or "2001:db8::1" (no port).
    std::string ip() const;
    // The port, host order (0 when none).
    int port() const noexcept;
};

struct Result {
    std::vector<Address> addresses;  // in getaddrinfo's order
    std::string canonical_name;      // with AI_CANONNAME, else empty
};

// A failed lookup. code() is getaddrinfo's EAI_* value (EAI_NONAME,
// EAI_AGAIN, EAI_FAIL, EAI_SERVICE...); the kind sorts them.
class Error : public std::runtime_error {
public:
    enum class Kind {
        not_found,  // EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY: no such name (or address)
        temporary,  // EAI_AGAIN: the servers failed (SERVFAIL, refused, resolv.conf timeout)
        timeout,    // the call's own Options::timeout passed (code EAI_AGAIN)
        other,      // bad hints, service, memory, EAI_FAIL, EAI_SYSTEM
    };
    Error(int code, Kind kind, const std::string& what);
    int code() const noexcept { return code_; }
    Kind kind() const noexcept { return kind_; }

private:
    int code_;
    Kind kind_;
};

// getaddrinfo, cooperatively. Throws Error; FiberExit when killed and
// TimeoutError for an enclosing grove::Timeout, as every suspension does.
// An empty host means none (the wildcard or loopback, per AI_PASSIVE); an
// empty service, none.
Result resolve(std::string_view host, std::string_view service = {}, const Hints& hints = {},
               const Options& options = {});

// getnameinfo with NI_NAMEREQD: the host name of an address. Throws Error
// (not_found when the address has no name).
std::string reverse(const struct sockaddr* sa, socklen_t len, int flags = 0, const Options& options = {});
std::string reverse(const Address& a, int flags = 0, const Options& options = {});
// Of a numeric address ("192.0.2.1", "2001:db8::1").
std::string reverse(std::string_view ip, int flags = 0, const Options& options = {});

}  // namespace grove::dns

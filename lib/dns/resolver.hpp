// Name resolution inside the hub: the layer under grove::dns (which throws)
// and the shim's getaddrinfo & co. (which return glibc's codes).
//
// Two backends, chosen per call (Request::backend), by default from
// GROVE_RESOLVER:
// - ares: one c-ares channel per hub (and per server list); its sockets sit
//   in a private epoll set that one driver fiber per channel waits on
//   through the hub, its timeouts become that wait's deadline. c-ares does
//   its socket I/O through grove::sys (ares_set_socket_functions), never
//   through the shim. Lookup fibers park until their callback runs.
// - thread: glibc's own function runs in a worker thread (a small process-
//   wide pool, made with the real pthread_create so it never becomes a green
//   thread and never has a hub: the shim passes its calls through); the
//   fiber waits cooperatively on an eventfd.
//
// Contract of every call here:
// - Results are exactly those of the glibc function of the same name: EAI_*
//   codes for getaddrinfo/getnameinfo (lists in glibc's own allocation
//   layout: the real freeaddrinfo frees them), h_errno values for the
//   hostent calls.
// - Numeric hosts, and everything that is not a name lookup (service names,
//   socket types, flag checks, the list's layout), are done by glibc's own
//   getaddrinfo with AI_NUMERICHOST: no network, the same answers.
// - `deadline` passing (a grove-level limit, on top of resolv.conf's own
//   timeout and attempts) ends the call with EAI_AGAIN / TRY_AGAIN; the
//   query is abandoned, not cancelled: its late answer is dropped.
// - A kill or an enclosing grove::Timeout ends the call with EAI_SYSTEM and
//   errno ECANCELED / ETIMEDOUT, recorded as deferred (see lib/io/io.hpp).
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include <grove/detail/time.hpp>

namespace grove::detail::dns {

enum class Backend {
    ares,    // c-ares in the hub
    thread,  // glibc's function in a worker thread
};

// GROVE_RESOLVER=ares|thread; `thread` when unset or unknown (see
// resolver.cpp: why).
Backend default_backend() noexcept;
// GROVE_DNS_SERVERS, or "" (resolv.conf's servers).
const std::string& default_servers() noexcept;

struct Request {
    Backend backend = default_backend();
    // "ip[:port][,ip[:port]...]": IPv4 "a.b.c.d[:port]", IPv6 "v6" or
    // "[v6][:port]"; "" for resolv.conf's. The thread backend takes at most three (MAXNS).
    std::string servers = default_servers();
    Nanos deadline = kNoDeadline;
};

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res,
                const Request& req) noexcept;
int getnameinfo(const struct sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags, const Request& req) noexcept;

// A hostent's contents, owned.
struct HostData {
    std::string name;
    std::vector<std::string> aliases;
    int addrtype = 0;
    int length = 0;
    std::vector<std::string> addrs;  // each `length` bytes
};

// How a hostent call ended, as glibc's would: `herr` is the h_errno value
// (0 on success; HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA,
// NETDB_INTERNAL), `ret` what the _r form returns, which glibc also leaves
// in errno (0 on success and for "not found"; EAGAIN for gethostbyname's
// TRY_AGAIN, though gethostbyaddr's is 0; the errno behind NETDB_INTERNAL).
struct HostStatus {
    int herr = 0;
    int ret = 0;
};

// gethostbyname2 / gethostbyaddr, `out` filled on success.
HostStatus gethostbyname(const char* name, int af, HostData& out, const Request& req) noexcept;
HostStatus gethostbyaddr(const void* addr, socklen_t len, int af, HostData& out, const Request& req) noexcept;

// A server list, parsed: each item "a.b.c.d[:port]", "v6" or "[v6][:port]"
// (port 53 when none), comma-separated. False, with `error` saying which
// item is wrong and why, for anything else (an empty item, a name, a bad
// port, more than `max` servers when max > 0).
struct Server {
    struct sockaddr_storage addr {};
    socklen_t len = 0;
};
bool parse_servers(const std::string& list, std::vector<Server>& out, std::string& error, std::size_t max = 0);

// Lays `h` out in the caller's buffer as gethostbyname_r does: false with
// ERANGE if it does not fit.
bool fill_hostent(const HostData& h, struct hostent* ret, char* buf, size_t buflen) noexcept;

// The real libc functions (never the shim's).
struct Libc {
    int (*getaddrinfo)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
    void (*freeaddrinfo)(struct addrinfo*);
    const char* (*gai_strerror)(int);
    int (*getnameinfo)(const struct sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
    struct hostent* (*gethostbyname)(const char*);
    struct hostent* (*gethostbyname2)(const char*, int);
    int (*gethostbyname_r)(const char*, struct hostent*, char*, size_t, struct hostent**, int*);
    int (*gethostbyname2_r)(const char*, int, struct hostent*, char*, size_t, struct hostent**, int*);
    struct hostent* (*gethostbyaddr)(const void*, socklen_t, int);
    int (*gethostbyaddr_r)(const void*, socklen_t, int, struct hostent*, char*, size_t, struct hostent**, int*);
};
const Libc& libc() noexcept;

}  // namespace grove::detail::dns

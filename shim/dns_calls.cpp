// Name lookups: getaddrinfo & co. glibc does their socket I/O through
// internal calls no interposer sees, so without these every lookup would
// block the whole thread. Inside a fiber they go to lib/dns (the backend
// GROVE_RESOLVER picks, the servers GROVE_DNS_SERVERS names); anywhere
// else straight to libc.
//
// Lists: lib/dns builds every addrinfo list in glibc's own allocation
// layout (nodes from glibc's getaddrinfo, ai_canonname from malloc), so
// freeaddrinfo is glibc's for every list, whoever made it.
//
// The non-reentrant calls keep their result in per-thread storage, as
// glibc's do (glibc's is per process; a fiber that parks between the call
// and its use of the result could otherwise see another fiber's answer —
// the per-thread buffer has that hazard too, as glibc's own has with
// threads).

#include <netdb.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "dns/resolver.hpp"
#include "shim.hpp"

using namespace grove;
using namespace grove::shim;
namespace dns = grove::detail::dns;

namespace {

// Storage for gethostbyname/gethostbyname2/gethostbyaddr results.
struct StaticHost {
    struct hostent he{};
    std::vector<char> buf;
};

StaticHost& static_host() {
    static thread_local StaticHost s;
    return s;
}

struct hostent* to_static(const dns::HostData& h) noexcept {
    StaticHost& s = static_host();
    try {
        std::size_t need = 64 + h.name.size() + h.addrs.size() * (h.length + sizeof(char*)) +
                           (h.aliases.size() + 2) * sizeof(char*);
        for (const auto& a : h.aliases) {
            need += a.size() + 1;
        }
        if (s.buf.size() < need) {
            s.buf.resize(need);
        }
    } catch (...) {
        h_errno = NETDB_INTERNAL;
        errno = ENOMEM;
        return nullptr;
    }
    if (!dns::fill_hostent(h, &s.he, s.buf.data(), s.buf.size())) {
        h_errno = NETDB_INTERNAL;
        return nullptr;
    }
    return &s.he;
}

// The _r calls' common ending: glibc's return value, also left in errno
// (0 for success and for "not found").
int finish_r(const dns::HostStatus& st, const dns::HostData& h, struct hostent* ret, char* buf, size_t buflen,
             struct hostent** result, int* h_errnop) noexcept {
    *result = nullptr;
    h_errno = st.herr;  // glibc sets both (python reads h_errno)
    if (st.herr != 0) {
        *h_errnop = st.herr;
        errno = st.ret;
        return st.ret;
    }
    if (!dns::fill_hostent(h, ret, buf, buflen)) {
        *h_errnop = NETDB_INTERNAL;
        h_errno = NETDB_INTERNAL;
        errno = ERANGE;
        return ERANGE;
    }
    *h_errnop = 0;
    errno = 0;
    *result = ret;
    return 0;
}

// The non-reentrant calls' ending: errno as the _r form leaves it.
struct hostent* finish_static(const dns::HostStatus& st, const dns::HostData& h) noexcept {
    if (st.herr != 0) {
        h_errno = st.herr;
        errno = st.ret;
        return nullptr;
    }
    struct hostent* he = to_static(h);
    if (he != nullptr) {
        errno = 0;
    }
    return he;
}

struct hostent* byname2(const char* name, int af) noexcept {
    dns::HostData h;
    return finish_static(dns::gethostbyname(name, af, h, dns::Request{}), h);
}

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
    if (hub_for_call() == nullptr) {
        return dns::libc().getaddrinfo(node, service, hints, res);
    }
    ErrnoGuard keep;
    const int rc = dns::getaddrinfo(node, service, hints, res, dns::Request{});
    if (rc == EAI_SYSTEM) {
        keep.saved = errno;
    }
    return rc;
}

void freeaddrinfo(struct addrinfo* ai) {
    dns::libc().freeaddrinfo(ai);
}

const char* gai_strerror(int code) {
    return dns::libc().gai_strerror(code);
}

int getnameinfo(const struct sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
    if (hub_for_call() == nullptr) {
        return dns::libc().getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    }
    ErrnoGuard keep;
    const int rc = dns::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags, dns::Request{});
    if (rc == EAI_SYSTEM) {
        keep.saved = errno;
    }
    return rc;
}

struct hostent* gethostbyname2(const char* name, int af) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyname2(name, af);
    }
    return byname2(name, af);
}

struct hostent* gethostbyname(const char* name) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyname(name);
    }
    return byname2(name, AF_INET);
}

int gethostbyname2_r(const char* name, int af, struct hostent* ret, char* buf, size_t buflen,
                     struct hostent** result, int* h_errnop) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
    }
    dns::HostData h;
    const dns::HostStatus st = dns::gethostbyname(name, af, h, dns::Request{});
    return finish_r(st, h, ret, buf, buflen, result, h_errnop);
}

int gethostbyname_r(const char* name, struct hostent* ret, char* buf, size_t buflen, struct hostent** result,
                    int* h_errnop) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    }
    return gethostbyname2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

struct hostent* gethostbyaddr(const void* addr, socklen_t len, int af) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyaddr(addr, len, af);
    }
    dns::HostData h;
    return finish_static(dns::gethostbyaddr(addr, len, af, h, dns::Request{}), h);
}

int gethostbyaddr_r(const void* addr, socklen_t len, int af, struct hostent* ret, char* buf, size_t buflen,
                    struct hostent** result, int* h_errnop) {
    if (hub_for_call() == nullptr) {
        return dns::libc().gethostbyaddr_r(addr, len, af, ret, buf, buflen, result, h_errnop);
    }
    dns::HostData h;
    const dns::HostStatus st = dns::gethostbyaddr(addr, len, af, h, dns::Request{});
    return finish_r(st, h, ret, buf, buflen, result, h_errnop);
}

}  // extern "C"

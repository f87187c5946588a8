// grove::dns against a real server: the dnsmasq that with_dnsmasq.sh starts
// (GROVE_TEST_DNS; its zone is listed there). Differential: for each name
// and hints, grove's answer (both backends) must equal glibc's own
// getaddrinfo pointed at the same server (its per-thread _res).
#define BOOST_TEST_MODULE dns
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <resolv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grove/grove.hpp>

#include "dns/resolver.hpp"
#include "hub/hub.hpp"

using namespace std::chrono_literals;
namespace gd = grove::detail::dns;

namespace {

std::string server() {
    const char* s = std::getenv("GROVE_TEST_DNS");
    return s != nullptr ? s : "";
}

std::string silent() {
    const char* s = std::getenv("GROVE_TEST_SILENT");
    return s != nullptr ? s : "";
}

struct NeedServer {
    NeedServer() {
        if (server().empty()) {
            std::fprintf(stderr, "run under tests/dns/with_dnsmasq.sh (GROVE_TEST_DNS unset)\n");
            std::exit(77);
        }
        // glibc and c-ares alike: one try of one second, so failures are quick.
        setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
    }
};
BOOST_TEST_GLOBAL_FIXTURE(NeedServer);

// A getaddrinfo answer as text: the code, then one line per entry.
std::string render(int rc, const struct addrinfo* ai) {
    std::ostringstream o;
    o << "rc=" << rc;
    if (rc != 0) {
        return o.str();
    }
    for (auto* a = ai; a != nullptr; a = a->ai_next) {
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
        o << "\n" << a->ai_family << " " << a->ai_socktype << " " << a->ai_protocol << " " << host << " " << serv;
        if (a->ai_canonname != nullptr) {
            o << " canon=" << a->ai_canonname;
        }
    }
    return o.str();
}

// Runs fn on a plain thread whose glibc _res points at `servers`
// ("127.0.0.1:port").
template <class F>
void with_glibc(const std::string& servers, F fn) {
    std::thread t([&] {
        res_init();
        const std::size_t colon = servers.find(':');
        struct sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<uint16_t>(std::atoi(servers.c_str() + colon + 1)));
        inet_pton(AF_INET, servers.substr(0, colon).c_str(), &sin.sin_addr);
        _res.nsaddr_list[0] = sin;
        _res.nscount = 1;
        fn();
    });
    t.join();
}

// glibc's getaddrinfo, on a plain thread, its _res pointed at `servers`.
std::string glibc_gai(const char* node, const char* service, const struct addrinfo* hints,
                      const std::string& servers = server()) {
    std::string out;
    with_glibc(servers, [&] {
        struct addrinfo* res = nullptr;
        const int rc = gd::libc().getaddrinfo(node, service, hints, &res);
        out = render(rc, res);
        if (rc == 0) {
            gd::libc().freeaddrinfo(res);
        }
    });
    return out;
}

std::string grove_gai(gd::Backend b, const char* node, const char* service, const struct addrinfo* hints,
                      const std::string& servers = server(), grove::detail::Nanos deadline = grove::detail::kNoDeadline) {
    gd::Request req;
    req.backend = b;
    req.servers = servers;
    req.deadline = deadline;
    struct addrinfo* res = nullptr;
    const int rc = gd::getaddrinfo(node, service, hints, &res, req);
    std::string out = render(rc, res);
    if (rc == 0) {
        gd::libc().freeaddrinfo(res);
    }
    return out;
}

std::string sorted_lines(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    std::string canon;
    for (std::string l; std::getline(in, l);) {
        if (const std::size_t c = l.find(" canon="); c != std::string::npos) {
            canon = l.substr(c);
            l.resize(c);
        }
        lines.push_back(l);
    }
    lines.push_back(canon);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

const char* const kNames[] = {
    "a.test", "both.test", "v6only.test", "alias.test", "alias2.test", "big.test", "nx.test", "sub.nx.test",
    "fail.test", "localhost", "runsc", "vm", "127.0.0.1", "127.1", "::1", "2001:db8::7", "a.test.",
    "n17.test", "", ".", "a..test", "-", "bad name.test", "x.", "..", "mixed.test",
    "localhost.", "LocalHost", "foo.localhost", "localhost.localdomain",
};

std::vector<struct addrinfo> hint_variants() {
    std::vector<struct addrinfo> v;
    auto add = [&](int flags, int family, int socktype) {
        struct addrinfo h{};
        h.ai_flags = flags;
        h.ai_family = family;
        h.ai_socktype = socktype;
        v.push_back(h);
    };
    add(0, AF_UNSPEC, 0);
    add(0, AF_INET, SOCK_STREAM);
    add(0, AF_INET6, 0);
    add(AI_CANONNAME, AF_UNSPEC, SOCK_STREAM);
    add(AI_V4MAPPED, AF_INET6, SOCK_DGRAM);
    add(AI_V4MAPPED | AI_ALL, AF_INET6, SOCK_STREAM);
    add(AI_ADDRCONFIG, AF_UNSPEC, SOCK_STREAM);
    add(AI_ADDRCONFIG, AF_INET6, SOCK_STREAM);
    add(AI_ADDRCONFIG | AI_V4MAPPED, AF_INET6, SOCK_STREAM);
    add(AI_PASSIVE | AI_NUMERICSERV, AF_INET, SOCK_STREAM);
    add(AI_NUMERICHOST, AF_UNSPEC, 0);
    return v;
}

void differential(gd::Backend b) {
    for (const char* name : kNames) {
        for (const struct addrinfo& h : hint_variants()) {
            for (const char* service : {static_cast<const char*>(nullptr), "80", "http"}) {
                if ((h.ai_flags & AI_NUMERICSERV) != 0 && service != nullptr && std::strcmp(service, "http") == 0) {
                    continue;
                }
                std::string want = glibc_gai(name, service, &h);
                std::string got = grove_gai(b, name, service, &h);
                if (std::strcmp(name, "big.test") == 0) {
                    want = sorted_lines(want);  // dnsmasq rotates the records of a name
                    got = sorted_lines(got);
                }
                BOOST_TEST_INFO("name '" << name << "' service " << (service ? service : "(none)") << " flags "
                                         << h.ai_flags << " family " << h.ai_family << " socktype " << h.ai_socktype);
                BOOST_TEST(got == want);
            }
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dns)

BOOST_AUTO_TEST_CASE(ares_answers_equal_glibcs_for_every_name_and_hint) {
    differential(gd::Backend::ares);
}

BOOST_AUTO_TEST_CASE(thread_answers_equal_glibcs_for_every_name_and_hint) {
    differential(gd::Backend::thread);
}

BOOST_AUTO_TEST_CASE(dnsmasq_records_come_back_through_the_public_api) {
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = server();
        grove::dns::Hints h;
        h.flags = AI_CANONNAME;
        h.socktype = SOCK_STREAM;
        auto r = grove::dns::resolve("alias.test", "443", h, o);
        BOOST_TEST(r.canonical_name == "a.test");
        BOOST_REQUIRE(r.addresses.size() == 1u);
        BOOST_TEST(r.addresses[0].ip() == "192.0.2.1");
        BOOST_TEST(r.addresses[0].port() == 443);
        h.family = AF_INET6;
        h.flags = 0;
        r = grove::dns::resolve("v6only.test", "", h, o);
        BOOST_REQUIRE(r.addresses.size() == 1u);
        BOOST_TEST(r.addresses[0].ip() == "2001:db8::6");
        h.family = AF_INET;
        r = grove::dns::resolve("big.test", "", h, o);
        BOOST_TEST(r.addresses.size() == 60u);  // over TCP: the UDP answer was truncated
    }
}

BOOST_AUTO_TEST_CASE(errors_are_thrown_with_their_kind) {
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = server();
        try {
            grove::dns::resolve("nx.test", "", {}, o);
            BOOST_FAIL("nx.test resolved");
        } catch (const grove::dns::Error& e) {
            BOOST_TEST(e.code() == EAI_NONAME);
            BOOST_TEST((e.kind() == grove::dns::Error::Kind::not_found));
        }
        try {
            grove::dns::resolve("fail.test", "", {}, o);
            BOOST_FAIL("fail.test resolved");
        } catch (const grove::dns::Error& e) {
            BOOST_TEST(e.code() == EAI_AGAIN);
            BOOST_TEST((e.kind() == grove::dns::Error::Kind::temporary));
        }
        try {
            grove::dns::resolve(std::string(300, 'x') + ".test", "", {}, o);
            BOOST_FAIL("an overlong name resolved");
        } catch (const grove::dns::Error& e) {
            BOOST_TEST(e.code() == EAI_NONAME);
        }
    }
}

BOOST_AUTO_TEST_CASE(reverse_lookup_finds_the_ptr_record) {
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = server();
        BOOST_TEST(grove::dns::reverse("192.0.2.1", 0, o) == "a.test");
        BOOST_TEST(grove::dns::reverse("127.0.0.1", 0, o) == "localhost");
        BOOST_CHECK_THROW(grove::dns::reverse("192.0.2.99", 0, o), grove::dns::Error);
    }
}

BOOST_AUTO_TEST_CASE(a_thousand_fibers_resolve_concurrently_on_one_thread) {
    grove::dns::Options o;
    o.backend = grove::dns::Backend::ares;
    o.servers = server();
    grove::dns::resolve("n0.test", "", {}, o);  // the channel exists
    const auto t0 = std::chrono::steady_clock::now();
    grove::dns::resolve("n1.test", "", {}, o);
    const auto single = std::chrono::steady_clock::now() - t0;
    std::vector<grove::Fiber<std::string>> fs;
    const auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
        fs.push_back(grove::spawn([i, &o] {
            grove::dns::Hints h;
            h.family = AF_INET;
            h.socktype = SOCK_STREAM;
            std::string name = "n";  // (operator+ here trips GCC 12's false -Wrestrict)
            name += std::to_string(i);
            name += ".test";
            return grove::dns::resolve(name, "", h, o).addresses.at(0).ip();
        }));
    }
    for (int i = 0; i < 1000; ++i) {
        BOOST_TEST(fs[i].join() == "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    }
    const auto all = std::chrono::steady_clock::now() - t1;
    using Ms = std::chrono::duration<double, std::milli>;
    const double single_ms = Ms(single).count();
    const double all_ms = Ms(all).count();
    BOOST_TEST_MESSAGE("one lookup " << single_ms << " ms, 1000 at once " << all_ms << " ms");
    BOOST_TEST((all < 3s));  // sequentially they would take ~1000 round trips
}

BOOST_AUTO_TEST_CASE(a_silent_server_fails_with_eai_again_while_other_fibers_run) {
    for (auto b : {gd::Backend::ares, gd::Backend::thread}) {
        std::atomic<int> ticks{0};
        bool stop = false;
        auto ticker = grove::spawn([&] {
            while (!stop) {
                grove::this_fiber::sleep_for(10ms);
                ++ticks;
            }
        });
        const auto t0 = std::chrono::steady_clock::now();
        struct addrinfo h{};
        const std::string got = grove_gai(b, "never.test", nullptr, &h, silent());
        const auto took = std::chrono::steady_clock::now() - t0;
        stop = true;
        ticker.join();
        BOOST_TEST(got == "rc=" + std::to_string(EAI_AGAIN));
        BOOST_TEST(got == glibc_gai("never.test", nullptr, &h, silent()));
        BOOST_TEST((took < 5s));      // resolv.conf's "timeout:1 attempts:1" (RES_OPTIONS)
        BOOST_TEST(ticks.load() > 20);  // the thread was never blocked
    }
}

BOOST_AUTO_TEST_CASE(the_calls_own_deadline_ends_a_lookup_with_a_timeout_error) {
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = silent();
        o.timeout = 200ms;
        const auto t0 = std::chrono::steady_clock::now();
        try {
            grove::dns::resolve("never2.test", "", {}, o);
            BOOST_FAIL("resolved through a silent server");
        } catch (const grove::dns::Error& e) {
            BOOST_TEST(e.code() == EAI_AGAIN);
            BOOST_TEST((e.kind() == grove::dns::Error::Kind::timeout));
        }
        BOOST_TEST((std::chrono::steady_clock::now() - t0 < 900ms));
    }
}

BOOST_AUTO_TEST_CASE(a_killed_lookup_ends_with_fiber_exit) {
    grove::dns::Options o;
    o.backend = grove::dns::Backend::ares;
    o.servers = silent();
    bool reached = false;
    auto f = grove::spawn([&] {
        try {
            grove::dns::resolve("never3.test", "", {}, o);
        } catch (const grove::dns::Error&) {
            reached = true;
        }
    });
    grove::this_fiber::sleep_for(50ms);
    f.kill();
    BOOST_TEST(!reached);
}

namespace {

struct Reverse {
    std::string gni[2];  // getnameinfo without and with NI_NAMEREQD: "rc host"
    std::string ghba;    // gethostbyaddr_r: "ret herr name"
};

void make_sa(const char* ip, sockaddr_storage& ss, socklen_t& len, std::string& bytes) {
    ss = {};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof *v4;
        bytes.assign(reinterpret_cast<const char*>(&v4->sin_addr), 4);
    } else {
        BOOST_REQUIRE(inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1);
        v6->sin6_family = AF_INET6;
        len = sizeof *v6;
        bytes.assign(reinterpret_cast<const char*>(&v6->sin6_addr), 16);
    }
}

Reverse glibc_reverse(const char* ip, const std::string& servers) {
    Reverse out;
    sockaddr_storage ss;
    socklen_t len = 0;
    std::string bytes;
    make_sa(ip, ss, len, bytes);
    with_glibc(servers, [&] {
        for (int i = 0; i < 2; ++i) {
            char host[NI_MAXHOST] = "";
            const int rc = gd::libc().getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr,
                                                  0, i == 0 ? 0 : NI_NAMEREQD);
            out.gni[i] = std::to_string(rc) + " " + (rc == 0 ? host : "");
        }
        char buf[4096];
        struct hostent he{};
        struct hostent* r = nullptr;
        int herr = 0;
        const int ret = gd::libc().gethostbyaddr_r(bytes.data(), static_cast<socklen_t>(bytes.size()), ss.ss_family,
                                                   &he, buf, sizeof buf, &r, &herr);
        out.ghba = std::to_string(ret) + " " + std::to_string(r != nullptr ? 0 : herr) + " " +
                   (r != nullptr ? r->h_name : "");
    });
    return out;
}

Reverse grove_reverse(gd::Backend b, const char* ip, const std::string& servers) {
    Reverse out;
    sockaddr_storage ss;
    socklen_t len = 0;
    std::string bytes;
    make_sa(ip, ss, len, bytes);
    gd::Request req;
    req.backend = b;
    req.servers = servers;
    for (int i = 0; i < 2; ++i) {
        char host[NI_MAXHOST] = "";
        const int rc = gd::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0,
                                       i == 0 ? 0 : NI_NAMEREQD, req);
        out.gni[i] = std::to_string(rc) + " " + (rc == 0 ? host : "");
    }
    gd::HostData hd;
    const gd::HostStatus st = gd::gethostbyaddr(bytes.data(), static_cast<socklen_t>(bytes.size()), ss.ss_family, hd, req);
    out.ghba = std::to_string(st.ret) + " " + std::to_string(st.herr) + " " + (st.herr == 0 ? hd.name : "");
    return out;
}

// The socket inodes this process holds.
std::vector<unsigned long> socket_inodes() {
    std::vector<unsigned long> out;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (struct dirent* e = readdir(d)) {
            char target[64] = "";
            const std::string path = std::string("/proc/self/fd/") + e->d_name;
            const ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
            unsigned long ino = 0;
            if (n > 0 && std::sscanf(target, "socket:[%lu]", &ino) == 1) {
                out.push_back(ino);
            }
        }
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reverse_lookup_failures_are_glibcs_not_found_or_try_again) {
    // 192.0.2.99: NXDOMAIN; 192.0.3.5: SERVFAIL; 198.18.0.7, 2001:db8::99:
    // REFUSED (no upstream); through the silent server: a timeout.
    struct Case {
        const char* ip;
        std::string servers;
        const char* namereqd;  // the expected getnameinfo code with NI_NAMEREQD
    };
    const Case cases[] = {
        {"192.0.2.1", server(), "0 a.test"},
        {"127.0.0.1", server(), "0 localhost"},
        {"192.0.2.99", server(), "-2 "},
        {"192.0.3.5", server(), "-3 "},
        {"198.18.0.7", server(), "-3 "},
        {"2001:db8::99", server(), "-3 "},
        {"192.0.2.98", silent(), "-3 "},
    };
    for (const Case& c : cases) {
        const Reverse want = glibc_reverse(c.ip, c.servers);
        BOOST_TEST_INFO("address " << c.ip);
        BOOST_TEST(want.gni[1] == c.namereqd);  // the zone is what this test thinks it is
        for (auto b : {gd::Backend::ares, gd::Backend::thread}) {
            const Reverse got = grove_reverse(b, c.ip, c.servers);
            BOOST_TEST_INFO("address " << c.ip << " backend " << (b == gd::Backend::ares ? "ares" : "thread"));
            BOOST_TEST(got.gni[0] == want.gni[0]);
            BOOST_TEST(got.gni[1] == want.gni[1]);
            BOOST_TEST(got.ghba == want.ghba);
        }
    }
}

BOOST_AUTO_TEST_CASE(numeric_hosts_and_localhost_from_etc_hosts_never_touch_the_network) {
    // Through the silent server any query costs its one-second timeout.
    const char* names[] = {"127.0.0.1", "::1", "127.1", "localhost"};
    for (auto b : {gd::Backend::ares, gd::Backend::thread}) {
        for (const char* n : names) {
            struct addrinfo h{};
            h.ai_family = std::strchr(n, ':') != nullptr ? AF_INET6 : AF_INET;
            h.ai_socktype = SOCK_STREAM;
            const auto t0 = std::chrono::steady_clock::now();
            const std::string got = grove_gai(b, n, "80", &h, silent());
            const auto took = std::chrono::steady_clock::now() - t0;
            BOOST_TEST_INFO("name " << n);
            BOOST_TEST(got.substr(0, 5) == "rc=0\n");
            BOOST_TEST(got == glibc_gai(n, "80", &h, silent()));
            BOOST_TEST((took < 500ms));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_forked_child_gets_its_own_channel) {
    // c-ares keeps a socket open while a query is in flight: fork while a
    // fiber waits on the silent server (the second server answers after the
    // first one's one-second timeout).
    grove::dns::Options o;
    o.backend = grove::dns::Backend::ares;
    o.servers = silent() + "," + server();
    o.timeout = 10s;
    grove::dns::Hints h;
    h.family = AF_INET;
    BOOST_TEST(grove::dns::resolve("a.test", "", h, o).addresses.at(0).ip() == "192.0.2.1");  // before the fork
    const auto before = socket_inodes();
    auto pending = grove::spawn([&] { return grove::dns::resolve("alias.test", "", h, o).addresses.at(0).ip(); });
    grove::this_fiber::sleep_for(100ms);
    std::vector<unsigned long> channel;  // the sockets of the query in flight: the channel's
    const auto during = socket_inodes();
    std::set_difference(during.begin(), during.end(), before.begin(), before.end(), std::back_inserter(channel));
    BOOST_TEST(!channel.empty());
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        // What the shim's fork does for a fiber: a fresh hub in the child.
        grove::detail::Hub::current().after_fork_child();
        close(fds[0]);
        std::string report;
        try {
            report = grove::dns::resolve("both.test", "", h, o).addresses.at(0).ip();
            for (unsigned long ino : socket_inodes()) {
                if (std::binary_search(channel.begin(), channel.end(), ino)) {
                    report += " shares-parent-socket";
                }
            }
        } catch (const std::exception& e) {
            report = e.what();
        }
        (void)!write(fds[1], report.data(), report.size());
        _exit(0);
    }
    close(fds[1]);
    std::string report;
    char buf[256];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) {
        report.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(report == "192.0.2.2");
    BOOST_TEST(pending.join() == "192.0.2.1");
    BOOST_TEST(grove::dns::resolve("v6only.test", "", grove::dns::Hints{0, AF_INET6}, o).addresses.at(0).ip() ==
               "2001:db8::6");
    BOOST_TEST(grove::dns::resolve("a.test", "", h, o).addresses.at(0).ip() == "192.0.2.1");
}

BOOST_AUTO_TEST_CASE(thread_backend_after_fork_still_resolves_in_the_child) {
    grove::dns::Options o;
    o.backend = grove::dns::Backend::thread;
    o.servers = server();
    o.timeout = 5s;
    grove::dns::Hints h;
    h.family = AF_INET;
    BOOST_TEST(grove::dns::resolve("a.test", "", h, o).addresses.at(0).ip() == "192.0.2.1");
    const pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        grove::detail::Hub::current().after_fork_child();
        try {
            _exit(grove::dns::resolve("both.test", "", h, o).addresses.at(0).ip() == "192.0.2.2" ? 0 : 1);
        } catch (...) {
            _exit(2);
        }
    }
    int status = 0;
    BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    BOOST_TEST(grove::dns::resolve("a.test", "", h, o).addresses.at(0).ip() == "192.0.2.1");
}

BOOST_AUTO_TEST_CASE(server_lists_parse_ipv4_ipv6_and_ports_and_name_bad_entries) {
    std::vector<gd::Server> list;
    std::string error;
    BOOST_TEST(gd::parse_servers("127.0.0.1,127.0.0.2:5353,::1,[::1]:5300,[2001:db8::1]", list, error));
    BOOST_REQUIRE(list.size() == 5u);
    auto port = [&](std::size_t i) {
        return list[i].addr.ss_family == AF_INET
                   ? ntohs(reinterpret_cast<const sockaddr_in*>(&list[i].addr)->sin_port)
                   : ntohs(reinterpret_cast<const sockaddr_in6*>(&list[i].addr)->sin6_port);
    };
    BOOST_TEST(list[0].addr.ss_family == AF_INET);
    BOOST_TEST(port(0) == 53);
    BOOST_TEST(port(1) == 5353);
    BOOST_TEST(list[2].addr.ss_family == AF_INET6);
    BOOST_TEST(port(2) == 53);
    BOOST_TEST(port(3) == 5300);
    BOOST_TEST(port(4) == 53);
    const char* bad[] = {"127.0.0.1,", ",127.0.0.1", "dns.example", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:x", "[::1", "[::1]5353", "[127.0.0.1]:53", "::1]:53", "[::1]:",
                         "1.2.3.4:"};
    for (const char* b : bad) {
        BOOST_TEST_INFO("list '" << b << "'");
        BOOST_TEST(!gd::parse_servers(b, list, error));
        BOOST_TEST(error.find("bad DNS server") == 0u);
        BOOST_TEST(list.empty());
    }
    BOOST_TEST(!gd::parse_servers("127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4", list, error, 3));
    BOOST_TEST(gd::parse_servers("127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4", list, error));
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = "127.0.0.1:53,nameserver.example";
        try {
            grove::dns::resolve("a.test", "", {}, o);
            BOOST_FAIL("a malformed server list was taken");
        } catch (const grove::dns::Error& e) {
            BOOST_TEST((e.kind() == grove::dns::Error::Kind::other));
            BOOST_TEST(std::string(e.what()).find("nameserver.example") != std::string::npos);
        }
        // Under the C interface: EAI_SYSTEM with EINVAL, no crash, no query.
        gd::Request req;
        req.backend = b == grove::dns::Backend::ares ? gd::Backend::ares : gd::Backend::thread;
        req.servers = "[::1";
        struct addrinfo* res = nullptr;
        errno = 0;
        BOOST_TEST(gd::getaddrinfo("a.test", nullptr, nullptr, &res, req) == EAI_SYSTEM);
        BOOST_TEST(errno == EINVAL);
    }
}

BOOST_AUTO_TEST_CASE(an_ipv6_server_is_asked_by_both_backends) {
    const char* v6 = std::getenv("GROVE_TEST_DNS6");
    if (v6 == nullptr) {
        BOOST_TEST_MESSAGE("no IPv6 on the loopback interface: only the parsing is tested");
        return;
    }
    for (auto b : {grove::dns::Backend::ares, grove::dns::Backend::thread}) {
        grove::dns::Options o;
        o.backend = b;
        o.servers = v6;
        o.timeout = 5s;
        grove::dns::Hints h;
        h.family = AF_INET;
        BOOST_TEST(grove::dns::resolve("a.test", "", h, o).addresses.at(0).ip() == "192.0.2.1");
        BOOST_TEST(grove::dns::reverse("192.0.2.1", 0, o) == "a.test");
        // A dead IPv6 server first, then the live one: the second answers.
        o.servers = std::string("[::1]:1,") + v6;
        BOOST_TEST(grove::dns::resolve("v6only.test", "", grove::dns::Hints{0, AF_INET6}, o).addresses.at(0).ip() ==
                   "2001:db8::6");
    }
}

BOOST_AUTO_TEST_SUITE_END()

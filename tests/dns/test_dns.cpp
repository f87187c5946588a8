// grove::dns against a real server: the dnsmasq that with_dnsmasq.sh starts
// (GROVE_TEST_DNS; its zone is listed there). Differential: for each name
// and hints, grove's answer (both backends) must equal glibc's own
// getaddrinfo pointed at the same server (its per-thread _res).
#define BOOST_TEST_MODULE dns
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <resolv.h>

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

// glibc's getaddrinfo, on a plain thread, its _res pointed at `servers`.
std::string glibc_gai(const char* node, const char* service, const struct addrinfo* hints,
                      const std::string& servers = server()) {
    std::string out;
    std::thread t([&] {
        res_init();
        const std::size_t colon = servers.find(':');
        struct sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<uint16_t>(std::atoi(servers.c_str() + colon + 1)));
        inet_pton(AF_INET, servers.substr(0, colon).c_str(), &sin.sin_addr);
        _res.nsaddr_list[0] = sin;
        _res.nscount = 1;
        struct addrinfo* res = nullptr;
        const int rc = gd::libc().getaddrinfo(node, service, hints, &res);
        out = render(rc, res);
        if (rc == 0) {
            gd::libc().freeaddrinfo(res);
        }
    });
    t.join();
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
    "n17.test", "", ".", "a..test", "-", "bad name.test", "x.", "..",
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
                if (b == gd::Backend::ares && std::strcmp(name, "localhost") == 0 && h.ai_family == AF_INET6) {
                    continue;  // c-ares answers ::1 without asking; glibc asks (no ::1 line in /etc/hosts)
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

BOOST_AUTO_TEST_SUITE_END()

// grove::net: addresses, RAII sockets, StreamServer. Every case runs under
// a grove::Timeout (Bounded), so a hang fails instead of stalling.
#define BOOST_TEST_MODULE net
#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <grove/fiber.hpp>
#include <grove/net.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

using namespace std::chrono_literals;
namespace net = grove::net;

namespace {

struct Bounded {
    grove::Timeout limit{20s};
};

// A loopback address whose port refuses: bound, never listening.
struct RefusingPort {
    int fd = -1;
    std::uint16_t port = 0;
    RefusingPort() {
        fd = grove::io::socket(AF_INET, SOCK_STREAM, 0);
        BOOST_REQUIRE_GE(fd, 0);
        const net::Address any = net::Address::loopback_v4(0);
        BOOST_REQUIRE(::bind(fd, any.sockaddr(), any.size()) == 0);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
        port = net::Address(reinterpret_cast<sockaddr*>(&ss), len).port();
    }
    ~RefusingPort() { grove::io::close(fd); }
};

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('A' + (i * 13 + seed) % 26);
    }
    return s;
}

void echo(net::TcpStream& s) {
    char buf[4096];
    while (std::size_t n = s.read_some(buf, sizeof buf)) {
        s.write_all(buf, n);
    }
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(net_suite, Bounded)

// ---- Address ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(address_parses_ipv4_and_prints_it_back) {
    const net::Address a("127.0.0.1:8080");
    BOOST_CHECK_EQUAL(a.family(), AF_INET);
    BOOST_CHECK_EQUAL(a.port(), 8080);
    BOOST_CHECK_EQUAL(a.host(), "127.0.0.1");
    BOOST_CHECK_EQUAL(a.to_string(), "127.0.0.1:8080");
    BOOST_CHECK(a == net::Address("127.0.0.1", 8080));
    BOOST_CHECK(!(a == net::Address("127.0.0.1:8081")));
}

BOOST_AUTO_TEST_CASE(address_parses_bracketed_ipv6_and_prints_it_back) {
    const net::Address a("[::1]:80");
    BOOST_CHECK_EQUAL(a.family(), AF_INET6);
    BOOST_CHECK_EQUAL(a.port(), 80);
    BOOST_CHECK_EQUAL(a.host(), "::1");
    BOOST_CHECK_EQUAL(a.to_string(), "[::1]:80");
    BOOST_CHECK(a == net::Address("::1", 80));
    BOOST_CHECK(net::Address("[2001:db8::5]:0") == net::Address("2001:db8:0::5", 0));
}

BOOST_AUTO_TEST_CASE(address_refuses_host_names_and_malformed_text_clearly) {
    try {
        net::Address("localhost:80");
        BOOST_FAIL("a host name was accepted");
    } catch (const std::invalid_argument& e) {
        BOOST_CHECK(std::string(e.what()).find("not a numeric") != std::string::npos);
    }
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:8x", "::1:80", "[::1]",
                            "[::1:80", "1.2.3:80", ""}) {
        BOOST_CHECK_THROW(net::Address{std::string_view(bad)}, std::invalid_argument);
    }
}

BOOST_AUTO_TEST_CASE(address_round_trips_through_sockaddr) {
    const net::Address a("10.1.2.3:4567");
    const net::Address b(a.sockaddr(), a.size());
    BOOST_CHECK(a == b);
    BOOST_CHECK_EQUAL(b.to_string(), "10.1.2.3:4567");
    const net::Address empty;
    BOOST_CHECK(empty.empty());
    BOOST_CHECK_EQUAL(empty.port(), 0);
    BOOST_CHECK_EQUAL(empty.to_string(), "");
}

BOOST_AUTO_TEST_CASE(address_names_unix_paths_and_abstract_sockets) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, "/run/x.sock");
    const auto base = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    const net::Address path(reinterpret_cast<sockaddr*>(&un), base + 12);
    BOOST_CHECK_EQUAL(path.to_string(), "/run/x.sock");
    BOOST_CHECK_EQUAL(path.port(), 0);
    std::memcpy(un.sun_path, "\0grove", 6);
    const net::Address abstract(reinterpret_cast<sockaddr*>(&un), base + 6);
    BOOST_CHECK_EQUAL(abstract.to_string(), "@grove");
    const net::Address unnamed(reinterpret_cast<sockaddr*>(&un), base);
    BOOST_CHECK_EQUAL(unnamed.to_string(), "");
}

// ---- TCP -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tcp_stream_and_listener_move_bytes_both_ways) {
    net::TcpListener listener(net::Address("127.0.0.1:0"));
    const net::Address at = listener.local_address();
    BOOST_CHECK_NE(at.port(), 0);
    auto server = grove::spawn([&] {
        net::Address peer;
        net::TcpStream s = listener.accept(peer);
        BOOST_CHECK_EQUAL(peer.host(), "127.0.0.1");
        echo(s);
    });
    net::TcpStream c = net::TcpStream::connect(at, 5s);
    c.set_nodelay();
    BOOST_CHECK(c.peer_address() == at);
    const std::string msg = pattern(100'000, 1);
    auto writer = grove::spawn([&] {
        c.write_all(msg);
        c.shutdown();
    });
    std::string got(msg.size(), '\0');
    BOOST_CHECK_EQUAL(c.read_exact(got.data(), got.size()), msg.size());
    BOOST_CHECK(got == msg);
    char extra;
    BOOST_CHECK_EQUAL(c.read_some(&extra, 1), 0u);  // the echo ends after our shutdown
    writer.join();
    server.join();
}

BOOST_AUTO_TEST_CASE(read_exact_returns_short_only_at_end_of_stream) {
    auto [a, b] = net::UnixStream::pair();
    auto writer = grove::spawn([&a = a] {
        a.write_all("abc");
        grove::this_fiber::sleep_for(2ms);
        a.write_all("def");
        a.close();
    });
    char buf[4];
    BOOST_CHECK_EQUAL(b.read_exact(buf, 4), 4u);
    BOOST_CHECK_EQUAL(std::string(buf, 4), "abcd");
    BOOST_CHECK_EQUAL(b.read_exact(buf, 4), 2u);
    BOOST_CHECK_EQUAL(std::string(buf, 2), "ef");
    writer.join();
}

BOOST_AUTO_TEST_CASE(connecting_to_a_closed_port_throws_system_error_econnrefused) {
    RefusingPort closed;
    try {
        net::TcpStream::connect(net::Address::loopback_v4(closed.port), 5s);
        BOOST_FAIL("connect succeeded");
    } catch (const std::system_error& e) {
        BOOST_CHECK_EQUAL(e.code().value(), ECONNREFUSED);
        BOOST_CHECK(std::string(e.what()).find("connect to 127.0.0.1:") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(connect_timeout_throws_system_error_etimedout) {
    // Backlog 0, nobody accepting: Linux drops SYNs once one connection waits.
    net::TcpListener listener(net::Address("127.0.0.1:0"), 0);
    std::vector<net::TcpStream> held;
    int code = 0;
    for (int i = 0; i < 16 && code == 0; ++i) {
        try {
            held.push_back(net::TcpStream::connect(listener.local_address(), 100ms));
        } catch (const std::system_error& e) {
            code = e.code().value();
        }
    }
    BOOST_CHECK_EQUAL(code, ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(a_timeout_scope_around_connect_throws_timeout_error) {
    net::TcpListener listener(net::Address("127.0.0.1:0"), 0);
    std::vector<net::TcpStream> held;
    grove::Timeout scope(300ms);
    try {
        for (int i = 0; i < 16; ++i) {
            held.push_back(net::TcpStream::connect(listener.local_address()));
        }
        BOOST_FAIL("16 connects to a full backlog all succeeded");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &scope);
    }
}

BOOST_AUTO_TEST_CASE(a_timeout_scope_around_read_some_throws_timeout_error) {
    auto [a, b] = net::UnixStream::pair();
    grove::Timeout scope(20ms);
    char buf[8];
    BOOST_CHECK_THROW(b.read_some(buf, sizeof buf), grove::TimeoutError);
}

BOOST_AUTO_TEST_CASE(a_fiber_killed_in_read_some_ends_with_fiber_exit) {
    auto [a, b] = net::UnixStream::pair();
    bool system_error_seen = false;
    auto f = grove::spawn([&b = b, &system_error_seen] {
        char buf[8];
        try {
            b.read_some(buf, sizeof buf);
        } catch (const std::system_error&) {
            system_error_seen = true;
        }
    });
    grove::this_fiber::sleep_for(5ms);
    f.kill();
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    BOOST_CHECK(!system_error_seen);
}

BOOST_AUTO_TEST_CASE(writing_to_a_closed_peer_throws_system_error_not_sigpipe) {
    auto [a, b] = net::UnixStream::pair();
    b.close();
    try {
        for (int i = 0; i < 4; ++i) {
            a.write_all("gone?");
        }
        BOOST_FAIL("writes to a closed peer succeeded");
    } catch (const std::system_error& e) {
        BOOST_CHECK(e.code().value() == EPIPE || e.code().value() == ECONNRESET);
    }
}

BOOST_AUTO_TEST_CASE(operations_on_a_closed_stream_throw_ebadf) {
    auto [a, b] = net::UnixStream::pair();
    a.close();
    BOOST_CHECK(!a.is_open());
    char buf[4];
    try {
        a.read_some(buf, sizeof buf);
        BOOST_FAIL("read on a closed stream");
    } catch (const std::system_error& e) {
        BOOST_CHECK_EQUAL(e.code().value(), EBADF);
    }
    BOOST_CHECK_THROW(a.write_all("x"), std::system_error);
    BOOST_CHECK_THROW(a.shutdown(), std::system_error);
}

BOOST_AUTO_TEST_CASE(listening_on_a_taken_port_throws_eaddrinuse) {
    net::TcpListener first(net::Address("127.0.0.1:0"));
    // SO_REUSEADDR does not allow two listeners on one port.
    try {
        net::TcpListener second(first.local_address());
        BOOST_FAIL("a second listener bound the same port");
    } catch (const std::system_error& e) {
        BOOST_CHECK_EQUAL(e.code().value(), EADDRINUSE);
    }
}

// ---- UDP and unix ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(udp_socket_round_trip) {
    net::UdpSocket server(net::Address("127.0.0.1:0"));
    net::UdpSocket client(net::Address("127.0.0.1:0"));
    auto echoer = grove::spawn([&] {
        char buf[64];
        net::Address from;
        const std::size_t n = server.recv_from(buf, sizeof buf, from);
        server.send_to(buf, n, from);
        return from;
    });
    BOOST_CHECK_EQUAL(client.send_to("datagram", 8, server.local_address()), 8u);
    char buf[64];
    net::Address from;
    const std::size_t n = client.recv_from(buf, sizeof buf, from);
    BOOST_CHECK_EQUAL(std::string(buf, n), "datagram");
    BOOST_CHECK(from == server.local_address());
    BOOST_CHECK(echoer.join() == client.local_address());
}

BOOST_AUTO_TEST_CASE(unix_stream_connects_to_a_path) {
    const std::string path = "/tmp/grove_net_" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    const int lfd = grove::io::socket(AF_UNIX, SOCK_STREAM, 0);
    BOOST_REQUIRE_GE(lfd, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strcpy(un.sun_path, path.c_str());
    BOOST_REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&un), sizeof un) == 0);
    BOOST_REQUIRE(::listen(lfd, 8) == 0);
    auto server = grove::spawn([lfd] {
        net::UnixStream s(grove::io::accept(lfd, nullptr, nullptr));
        char buf[16];
        const std::size_t n = s.read_some(buf, sizeof buf);
        s.write_all(std::string("re:") + std::string(buf, n));
    });
    net::UnixStream c = net::UnixStream::connect(path);
    c.write_all("unix");
    char buf[16];
    BOOST_CHECK_EQUAL(c.read_exact(buf, 7), 7u);
    BOOST_CHECK_EQUAL(std::string(buf, 7), "re:unix");
    server.join();
    grove::io::close(lfd);
    ::unlink(path.c_str());
    BOOST_CHECK_THROW(net::UnixStream::connect(path), std::system_error);
}

// ---- StreamServer ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stream_server_echoes_for_many_clients) {
    net::StreamServer server(net::Address("127.0.0.1:0"), echo);
    server.start();
    BOOST_CHECK(server.started());
    BOOST_CHECK_NE(server.address().port(), 0);
    constexpr int kClients = 300;
    int ok = 0;
    std::vector<grove::Fiber<void>> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(grove::spawn([&, i] {
            net::TcpStream c = net::TcpStream::connect(server.address());
            for (int round = 0; round < 3; ++round) {
                const std::string msg = pattern(1000, static_cast<unsigned>(i * 3 + round));
                c.write_all(msg);
                std::string got(msg.size(), '\0');
                if (c.read_exact(got.data(), got.size()) != got.size() || got != msg) {
                    return;
                }
            }
            ++ok;
        }));
    }
    grove::join_all(clients);
    BOOST_CHECK_EQUAL(ok, kClients);
    server.stop();
    BOOST_CHECK_EQUAL(server.connections(), 0u);
}

BOOST_AUTO_TEST_CASE(stream_server_passes_stream_and_peer_address_by_value) {
    std::vector<std::string> peers;
    net::StreamServer server(net::Address("127.0.0.1:0"), [&](net::TcpStream s, net::Address peer) {
        peers.push_back(peer.host());
        s.write_all(peer.to_string());
    });
    server.start();
    net::TcpStream c = net::TcpStream::connect(server.address());
    char buf[64];
    const std::size_t n = c.read_exact(buf, sizeof buf);  // the handler closes after writing
    BOOST_CHECK_EQUAL(std::string(buf, n), c.local_address().to_string());
    BOOST_REQUIRE_EQUAL(peers.size(), 1u);
    BOOST_CHECK_EQUAL(peers[0], "127.0.0.1");
}

BOOST_AUTO_TEST_CASE(stream_server_stop_closes_the_listener_and_kills_connection_fibers) {
    int started = 0;
    int killed = 0;
    net::StreamServer server(net::Address("127.0.0.1:0"), [&](net::TcpStream& s) {
        ++started;
        try {
            char buf[8];
            s.read_some(buf, sizeof buf);  // the clients never write
        } catch (const grove::FiberExit&) {
            ++killed;
            throw;
        }
    });
    server.start();
    std::vector<net::TcpStream> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(net::TcpStream::connect(server.address()));
    }
    while (started < 5) {
        grove::this_fiber::sleep_for(1ms);
    }
    BOOST_CHECK_EQUAL(server.connections(), 5u);
    server.stop();
    BOOST_CHECK_EQUAL(killed, 5);
    BOOST_CHECK_EQUAL(server.connections(), 0u);
    // Each client sees its connection end.
    for (auto& c : clients) {
        char buf[1];
        std::size_t n = 1;
        try {
            n = c.read_some(buf, 1);
        } catch (const std::system_error& e) {
            n = e.code().value() == ECONNRESET ? 0 : 1;
        }
        BOOST_CHECK_EQUAL(n, 0u);
    }
    BOOST_CHECK_THROW(net::TcpStream::connect(server.address(), 1s), std::system_error);
}

BOOST_AUTO_TEST_CASE(serve_forever_returns_after_a_handler_stops_the_server) {
    net::StreamServer* self = nullptr;
    bool handler_exited_by_kill = false;
    net::StreamServer server(net::Address("127.0.0.1:0"), [&](net::TcpStream& s) {
        s.write_all("bye");
        try {
            self->stop();
        } catch (const grove::FiberExit&) {
            handler_exited_by_kill = true;
            throw;
        }
    });
    self = &server;
    server.start();
    auto client = grove::spawn([&] {
        net::TcpStream c = net::TcpStream::connect(server.address());
        char buf[3];
        return c.read_exact(buf, 3);
    });
    server.serve_forever();
    BOOST_CHECK_EQUAL(client.join(), 3u);
    BOOST_CHECK(handler_exited_by_kill);
}

BOOST_AUTO_TEST_CASE(destroying_a_stream_server_ends_its_fibers) {
    int killed = 0;
    net::Address at;
    net::TcpStream c;
    {
        net::StreamServer server(net::Address("127.0.0.1:0"), [&](net::TcpStream& s) {
            try {
                char buf[8];
                s.read_some(buf, sizeof buf);
            } catch (const grove::FiberExit&) {
                ++killed;
                throw;
            }
        });
        server.start();
        at = server.address();
        c = net::TcpStream::connect(at);
        grove::this_fiber::sleep_for(5ms);
    }
    BOOST_CHECK_EQUAL(killed, 1);
}

BOOST_AUTO_TEST_SUITE_END()

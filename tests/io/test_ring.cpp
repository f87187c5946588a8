// The hub's io_uring path (GROVE_IO=uring): waits that end early cancel the
// ring operation and keep its data, close cancels by fd, fork makes a new
// ring. meson runs this binary with GROVE_IO=uring ('ring'), and again with
// the ring made to fail ('ring-fallback'), where every case must pass on
// epoll; `backend` checks that each run used the backend it asked for.
#define BOOST_TEST_MODULE ring
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <grove/fiber.hpp>
#include <grove/io.hpp>
#include <grove/net.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include "hub/hub.hpp"
#include "io/io.hpp"

using namespace std::chrono_literals;

namespace {

struct Bounded {
    grove::Timeout limit{30s};
};

bool env_is(const char* name, const char* value) {
    const char* v = std::getenv(name);
    return v != nullptr && std::strcmp(v, value) == 0;
}

// What this run should be on: the ring, if asked for, built and not failed.
bool ring_expected() {
    return env_is("GROVE_IO", "uring") && !env_is("GROVE_IO_URING_FAIL", "1") && grove::detail::Ring::built();
}

bool ring_active() {
    return grove::detail::Hub::current().ring_active();
}

struct SocketPair {
    int a = -1;
    int b = -1;
    SocketPair() {
        int fds[2];
        BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        a = fds[0];
        b = fds[1];
        grove::detail::io_adopt(a, false);
        grove::detail::io_adopt(b, false);
    }
    ~SocketPair() {
        if (a >= 0) {
            grove::io::close(a);
        }
        if (b >= 0) {
            grove::io::close(b);
        }
    }
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A read that has to wait (the socket is empty), so it goes to the ring.
void make_ring_used() {
    SocketPair p;
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(5ms);
        BOOST_REQUIRE(grove::io::write(p.b, "x", 1) == 1);
    });
    char c = 0;
    BOOST_REQUIRE(grove::io::read(p.a, &c, 1, 5s) == 1);
    BOOST_CHECK_EQUAL(c, 'x');
    writer.join();
}

void raise_fd_limit(rlim_t want) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = std::min(want, rl.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ring, Bounded)

BOOST_AUTO_TEST_CASE(backend) {
    make_ring_used();
    BOOST_CHECK_EQUAL(ring_active(), ring_expected());
}

// A read parked in the ring times out on time, with ETIMEDOUT, and the fd
// keeps working: nothing was left in flight to eat the next bytes.
BOOST_AUTO_TEST_CASE(read_times_out_and_fd_stays_usable) {
    SocketPair p;
    char buf[16];
    for (int round = 0; round < 3; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        errno = 0;
        BOOST_CHECK_EQUAL(grove::io::read(p.a, buf, sizeof buf, 50ms), -1);
        BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
        const double ms = ms_since(t0);
        BOOST_CHECK_GE(ms, 49.0);
        BOOST_CHECK_LT(ms, 1000.0);
        BOOST_REQUIRE(grove::io::write(p.b, "hello", 5) == 5);
        BOOST_REQUIRE_EQUAL(grove::io::read(p.a, buf, sizeof buf, 5s), 5);
        BOOST_CHECK_EQUAL(std::string(buf, 5), "hello");
    }
    BOOST_CHECK_EQUAL(ring_active(), ring_expected());
}

// The same under a grove::Timeout scope: ETIMEDOUT, and the TimeoutError is
// due at the next C++ suspension point.
BOOST_AUTO_TEST_CASE(read_under_timeout_scope) {
    SocketPair p;
    char buf[8];
    bool raised = false;
    try {
        grove::Timeout t(30ms);
        errno = 0;
        BOOST_CHECK_EQUAL(grove::io::read(p.a, buf, sizeof buf), -1);
        BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
        grove::detail::throw_pending();
    } catch (const grove::TimeoutError&) {
        raised = true;
    }
    BOOST_CHECK(raised);
    BOOST_REQUIRE(grove::io::write(p.b, "ok", 2) == 2);
    BOOST_REQUIRE_EQUAL(grove::io::read(p.a, buf, sizeof buf, 5s), 2);
}

// Data racing the deadline: a writer fiber wakes at about the reader's
// deadline (a little before, at, or after it). Whichever wins, every byte
// is read exactly once, in order: a cancelled read that had already
// completed returns its data.
BOOST_AUTO_TEST_CASE(data_racing_the_deadline_is_never_lost) {
    SocketPair p;
    constexpr int kRounds = 200;
    std::string got;
    int timeouts = 0;
    for (int i = 0; i < kRounds; ++i) {
        const auto delay = std::chrono::microseconds(1000 + (i % 7 - 3) * 50);
        auto writer = grove::spawn([&, i, delay] {
            grove::this_fiber::sleep_for(delay);
            const char c = static_cast<char>('A' + i % 26);
            // The plain syscall: the byte arrives exactly when this runs.
            BOOST_REQUIRE(::send(p.b, &c, 1, MSG_DONTWAIT) == 1);
        });
        char buf[4];
        const ssize_t r = grove::io::read(p.a, buf, sizeof buf, 1ms);
        if (r > 0) {
            got.append(buf, static_cast<std::size_t>(r));
        } else {
            BOOST_REQUIRE_EQUAL(r, -1);
            BOOST_REQUIRE_EQUAL(errno, ETIMEDOUT);
            ++timeouts;
        }
        writer.join();
        // Whatever is left for this round (the byte, if the read timed out).
        while (got.size() < static_cast<std::size_t>(i + 1)) {
            const ssize_t more = grove::io::read(p.a, buf, sizeof buf, 2s);
            BOOST_REQUIRE_GT(more, 0);
            got.append(buf, static_cast<std::size_t>(more));
        }
        BOOST_REQUIRE_EQUAL(got.size(), static_cast<std::size_t>(i + 1));
        BOOST_REQUIRE_EQUAL(got.back(), static_cast<char>('A' + i % 26));
    }
    // Nothing extra either.
    char extra;
    BOOST_CHECK_EQUAL(grove::io::read(p.a, &extra, 1, 0ms), -1);
    BOOST_TEST_MESSAGE("rounds that timed out: " << timeouts << " of " << kRounds);
}

// The same race with a kill: the byte is either returned (and the kill
// comes at the next suspension point) or the read says ECANCELED; the byte
// is then still in the socket.
BOOST_AUTO_TEST_CASE(data_racing_a_kill_is_never_lost) {
    SocketPair p;
    int total = 0;
    for (int i = 0; i < 100; ++i) {
        int got = 0;
        int err = 0;
        auto reader = grove::spawn([&] {
            char buf[4];
            const ssize_t r = grove::io::read(p.a, buf, sizeof buf);
            if (r > 0) {
                got = static_cast<int>(r);
            } else {
                err = errno;
            }
            grove::this_fiber::yield();  // the kill is raised here
        });
        grove::this_fiber::sleep_for(std::chrono::microseconds(200 + (i % 5) * 100));
        BOOST_REQUIRE(::send(p.b, "z", 1, MSG_DONTWAIT) == 1);
        reader.kill();
        BOOST_CHECK_THROW(reader.join(), grove::FiberExit);
        if (got == 0) {
            BOOST_REQUIRE_EQUAL(err, ECANCELED);
            char c;
            BOOST_REQUIRE_EQUAL(grove::io::read(p.a, &c, 1, 2s), 1);
            BOOST_REQUIRE_EQUAL(c, 'z');
        }
        ++total;
    }
    char extra;
    BOOST_CHECK_EQUAL(grove::io::read(p.a, &extra, 1, 0ms), -1);
    BOOST_CHECK_EQUAL(total, 100);
}

// A fiber killed while its read is in the ring: ECANCELED to the call,
// FiberExit at its next suspension point and from join().
BOOST_AUTO_TEST_CASE(kill_of_a_ring_read) {
    SocketPair p;
    int err = 0;
    bool after = false;
    auto reader = grove::spawn([&] {
        char buf[8];
        if (grove::io::read(p.a, buf, sizeof buf) < 0) {
            err = errno;
        }
        grove::this_fiber::sleep_for(10ms);
        after = true;
    });
    grove::this_fiber::sleep_for(10ms);
    reader.kill();
    BOOST_CHECK_THROW(reader.join(), grove::FiberExit);
    BOOST_CHECK_EQUAL(err, ECANCELED);
    BOOST_CHECK(!after);
    // The cancelled read took nothing.
    BOOST_REQUIRE(grove::io::write(p.b, "abc", 3) == 3);
    char buf[8];
    BOOST_REQUIRE_EQUAL(grove::io::read(p.a, buf, sizeof buf, 5s), 3);
    BOOST_CHECK_EQUAL(std::string(buf, 3), "abc");
}

// A TcpStream read killed in the ring raises FiberExit at once.
BOOST_AUTO_TEST_CASE(kill_of_a_stream_read) {
    grove::net::TcpListener listener(grove::net::Address::loopback_v4(0));
    auto client = grove::net::TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    bool exited = false;
    auto reader = grove::spawn([&] {
        char buf[8];
        try {
            server.read_some(buf, sizeof buf);
        } catch (const grove::FiberExit&) {
            exited = true;
            throw;
        }
    });
    grove::this_fiber::sleep_for(10ms);
    reader.kill();
    BOOST_CHECK_THROW(reader.join(), grove::FiberExit);
    BOOST_CHECK(exited);
    client.write_all("ping", 4);
    char buf[8];
    BOOST_CHECK_EQUAL(server.read_some(buf, sizeof buf), 4u);
}

// Another fiber closes the fd under a ring read: EBADF; a socket made at
// once on the same number is not touched by the old read's completion.
BOOST_AUTO_TEST_CASE(close_under_a_ring_read) {
    auto* p = new SocketPair;
    const int num = p->a;
    int err = 0;
    ssize_t r = 0;
    auto reader = grove::spawn([&] {
        char buf[8];
        r = grove::io::read(num, buf, sizeof buf);
        err = errno;
    });
    grove::this_fiber::sleep_for(10ms);
    BOOST_REQUIRE_EQUAL(grove::io::close(num), 0);
    p->a = -1;
    // Reuse the number before the reader has even run again.
    int fds[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    grove::detail::io_adopt(fds[0], false);
    grove::detail::io_adopt(fds[1], false);
    const bool reused = fds[0] == num || fds[1] == num;
    reader.join();
    BOOST_CHECK_EQUAL(r, -1);
    BOOST_CHECK_EQUAL(err, EBADF);
    BOOST_TEST_MESSAGE("number reused: " << reused);
    // The new pair works both ways, bytes intact, reads parked in the ring.
    for (int dir = 0; dir < 2; ++dir) {
        const int rd = fds[dir];
        const int wr = fds[1 - dir];
        char buf[16] = {};
        auto w = grove::spawn([&] {
            grove::this_fiber::sleep_for(5ms);
            BOOST_REQUIRE(grove::io::write(wr, "fresh", 5) == 5);
        });
        BOOST_CHECK_EQUAL(grove::io::read(rd, buf, sizeof buf, 5s), 5);
        BOOST_CHECK_EQUAL(std::string(buf, 5), "fresh");
        w.join();
    }
    grove::io::close(fds[0]);
    grove::io::close(fds[1]);
    delete p;
}

// A write that has to wait for room (the peer reads nothing for a while)
// times out with ETIMEDOUT, having written what fitted; the rest goes once
// the peer reads.
BOOST_AUTO_TEST_CASE(write_waits_for_room) {
    SocketPair p;
    int small = 4096;
    ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    std::vector<char> big(1 << 20, 'q');
    std::size_t sent = 0;
    for (;;) {
        const ssize_t w = grove::io::write(p.a, big.data(), big.size(), 30ms);
        if (w < 0) {
            BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
            break;
        }
        sent += static_cast<std::size_t>(w);
        BOOST_REQUIRE(sent < big.size() * 4);
    }
    auto drain = grove::spawn([&] {
        std::vector<char> buf(65536);
        std::size_t total = 0;
        while (total < sent + 100) {
            const ssize_t r = grove::io::read(p.b, buf.data(), buf.size(), 5s);
            BOOST_REQUIRE_GT(r, 0);
            total += static_cast<std::size_t>(r);
        }
    });
    BOOST_CHECK_EQUAL(grove::io::write_all(p.a, big.data(), 100, 5s), 100);
    drain.join();
}

// 1000 connections echoing at once through the ring (a StreamServer, and a
// client fiber per connection), every byte checked.
// A send onto a socket whose peer is gone raises SIGPIPE and fails with
// EPIPE, on the ring as with a plain send; with MSG_NOSIGNAL, no signal.
volatile sig_atomic_t sigpipes = 0;

BOOST_AUTO_TEST_CASE(send_to_a_closed_peer_raises_sigpipe) {
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = [](int) { sigpipes = sigpipes + 1; };
    BOOST_REQUIRE(::sigaction(SIGPIPE, &sa, &old) == 0);
    for (const int flags : {0, static_cast<int>(MSG_NOSIGNAL)}) {
        SocketPair p;
        grove::io::close(p.b);
        p.b = -1;
        sigpipes = 0;
        int err = 0;
        const long r = grove::spawn([&] {
            const long n = flags == 0 ? grove::io::write(p.a, "x", 1) : grove::io::send(p.a, "x", 1, flags);
            err = errno;
            return n;
        }).join();
        BOOST_TEST(r == -1);
        BOOST_TEST(err == EPIPE);
        BOOST_TEST(sigpipes == (flags == 0 ? 1 : 0));
    }
    ::sigaction(SIGPIPE, &old, nullptr);
}

BOOST_AUTO_TEST_CASE(thousand_connections_echo) {
    raise_fd_limit(4096);
    constexpr int kConns = 1000;
    constexpr int kRounds = 20;
    grove::net::StreamServer server(grove::net::Address::loopback_v4(0), [](grove::net::TcpStream& s) {
        char buf[4096];
        while (std::size_t n = s.read_some(buf, sizeof buf)) {
            s.write_all(buf, n);
        }
    });
    server.start();
    const auto at = server.address();
    int ok = 0;
    std::vector<grove::Fiber<void>> clients;
    clients.reserve(kConns);
    for (int c = 0; c < kConns; ++c) {
        clients.push_back(grove::spawn([&, c] {
            auto s = grove::net::TcpStream::connect(at);
            for (int r = 0; r < kRounds; ++r) {
                char msg[64];
                for (int k = 0; k < 64; ++k) {
                    msg[k] = static_cast<char>((c * 31 + r * 7 + k) & 0xff);
                }
                s.write_all(msg, sizeof msg);
                char back[64];
                if (s.read_exact(back, sizeof back) != sizeof back) {
                    return;
                }
                if (std::memcmp(msg, back, sizeof msg) != 0) {
                    return;
                }
            }
            ++ok;
        }));
    }
    grove::join_all(clients);
    BOOST_CHECK_EQUAL(ok, kConns);
    server.stop();
    BOOST_CHECK_EQUAL(ring_active(), ring_expected());
}

// fork in a fiber after the ring was used: the child does ring I/O on a
// fresh ring of its own; the parent's ring carries on.
BOOST_AUTO_TEST_CASE(fork_after_ring_use) {
    make_ring_used();
    int status = -1;
    auto f = grove::spawn([&] {
        const pid_t pid = ::fork();
        if (pid == 0) {
            grove::detail::Hub::current().after_fork_child();
            int code = 0;
            {
                SocketPair p;
                auto w = grove::spawn([&] {
                    grove::this_fiber::sleep_for(5ms);
                    grove::io::write(p.b, "kid", 3);
                });
                char buf[8];
                if (grove::io::read(p.a, buf, sizeof buf, 5s) != 3 || std::memcmp(buf, "kid", 3) != 0) {
                    code = 1;
                }
                w.join();
                if (grove::detail::Hub::current().ring_active() != ring_expected()) {
                    code = 2;
                }
            }
            ::_exit(code);
        }
        BOOST_REQUIRE(pid > 0);
        // Keep the parent's ring busy meanwhile.
        make_ring_used();
        for (int i = 0; i < 500; ++i) {
            const pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                return;
            }
            grove::this_fiber::sleep_for(10ms);
        }
    });
    f.join();
    BOOST_REQUIRE(WIFEXITED(status));
    BOOST_CHECK_EQUAL(WEXITSTATUS(status), 0);
    make_ring_used();
}

BOOST_AUTO_TEST_SUITE_END()

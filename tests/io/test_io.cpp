// grove::io: cooperative POSIX-style calls and the readiness waits.
// Every case runs under a grove::Timeout (Bounded), so a lost wake-up fails
// the case with TimeoutError instead of hanging the suite.
#define BOOST_TEST_MODULE io
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include <grove/fiber.hpp>
#include <grove/io.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include "io/io.hpp"

using namespace std::chrono_literals;

namespace {

struct Bounded {
    grove::Timeout limit{20s};
};

// Both ends go through grove: io_adopt when made, io::close when done.
struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int fds[2];
        BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
        grove::detail::io_adopt(r, false);
        grove::detail::io_adopt(w, false);
    }
    ~Pipe() {
        if (r >= 0) {
            grove::io::close(r);
        }
        if (w >= 0) {
            grove::io::close(w);
        }
    }
};

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

struct Fd {
    int fd;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) {
            grove::io::close(fd);
        }
    }
};

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

// A listening socket on 127.0.0.1, any free port.
int listen_tcp(std::uint16_t& port, int backlog = SOMAXCONN) {
    const int fd = grove::io::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_in sa = loopback(0);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    BOOST_REQUIRE(::listen(fd, backlog) == 0);
    socklen_t len = sizeof sa;
    BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port = ntohs(sa.sin_port);
    return fd;
}

int connect_tcp(std::uint16_t port, std::chrono::nanoseconds timeout = grove::io::forever) {
    const int fd = grove::io::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in sa = loopback(port);
    if (grove::io::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout) != 0) {
        const int e = errno;
        grove::io::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
    }
    return s;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void raise_fd_limit(rlim_t want) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = std::min(want, rl.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(io, Bounded)

// ---- data moves exactly --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(read_returns_exactly_what_was_written_to_a_pipe) {
    Pipe p;
    const std::string msg = "hello, grove";
    BOOST_CHECK_EQUAL(grove::io::write(p.w, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    char buf[64];
    const ssize_t n = grove::io::read(p.r, buf, sizeof buf);
    BOOST_REQUIRE_EQUAL(n, static_cast<ssize_t>(msg.size()));
    BOOST_CHECK_EQUAL(std::string(buf, static_cast<std::size_t>(n)), msg);
    BOOST_CHECK((::fcntl(p.r, F_GETFL) & O_NONBLOCK) != 0);
}

BOOST_AUTO_TEST_CASE(readv_and_writev_move_exact_bytes_over_a_socketpair) {
    SocketPair s;
    char a[] = "scatter ";
    char b[] = "gather";
    iovec out[2] = {{a, 8}, {b, 6}};
    BOOST_CHECK_EQUAL(grove::io::writev(s.a, out, 2), 14);
    char x[5];
    char y[32];
    iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
    const ssize_t n = grove::io::readv(s.b, in, 2);
    BOOST_REQUIRE_EQUAL(n, 14);
    BOOST_CHECK_EQUAL(std::string(x, 5) + std::string(y, 9), "scatter gather");
}

BOOST_AUTO_TEST_CASE(write_all_moves_a_large_buffer_exactly_through_a_socketpair) {
    SocketPair s;
    const std::string data = pattern(4 << 20, 3);
    auto writer = grove::spawn([&] { return grove::io::write_all(s.a, data.data(), data.size()); });
    std::string got;
    std::vector<char> buf(65536);
    while (got.size() < data.size()) {
        const ssize_t n = grove::io::recv(s.b, buf.data(), buf.size(), 0);
        BOOST_REQUIRE_GT(n, 0);
        got.append(buf.data(), static_cast<std::size_t>(n));
    }
    BOOST_CHECK_EQUAL(writer.join(), static_cast<ssize_t>(data.size()));
    BOOST_CHECK(got == data);
}

BOOST_AUTO_TEST_CASE(send_and_recv_move_exact_bytes_and_report_end_of_stream) {
    SocketPair s;
    BOOST_CHECK_EQUAL(grove::io::send(s.a, "ping", 4, MSG_NOSIGNAL), 4);
    ::shutdown(s.a, SHUT_WR);
    char buf[16];
    BOOST_CHECK_EQUAL(grove::io::recv(s.b, buf, sizeof buf, 0), 4);
    BOOST_CHECK_EQUAL(std::string(buf, 4), "ping");
    BOOST_CHECK_EQUAL(grove::io::recv(s.b, buf, sizeof buf, 0), 0);
}

// ---- parking ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(read_waits_until_a_writer_fills_the_pipe) {
    Pipe p;
    std::vector<std::string> log;
    auto reader = grove::spawn([&] {
        char buf[16];
        log.push_back("read");
        const ssize_t n = grove::io::read(p.r, buf, sizeof buf);
        log.push_back("got " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
    });
    grove::this_fiber::sleep_for(20ms);
    log.push_back("write");
    BOOST_REQUIRE_EQUAL(grove::io::write(p.w, "data", 4), 4);
    reader.join();
    const std::vector<std::string> want = {"read", "write", "got data"};
    BOOST_CHECK_EQUAL_COLLECTIONS(log.begin(), log.end(), want.begin(), want.end());
}

BOOST_AUTO_TEST_CASE(write_waits_until_a_reader_drains_a_full_pipe) {
    Pipe p;
    grove::detail::io_prepare(p.w);
    // Fill the pipe until the kernel refuses.
    const std::string chunk(4096, 'f');
    std::size_t filled = 0;
    while (grove::io::write(p.w, chunk.data(), chunk.size(), 0s) > 0) {
        filled += chunk.size();
    }
    BOOST_REQUIRE_EQUAL(errno, ETIMEDOUT);
    bool written = false;
    auto writer = grove::spawn([&] {
        const ssize_t n = grove::io::write(p.w, "tail", 4);
        written = true;
        return n;
    });
    grove::this_fiber::sleep_for(20ms);
    BOOST_CHECK(!written);
    std::string got;
    std::vector<char> buf(65536);
    while (got.size() < filled + 4) {
        const ssize_t n = grove::io::read(p.r, buf.data(), buf.size());
        BOOST_REQUIRE_GT(n, 0);
        got.append(buf.data(), static_cast<std::size_t>(n));
    }
    BOOST_CHECK_EQUAL(writer.join(), 4);
    BOOST_CHECK(written);
    BOOST_CHECK_EQUAL(got.substr(filled), "tail");
}

// ---- timeouts --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(read_fails_with_etimedout_when_its_timeout_passes) {
    Pipe p;
    char buf[8];
    const auto t0 = std::chrono::steady_clock::now();
    errno = 0;
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf, 50ms), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    const double ms = ms_since(t0);
    BOOST_CHECK_GE(ms, 45.0);
    BOOST_CHECK_LT(ms, 5000.0);
}

BOOST_AUTO_TEST_CASE(a_negative_timeout_counts_as_zero) {
    Pipe p;
    char buf[8];
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf, -5s), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    BOOST_CHECK_EQUAL(grove::io::wait(p.r, POLLIN, -1ms), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    BOOST_CHECK_LT(ms_since(t0), 1000.0);
    // Data already there is still returned: zero means "try once".
    BOOST_REQUIRE_EQUAL(grove::io::write(p.w, "x", 1), 1);
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf, -5s), 1);
    BOOST_CHECK_EQUAL(grove::io::wait(p.w, POLLOUT, 0s), 0);
}

BOOST_AUTO_TEST_CASE(an_enclosing_timeout_scope_fails_the_read_with_etimedout_then_raises) {
    Pipe p;
    char buf[8];
    grove::Timeout scope(30ms);
    errno = 0;
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    try {
        grove::detail::throw_pending();
        BOOST_FAIL("throw_pending did not raise the expired scope");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &scope);
    }
}

BOOST_AUTO_TEST_CASE(throw_pending_is_quiet_after_a_call_timeout) {
    Pipe p;
    char buf[8];
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf, 10ms), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    BOOST_CHECK_NO_THROW(grove::detail::throw_pending());
}

// ---- kill and close --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_killed_reader_gets_ecanceled_and_exits_at_its_next_suspension) {
    Pipe p;
    ssize_t r = 0;
    int err = 0;
    bool past_sleep = false;
    auto f = grove::spawn([&] {
        char buf[8];
        r = grove::io::read(p.r, buf, sizeof buf);
        err = errno;
        grove::this_fiber::sleep_for(1ms);  // FiberExit comes out here
        past_sleep = true;
    });
    grove::this_fiber::sleep_for(5ms);  // f parks in read
    f.kill();
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    BOOST_CHECK_EQUAL(r, -1);
    BOOST_CHECK_EQUAL(err, ECANCELED);
    BOOST_CHECK(!past_sleep);
}

BOOST_AUTO_TEST_CASE(throw_pending_raises_fiber_exit_after_ecanceled) {
    Pipe p;
    bool raised = false;
    auto f = grove::spawn([&] {
        char buf[8];
        if (grove::io::read(p.r, buf, sizeof buf) < 0 && errno == ECANCELED) {
            try {
                grove::detail::throw_pending();
            } catch (const grove::FiberExit&) {
                raised = true;
                throw;
            }
        }
    });
    grove::this_fiber::sleep_for(5ms);
    f.kill();
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    BOOST_CHECK(raised);
}

BOOST_AUTO_TEST_CASE(a_killed_reader_that_retries_parks_again_instead_of_spinning) {
    Pipe p;
    int first = 0;
    int second = 0;
    double second_ms = 0;
    auto f = grove::spawn([&] {
        char buf[8];
        grove::io::read(p.r, buf, sizeof buf);
        first = errno;
        // C code would retry: the deferred kill must not wake it at once.
        const auto t0 = std::chrono::steady_clock::now();
        grove::io::read(p.r, buf, sizeof buf, 20ms);
        second = errno;
        second_ms = ms_since(t0);
        grove::this_fiber::yield();  // a C++ suspension point: FiberExit
        second = -1;
    });
    grove::this_fiber::sleep_for(5ms);
    f.kill();
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    BOOST_CHECK_EQUAL(first, ECANCELED);
    BOOST_CHECK_EQUAL(second, ETIMEDOUT);
    BOOST_CHECK_GE(second_ms, 15.0);
}

BOOST_AUTO_TEST_CASE(a_retry_after_a_fired_timeout_scope_parks_then_the_scope_raises) {
    Pipe p;
    char buf[8];
    grove::Timeout scope(10ms);
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(grove::io::read(p.r, buf, sizeof buf, 20ms), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    BOOST_CHECK_GE(ms_since(t0), 15.0);
    try {
        grove::this_fiber::sleep_for(1ms);
        BOOST_FAIL("the fired scope was lost");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &scope);
    }
}

BOOST_AUTO_TEST_CASE(closing_an_fd_wakes_the_fiber_waiting_on_it_with_ebadf) {
    Pipe p;
    ssize_t r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        char buf[8];
        r = grove::io::read(p.r, buf, sizeof buf);
        err = errno;
    });
    grove::this_fiber::sleep_for(5ms);
    BOOST_CHECK_EQUAL(grove::io::close(p.r), 0);
    p.r = -1;
    f.join();
    BOOST_CHECK_EQUAL(r, -1);
    BOOST_CHECK_EQUAL(err, EBADF);
}

BOOST_AUTO_TEST_CASE(a_reused_fd_number_gets_its_new_data) {
    int number;
    {
        Pipe old;
        number = old.r;
        char buf[8];
        // Registers the old pipe with the poller.
        BOOST_CHECK_EQUAL(grove::io::read(old.r, buf, sizeof buf, 5ms), -1);
    }
    Pipe p;
    BOOST_REQUIRE_EQUAL(p.r, number);
    std::string got;
    auto reader = grove::spawn([&] {
        char buf[16];
        const ssize_t n = grove::io::read(p.r, buf, sizeof buf, 5s);
        if (n > 0) {
            got.assign(buf, static_cast<std::size_t>(n));
        }
    });
    grove::this_fiber::sleep_for(5ms);
    BOOST_REQUIRE_EQUAL(grove::io::write(p.w, "fresh", 5), 5);
    reader.join();
    BOOST_CHECK_EQUAL(got, "fresh");
}

BOOST_AUTO_TEST_CASE(an_invalid_fd_gives_ebadf) {
    int unused = 900;
    while (::fcntl(unused, F_GETFD) != -1) {
        ++unused;
    }
    char buf[4];
    for (const int fd : {-1, unused}) {
        errno = 0;
        BOOST_CHECK_EQUAL(grove::io::read(fd, buf, sizeof buf), -1);
        BOOST_CHECK_EQUAL(errno, EBADF);
        BOOST_CHECK_EQUAL(grove::io::write(fd, buf, sizeof buf), -1);
        BOOST_CHECK_EQUAL(errno, EBADF);
        BOOST_CHECK_EQUAL(grove::io::wait(fd, POLLIN), -1);
        BOOST_CHECK_EQUAL(errno, EBADF);
        BOOST_CHECK_EQUAL(grove::io::close(fd), -1);
        BOOST_CHECK_EQUAL(errno, EBADF);
        try {
            grove::wait_readable(fd);
            BOOST_FAIL("wait_readable accepted a bad fd");
        } catch (const std::system_error& e) {
            BOOST_CHECK_EQUAL(e.code().value(), EBADF);
        }
    }
}

// ---- sockets ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(connect_to_a_closed_port_gives_econnrefused) {
    // A bound socket that does not listen: its port is ours and refuses.
    Fd holder(grove::io::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sa = loopback(0);
    BOOST_REQUIRE(::bind(holder.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    BOOST_REQUIRE(::getsockname(holder.fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    errno = 0;
    BOOST_CHECK_EQUAL(connect_tcp(ntohs(sa.sin_port), 5s), -1);
    BOOST_CHECK_EQUAL(errno, ECONNREFUSED);
}

BOOST_AUTO_TEST_CASE(connect_fails_with_etimedout_when_the_listener_drops_syns) {
    // With a backlog of 0 and nobody accepting, Linux drops the SYNs of
    // the second connection on: it stays in SYN_SENT until our timeout.
    std::uint16_t port;
    Fd lfd(listen_tcp(port, 0));
    std::vector<int> open;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const int fd = connect_tcp(port, 100ms);
        if (fd >= 0) {
            open.push_back(fd);
            continue;
        }
        BOOST_REQUIRE_EQUAL(errno, ETIMEDOUT);
        BOOST_CHECK_GE(ms_since(t0), 90.0);
        timed_out = true;
    }
    BOOST_CHECK(timed_out);
    for (const int fd : open) {
        grove::io::close(fd);
    }
}

BOOST_AUTO_TEST_CASE(accept_takes_many_pending_connections) {
    std::uint16_t port;
    Fd lfd(listen_tcp(port));
    constexpr int kConns = 200;
    std::vector<int> clients;
    for (int i = 0; i < kConns; ++i) {
        const int fd = connect_tcp(port, 5s);
        BOOST_REQUIRE_GE(fd, 0);
        clients.push_back(fd);
    }
    std::vector<int> accepted;
    for (int i = 0; i < kConns; ++i) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        const int fd = grove::io::accept(lfd.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC, 5s);
        BOOST_REQUIRE_GE(fd, 0);
        BOOST_CHECK_EQUAL(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
        BOOST_CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
        accepted.push_back(fd);
    }
    // And none more: the next accept times out.
    BOOST_CHECK_EQUAL(grove::io::accept(lfd.fd, nullptr, nullptr, SOCK_CLOEXEC, 10ms), -1);
    BOOST_CHECK_EQUAL(errno, ETIMEDOUT);
    for (const int fd : clients) {
        grove::io::close(fd);
    }
    for (const int fd : accepted) {
        grove::io::close(fd);
    }
}

BOOST_AUTO_TEST_CASE(a_thousand_fibers_connect_write_and_read_concurrently) {
    constexpr int kClients = 1000;
    raise_fd_limit(4 * kClients + 64);
    std::uint16_t port;
    Fd lfd(listen_tcp(port));
    grove::Group servers;
    auto acceptor = grove::spawn([&] {
        for (int i = 0; i < kClients; ++i) {
            const int fd = grove::io::accept(lfd.fd, nullptr, nullptr);
            if (fd < 0) {
                return;
            }
            servers.spawn([fd] {
                char buf[256];
                for (;;) {
                    const ssize_t n = grove::io::read(fd, buf, sizeof buf);
                    if (n <= 0 || grove::io::write_all(fd, buf, static_cast<std::size_t>(n)) < 0) {
                        break;
                    }
                }
                grove::io::close(fd);
            }).detach();
        }
    });
    int ok = 0;
    std::vector<grove::Fiber<void>> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(grove::spawn([&ok, port, i] {
            const int fd = connect_tcp(port);
            if (fd < 0) {
                return;
            }
            const std::string msg = pattern(100, static_cast<unsigned>(i));
            std::string got;
            if (grove::io::write_all(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size())) {
                char buf[128];
                while (got.size() < msg.size()) {
                    const ssize_t n = grove::io::read(fd, buf, sizeof buf);
                    if (n <= 0) {
                        break;
                    }
                    got.append(buf, static_cast<std::size_t>(n));
                }
            }
            grove::io::close(fd);
            if (got == msg) {
                ++ok;
            }
        }));
    }
    grove::join_all(clients);
    acceptor.join();
    servers.join();
    BOOST_CHECK_EQUAL(ok, kClients);
}

BOOST_AUTO_TEST_CASE(a_yield_loop_does_not_starve_a_socket_reader) {
    SocketPair s;
    bool got = false;
    auto reader = grove::spawn([&] {
        char buf[8];
        got = grove::io::read(s.b, buf, sizeof buf) == 2;
    });
    grove::this_fiber::sleep_for(5ms);  // the reader parks
    long spins = 0;
    auto spinner = grove::spawn([&] {
        while (!got && spins < 10'000'000) {
            ++spins;
            grove::this_fiber::yield();
        }
    });
    // Written while the spinner keeps the run queue non-empty: only the
    // hub's periodic poll can deliver it.
    BOOST_REQUIRE_EQUAL(::write(s.a, "hi", 2), 2);
    spinner.join();
    reader.join();
    BOOST_CHECK(got);
    BOOST_CHECK_LT(spins, 1'000'000);
}

// ---- readiness waits -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(wait_readable_returns_true_once_data_arrives) {
    Pipe p;
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(10ms);
        return grove::io::write(p.w, "z", 1);
    });
    BOOST_CHECK(grove::wait_readable(p.r, 5s));
    BOOST_CHECK_EQUAL(writer.join(), 1);
    // Still readable (nothing consumed): true at once, without waiting.
    BOOST_CHECK(grove::wait_readable(p.r));
}

BOOST_AUTO_TEST_CASE(wait_readable_returns_false_when_its_timeout_passes) {
    Pipe p;
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_CHECK(!grove::wait_readable(p.r, 30ms));
    BOOST_CHECK_GE(ms_since(t0), 25.0);
    BOOST_CHECK(grove::wait_writable(p.w, 0ms));
}

BOOST_AUTO_TEST_CASE(wait_readable_throws_fiber_exit_when_killed) {
    Pipe p;
    bool after = false;
    auto f = grove::spawn([&] {
        grove::wait_readable(p.r);
        after = true;
    });
    grove::this_fiber::sleep_for(5ms);
    f.kill();
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    BOOST_CHECK(!after);
}

BOOST_AUTO_TEST_CASE(wait_readable_throws_timeout_error_for_an_enclosing_scope) {
    Pipe p;
    grove::Timeout scope(20ms);
    try {
        grove::wait_readable(p.r, 10s);
        BOOST_FAIL("wait_readable outlived its Timeout scope");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &scope);
    }
}

BOOST_AUTO_TEST_CASE(wait_writable_throws_system_error_when_the_fd_is_closed_under_it) {
    SocketPair s;
    // Fill a's send buffer so that it is not writable.
    const std::string chunk(65536, 'q');
    while (grove::io::send(s.a, chunk.data(), chunk.size(), MSG_NOSIGNAL, 0s) > 0) {
    }
    int code = 0;
    auto f = grove::spawn([&] {
        try {
            grove::wait_writable(s.a);
        } catch (const std::system_error& e) {
            code = e.code().value();
        }
    });
    grove::this_fiber::sleep_for(5ms);
    grove::io::close(s.a);
    s.a = -1;
    f.join();
    BOOST_CHECK_EQUAL(code, EBADF);
}

BOOST_AUTO_TEST_CASE(io_wait_for_both_directions_returns_on_either) {
    SocketPair s;
    // Writable at once.
    BOOST_CHECK_EQUAL(grove::io::wait(s.a, POLLIN | POLLOUT, 1s), 0);
    // Not writable (full) and nothing to read: returns when data arrives.
    const std::string chunk(65536, 'q');
    while (grove::io::send(s.a, chunk.data(), chunk.size(), MSG_NOSIGNAL, 0s) > 0) {
    }
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(10ms);
        return ::write(s.b, "r", 1);
    });
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(grove::io::wait(s.a, POLLIN | POLLOUT, 5s), 0);
    BOOST_CHECK_LT(ms_since(t0), 4000.0);
    BOOST_CHECK_EQUAL(writer.join(), 1);
    BOOST_CHECK_EQUAL(grove::io::wait(s.a, POLLIN | POLLOUT, 20ms), 0);
}

BOOST_AUTO_TEST_CASE(a_regular_file_is_read_without_parking) {
    char path[] = "/tmp/grove_io_XXXXXX";
    const int fd = ::mkstemp(path);
    BOOST_REQUIRE_GE(fd, 0);
    ::unlink(path);
    grove::detail::io_adopt(fd, false);
    BOOST_CHECK_EQUAL(grove::io::write(fd, "file", 4), 4);
    BOOST_REQUIRE_EQUAL(::lseek(fd, 0, SEEK_SET), 0);
    BOOST_CHECK_EQUAL(grove::io::wait(fd, POLLIN, 1s), 0);
    BOOST_CHECK(grove::wait_readable(fd, 1s));
    char buf[8];
    BOOST_CHECK_EQUAL(grove::io::read(fd, buf, sizeof buf), 4);
    BOOST_CHECK_EQUAL(std::string(buf, 4), "file");
    BOOST_CHECK_EQUAL(grove::io::read(fd, buf, sizeof buf), 0);
    grove::io::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

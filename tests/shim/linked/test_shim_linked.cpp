// The shim, linked: plain libc calls (sleep, socket, read, poll, fork,
// waitpid...) made inside grove fibers of a program linked with
// libgrove_shim park the fiber, not the thread, and give what libc gives.
//
// Every case is bounded twice: a grove::Timeout in the main fiber (a lost
// wake-up fails the case with TimeoutError), and a watchdog thread that ends
// the run, naming the case, if a call blocks the whole thread (then no
// fiber, Timeout included, can ever run again). Fibers that outlive a
// failed wait are killed before the case returns (settle()), so no fiber is
// left pointing at a dead case's locals.
#define BOOST_TEST_MODULE shim_linked
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <climits>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

extern char** environ;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

long ms_since(Clock::time_point t0) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

long ms_between(Clock::time_point a, Clock::time_point b) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
}

// ---- watchdog ----------------------------------------------------------------
// A plain thread (no hub, every signal blocked, so SIGALRM cases still reach
// the main thread) that ends the process if a case outlives its limit.
class Watchdog {
public:
    // Never destroyed: its thread waits on cv_ until the process ends, and
    // destroying a condition variable with a waiter blocks exit.
    static Watchdog& get() {
        static Watchdog* w = new Watchdog;
        return *w;
    }
    void arm(std::string name, std::chrono::seconds limit) {
        std::lock_guard<std::mutex> lk(m_);
        name_ = std::move(name);
        deadline_ = Clock::now() + limit;
        cv_.notify_all();
    }
    void disarm() {
        std::lock_guard<std::mutex> lk(m_);
        deadline_ = Clock::time_point::max();
        cv_.notify_all();
    }

private:
    Watchdog() {
        sigset_t all;
        sigset_t old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        thread_ = std::thread([this] { run(); });
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        thread_.detach();
    }
    void run() {
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            if (deadline_ == Clock::time_point::max()) {
                cv_.wait(lk);
                continue;
            }
            cv_.wait_until(lk, deadline_);
            if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) {
                std::fprintf(stderr,
                             "watchdog: case '%s' still running past its limit: a plain call blocked the whole "
                             "thread (or a wake-up was lost and its Timeout could not fire)\n",
                             name_.c_str());
                std::fflush(stderr);
                std::_Exit(3);
            }
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    Clock::time_point deadline_ = Clock::time_point::max();
    std::string name_;
    std::thread thread_;
};

struct WatchdogStart {
    WatchdogStart() { Watchdog::get(); }
};

// Per case: the watchdog's limit and a Timeout on the main fiber below it.
struct Bounded {
    Bounded() { Watchdog::get().arm(boost::unit_test::framework::current_test_case().p_name.get(), 40s); }
    ~Bounded() { Watchdog::get().disarm(); }
    grove::Timeout limit{30s};
};

// ---- helpers -----------------------------------------------------------------

// Waits up to `d` for f to end. If it has not, fails the case and kills it:
// the fiber must not outlive the locals it refers to.
template <class T>
bool settle(grove::Fiber<T>& f, std::chrono::milliseconds d, const char* what) {
    if (f.wait(d)) {
        return true;
    }
    BOOST_ERROR(what << ": fiber still blocked after " << d.count() << " ms");
    f.kill();
    if (!f.wait(2s)) {
        std::fprintf(stderr, "%s: fiber survives kill; cannot continue safely\n", what);
        std::_Exit(4);
    }
    return false;
}

// A plain call made in a fiber under a grove::Timeout of `limit`: what it
// returned, its errno, how long it took (ms), and whether the fiber's next
// suspension point then raised that Timeout's TimeoutError.
template <class R>
struct UnderTimeout {
    R r{};
    int err = 0;
    long ms = 0;
    bool raised = false;
};

template <class Call>
auto under_timeout(std::chrono::milliseconds limit, std::chrono::milliseconds settle_within, const char* what,
                   Call&& call) -> UnderTimeout<decltype(call())> {
    UnderTimeout<decltype(call())> out;
    auto f = grove::spawn([&] {
        grove::Timeout scope(limit);
        const auto t0 = Clock::now();
        out.r = call();
        out.err = errno;
        out.ms = ms_since(t0);
        try {
            grove::this_fiber::yield();
        } catch (const grove::TimeoutError& e) {
            out.raised = e.source() == &scope;
        }
    });
    settle(f, settle_within, what);
    return out;
}

int threads_now() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Threads:", 0) == 0) {
            return std::atoi(line.c_str() + 8);
        }
    }
    return -1;
}

bool has_nonblock(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    BOOST_REQUIRE(fl >= 0);
    return (fl & O_NONBLOCK) != 0;
}

bool write_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// Reads until EOF (or an error, reported as "<errno N>" appended).
std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r == 0) {
            return out;
        }
        if (r < 0) {
            return out + "<errno " + std::to_string(errno) + ">";
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
}

// Plain socketpair / pipe, closed at scope end with plain close (no-op if
// the case closed an end itself and set it to -1).
struct Pair {
    int a = -1;
    int b = -1;
    static Pair sockets(int extra_type = 0) {
        int sv[2];
        BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | extra_type, 0, sv) == 0);
        return Pair{sv[0], sv[1]};
    }
    static Pair pipe(int extra_flags = 0) {
        int p[2];
        BOOST_REQUIRE(::pipe2(p, O_CLOEXEC | extra_flags) == 0);
        return Pair{p[0], p[1]};
    }
    Pair(int x, int y) : a(x), b(y) {}
    Pair(Pair&& o) noexcept : a(o.a), b(o.b) { o.a = o.b = -1; }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;
    ~Pair() {
        if (a >= 0) {
            ::close(a);
        }
        if (b >= 0) {
            ::close(b);
        }
    }
};

// Counts 5 ms grove sleeps until destroyed: proof that the hub ran other
// fibers while one was in a plain blocking call. Uses grove's own sleep, so
// it does not depend on the shim under test.
class Ticker {
public:
    Ticker() {
        fiber_ = grove::spawn([this] {
            for (;;) {
                grove::this_fiber::sleep_for(5ms);
                ++count_;
            }
        });
    }
    ~Ticker() {
        fiber_.kill();
        try {
            fiber_.wait(2s);
        } catch (...) {
        }
    }
    long count() const { return count_; }

private:
    long count_ = 0;
    grove::Fiber<void> fiber_;
};

// Installs a SIGALRM action for the scope; restores the old one and stops
// the interval timer on exit.
volatile std::sig_atomic_t alarm_hits = 0;
void on_alarm(int) {
    alarm_hits = alarm_hits + 1;
}

struct AlarmHandler {
    struct sigaction old{};
    explicit AlarmHandler(int flags) {
        alarm_hits = 0;
        struct sigaction sa{};
        sa.sa_handler = &on_alarm;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = flags;
        BOOST_REQUIRE(::sigaction(SIGALRM, &sa, &old) == 0);
    }
    ~AlarmHandler() {
        struct itimerval off{};
        ::setitimer(ITIMER_REAL, &off, nullptr);
        ::sigaction(SIGALRM, &old, nullptr);
    }
    static void fire_after(std::chrono::milliseconds d) {
        struct itimerval it{};
        it.it_value.tv_sec = static_cast<time_t>(d.count() / 1000);
        it.it_value.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
        BOOST_REQUIRE(::setitimer(ITIMER_REAL, &it, nullptr) == 0);
    }
};

// A loopback TCP listener on a free port.
struct Listener {
    int fd = -1;
    sockaddr_in addr{};
    explicit Listener(int backlog) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        BOOST_REQUIRE(fd >= 0);
        const int one = 1;
        BOOST_REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        BOOST_REQUIRE(::listen(fd, backlog) == 0);
        socklen_t len = sizeof addr;
        BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    }
    ~Listener() { ::close(fd); }
};

// Two fibers run `sleep_fn` (0 on success) at once; returns the wall time.
template <class Fn>
long two_concurrent_sleeps_ms(Fn sleep_fn) {
    int ra = -1;
    int rb = -1;
    const auto t0 = Clock::now();
    auto a = grove::spawn([&] { ra = sleep_fn(); });
    auto b = grove::spawn([&] { rb = sleep_fn(); });
    settle(a, 3s, "sleeper a");
    settle(b, 3s, "sleeper b");
    const long ms = ms_since(t0);
    BOOST_TEST(ra == 0);
    BOOST_TEST(rb == 0);
    return ms;
}

timespec abs_after(clockid_t clock, long ns) {
    timespec t{};
    ::clock_gettime(clock, &t);
    t.tv_nsec += ns;
    t.tv_sec += t.tv_nsec / 1'000'000'000;
    t.tv_nsec %= 1'000'000'000;
    return t;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(WatchdogStart);

BOOST_FIXTURE_TEST_SUITE(shim_linked, Bounded)

// ---- sleeps --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(thousand_fibers_in_plain_sleep_finish_in_about_one_second_on_one_thread) {
    const int threads_before = threads_now();
    BOOST_REQUIRE(threads_before > 0);
    std::vector<grove::Fiber<unsigned>> sleepers;
    sleepers.reserve(1000);
    int threads_during = -1;
    const auto t0 = Clock::now();
    for (int i = 0; i < 1000; ++i) {
        sleepers.push_back(grove::spawn([] { return ::sleep(1); }));
    }
    auto probe = grove::spawn([&] {
        grove::this_fiber::sleep_for(500ms);
        threads_during = threads_now();
    });
    int zero = 0;
    for (auto& f : sleepers) {
        if (settle(f, 5s, "sleep(1)") && f.join() == 0u) {
            ++zero;
        }
    }
    settle(probe, 1s, "probe");
    const long ms = ms_since(t0);
    BOOST_TEST(zero == 1000);
    BOOST_TEST(ms >= 1000);
    BOOST_TEST(ms < 3000);
    BOOST_TEST(threads_during == threads_before);
    BOOST_TEST(threads_now() == threads_before);
}

BOOST_AUTO_TEST_CASE(plain_usleep_in_two_fibers_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] { return ::usleep(200'000); });
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 380);
}

BOOST_AUTO_TEST_CASE(plain_nanosleep_in_two_fibers_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] {
        const timespec req{0, 200'000'000};
        timespec rem{9, 9};
        const int r = ::nanosleep(&req, &rem);
        return r;
    });
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 380);
}

BOOST_AUTO_TEST_CASE(plain_clock_nanosleep_relative_monotonic_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] {
        const timespec req{0, 200'000'000};
        return ::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr);
    });
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 380);
}

BOOST_AUTO_TEST_CASE(plain_clock_nanosleep_abstime_monotonic_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] {
        const timespec when = abs_after(CLOCK_MONOTONIC, 200'000'000);
        return ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, nullptr);
    });
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 380);
}

BOOST_AUTO_TEST_CASE(plain_clock_nanosleep_relative_realtime_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] {
        const timespec req{0, 200'000'000};
        return ::clock_nanosleep(CLOCK_REALTIME, 0, &req, nullptr);
    });
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 380);
}

BOOST_AUTO_TEST_CASE(plain_clock_nanosleep_abstime_realtime_runs_concurrently) {
    const long ms = two_concurrent_sleeps_ms([] {
        const timespec when = abs_after(CLOCK_REALTIME, 200'000'000);
        return ::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &when, nullptr);
    });
    BOOST_TEST(ms >= 190);  // the realtime clock is read twice: allow its step
    BOOST_TEST(ms < 380);
}

// ---- sockets --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(thousand_plain_tcp_echo_clients_against_plain_accept_run_concurrently) {
    constexpr int kClients = 1000;
    constexpr std::size_t kLen = 32;
    Listener listener(kClients + 24);
    int accept_errno = 0;
    std::vector<grove::Fiber<void>> handlers;
    handlers.reserve(kClients);
    int handled = 0;
    // Server: plain accept; per connection read the request, plain usleep
    // 100 ms, echo it, close.
    auto server = grove::spawn([&] {
        for (int i = 0; i < kClients; ++i) {
            const int c = ::accept(listener.fd, nullptr, nullptr);
            if (c < 0) {
                accept_errno = errno;
                return;
            }
            handlers.push_back(grove::spawn([c, &handled, kLen] {
                char buf[kLen];
                std::size_t got = 0;
                while (got < kLen) {
                    const ssize_t r = ::read(c, buf + got, kLen - got);
                    if (r <= 0) {
                        break;
                    }
                    got += static_cast<std::size_t>(r);
                }
                ::usleep(100'000);
                if (got == kLen && write_all(c, buf, kLen)) {
                    ++handled;
                }
                ::close(c);
            }));
        }
    });
    std::vector<grove::Fiber<std::string>> clients;
    clients.reserve(kClients);
    const auto t0 = Clock::now();
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(grove::spawn([&listener, i]() -> std::string {
            const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0) {
                return "socket: " + std::string(std::strerror(errno));
            }
            if (::connect(s, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof listener.addr) != 0) {
                const int e = errno;
                ::close(s);
                return "connect: " + std::string(std::strerror(e));
            }
            char msg[kLen + 1];
            std::snprintf(msg, sizeof msg, "client %04d says hello, grove!!", i);
            if (!write_all(s, msg, kLen)) {
                ::close(s);
                return "write failed";
            }
            std::string back = read_all(s);
            ::close(s);
            return back == std::string(msg, kLen) ? std::string("ok") : "echo mismatch: '" + back + "'";
        }));
    }
    int ok = 0;
    std::string first_problem;
    for (auto& c : clients) {
        if (!settle(c, 10s, "echo client")) {
            continue;
        }
        const std::string r = c.join();
        if (r == "ok") {
            ++ok;
        } else if (first_problem.empty()) {
            first_problem = r;
        }
    }
    const long ms = ms_since(t0);
    settle(server, 2s, "accept loop");
    for (auto& h : handlers) {
        settle(h, 2s, "echo handler");
    }
    BOOST_TEST(accept_errno == 0);
    BOOST_TEST(ok == kClients, "exact echoes: " << ok << "; first problem: " << first_problem);
    BOOST_TEST(handled == kClients);
    BOOST_TEST(ms >= 100);
    BOOST_TEST(ms < 3000);  // serial would be 1000 x 100 ms
}

BOOST_AUTO_TEST_CASE(plain_read_in_main_fiber_is_cooperative) {
    Pair p = Pair::sockets();
    // If the main fiber's read blocked the thread, the writer could never run:
    // SO_RCVTIMEO turns that into a failed read instead of a hang.
    const timeval tv{2, 0};
    BOOST_REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(50ms);
        write_all(p.b, "main", 4);
    });
    char buf[8] = {};
    const ssize_t r = ::read(p.a, buf, sizeof buf);
    BOOST_TEST(r == 4);
    BOOST_TEST(std::string(buf, 4) == "main");
    settle(writer, 1s, "writer");
}

BOOST_AUTO_TEST_CASE(close_wakes_a_fiber_in_plain_read_on_that_socket_with_ebadf) {
    Pair p = Pair::sockets();
    ssize_t r = 0;
    int err = 0;
    Clock::time_point done;
    auto reader = grove::spawn([&] {
        char c;
        r = ::read(p.a, &c, 1);
        err = errno;
        done = Clock::now();
    });
    grove::this_fiber::sleep_for(100ms);
    BOOST_REQUIRE(!reader.ready());  // parked in read
    const auto closed_at = Clock::now();
    BOOST_TEST(::close(p.a) == 0);
    p.a = -1;
    if (settle(reader, 1s, "reader after close")) {
        BOOST_TEST(r == -1);
        BOOST_TEST(err == EBADF);
        BOOST_TEST(ms_between(closed_at, done) < 500);
    }
}

BOOST_AUTO_TEST_CASE(fd_number_reused_by_a_new_socketpair_reads_only_new_data) {
    // The old socket: used cooperatively (registered with the hub, made
    // non-blocking by the shim), then closed under a waiting fiber.
    Pair old = Pair::sockets();
    const int old_a = old.a;
    const int old_b = old.b;
    std::string first;
    auto r1 = grove::spawn([&] {
        char buf[16];
        const ssize_t n = ::read(old.a, buf, sizeof buf);
        first.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(old.b, "old", 3);
    settle(r1, 1s, "first reader");
    BOOST_TEST(first == "old");
    // Leave unread data and a parked waiter behind, then close both ends.
    int stale_err = 0;
    auto r2 = grove::spawn([&] {
        char c;
        if (::read(old.a, &c, 1) < 0) {
            stale_err = errno;
        }
    });
    grove::this_fiber::sleep_for(20ms);
    ::close(old.a);
    old.a = -1;
    settle(r2, 1s, "reader of the closed socket");
    BOOST_TEST(stale_err == EBADF);
    ::close(old.b);
    old.b = -1;

    Pair fresh = Pair::sockets();
    BOOST_REQUIRE(fresh.a == old_a);  // lowest free numbers
    BOOST_REQUIRE(fresh.b == old_b);
    BOOST_TEST(!has_nonblock(fresh.a));
    ssize_t n = 0;
    char buf[64] = {};
    Clock::time_point done;
    auto reader = grove::spawn([&] {
        n = ::read(fresh.a, buf, sizeof buf);
        done = Clock::now();
    });
    grove::this_fiber::sleep_for(100ms);
    BOOST_TEST(!reader.ready());  // no stale wake-up from the old file
    const auto written_at = Clock::now();
    BOOST_REQUIRE(write_all(fresh.b, "fresh data", 10));
    if (settle(reader, 1s, "reader of the new socket")) {
        BOOST_TEST(n == 10);
        BOOST_TEST(std::string(buf, 10) == "fresh data");
        BOOST_TEST(ms_between(written_at, done) < 500);
    }
    BOOST_TEST(!has_nonblock(fresh.a));
}

BOOST_AUTO_TEST_CASE(fd_number_reused_by_a_pipe_after_a_socket_reads_only_new_data) {
    Pair old = Pair::sockets();
    const int old_a = old.a;
    auto r1 = grove::spawn([&] {
        char c;
        (void)::read(old.a, &c, 1);
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(old.b, "xy", 2);  // one byte stays unread in the closed socket
    settle(r1, 1s, "first reader");
    ::close(old.a);
    old.a = -1;
    Pair p = Pair::pipe();
    BOOST_REQUIRE(p.a == old_a);
    ssize_t n = 0;
    char buf[16] = {};
    auto reader = grove::spawn([&] { n = ::read(p.a, buf, sizeof buf); });
    grove::this_fiber::sleep_for(50ms);
    BOOST_TEST(!reader.ready());
    write_all(p.b, "pipe", 4);
    if (settle(reader, 1s, "pipe reader")) {
        BOOST_TEST(n == 4);
        BOOST_TEST(std::string(buf, 4) == "pipe");
    }
}

// A pipe read once in a fiber (so the hub holds a registration for its
// number), then closed where this hub does not see it and the number made
// again behind the shim's back: a new read must wait on the new pipe, not on
// the registration the kernel dropped with the old one.
void read_registers(Pair& p) {
    char c = 0;
    ssize_t n = -1;
    auto r = grove::spawn([&] { n = ::read(p.a, &c, 1); });
    grove::this_fiber::sleep_for(20ms);
    write_all(p.b, "x", 1);
    settle(r, 1s, "first reader");
    BOOST_TEST(n == 1);
}

void new_pipe_read_waits_for_its_data(int expect_a) {
    int fds[2];
    BOOST_REQUIRE(::syscall(SYS_pipe2, fds, O_CLOEXEC) == 0);  // unseen by the shim
    Pair p(fds[0], fds[1]);
    BOOST_REQUIRE(p.a == expect_a);
    ssize_t n = 0;
    char buf[16] = {};
    auto reader = grove::spawn([&] { n = ::read(p.a, buf, sizeof buf); });
    grove::this_fiber::sleep_for(50ms);
    BOOST_TEST(!reader.ready());
    write_all(p.b, "new!", 4);
    if (settle(reader, 2s, "reader of the new pipe")) {
        BOOST_TEST(n == 4);
        BOOST_TEST(std::string(buf, 4) == "new!");
    }
}

BOOST_AUTO_TEST_CASE(fd_number_closed_by_close_range_and_made_again_unseen_waits_on_the_new_file) {
    Pair old = Pair::pipe();
    read_registers(old);
    const int a = old.a;
    const unsigned lo = static_cast<unsigned>(std::min(old.a, old.b));
    const unsigned hi = static_cast<unsigned>(std::max(old.a, old.b));
    BOOST_REQUIRE(::close_range(lo, hi, 0) == 0);
    old.a = old.b = -1;
    new_pipe_read_waits_for_its_data(a);
}

BOOST_AUTO_TEST_CASE(fd_number_closed_by_another_thread_and_made_again_unseen_waits_on_the_new_file) {
    // The other thread has no hub: the close is seen by the shim's table,
    // not by this thread's hub.
    Pair old = Pair::pipe();
    read_registers(old);
    const int a = old.a;
    std::thread other([&] {
        ::close(old.a);
        ::close(old.b);
    });
    other.join();
    old.a = old.b = -1;
    new_pipe_read_waits_for_its_data(a);
}

BOOST_AUTO_TEST_CASE(close_range_wakes_a_fiber_waiting_on_a_number_in_the_range_with_ebadf) {
    Pair p = Pair::pipe();
    ssize_t n = 0;
    int err = 0;
    auto reader = grove::spawn([&] {
        char c;
        n = ::read(p.a, &c, 1);
        err = errno;
    });
    grove::this_fiber::sleep_for(20ms);
    BOOST_TEST(!reader.ready());
    BOOST_REQUIRE(::close_range(static_cast<unsigned>(p.a), static_cast<unsigned>(p.a), 0) == 0);
    p.a = -1;
    if (settle(reader, 1s, "reader of the closed number")) {
        BOOST_TEST(n == -1);
        BOOST_TEST(err == EBADF);
    }
}

BOOST_AUTO_TEST_CASE(close_range_cloexec_leaves_a_waiting_fiber_waiting) {
    Pair p = Pair::pipe();
    ssize_t n = 0;
    auto reader = grove::spawn([&] {
        char c;
        n = ::read(p.a, &c, 1);
    });
    grove::this_fiber::sleep_for(20ms);
    BOOST_REQUIRE(::close_range(static_cast<unsigned>(p.a), static_cast<unsigned>(p.a), CLOSE_RANGE_CLOEXEC) == 0);
    grove::this_fiber::sleep_for(20ms);
    BOOST_TEST(!reader.ready());
    write_all(p.b, "y", 1);
    if (settle(reader, 1s, "reader")) {
        BOOST_TEST(n == 1);
    }
}

BOOST_AUTO_TEST_CASE(so_rcvtimeo_expiry_gives_eagain_while_other_fibers_run) {
    Pair p = Pair::sockets();
    const timeval tv{0, 200'000};
    BOOST_REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);

    // libc's answer, on a plain thread (no hub: the call is not cooperative).
    ssize_t plain_r = 0;
    int plain_err = 0;
    std::thread([&] {
        char c;
        plain_r = ::read(p.a, &c, 1);
        plain_err = errno;
    }).join();
    BOOST_TEST(plain_r == -1);
    BOOST_TEST(plain_err == EAGAIN);

    Ticker ticker;
    ssize_t r = 0;
    int err = 0;
    long ms = 0;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        const auto t0 = Clock::now();
        char c;
        r = ::read(p.a, &c, 1);
        err = errno;
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(reader, 2s, "reader with SO_RCVTIMEO");
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms >= 190);
    BOOST_TEST(ms < 1000);
    BOOST_TEST(ticks >= 10);
}

BOOST_AUTO_TEST_CASE(blocking_write_of_four_mib_to_a_socket_returns_the_full_count) {
    // A blocking stream-socket write waits until it has sent everything
    // (short only on a signal or error): what a plain thread gets, a fiber
    // must get.
    constexpr std::size_t kSize = 4 << 20;
    const std::vector<char> data(kSize, 'g');
    for (const bool in_fiber : {false, true}) {
        Pair p = Pair::sockets();
        std::string drained;
        std::thread drain([&] { drained = read_all(p.b); });  // a plain thread: libc's own read
        ssize_t w = 0;
        if (in_fiber) {
            auto f = grove::spawn([&] { w = ::write(p.a, data.data(), kSize); });
            settle(f, 5s, "writer");
        } else {
            std::thread([&] { w = ::write(p.a, data.data(), kSize); }).join();
        }
        ::close(p.a);
        p.a = -1;
        drain.join();
        BOOST_TEST(w == static_cast<ssize_t>(kSize), (in_fiber ? "fiber" : "plain thread") << ": write returned " << w);
        BOOST_TEST(drained.size() == static_cast<std::size_t>(w > 0 ? w : 0));
    }
}

BOOST_AUTO_TEST_CASE(blocking_write_of_one_mib_to_a_pipe_returns_the_full_count) {
    constexpr std::size_t kSize = 1 << 20;
    const std::vector<char> data(kSize, 'p');
    for (const bool in_fiber : {false, true}) {
        Pair p = Pair::pipe();
        std::string drained;
        std::thread drain([&] { drained = read_all(p.a); });
        ssize_t w = 0;
        if (in_fiber) {
            auto f = grove::spawn([&] { w = ::write(p.b, data.data(), kSize); });
            settle(f, 5s, "writer");
        } else {
            std::thread([&] { w = ::write(p.b, data.data(), kSize); }).join();
        }
        ::close(p.b);
        p.b = -1;
        drain.join();
        BOOST_TEST(w == static_cast<ssize_t>(kSize), (in_fiber ? "fiber" : "plain thread") << ": write returned " << w);
    }
}

BOOST_AUTO_TEST_CASE(recv_msg_waitall_in_a_fiber_waits_for_every_byte) {
    Pair p = Pair::sockets();
    char buf[8] = {};
    ssize_t r = 0;
    auto reader = grove::spawn([&] { r = ::recv(p.a, buf, sizeof buf, MSG_WAITALL); });
    auto writer = grove::spawn([&] {
        write_all(p.b, "abcd", 4);
        grove::this_fiber::sleep_for(50ms);
        write_all(p.b, "efgh", 4);
    });
    settle(reader, 2s, "MSG_WAITALL reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(r == 8);
    BOOST_TEST(std::string(buf, 8) == "abcdefgh");
}

BOOST_AUTO_TEST_CASE(plain_thread_read_on_a_socket_the_shim_made_nonblocking_still_blocks) {
    Pair p = Pair::sockets();
    auto r1 = grove::spawn([&] {
        char c;
        (void)::read(p.a, &c, 1);  // cooperative: O_NONBLOCK set underneath
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(p.b, "1", 1);
    settle(r1, 1s, "first reader");
    ssize_t r = 0;
    int err = 0;
    char c = 0;
    std::atomic<bool> done{false};
    std::thread t([&] {
        r = ::read(p.a, &c, 1);
        err = errno;
        done = true;
    });
    grove::this_fiber::sleep_for(100ms);
    BOOST_TEST(!done);  // blocked, as a blocking socket is
    write_all(p.b, "2", 1);
    t.join();
    BOOST_TEST(r == 1, "read returned " << r << " errno " << err);
    BOOST_TEST(c == '2');
}

BOOST_AUTO_TEST_CASE(o_nonblock_set_through_a_dup_shows_on_the_original) {
    // O_NONBLOCK belongs to the open file description, shared by dups.
    Pair p = Pair::sockets();
    auto r1 = grove::spawn([&] {
        char c;
        (void)::read(p.a, &c, 1);
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(p.b, "1", 1);
    settle(r1, 1s, "first reader");
    const int d = ::dup(p.a);
    BOOST_REQUIRE(d >= 0);
    BOOST_REQUIRE(::fcntl(d, F_SETFL, ::fcntl(d, F_GETFL) | O_NONBLOCK) == 0);
    BOOST_TEST(has_nonblock(d));
    BOOST_TEST(has_nonblock(p.a));
    ssize_t r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        char c;
        r = ::read(p.a, &c, 1);
        err = errno;
    });
    if (!settle(f, 300ms, "read on the original after O_NONBLOCK via the dup")) {
        r = -2;  // it waited: the shim took the original for blocking
        err = 0;
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    ::close(d);
}

BOOST_AUTO_TEST_CASE(exec_child_writing_to_a_socket_the_parent_used_cooperatively_sees_a_blocking_socket) {
    // The shim's hidden O_NONBLOCK sits on the open file description, which
    // a child shares: a program exec'd without the shim must still find its
    // stdout blocking, or it fails with EAGAIN once the buffer is full.
    Pair p = Pair::sockets();
    auto r1 = grove::spawn([&] {
        char c;
        (void)::read(p.b, &c, 1);  // cooperative use of the child's end
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(p.a, "1", 1);
    settle(r1, 1s, "first reader");
    BOOST_TEST(!has_nonblock(p.b));

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p.b, 1);
    char arg0[] = "sh";
    char arg1[] = "-c";
    // 3 MB: more than the socket buffer, so the writer must wait.
    char arg2[] = "head -c 3000000 /dev/zero";
    char* argv[] = {arg0, arg1, arg2, nullptr};
    char* envp[] = {nullptr};  // no LD_PRELOAD: a program without the shim
    pid_t pid = -1;
    BOOST_REQUIRE(::posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, envp) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p.b);
    p.b = -1;
    grove::this_fiber::sleep_for(200ms);  // let the child fill the buffer
    std::string got;
    auto reader = grove::spawn([&] { got = read_all(p.a); });
    settle(reader, 5s, "reader");
    int status = -1;
    auto waiter = grove::spawn([&] { ::waitpid(pid, &status, 0); });
    settle(waiter, 3s, "waitpid");
    BOOST_TEST(got.size() == 3000000u);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_CASE(two_fibers_reading_one_pipe_the_shim_did_not_create_do_not_block_the_thread) {
    // A pipe made behind the shim's back (as one inherited from a parent):
    // the shim may not make it non-blocking, so it waits for readiness and
    // then reads. Two readers both see "ready" for one byte.
    int fds[2];
    BOOST_REQUIRE(::syscall(SYS_pipe2, fds, O_CLOEXEC) == 0);
    Pair p(fds[0], fds[1]);
    Ticker ticker;
    int got = 0;
    auto read_one = [&] {
        char c;
        if (::read(p.a, &c, 1) == 1) {
            ++got;
        }
    };
    auto a = grove::spawn(read_one);
    auto b = grove::spawn(read_one);
    grove::this_fiber::sleep_for(30ms);
    write_all(p.b, "1", 1);
    // The second byte comes from a plain thread 500 ms later, so a thread
    // blocked in read(2) ends instead of hanging.
    std::thread late([&] {
        std::this_thread::sleep_for(500ms);
        (void)::write(p.b, "2", 1);
    });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(300ms);
    const long ticks = ticker.count() - before;
    late.join();
    settle(a, 2s, "reader a");
    settle(b, 2s, "reader b");
    BOOST_TEST(got == 2);
    BOOST_TEST(ticks >= 20, "other fibers ran " << ticks << " ticks of 5 ms in 300 ms");
}

// stdio and the process helpers call libc's internal __read / __waitpid,
// which no interposed symbol reaches: these say whether the shim covers
// them anyway.
BOOST_AUTO_TEST_CASE(stdio_fgets_on_a_popen_pipe_in_a_fiber_lets_other_fibers_run) {
    Ticker ticker;
    std::string line;
    long ticks = 0;
    FILE* in = nullptr;
    auto f = grove::spawn([&] {
        in = ::popen("sleep 0.3; echo hi", "r");
        if (in == nullptr) {
            return;
        }
        char buf[64] = {};
        const long before = ticker.count();
        if (std::fgets(buf, sizeof buf, in) != nullptr) {
            line = buf;
        }
        ticks = ticker.count() - before;
    });
    settle(f, 5s, "fgets reader");
    BOOST_REQUIRE(in != nullptr);
    BOOST_TEST(line == "hi\n");
    BOOST_TEST(ticks >= 20, "fgets: other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
    BOOST_TEST(::pclose(in) == 0);
}

BOOST_AUTO_TEST_CASE(pclose_in_a_fiber_lets_other_fibers_run_while_the_child_ends) {
    Ticker ticker;
    int status = -1;
    long ticks = 0;
    auto f = grove::spawn([&] {
        FILE* in = ::popen("sleep 0.3", "r");
        if (in == nullptr) {
            return;
        }
        const long before = ticker.count();
        status = ::pclose(in);
        ticks = ticker.count() - before;
    });
    settle(f, 5s, "pclose");
    BOOST_TEST(status == 0);
    BOOST_TEST(ticks >= 20, "pclose: other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
}

BOOST_AUTO_TEST_CASE(system_in_a_fiber_lets_other_fibers_run) {
    Ticker ticker;
    int status = -1;
    long ticks = 0;
    auto f = grove::spawn([&] {
        const long before = ticker.count();
        status = std::system("sleep 0.3; exit 2");
        ticks = ticker.count() - before;
    });
    settle(f, 5s, "system");
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 2);
    BOOST_TEST(ticks >= 20, "system: other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
}

BOOST_AUTO_TEST_CASE(plain_wait_for_any_child_in_a_fiber_returns_its_status_while_others_run) {
    pid_t pid = -1;
    auto forker = grove::spawn([&] {
        pid = ::fork();
        if (pid == 0) {
            ::usleep(200'000);
            std::_Exit(4);
        }
    });
    settle(forker, 1s, "forker");
    BOOST_REQUIRE(pid > 0);
    Ticker ticker;
    int status = -1;
    pid_t waited = 0;
    long ticks = 0;
    auto waiter = grove::spawn([&] {
        const long before = ticker.count();
        waited = ::wait(&status);
        ticks = ticker.count() - before;
    });
    settle(waiter, 3s, "wait");
    BOOST_TEST(waited == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 4);
    BOOST_TEST(ticks >= 10);
}

// ---- user non-blocking ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(sock_nonblock_socket_gives_eagain_at_once_and_shows_o_nonblock) {
    Pair p = Pair::sockets(SOCK_NONBLOCK);
    BOOST_TEST(has_nonblock(p.a));
    const auto t0 = Clock::now();
    char c;
    const ssize_t r = ::read(p.a, &c, 1);
    const int err = errno;
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms_since(t0) < 1000);
    BOOST_TEST(has_nonblock(p.a));
}

BOOST_AUTO_TEST_CASE(fcntl_o_nonblock_after_cooperative_use_gives_eagain_and_clearing_it_blocks_again) {
    Pair p = Pair::sockets();
    // Cooperative use first: the shim makes the socket non-blocking inside.
    auto r1 = grove::spawn([&] {
        char c;
        (void)::read(p.a, &c, 1);
    });
    grove::this_fiber::sleep_for(20ms);
    write_all(p.b, "x", 1);
    settle(r1, 1s, "first reader");
    BOOST_TEST(!has_nonblock(p.a));

    const int fl = ::fcntl(p.a, F_GETFL);
    BOOST_REQUIRE(::fcntl(p.a, F_SETFL, fl | O_NONBLOCK) == 0);
    BOOST_TEST(has_nonblock(p.a));
    const auto t0 = Clock::now();
    char c;
    const ssize_t r = ::read(p.a, &c, 1);
    const int err = errno;
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms_since(t0) < 1000);

    // Back to blocking: a read waits (cooperatively) for data again.
    BOOST_REQUIRE(::fcntl(p.a, F_SETFL, fl & ~O_NONBLOCK) == 0);
    BOOST_TEST(!has_nonblock(p.a));
    ssize_t n = 0;
    auto r2 = grove::spawn([&] { n = ::read(p.a, &c, 1); });
    grove::this_fiber::sleep_for(50ms);
    BOOST_TEST(!r2.ready());
    write_all(p.b, "y", 1);
    if (settle(r2, 1s, "reader after clearing O_NONBLOCK")) {
        BOOST_TEST(n == 1);
        BOOST_TEST(c == 'y');
    }
}

BOOST_AUTO_TEST_CASE(ioctl_fionbio_socket_gives_eagain_at_once) {
    Pair p = Pair::sockets();
    int on = 1;
    BOOST_REQUIRE(::ioctl(p.a, FIONBIO, &on) == 0);
    BOOST_TEST(has_nonblock(p.a));
    const auto t0 = Clock::now();
    char c;
    const ssize_t r = ::recv(p.a, &c, 1, 0);
    const int err = errno;
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms_since(t0) < 1000);
}

BOOST_AUTO_TEST_CASE(o_nonblock_pipe_and_msg_dontwait_give_eagain_at_once) {
    Pair p = Pair::pipe(O_NONBLOCK);
    BOOST_TEST(has_nonblock(p.a));
    char c;
    const auto t0 = Clock::now();
    ssize_t r = ::read(p.a, &c, 1);
    int err = errno;
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    Pair s = Pair::sockets();
    r = ::recv(s.a, &c, 1, MSG_DONTWAIT);
    err = errno;
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms_since(t0) < 1000);
    BOOST_TEST(!has_nonblock(s.a));
}

BOOST_AUTO_TEST_CASE(blocking_sockets_used_cooperatively_never_show_o_nonblock) {
    Listener listener(8);
    int accepted = -1;
    int accepted_nb = -1;
    auto server = grove::spawn([&] {
        accepted = ::accept(listener.fd, nullptr, nullptr);
        accepted_nb = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    });
    const int c1 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int c2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(c1 >= 0);
    BOOST_REQUIRE(c2 >= 0);
    BOOST_TEST(::connect(c1, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof listener.addr) == 0);
    BOOST_TEST(::connect(c2, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof listener.addr) == 0);
    settle(server, 1s, "accepts");
    BOOST_REQUIRE(accepted >= 0);
    BOOST_REQUIRE(accepted_nb >= 0);
    // A read that had to wait, on each blocking socket.
    char c = 0;
    auto w = grove::spawn([&] {
        grove::this_fiber::sleep_for(30ms);
        write_all(c1, "a", 1);
        write_all(accepted, "b", 1);
    });
    BOOST_TEST(::read(accepted, &c, 1) == 1);
    BOOST_TEST(c == 'a');
    BOOST_TEST(::read(c1, &c, 1) == 1);
    BOOST_TEST(c == 'b');
    settle(w, 1s, "writer");
    BOOST_TEST(!has_nonblock(listener.fd));
    BOOST_TEST(!has_nonblock(c1));
    BOOST_TEST(!has_nonblock(c2));
    BOOST_TEST(!has_nonblock(accepted));
    BOOST_TEST(has_nonblock(accepted_nb));  // the user asked for it
    const int d = ::dup(accepted);
    BOOST_TEST(!has_nonblock(d));
    ::close(d);
    ::close(c1);
    ::close(c2);
    ::close(accepted);
    ::close(accepted_nb);
}

// ---- signals -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sigalrm_without_sa_restart_gives_eintr_to_plain_read_in_a_fiber) {
    AlarmHandler handler(0);
    Pair p = Pair::pipe();

    // libc's answer on a plain thread, signalled directly.
    ssize_t plain_r = 0;
    int plain_err = 0;
    std::atomic<bool> done{false};
    std::thread t([&] {
        char c;
        plain_r = ::read(p.a, &c, 1);
        plain_err = errno;
        done = true;
    });
    // Until the thread is out of read (a signal sent before it got there
    // would be missed).
    for (int i = 0; i < 40 && !done; ++i) {
        grove::this_fiber::sleep_for(50ms);
        pthread_kill(t.native_handle(), SIGALRM);
    }
    if (!done) {
        write_all(p.b, "x", 1);
    }
    t.join();
    BOOST_TEST(plain_r == -1);
    BOOST_TEST(plain_err == EINTR);
    BOOST_TEST(alarm_hits >= 1);
    alarm_hits = 0;

    ssize_t r = 0;
    int err = 0;
    std::string got;
    const auto t0 = Clock::now();
    long ms = 0;
    auto reader = grove::spawn([&] {
        char buf[16];
        r = ::read(p.a, buf, sizeof buf);
        err = errno;
        ms = ms_since(t0);
        if (r > 0) {
            got.assign(buf, static_cast<std::size_t>(r));
        }
    });
    // If the signal does not reach the read, this ends it (with data).
    auto rescuer = grove::spawn([&] {
        grove::this_fiber::sleep_for(1500ms);
        write_all(p.b, "late", 4);
    });
    AlarmHandler::fire_after(100ms);
    settle(reader, 3s, "reader");
    rescuer.kill();
    settle(rescuer, 1s, "rescuer");
    BOOST_TEST(alarm_hits == 1);
    BOOST_TEST(r == -1, "read returned " << r << " ('" << got << "') after " << ms << " ms");
    BOOST_TEST(err == EINTR);
    BOOST_TEST(ms < 1000);
}

BOOST_AUTO_TEST_CASE(sigalrm_with_sa_restart_lets_plain_read_in_a_fiber_continue) {
    AlarmHandler handler(SA_RESTART);
    Pair p = Pair::pipe();
    ssize_t r = 0;
    int err = 0;
    char buf[16] = {};
    auto reader = grove::spawn([&] {
        r = ::read(p.a, buf, sizeof buf);
        err = errno;
    });
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(300ms);
        write_all(p.b, "data", 4);
    });
    AlarmHandler::fire_after(100ms);
    settle(reader, 3s, "reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(alarm_hits == 1);
    BOOST_TEST(r == 4, "read returned " << r << " errno " << err);
    BOOST_TEST(std::string(buf, 4) == "data");
}

BOOST_AUTO_TEST_CASE(sigalrm_cuts_plain_nanosleep_in_a_fiber_short_even_with_sa_restart) {
    // nanosleep is never restarted (signal(7)): EINTR and the time left.
    AlarmHandler handler(SA_RESTART);
    int r = 0;
    int err = 0;
    timespec rem{};
    long ms = 0;
    auto sleeper = grove::spawn([&] {
        const timespec req{1, 0};
        const auto t0 = Clock::now();
        r = ::nanosleep(&req, &rem);
        err = errno;
        ms = ms_since(t0);
    });
    AlarmHandler::fire_after(100ms);
    settle(sleeper, 3s, "sleeper");
    BOOST_TEST(alarm_hits == 1);
    BOOST_TEST(r == -1, "nanosleep returned " << r << " after " << ms << " ms");
    BOOST_TEST(err == EINTR);
    BOOST_TEST(ms < 500);
    const long left_ms = static_cast<long>(rem.tv_sec) * 1000 + rem.tv_nsec / 1'000'000;
    BOOST_TEST(left_ms > 500);
    BOOST_TEST(left_ms <= 1000);
}

BOOST_AUTO_TEST_CASE(sigalrm_cuts_plain_poll_in_a_fiber_short_even_with_sa_restart) {
    // poll is never restarted after a handler (signal(7)).
    AlarmHandler handler(SA_RESTART);
    Pair p = Pair::pipe();
    int r = 0;
    int err = 0;
    long ms = 0;
    auto poller = grove::spawn([&] {
        pollfd fd{p.a, POLLIN, 0};
        const auto t0 = Clock::now();
        r = ::poll(&fd, 1, 1000);
        err = errno;
        ms = ms_since(t0);
    });
    AlarmHandler::fire_after(100ms);
    settle(poller, 3s, "poller");
    BOOST_TEST(alarm_hits == 1);
    BOOST_TEST(r == -1, "poll returned " << r << " after " << ms << " ms");
    BOOST_TEST(err == EINTR);
    BOOST_TEST(ms < 500);
}

// ---- processes ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fork_in_a_fiber_child_output_and_exit_status_are_read_cooperatively) {
    Pair p = Pair::pipe();
    Ticker ticker;
    pid_t pid = -1;
    auto forker = grove::spawn([&] {
        pid = ::fork();
        if (pid == 0) {
            // The child: a fresh hub with only this fiber. Never return into
            // Boost.Test from here.
            ::close(p.a);
            ::usleep(100'000);
            static const char msg[] = "hello from the child";
            const bool ok = write_all(p.b, msg, sizeof msg - 1);
            ::close(p.b);
            ::usleep(300'000);
            std::_Exit(ok ? 7 : 99);
        }
    });
    settle(forker, 1s, "forker");
    BOOST_REQUIRE(pid > 0);
    ::close(p.b);
    p.b = -1;

    std::string got;
    long read_ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        got = read_all(p.a);
        read_ticks = ticker.count() - before;
    });
    settle(reader, 3s, "reader of the child's pipe");
    BOOST_TEST(got == "hello from the child");
    BOOST_TEST(read_ticks >= 5);  // the child sleeps 100 ms before writing

    int status = -1;
    pid_t waited = 0;
    long wait_ticks = 0;
    auto waiter = grove::spawn([&] {
        const long before = ticker.count();
        waited = ::waitpid(pid, &status, 0);
        wait_ticks = ticker.count() - before;
    });
    settle(waiter, 3s, "waitpid");
    BOOST_TEST(waited == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 7);
    BOOST_TEST(wait_ticks >= 10);  // the child sleeps 300 ms before exiting
    if (waited != pid) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

BOOST_AUTO_TEST_CASE(pipe_from_posix_spawned_shell_is_read_while_other_fibers_run) {
    Pair p = Pair::pipe();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p.b, 1);
    char arg0[] = "sh";
    char arg1[] = "-c";
    char arg2[] = "sleep 0.3; echo hi";
    char* argv[] = {arg0, arg1, arg2, nullptr};
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    BOOST_REQUIRE(rc == 0);
    ::close(p.b);
    p.b = -1;

    Ticker ticker;
    std::string got;
    long ticks = 0;
    long ms = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        const auto t0 = Clock::now();
        got = read_all(p.a);
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(reader, 5s, "reader of the shell's pipe");
    BOOST_TEST(got == "hi\n");
    BOOST_TEST(ms >= 250);
    BOOST_TEST(ticks >= 20);
    int status = -1;
    pid_t waited = 0;
    auto waiter = grove::spawn([&] { waited = ::waitpid(pid, &status, 0); });
    settle(waiter, 3s, "waitpid");
    BOOST_TEST(waited == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_CASE(pipe_from_fork_exec_shell_is_read_while_other_fibers_run) {
    Pair p = Pair::pipe();
    Ticker ticker;
    pid_t pid = -1;
    std::string got;
    long ticks = 0;
    auto f = grove::spawn([&] {
        pid = ::fork();
        if (pid == 0) {
            ::dup2(p.b, 1);
            ::execl("/bin/sh", "sh", "-c", "sleep 0.3; echo hi", static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        ::close(p.b);
        p.b = -1;
        const long before = ticker.count();
        got = read_all(p.a);
        ticks = ticker.count() - before;
    });
    settle(f, 5s, "fork+exec reader");
    BOOST_REQUIRE(pid > 0);
    BOOST_TEST(got == "hi\n");
    BOOST_TEST(ticks >= 20);
    int status = -1;
    pid_t waited = 0;
    auto waiter = grove::spawn([&] { waited = ::waitpid(pid, &status, 0); });
    settle(waiter, 3s, "waitpid");
    BOOST_TEST(waited == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

// ---- poll / select -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(plain_poll_on_several_fds_wakes_on_the_written_one) {
    Pair p0 = Pair::pipe();
    Pair p1 = Pair::sockets();
    Pair p2 = Pair::pipe();
    Ticker ticker;
    pollfd fds[3] = {{p0.a, POLLIN, 0}, {p1.a, POLLIN, 0}, {p2.a, POLLIN, 0}};
    int r = 0;
    long ms = 0;
    long ticks = 0;
    auto poller = grove::spawn([&] {
        const long before = ticker.count();
        const auto t0 = Clock::now();
        r = ::poll(fds, 3, 5000);
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(100ms);
        write_all(p1.b, "!", 1);
    });
    settle(poller, 3s, "poller");
    settle(writer, 1s, "writer");
    BOOST_TEST(r == 1);
    BOOST_TEST(fds[0].revents == 0);
    BOOST_TEST(fds[1].revents == POLLIN);
    BOOST_TEST(fds[2].revents == 0);
    BOOST_TEST(ms >= 90);
    BOOST_TEST(ms < 1000);
    BOOST_TEST(ticks >= 5);
}

BOOST_AUTO_TEST_CASE(plain_select_on_several_fds_wakes_on_the_written_one) {
    Pair p0 = Pair::pipe();
    Pair p1 = Pair::pipe();
    Pair p2 = Pair::sockets();
    Ticker ticker;
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p0.a, &rs);
    FD_SET(p1.a, &rs);
    FD_SET(p2.a, &rs);
    const int nfds = std::max({p0.a, p1.a, p2.a}) + 1;
    int r = 0;
    long ticks = 0;
    auto selector = grove::spawn([&] {
        const long before = ticker.count();
        timeval tv{5, 0};
        r = ::select(nfds, &rs, nullptr, nullptr, &tv);
        ticks = ticker.count() - before;
    });
    auto writer = grove::spawn([&] {
        grove::this_fiber::sleep_for(100ms);
        write_all(p2.b, "!", 1);
    });
    settle(selector, 3s, "selector");
    settle(writer, 1s, "writer");
    BOOST_TEST(r == 1);
    BOOST_TEST(!FD_ISSET(p0.a, &rs));
    BOOST_TEST(!FD_ISSET(p1.a, &rs));
    BOOST_TEST(FD_ISSET(p2.a, &rs));
    BOOST_TEST(ticks >= 5);
}

BOOST_AUTO_TEST_CASE(plain_poll_timeout_returns_zero_after_the_timeout_while_other_fibers_run) {
    Pair p0 = Pair::pipe();
    Pair p1 = Pair::sockets();
    Ticker ticker;
    pollfd fds[2] = {{p0.a, POLLIN, 0}, {p1.a, POLLIN, 0}};
    int r = -1;
    long ms = 0;
    long ticks = 0;
    auto poller = grove::spawn([&] {
        const long before = ticker.count();
        const auto t0 = Clock::now();
        r = ::poll(fds, 2, 200);
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(poller, 2s, "poller");
    BOOST_TEST(r == 0);
    BOOST_TEST(fds[0].revents == 0);
    BOOST_TEST(fds[1].revents == 0);
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ms < 700);
    BOOST_TEST(ticks >= 10);
}

BOOST_AUTO_TEST_CASE(plain_select_timeout_returns_zero_clears_sets_and_the_timeval) {
    Pair p0 = Pair::pipe();
    Ticker ticker;
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p0.a, &rs);
    timeval tv{0, 200'000};
    int r = -1;
    long ms = 0;
    long ticks = 0;
    auto selector = grove::spawn([&] {
        const long before = ticker.count();
        const auto t0 = Clock::now();
        r = ::select(p0.a + 1, &rs, nullptr, nullptr, &tv);
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(selector, 2s, "selector");
    BOOST_TEST(r == 0);
    BOOST_TEST(!FD_ISSET(p0.a, &rs));
    BOOST_TEST(tv.tv_sec == 0);
    BOOST_TEST(tv.tv_usec == 0);
    BOOST_TEST(ms >= 195);
    BOOST_TEST(ticks >= 10);
}

// ---- kill and Timeout ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_plain_read_gives_ecanceled_then_fiber_exit) {
    Pair p = Pair::sockets();
    ssize_t r = 0;
    int err = 0;
    bool after_suspension = false;
    auto f = grove::spawn([&] {
        char c;
        r = ::read(p.a, &c, 1);
        err = errno;
        grove::this_fiber::yield();  // the next C++ suspension: FiberExit
        after_suspension = true;
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    const auto t0 = Clock::now();
    f.kill();
    if (settle(f, 1s, "killed reader")) {
        BOOST_TEST(ms_since(t0) < 100);
        BOOST_TEST(f.killed());
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == ECANCELED);
    BOOST_TEST(!after_suspension);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_plain_usleep_gives_eintr_then_fiber_exit) {
    int r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        r = ::usleep(5'000'000);
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    f.kill();
    if (settle(f, 1s, "killed sleeper")) {
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_plain_read_gives_etimedout_then_timeout_error) {
    Pair p = Pair::sockets();
    const auto t = under_timeout(100ms, 2s, "reader under Timeout", [&] {
        char c;
        return ::read(p.a, &c, 1);
    });
    BOOST_TEST(t.r == -1);
    BOOST_TEST(t.err == ETIMEDOUT);
    BOOST_TEST(t.ms >= 95);
    BOOST_TEST(t.ms < 1000);
    BOOST_TEST(t.raised);
}

// ---- stdio reads that need several refills --------------------------------------

namespace {

// Writes the pieces to fd from a fiber, `gap` apart (grove sleeps, so the
// writer itself needs nothing from the shim), then closes fd if asked.
grove::Fiber<void> write_pieces(int fd, std::vector<std::string> pieces, std::chrono::milliseconds gap,
                                bool close_after) {
    return grove::spawn([fd, pieces = std::move(pieces), gap, close_after] {
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            if (i > 0) {
                grove::this_fiber::sleep_for(gap);
            }
            write_all(fd, pieces[i].data(), pieces[i].size());
        }
        if (close_after) {
            ::close(fd);
        }
    });
}

// A FILE on the read end of a fresh pipe; the write end in *w.
FILE* pipe_file(int* w) {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    *w = p[1];
    FILE* f = ::fdopen(p[0], "r");
    BOOST_REQUIRE(f != nullptr);
    return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fgets_of_a_line_arriving_in_pieces_lets_other_fibers_run_between_refills) {
    Ticker ticker;
    int w = -1;
    FILE* f = pipe_file(&w);
    auto writer = write_pieces(w, {"first ", "half, ", "second half\n"}, 150ms, false);
    std::string line;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        char buf[128] = {};
        const long before = ticker.count();
        if (std::fgets(buf, sizeof buf, f) != nullptr) {
            line = buf;
        }
        ticks = ticker.count() - before;
    });
    settle(reader, 5s, "fgets reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(line == "first half, second half\n");
    // Two gaps of 150 ms: a reader blocking the thread at the second refill
    // would stop the ticker for 150 ms.
    BOOST_TEST(ticks >= 40, "other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
    BOOST_TEST(!std::ferror(f));
    ::close(w);
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(fread_of_more_than_one_piece_returns_all_of_it_while_other_fibers_run) {
    Ticker ticker;
    int w = -1;
    FILE* f = pipe_file(&w);
    // 3 x 3000 bytes under one buffer refill each, then 3 x 20000 read
    // straight into the caller's memory.
    std::vector<std::string> pieces;
    std::string all;
    for (int i = 0; i < 6; ++i) {
        pieces.emplace_back(i < 3 ? 3000 : 20000, static_cast<char>('a' + i));
        all += pieces.back();
    }
    auto writer = write_pieces(w, pieces, 60ms, true);
    std::string got(all.size() + 10, '\0');
    std::size_t n = 0;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        n = std::fread(got.data(), 1, got.size(), f);
        ticks = ticker.count() - before;
    });
    settle(reader, 5s, "fread reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(n == all.size());
    got.resize(n);
    BOOST_TEST((got == all));
    BOOST_TEST(std::feof(f));
    BOOST_TEST(!std::ferror(f));
    BOOST_TEST(ticks >= 40, "other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(getline_and_getc_across_pieces_on_a_socket_file_let_other_fibers_run) {
    Ticker ticker;
    Pair p = Pair::sockets();
    FILE* f = ::fdopen(p.a, "r");
    BOOST_REQUIRE(f != nullptr);
    p.a = -1;  // the FILE owns it now
    auto writer = write_pieces(p.b, {"getl", "ine ", "line\nx", "y", "z"}, 100ms, false);
    std::string line;
    std::string chars;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        char* buf = nullptr;
        std::size_t cap = 0;
        const ssize_t n = ::getline(&buf, &cap, f);
        if (n > 0) {
            line.assign(buf, static_cast<std::size_t>(n));
        }
        std::free(buf);
        for (int i = 0; i < 3; ++i) {
            const int c = std::getc(f);
            if (c == EOF) {
                break;
            }
            chars += static_cast<char>(c);
        }
        ticks = ticker.count() - before;
    });
    settle(reader, 5s, "getline reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(line == "getline line\n");
    BOOST_TEST(chars == "xyz");
    BOOST_TEST(ticks >= 60, "other fibers ran " << ticks << " ticks of 5 ms in ~400 ms");
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(fscanf_of_fields_arriving_in_pieces_lets_other_fibers_run_and_leaves_the_rest) {
    Ticker ticker;
    int w = -1;
    FILE* f = pipe_file(&w);
    auto writer = write_pieces(w, {"4", "2 ans", "wer 7", "7\nrest\n"}, 100ms, true);
    int a = 0;
    int b = 0;
    char word[16] = {};
    int r = 0;
    std::string rest;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        r = std::fscanf(f, "%d %15s %d", &a, word, &b);
        ticks = ticker.count() - before;
        char buf[32] = {};
        while (std::fgets(buf, sizeof buf, f) != nullptr) {
            rest += buf;
        }
    });
    settle(reader, 5s, "fscanf reader");
    settle(writer, 1s, "writer");
    BOOST_TEST(r == 3);
    BOOST_TEST(a == 42);
    BOOST_TEST(std::string(word) == "answer");
    BOOST_TEST(b == 77);
    BOOST_TEST(rest == "\nrest\n");
    BOOST_TEST(ticks >= 40, "other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(two_fibers_reading_lines_of_one_file_each_get_whole_lines) {
    int w = -1;
    FILE* f = pipe_file(&w);
    // Each line arrives in two pieces: a reader parked mid-line must keep
    // the FILE until its line is complete.
    auto writer = write_pieces(w, {"one-a ", "one-b\ntwo-a ", "two-b\nthree-a ", "three-b\n"}, 60ms, true);
    std::vector<std::string> lines;
    auto reader = [&] {
        char buf[64];
        while (std::fgets(buf, sizeof buf, f) != nullptr) {
            lines.emplace_back(buf);
        }
    };
    auto a = grove::spawn(reader);
    auto b = grove::spawn(reader);
    settle(a, 5s, "reader a");
    settle(b, 5s, "reader b");
    settle(writer, 1s, "writer");
    BOOST_TEST(lines.size() == 3u);
    for (const auto& l : lines) {
        BOOST_TEST((l == "one-a one-b\n" || l == "two-a two-b\n" || l == "three-a three-b\n"), "line: " << l);
    }
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_fgets_waiting_mid_line_gives_null_etimedout_and_error_flag) {
    int w = -1;
    FILE* f = pipe_file(&w);
    write_all(w, "partial", 7);
    const auto t = under_timeout(150ms, 3s, "fgets under Timeout", [&] {
        char buf[64];
        return std::fgets(buf, sizeof buf, f);
    });
    BOOST_TEST(t.r == nullptr);
    BOOST_TEST(t.err == ETIMEDOUT);
    BOOST_TEST(t.ms >= 140);
    BOOST_TEST(t.ms < 1500);
    BOOST_TEST(t.raised);
    BOOST_TEST(std::ferror(f));
    // The FILE is usable after clearerr: the rest of the line comes.
    std::clearerr(f);
    write_all(w, " rest\n", 6);
    char buf[64] = {};
    BOOST_TEST(std::fgets(buf, sizeof buf, f) == buf);
    BOOST_TEST(std::string(buf) == " rest\n");
    ::close(w);
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_fread_gives_its_partial_count_and_ecanceled) {
    int w = -1;
    FILE* f = pipe_file(&w);
    write_all(w, "12345", 5);
    std::size_t n = 99;
    int err = 0;
    auto reader = grove::spawn([&] {
        char buf[100];
        n = std::fread(buf, 1, sizeof buf, f);
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!reader.ready());
    reader.kill();
    if (settle(reader, 1s, "killed fread")) {
        BOOST_CHECK_THROW(reader.join(), grove::FiberExit);
    }
    BOOST_TEST(n == 5u);
    BOOST_TEST(err == ECANCELED);
    BOOST_TEST(std::ferror(f));
    ::close(w);
    std::fclose(f);
}

// ---- vectored I/O past 128 buffers ------------------------------------------------

BOOST_AUTO_TEST_CASE(writev_of_a_thousand_buffers_to_a_full_socket_waits_cooperatively) {
    Ticker ticker;
    Pair p = Pair::sockets();
    const int small = 4096;
    BOOST_REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    std::string data(1000 * 300, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>(i * 7 + i / 300);
    }
    std::vector<iovec> iov(1000);
    for (std::size_t i = 0; i < iov.size(); ++i) {
        iov[i] = iovec{data.data() + i * 300, 300};
    }
    ssize_t wrote = 0;
    long ticks = 0;
    auto writer = grove::spawn([&] {
        const long before = ticker.count();
        wrote = ::writev(p.a, iov.data(), static_cast<int>(iov.size()));
        ticks = ticker.count() - before;
        ::shutdown(p.a, SHUT_WR);
    });
    // The reader drains slowly, with grove sleeps.
    std::string got;
    auto reader = grove::spawn([&] {
        char buf[16384];
        for (;;) {
            grove::this_fiber::sleep_for(10ms);
            const ssize_t r = ::recv(p.b, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0) {
                return;
            }
            if (r > 0) {
                got.append(buf, static_cast<std::size_t>(r));
            }
        }
    });
    settle(writer, 10s, "writev of 1000 buffers");
    settle(reader, 10s, "reader");
    BOOST_TEST(wrote == static_cast<ssize_t>(data.size()));
    BOOST_TEST((got == data));
    BOOST_TEST(ticks >= 10, "other fibers ran " << ticks << " ticks of 5 ms while writev waited");
}

BOOST_AUTO_TEST_CASE(readv_of_iov_max_buffers_on_a_pipe_waits_cooperatively_and_one_more_is_einval) {
    Ticker ticker;
    Pair p = Pair::pipe();
    std::vector<char> space(IOV_MAX * 2);
    std::vector<iovec> iov(IOV_MAX + 1);
    for (std::size_t i = 0; i < iov.size(); ++i) {
        iov[i] = iovec{space.data() + (i % IOV_MAX) * 2, 2};
    }
    errno = 0;
    BOOST_TEST(::readv(p.a, iov.data(), IOV_MAX + 1) == -1);
    BOOST_TEST(errno == EINVAL);
    ssize_t r = 0;
    long ticks = 0;
    auto reader = grove::spawn([&] {
        const long before = ticker.count();
        r = ::readv(p.a, iov.data(), IOV_MAX);
        ticks = ticker.count() - before;
    });
    grove::this_fiber::sleep_for(200ms);
    BOOST_TEST(!reader.ready());
    write_all(p.b, "hello", 5);
    settle(reader, 2s, "readv reader");
    BOOST_TEST(r == 5);
    BOOST_TEST(std::string(space.data(), 5) == "hello");
    BOOST_TEST(ticks >= 20, "other fibers ran " << ticks << " ticks of 5 ms in 200 ms");
}

// ---- file locks -------------------------------------------------------------------

namespace {

// A scratch file, removed at scope end.
struct TempFile {
    std::string path;
    TempFile() {
        char tmpl[] = "/tmp/grove-lock-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        BOOST_REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
    }
    ~TempFile() { ::unlink(path.c_str()); }
    int open() const {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        BOOST_REQUIRE(fd >= 0);
        return fd;
    }
};

// A forked child that takes a POSIX write lock on the file, says so, holds
// it for `hold`, then exits.
pid_t posix_lock_holder(const TempFile& file, std::chrono::milliseconds hold) {
    int ready[2];
    BOOST_REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        const int fd = ::open(file.path.c_str(), O_RDWR);
        struct flock fl{};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        const int r = ::fcntl(fd, F_SETLK, &fl);
        (void)!::write(ready[1], r == 0 ? "1" : "0", 1);
        struct timespec t{hold.count() / 1000, (hold.count() % 1000) * 1'000'000};
        syscall(SYS_nanosleep, &t, nullptr);
        ::_exit(r == 0 ? 0 : 1);
    }
    ::close(ready[1]);
    char c = '0';
    BOOST_REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    BOOST_REQUIRE(c == '1');
    return pid;
}

}  // namespace

BOOST_AUTO_TEST_CASE(flock_waiter_gets_the_lock_after_another_fiber_releases_it_while_others_run) {
    Ticker ticker;
    TempFile file;
    const int fa = file.open();
    const int fb = file.open();
    BOOST_REQUIRE(::flock(fa, LOCK_EX) == 0);
    int r = -1;
    long ticks = 0;
    Clock::time_point got_it;
    auto waiter = grove::spawn([&] {
        const long before = ticker.count();
        r = ::flock(fb, LOCK_EX);
        got_it = Clock::now();
        ticks = ticker.count() - before;
    });
    grove::this_fiber::sleep_for(300ms);
    BOOST_TEST(!waiter.ready());
    const auto released = Clock::now();
    BOOST_REQUIRE(::flock(fa, LOCK_UN) == 0);
    settle(waiter, 2s, "flock waiter");
    BOOST_TEST(r == 0);
    BOOST_TEST(ticks >= 40, "other fibers ran " << ticks << " ticks of 5 ms in ~300 ms");
    // Polled with a backoff capped at 25 ms.
    BOOST_TEST(ms_between(released, got_it) < 200);
    errno = 0;
    BOOST_TEST(::flock(fa, LOCK_EX | LOCK_NB) == -1);
    BOOST_TEST(errno == EWOULDBLOCK);
    ::close(fa);
    ::close(fb);
}

BOOST_AUTO_TEST_CASE(fcntl_setlkw_and_lockf_wait_for_a_child_process_lock_while_fibers_run) {
    TempFile file;
    for (int which = 0; which < 2; ++which) {
        Ticker ticker;
        const int fd = file.open();
        const pid_t child = posix_lock_holder(file, 300ms);
        int r = -1;
        int err = 0;
        long ticks = 0;
        long ms = 0;
        auto waiter = grove::spawn([&] {
            const long before = ticker.count();
            const auto t0 = Clock::now();
            if (which == 0) {
                struct flock fl{};
                fl.l_type = F_WRLCK;
                fl.l_whence = SEEK_SET;
                r = ::fcntl(fd, F_SETLKW, &fl);
            } else {
                r = ::lockf(fd, F_LOCK, 0);
            }
            err = errno;
            ms = ms_since(t0);
            ticks = ticker.count() - before;
        });
        settle(waiter, 3s, which == 0 ? "F_SETLKW waiter" : "lockf waiter");
        int status = -1;
        BOOST_TEST(::waitpid(child, &status, 0) == child);
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
        BOOST_TEST(r == 0, "call " << which << " errno " << err);
        BOOST_TEST(ms >= 200);
        BOOST_TEST(ticks >= 30, "call " << which << ": other fibers ran " << ticks << " ticks of 5 ms");
        ::close(fd);
    }
}

BOOST_AUTO_TEST_CASE(ofd_setlkw_between_two_fibers_waits_for_the_other_open_file) {
    TempFile file;
    const int fa = file.open();
    const int fb = file.open();
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    BOOST_REQUIRE(::fcntl(fa, F_OFD_SETLK, &fl) == 0);
    int r = -1;
    auto waiter = grove::spawn([&] {
        struct flock mine{};
        mine.l_type = F_WRLCK;
        mine.l_whence = SEEK_SET;
        r = ::fcntl(fb, F_OFD_SETLKW, &mine);
    });
    grove::this_fiber::sleep_for(150ms);
    BOOST_TEST(!waiter.ready());
    fl.l_type = F_UNLCK;
    BOOST_REQUIRE(::fcntl(fa, F_OFD_SETLK, &fl) == 0);
    settle(waiter, 2s, "OFD waiter");
    BOOST_TEST(r == 0);
    ::close(fa);
    ::close(fb);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_a_blocked_flock_gives_etimedout) {
    TempFile file;
    const int fa = file.open();
    const int fb = file.open();
    BOOST_REQUIRE(::flock(fa, LOCK_EX) == 0);
    const auto t = under_timeout(200ms, 3s, "flock under Timeout", [&] { return ::flock(fb, LOCK_EX); });
    BOOST_TEST(t.r == -1);
    BOOST_TEST(t.err == ETIMEDOUT);
    BOOST_TEST(t.ms >= 190);
    BOOST_TEST(t.ms < 1500);
    BOOST_TEST(t.raised);
    // Still held by fa: the timed-out call took nothing.
    errno = 0;
    BOOST_TEST(::flock(fb, LOCK_EX | LOCK_NB) == -1);
    BOOST_TEST(errno == EWOULDBLOCK);
    ::close(fa);
    ::close(fb);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_blocked_in_flock_or_setlkw_gives_ecanceled) {
    TempFile file;
    const int fa = file.open();
    const int fb = file.open();
    BOOST_REQUIRE(::flock(fa, LOCK_EX) == 0);
    struct flock held{};
    held.l_type = F_WRLCK;
    held.l_whence = SEEK_SET;
    BOOST_REQUIRE(::fcntl(fa, F_OFD_SETLK, &held) == 0);
    for (int which = 0; which < 2; ++which) {
        int r = 0;
        int err = 0;
        auto waiter = grove::spawn([&] {
            if (which == 0) {
                r = ::flock(fb, LOCK_EX);
            } else {
                struct flock fl{};
                fl.l_type = F_WRLCK;
                fl.l_whence = SEEK_SET;
                r = ::fcntl(fb, F_OFD_SETLKW, &fl);
            }
            err = errno;
            grove::this_fiber::yield();
        });
        grove::this_fiber::sleep_for(100ms);
        BOOST_REQUIRE(!waiter.ready());
        const auto t0 = Clock::now();
        waiter.kill();
        if (settle(waiter, 1s, "killed lock waiter")) {
            BOOST_TEST(ms_since(t0) < 200);
            BOOST_CHECK_THROW(waiter.join(), grove::FiberExit);
        }
        BOOST_TEST(r == -1);
        BOOST_TEST(err == ECANCELED);
    }
    ::close(fa);
    ::close(fb);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- waiting for signals and children: pause, sigsuspend, the sigwait family,
// waitid, epoll_pwait2 ------------------------------------------------------------

#include <sys/epoll.h>

namespace {

// Blocks `sig` in this thread for the scope, then takes whatever of it is
// still pending and restores the old mask.
struct BlockSignal {
    int sig;
    sigset_t old{};
    explicit BlockSignal(int s) : sig(s) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        BOOST_REQUIRE(::pthread_sigmask(SIG_BLOCK, &set, &old) == 0);
    }
    ~BlockSignal() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        const timespec zero{0, 0};
        while (::sigtimedwait(&set, nullptr, &zero) > 0) {
        }
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
};

volatile std::sig_atomic_t usr2_hits = 0;
void on_usr2(int) {
    usr2_hits = usr2_hits + 1;
}

// A SIGUSR2 handler (no SA_RESTART) for the scope.
struct Usr2Handler {
    struct sigaction old{};
    Usr2Handler() {
        usr2_hits = 0;
        struct sigaction sa{};
        sa.sa_handler = &on_usr2;
        sigemptyset(&sa.sa_mask);
        BOOST_REQUIRE(::sigaction(SIGUSR2, &sa, &old) == 0);
    }
    ~Usr2Handler() { ::sigaction(SIGUSR2, &old, nullptr); }
};

bool blocked_now(int sig) {
    sigset_t cur;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &cur);
    return sigismember(&cur, sig) == 1;
}

sigset_t only(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return set;
}

// A fiber that counts 10 ms grove sleeps `n` times, then runs `then`.
template <class Then>
grove::Fiber<void> count_then(long& counter, int n, Then then) {
    return grove::spawn([&counter, n, then] {
        for (int i = 0; i < n; ++i) {
            grove::this_fiber::sleep_for(10ms);
            ++counter;
        }
        then();
    });
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(shim_linked_signal_waits, Bounded)

BOOST_AUTO_TEST_CASE(sigwaitinfo_in_a_fiber_lets_another_fiber_count_then_send_the_signal) {
    BlockSignal blocked(SIGUSR1);
    const pthread_t self = ::pthread_self();
    long counter = 0;
    long counted_when_woken = -1;
    int r = 0;
    siginfo_t si{};
    auto waiter = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        r = ::sigwaitinfo(&set, &si);
        counted_when_woken = counter;
    });
    auto sender = count_then(counter, 10, [self] { ::pthread_kill(self, SIGUSR1); });
    settle(waiter, 3s, "sigwaitinfo");
    settle(sender, 1s, "sender");
    BOOST_TEST(r == SIGUSR1);
    BOOST_TEST(si.si_signo == SIGUSR1);
    BOOST_TEST(si.si_code == SI_USER);  // tkill, folded by libc as on a plain call
    BOOST_TEST(si.si_pid == ::getpid());
    BOOST_TEST(counted_when_woken == 10);
}

BOOST_AUTO_TEST_CASE(sigwait_in_a_fiber_takes_a_signal_sent_by_another_fiber) {
    BlockSignal blocked(SIGUSR1);
    const pthread_t self = ::pthread_self();
    long counter = 0;
    int r = -1;
    int sig = 0;
    auto waiter = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        r = ::sigwait(&set, &sig);
    });
    auto sender = count_then(counter, 5, [self] { ::pthread_kill(self, SIGUSR1); });
    settle(waiter, 3s, "sigwait");
    settle(sender, 1s, "sender");
    BOOST_TEST(r == 0);
    BOOST_TEST(sig == SIGUSR1);
    BOOST_TEST(counter == 5);
}

BOOST_AUTO_TEST_CASE(sigtimedwait_in_a_fiber_times_out_with_eagain_while_others_run) {
    BlockSignal blocked(SIGUSR1);
    Ticker ticker;
    int r = 0;
    int err = 0;
    long ms = 0;
    long ticks = 0;
    auto waiter = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        const timespec limit{0, 150'000'000};
        const long before = ticker.count();
        const auto t0 = Clock::now();
        r = ::sigtimedwait(&set, nullptr, &limit);
        err = errno;
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(waiter, 3s, "sigtimedwait");
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EAGAIN);
    BOOST_TEST(ms >= 145);
    BOOST_TEST(ms < 1000);
    BOOST_TEST(ticks >= 10);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_sigtimedwait_gives_eintr_then_fiber_exit) {
    BlockSignal blocked(SIGUSR1);
    int r = 0;
    int err = 0;
    bool after_suspension = false;
    auto f = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        const timespec limit{5, 0};
        r = ::sigtimedwait(&set, nullptr, &limit);
        err = errno;
        grove::this_fiber::yield();
        after_suspension = true;
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    const auto t0 = Clock::now();
    f.kill();
    if (settle(f, 1s, "killed sigtimedwait")) {
        BOOST_TEST(ms_since(t0) < 100);
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
    BOOST_TEST(!after_suspension);
    // The fiber took no signal: one sent now is still there to take.
    ::pthread_kill(::pthread_self(), SIGUSR1);
    const sigset_t set = only(SIGUSR1);
    const timespec zero{0, 0};
    BOOST_TEST(::sigtimedwait(&set, nullptr, &zero) == SIGUSR1);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_sigwait_returns_eintr) {
    BlockSignal blocked(SIGUSR1);
    int r = 0;
    auto f = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        int sig = 0;
        r = ::sigwait(&set, &sig);
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    f.kill();
    if (settle(f, 1s, "killed sigwait")) {
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == EINTR);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_sigwaitinfo_gives_eintr_then_timeout_error) {
    BlockSignal blocked(SIGUSR1);
    const sigset_t set = only(SIGUSR1);
    const auto t = under_timeout(100ms, 2s, "sigwaitinfo under Timeout", [&] { return ::sigwaitinfo(&set, nullptr); });
    BOOST_TEST(t.r == -1);
    BOOST_TEST(t.err == EINTR);
    BOOST_TEST(t.ms >= 95);
    BOOST_TEST(t.ms < 1000);
    BOOST_TEST(t.raised);
}

BOOST_AUTO_TEST_CASE(sigwaitinfo_in_a_fiber_gives_eintr_when_a_handler_outside_the_set_runs) {
    BlockSignal blocked(SIGUSR1);
    AlarmHandler handler(SA_RESTART);  // never restarted all the same
    int r = 0;
    int err = 0;
    long ms = 0;
    auto f = grove::spawn([&] {
        const sigset_t set = only(SIGUSR1);
        const auto t0 = Clock::now();
        r = ::sigwaitinfo(&set, nullptr);
        err = errno;
        ms = ms_since(t0);
    });
    AlarmHandler::fire_after(100ms);
    settle(f, 3s, "sigwaitinfo");
    BOOST_TEST(alarm_hits == 1);
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
    BOOST_TEST(ms < 1000);
}

BOOST_AUTO_TEST_CASE(pause_in_a_fiber_ends_when_another_fiber_sends_a_handled_signal) {
    Usr2Handler handler;
    Ticker ticker;
    int r = 0;
    int err = 0;
    long ticks = 0;
    auto waiter = grove::spawn([&] {
        const long before = ticker.count();
        r = ::pause();
        err = errno;
        ticks = ticker.count() - before;
    });
    auto sender = grove::spawn([] {
        grove::this_fiber::sleep_for(100ms);
        ::kill(::getpid(), SIGUSR2);
    });
    settle(waiter, 3s, "pause");
    settle(sender, 1s, "sender");
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
    BOOST_TEST(usr2_hits == 1);
    BOOST_TEST(ticks >= 10);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_pause_gives_eintr_then_fiber_exit) {
    int r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        r = ::pause();
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    f.kill();
    if (settle(f, 1s, "killed pause")) {
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
}

BOOST_AUTO_TEST_CASE(sigsuspend_in_a_fiber_unblocks_for_the_wait_and_restores_the_mask) {
    Usr2Handler handler;
    BlockSignal blocked(SIGUSR2);
    const pthread_t self = ::pthread_self();
    long counter = 0;
    int r = 0;
    int err = 0;
    long counted_when_woken = -1;
    auto waiter = grove::spawn([&] {
        sigset_t none;
        sigemptyset(&none);
        r = ::sigsuspend(&none);
        err = errno;
        counted_when_woken = counter;
    });
    auto sender = count_then(counter, 10, [self] { ::pthread_kill(self, SIGUSR2); });
    settle(waiter, 3s, "sigsuspend");
    settle(sender, 1s, "sender");
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
    BOOST_TEST(usr2_hits == 1);
    BOOST_TEST(counted_when_woken == 10);
    BOOST_TEST(blocked_now(SIGUSR2));
}

BOOST_AUTO_TEST_CASE(waitid_in_a_fiber_on_a_child_that_sleeps_lets_others_run) {
    for (const idtype_t type : {P_PID, P_ALL}) {
        pid_t pid = -1;
        auto forker = grove::spawn([&] {
            pid = ::fork();
            if (pid == 0) {
                ::usleep(100'000);
                std::_Exit(7);
            }
        });
        settle(forker, 1s, "forker");
        BOOST_REQUIRE(pid > 0);
        Ticker ticker;
        int r = -1;
        long ticks = 0;
        siginfo_t si{};
        auto waiter = grove::spawn([&] {
            const long before = ticker.count();
            r = ::waitid(type, type == P_PID ? static_cast<id_t>(pid) : 0, &si, WEXITED);
            ticks = ticker.count() - before;
        });
        settle(waiter, 3s, "waitid");
        BOOST_TEST(r == 0);
        BOOST_TEST(si.si_pid == pid);
        BOOST_TEST(si.si_code == CLD_EXITED);
        BOOST_TEST(si.si_status == 7);
        BOOST_TEST(ticks >= 8, "idtype " << type << ": " << ticks << " ticks");
    }
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_in_waitid_gives_eintr_and_leaves_the_child) {
    pid_t pid = -1;
    auto forker = grove::spawn([&] {
        pid = ::fork();
        if (pid == 0) {
            ::usleep(300'000);
            std::_Exit(3);
        }
    });
    settle(forker, 1s, "forker");
    BOOST_REQUIRE(pid > 0);
    int r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        siginfo_t si{};
        r = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED);
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    f.kill();
    if (settle(f, 1s, "killed waitid")) {
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);
    int status = 0;
    BOOST_TEST(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WEXITSTATUS(status) == 3);
}

BOOST_AUTO_TEST_CASE(epoll_pwait2_in_a_fiber_waits_for_a_pipe_another_fiber_writes) {
    Pair p = Pair::pipe();
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    BOOST_REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 99;
    BOOST_REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &ev) == 0);
    long counter = 0;
    long counted_when_woken = -1;
    int r = 0;
    epoll_event out[2]{};
    auto waiter = grove::spawn([&] {
        r = ::epoll_pwait2(ep, out, 2, nullptr, nullptr);
        counted_when_woken = counter;
    });
    const int wfd = p.b;
    auto writer = count_then(counter, 10, [wfd] { write_all(wfd, "x", 1); });
    settle(waiter, 3s, "epoll_pwait2");
    settle(writer, 1s, "writer");
    BOOST_TEST(r == 1);
    const std::uint32_t data = out[0].data.u32;
    const std::uint32_t events = out[0].events;
    BOOST_TEST(data == 99u);
    BOOST_TEST((events & EPOLLIN) != 0u);
    BOOST_TEST(counted_when_woken == 10);
    ::close(ep);
}

BOOST_AUTO_TEST_CASE(epoll_pwait2_timeout_returns_zero_while_others_run) {
    Pair p = Pair::pipe();
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    BOOST_REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    BOOST_REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &ev) == 0);
    Ticker ticker;
    int r = -1;
    long ms = 0;
    long ticks = 0;
    auto waiter = grove::spawn([&] {
        epoll_event out[2];
        const timespec limit{0, 150'000'000};
        const long before = ticker.count();
        const auto t0 = Clock::now();
        r = ::epoll_pwait2(ep, out, 2, &limit, nullptr);
        ms = ms_since(t0);
        ticks = ticker.count() - before;
    });
    settle(waiter, 3s, "epoll_pwait2");
    BOOST_TEST(r == 0);
    BOOST_TEST(ms >= 145);
    BOOST_TEST(ms < 1000);
    BOOST_TEST(ticks >= 10);
    ::close(ep);
}

BOOST_AUTO_TEST_CASE(kill_and_grove_timeout_of_a_fiber_in_epoll_pwait2_give_eintr) {
    Pair p = Pair::pipe();
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    BOOST_REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    BOOST_REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &ev) == 0);

    int r = 0;
    int err = 0;
    auto f = grove::spawn([&] {
        epoll_event out[2];
        r = ::epoll_pwait2(ep, out, 2, nullptr, nullptr);
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!f.ready());
    const auto t0 = Clock::now();
    f.kill();
    if (settle(f, 1s, "killed epoll_pwait2")) {
        BOOST_TEST(ms_since(t0) < 100);
        BOOST_CHECK_THROW(f.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == EINTR);

    const auto t = under_timeout(100ms, 2s, "epoll_pwait2 under Timeout", [&] {
        epoll_event out[2];
        const timespec five{5, 0};
        return ::epoll_pwait2(ep, out, 2, &five, nullptr);
    });
    BOOST_TEST(t.r == -1);
    BOOST_TEST(t.err == EINTR);
    BOOST_TEST(t.ms >= 95);
    BOOST_TEST(t.ms < 1000);
    BOOST_TEST(t.raised);
    ::close(ep);
}

// ---- streams: pipes (one RWF_NOWAIT call), FIFOs and ttys (readiness first) -----

namespace {

// The shim reads and writes a pipe with RWF_NOWAIT; a FIFO and a tty refuse
// that flag, and go readiness first. Every case below runs on all three.
enum class StreamKind { pipe, fifo, tty };
constexpr StreamKind kStreamKinds[] = {StreamKind::pipe, StreamKind::fifo, StreamKind::tty};

const char* name_of(StreamKind k) {
    switch (k) {
        case StreamKind::pipe:
            return "pipe";
        case StreamKind::fifo:
            return "fifo";
        case StreamKind::tty:
            return "tty";
    }
    return "?";
}

// A blocking stream: bytes written to `w` are read from `r`. The FIFO lives
// in a scratch directory; the tty is a pseudo-terminal in raw mode, written
// on its terminal side, read on its master side.
struct Stream {
    int r = -1;
    int w = -1;
    std::string dir;
    explicit Stream(StreamKind k) {
        switch (k) {
            case StreamKind::pipe: {
                int p[2];
                BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
                r = p[0];
                w = p[1];
                break;
            }
            case StreamKind::fifo: {
                char tmpl[] = "/tmp/grove-fifo-XXXXXX";
                BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
                dir = tmpl;
                const std::string path = dir + "/f";
                BOOST_REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
                r = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // opens at once
                BOOST_REQUIRE(r >= 0);
                w = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
                BOOST_REQUIRE(w >= 0);
                BOOST_REQUIRE(::fcntl(r, F_SETFL, ::fcntl(r, F_GETFL) & ~O_NONBLOCK) == 0);
                break;
            }
            case StreamKind::tty: {
                r = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
                BOOST_REQUIRE(r >= 0);
                BOOST_REQUIRE(::grantpt(r) == 0);
                BOOST_REQUIRE(::unlockpt(r) == 0);
                char name[64];
                BOOST_REQUIRE(::ptsname_r(r, name, sizeof name) == 0);
                w = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
                BOOST_REQUIRE(w >= 0);
                termios t{};
                BOOST_REQUIRE(::tcgetattr(w, &t) == 0);
                ::cfmakeraw(&t);
                BOOST_REQUIRE(::tcsetattr(w, TCSANOW, &t) == 0);
                break;
            }
        }
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    ~Stream() {
        if (r >= 0) {
            ::close(r);
        }
        if (w >= 0) {
            ::close(w);
        }
        if (!dir.empty()) {
            ::unlink((dir + "/f").c_str());
            ::rmdir(dir.c_str());
        }
    }
};

// How a case reads or writes: read/write, readv/writev, or preadv2/pwritev2
// at the current position without flags (which are readv/writev).
enum class Call { plain, vector, vector2 };
constexpr Call kCalls[] = {Call::plain, Call::vector, Call::vector2};

const char* read_name(Call c) {
    return c == Call::plain ? "read" : c == Call::vector ? "readv" : "preadv2";
}

const char* write_name(Call c) {
    return c == Call::plain ? "write" : c == Call::vector ? "writev" : "pwritev2";
}

std::vector<char> pattern(std::size_t n) {
    std::vector<char> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<char>((i * 7 + (i >> 12)) % 251);
    }
    return v;
}

// What is left in the stream: read with O_NONBLOCK set until EAGAIN.
std::string drain_now(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    BOOST_REQUIRE(::fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
    std::string out;
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::fcntl(fd, F_SETFL, fl);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_on_a_pipe_fifo_and_tty_wait_cooperatively_and_get_the_bytes) {
    for (const StreamKind k : kStreamKinds) {
        for (const Call call : kCalls) {
            const bool vectored = call != Call::plain;
            BOOST_TEST_CONTEXT(name_of(k) << " " << read_name(call)) {
                Stream s(k);
                Ticker ticker;
                ssize_t r = 0;
                char a[2] = {};
                char b[16] = {};
                auto reader = grove::spawn([&] {
                    struct iovec v[2] = {{a, sizeof a}, {b, sizeof b}};
                    if (call == Call::vector) {
                        r = ::readv(s.r, v, 2);
                    } else if (call == Call::vector2) {
                        r = ::preadv2(s.r, v, 2, -1, 0);
                    } else {
                        r = ::read(s.r, b, sizeof b);
                    }
                });
                grove::this_fiber::sleep_for(40ms);
                BOOST_TEST(!reader.ready());
                BOOST_TEST(ticker.count() >= 2);  // the blocked read left the thread to the others
                BOOST_TEST(::write(s.w, "hello", 5) == 5);
                settle(reader, 2s, "reader");
                BOOST_TEST(r == 5);
                const std::string got = vectored ? std::string(a, 2) + std::string(b, 3) : std::string(b, 5);
                BOOST_TEST(got == "hello");
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(writes_larger_than_the_buffer_of_a_pipe_fifo_and_tty_arrive_whole_and_in_order) {
    for (const StreamKind k : kStreamKinds) {
        for (const Call call : kCalls) {
            BOOST_TEST_CONTEXT(name_of(k) << " " << write_name(call)) {
                Stream s(k);
                const std::size_t size = k == StreamKind::tty ? (256u << 10) : (1u << 20);
                const std::vector<char> data = pattern(size);
                Ticker ticker;
                ssize_t w = 0;
                auto writer = grove::spawn([&] {
                    if (call != Call::plain) {
                        // Uneven pieces: the first a few bytes, the second not a page multiple.
                        const std::size_t one = 3;
                        const std::size_t two = 70001;
                        struct iovec v[3] = {{const_cast<char*>(data.data()), one},
                                             {const_cast<char*>(data.data()) + one, two},
                                             {const_cast<char*>(data.data()) + one + two, size - one - two}};
                        w = call == Call::vector ? ::writev(s.w, v, 3) : ::pwritev2(s.w, v, 3, -1, 0);
                    } else {
                        w = ::write(s.w, data.data(), size);
                    }
                });
                std::string got;
                auto read_it = [&] {
                    char buf[16384];
                    while (got.size() < size) {
                        const ssize_t n = ::read(s.r, buf, sizeof buf);
                        if (n <= 0) {
                            break;
                        }
                        got.append(buf, static_cast<std::size_t>(n));
                    }
                };
                if (k == StreamKind::tty) {
                    // A tty's POLLOUT promises room for one byte, and it is
                    // never made non-blocking (the shell shares it): a piece
                    // may wait in the kernel for the reader, so the reader
                    // here is another thread, as a terminal is another program.
                    std::thread reader(read_it);
                    settle(writer, 10s, "writer");
                    reader.join();
                } else {
                    auto reader = grove::spawn(read_it);
                    settle(writer, 10s, "writer");
                    settle(reader, 10s, "reader");
                }
                BOOST_TEST(w == static_cast<ssize_t>(size));
                BOOST_TEST(got.size() == size);
                BOOST_TEST((got == std::string(data.begin(), data.end())));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(kill_and_grove_timeout_of_a_fiber_reading_a_pipe_fifo_or_tty) {
    for (const StreamKind k : kStreamKinds) {
        for (const Call call : kCalls) {
            BOOST_TEST_CONTEXT(name_of(k) << " " << read_name(call)) {
                Stream s(k);
                ssize_t r = 0;
                int err = 0;
                auto read_one = [&] {
                    char c;
                    struct iovec v{&c, 1};
                    return call == Call::plain    ? ::read(s.r, &c, 1)
                           : call == Call::vector ? ::readv(s.r, &v, 1)
                                                  : ::preadv2(s.r, &v, 1, -1, 0);
                };
                auto f = grove::spawn([&] {
                    r = read_one();
                    err = errno;
                    grove::this_fiber::yield();
                });
                grove::this_fiber::sleep_for(30ms);
                BOOST_REQUIRE(!f.ready());
                f.kill();
                if (settle(f, 1s, "killed reader")) {
                    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
                }
                BOOST_TEST(r == -1);
                BOOST_TEST(err == ECANCELED);

                const auto t = under_timeout(100ms, 2s, "reader under Timeout", read_one);
                BOOST_TEST(t.r == -1);
                BOOST_TEST(t.err == ETIMEDOUT);
                BOOST_TEST(t.ms >= 95);
                BOOST_TEST(t.raised);

                // Nothing was taken from the stream by either: a byte written
                // now is the next one read.
                BOOST_TEST(::write(s.w, "z", 1) == 1);
                char c = 0;
                BOOST_TEST(::read(s.r, &c, 1) == 1);
                BOOST_TEST(c == 'z');
            }
        }
    }
}

// (Not a tty: a write there may wait in the kernel for the last piece.)
BOOST_AUTO_TEST_CASE(kill_and_grove_timeout_of_a_fiber_writing_a_full_pipe_or_fifo_report_what_was_written) {
    for (const StreamKind k : {StreamKind::pipe, StreamKind::fifo}) {
        for (const bool by_kill : {true, false}) {
            for (const Call call : kCalls) {
                BOOST_TEST_CONTEXT(name_of(k) << (by_kill ? " kill " : " Timeout ") << write_name(call)) {
                    Stream s(k);
                    const std::vector<char> data = pattern(4u << 20);
                    auto write_all = [&] {
                        struct iovec v{const_cast<char*>(data.data()), data.size()};
                        return call == Call::plain    ? ::write(s.w, data.data(), data.size())
                               : call == Call::vector ? ::writev(s.w, &v, 1)
                                                      : ::pwritev2(s.w, &v, 1, -1, 0);
                    };
                    ssize_t w = 0;
                    if (by_kill) {
                        auto f = grove::spawn([&] {
                            w = write_all();
                            grove::this_fiber::yield();
                        });
                        grove::this_fiber::sleep_for(50ms);
                        BOOST_REQUIRE(!f.ready());
                        f.kill();
                        if (settle(f, 1s, "killed writer")) {
                            BOOST_CHECK_THROW(f.join(), grove::FiberExit);
                        }
                    } else {
                        const auto t = under_timeout(100ms, 2s, "writer under Timeout", write_all);
                        BOOST_TEST(t.raised);
                        w = t.r;
                    }
                    // The buffer's worth went in before the wait: the call says
                    // so (as a blocking write cut short by a signal does), and
                    // those bytes, no more and no fewer, are in the stream.
                    BOOST_TEST(w > 0);
                    BOOST_TEST(w < static_cast<ssize_t>(data.size()));
                    const std::string left = drain_now(s.r);
                    BOOST_TEST(left.size() == static_cast<std::size_t>(std::max<ssize_t>(w, 0)));
                    BOOST_TEST((left == std::string(data.data(), left.size())));
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(eventfd_read_and_a_write_at_the_maximum_wait_cooperatively) {
    const int e = ::eventfd(0, EFD_CLOEXEC);
    BOOST_REQUIRE(e >= 0);
    Ticker ticker;
    // A read of the empty counter waits for another fiber's write.
    std::uint64_t got = 0;
    ssize_t r = 0;
    auto reader = grove::spawn([&] { r = ::read(e, &got, sizeof got); });
    grove::this_fiber::sleep_for(30ms);
    BOOST_TEST(!reader.ready());
    const std::uint64_t seven = 7;
    BOOST_TEST(::write(e, &seven, sizeof seven) == 8);
    settle(reader, 1s, "eventfd reader");
    BOOST_TEST(r == 8);
    BOOST_TEST(got == 7u);

    // A write that would take the counter past its maximum waits for a
    // read to empty it: at the maximum, readiness says so.
    const std::uint64_t most = 0xfffffffffffffffeull;
    BOOST_TEST(::write(e, &most, sizeof most) == 8);
    ssize_t w = 0;
    auto writer = grove::spawn([&] {
        const std::uint64_t one = 1;
        w = ::write(e, &one, sizeof one);
    });
    grove::this_fiber::sleep_for(30ms);
    BOOST_TEST(!writer.ready());
    const long ticks = ticker.count();
    BOOST_TEST(ticks >= 2);
    BOOST_TEST(::read(e, &got, sizeof got) == 8);
    BOOST_TEST(got == most);
    settle(writer, 1s, "eventfd writer");
    BOOST_TEST(w == 8);
    BOOST_TEST(::read(e, &got, sizeof got) == 8);
    BOOST_TEST(got == 1u);
    ::close(e);
}

BOOST_AUTO_TEST_CASE(a_signal_after_part_of_a_write_ends_it_with_the_count_even_with_sa_restart) {
    // The kernel restarts a call a handler with SA_RESTART interrupted only
    // if it had moved nothing; after that the call returns its count.
    for (const bool socket : {false, true}) {
        BOOST_TEST_CONTEXT((socket ? "socket" : "pipe")) {
            AlarmHandler handler(SA_RESTART);
            Pair p = socket ? Pair::sockets() : Pair::pipe();
            const std::vector<char> data = pattern(8u << 20);
            ssize_t w = 0;
            long ms = 0;
            auto writer = grove::spawn([&] {
                const auto t0 = Clock::now();
                w = ::write(p.b, data.data(), data.size());
                ms = ms_since(t0);
            });
            AlarmHandler::fire_after(100ms);
            grove::this_fiber::sleep_for(600ms);  // nobody reads before then
            const std::string got = drain_now(p.a);
            settle(writer, 2s, "writer");
            BOOST_TEST(alarm_hits == 1);
            BOOST_TEST(w > 0);
            BOOST_TEST(w < static_cast<ssize_t>(data.size()));
            BOOST_TEST(ms < 500, "the write returned after " << ms << " ms");
            BOOST_TEST(got.size() == static_cast<std::size_t>(std::max<ssize_t>(w, 0)));
            BOOST_TEST((got == std::string(data.data(), got.size())));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_write_of_more_than_the_kernel_moves_at_once_returns_what_one_write_moves) {
    // The kernel moves at most MAX_RW_COUNT (2 GiB less a page) in one
    // write, blocking or not; the shim's writev of 3 GiB says the same. The
    // 3 GiB are 1024 buffers of 3 MiB, all the same memory.
    constexpr int kBuffers = 1024;
    std::vector<char> piece(3u << 20, 'x');
    std::vector<struct iovec> iov(kBuffers, {piece.data(), piece.size()});
    auto drain_count = [](int fd) {
        std::vector<char> buf(1 << 20);
        std::size_t total = 0;
        for (;;) {
            const ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n <= 0) {
                return total;
            }
            total += static_cast<std::size_t>(n);
        }
    };
    // Pipes of 1 MiB: 2 GiB in fewer rounds.
    auto big_pipe = [] {
        Pair p = Pair::pipe();
        ::fcntl(p.b, F_SETPIPE_SZ, 1 << 20);
        return p;
    };
    ssize_t plain = 0;
    {
        Pair p = big_pipe();
        std::size_t drained = 0;
        std::thread reader([&] { drained = drain_count(p.a); });
        std::thread([&] { plain = ::writev(p.b, iov.data(), kBuffers); }).join();
        ::close(p.b);
        p.b = -1;
        reader.join();
        BOOST_TEST(static_cast<ssize_t>(drained) == plain);
    }
    Pair p = big_pipe();
    ssize_t w = 0;
    std::size_t drained = 0;
    auto writer = grove::spawn([&] {
        w = ::writev(p.b, iov.data(), kBuffers);
        ::close(p.b);
        p.b = -1;
    });
    auto reader = grove::spawn([&] { drained = drain_count(p.a); });
    settle(writer, 20s, "writer");
    settle(reader, 20s, "reader");
    BOOST_TEST(plain == 0x7ffff000);
    BOOST_TEST(w == plain);
    BOOST_TEST(static_cast<ssize_t>(drained) == w);
}

BOOST_AUTO_TEST_CASE(reads_of_dev_zero_in_a_fiber_are_whole_with_the_cpu_busy) {
    // A device may answer a read made with RWF_NOWAIT short (/dev/zero does
    // when the kernel would reschedule): the shim makes devices' reads
    // plainly. A spinning thread on the same CPU makes rescheduling likely.
    const int fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    cpu_set_t old;
    BOOST_REQUIRE(::sched_getaffinity(0, sizeof old, &old) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(::sched_getcpu(), &one);
    BOOST_REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
    std::atomic<bool> stop{false};
    std::thread hog([&] {  // made after the affinity change: the same CPU
        while (!stop.load(std::memory_order_relaxed)) {
        }
    });
    constexpr std::size_t kRead = 16u << 20;
    std::vector<char> buf(kRead);
    int whole = 0;
    auto reader = grove::spawn([&] {
        for (int i = 0; i < 20; ++i) {
            whole += ::read(fd, buf.data(), kRead) == static_cast<ssize_t>(kRead) ? 1 : 0;
        }
    });
    settle(reader, 20s, "reader");
    stop.store(true);
    hog.join();
    ::sched_setaffinity(0, sizeof old, &old);
    ::close(fd);
    BOOST_TEST(whole == 20);
}

BOOST_AUTO_TEST_SUITE_END()

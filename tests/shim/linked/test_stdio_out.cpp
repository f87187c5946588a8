// The shim, linked: stdio output (fprintf, fwrite, fputs, fflush, dprintf)
// onto a pipe or socket that is full parks the fiber, not the thread; a
// kill or grove::Timeout ends such a call with a short count or an error,
// and the FILE stays usable.
//
// Every case is bounded twice: a grove::Timeout in the main fiber, and a
// watchdog thread that ends the run, naming the case, if a call blocks the
// whole thread (then no fiber, Timeout included, can ever run again).
#define BOOST_TEST_MODULE shim_stdio_out
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <grove/fiber.hpp>
#include <grove/timeout.hpp>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

long ms_since(Clock::time_point t0) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// A plain thread (no hub, every signal blocked) that ends the process if a
// case outlives its limit.
class Watchdog {
public:
    static Watchdog& get() {
        static Watchdog* w = new Watchdog;  // never destroyed: its thread waits until exit
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
        std::thread([this] { run(); }).detach();
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
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
                std::fprintf(stderr, "watchdog: case '%s' still running past its limit: a stdio call blocked the whole "
                                     "thread\n", name_.c_str());
                std::_Exit(3);
            }
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    Clock::time_point deadline_ = Clock::time_point::max();
    std::string name_;
};

struct Setup {
    Setup() {
        Watchdog::get();
        ::signal(SIGPIPE, SIG_IGN);
    }
};

struct Bounded {
    Bounded() { Watchdog::get().arm(boost::unit_test::framework::current_test_case().p_name.get(), 40s); }
    ~Bounded() { Watchdog::get().disarm(); }
    grove::Timeout limit{30s};
};

// Waits up to `d` for f to end; if it has not, fails the case and kills it.
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

// Counts 5 ms grove sleeps: proof that the hub ran other fibers meanwhile.
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

// A deterministic byte pattern with a newline every 61 bytes.
std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = i % 61 == 60 ? '\n' : static_cast<char>('a' + (i * 7 + i / 4093 + seed) % 26);
    }
    return s;
}

// Reads fd to EOF with plain read (cooperative in a fiber).
std::string read_all(int fd) {
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0) {
            return r == 0 ? out : out + "<errno " + std::to_string(errno) + ">";
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
}

// Reads exactly n bytes from fd (or fewer at EOF).
std::string read_n(int fd, std::size_t n) {
    std::string out;
    char buf[8192];
    while (out.size() < n) {
        const ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
        if (r <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
}

struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int p[2];
        BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        r = p[0];
        w = p[1];
    }
    ~Pipe() {
        if (r >= 0) {
            ::close(r);
        }
        if (w >= 0) {
            ::close(w);
        }
    }
    // The write end as a FILE (which then owns it).
    FILE* writer() {
        FILE* f = ::fdopen(w, "w");
        BOOST_REQUIRE(f != nullptr);
        w = -1;
        return f;
    }
    // Fills the pipe to the brim; returns its capacity.
    std::size_t fill() {
        const int size = ::fcntl(w, F_GETPIPE_SZ);
        BOOST_REQUIRE(size > 0);
        const std::string junk(static_cast<std::size_t>(size), '#');
        BOOST_REQUIRE(::write(w, junk.data(), junk.size()) == size);
        return static_cast<std::size_t>(size);
    }
};

std::size_t capacity(int fd) {
    const int size = ::fcntl(fd, F_GETPIPE_SZ);
    BOOST_REQUIRE(size > 0);
    return static_cast<std::size_t>(size);
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(Setup);

BOOST_FIXTURE_TEST_SUITE(shim_stdio_out, Bounded)

BOOST_AUTO_TEST_CASE(fprintf_of_1mib_into_an_unread_pipe_parks_the_fiber_while_others_run) {
    Ticker ticker;
    Pipe p;
    FILE* f = p.writer();
    const std::string lines = pattern(61 * 11750);
    const std::string block = pattern(1024 * 1024 - lines.size(), 3);
    long ok = 0;
    int last = -2;
    bool done = false;
    auto writer = grove::spawn([&] {
        // Many calls, a line each, then one call of the rest.
        for (std::size_t i = 0; i < lines.size(); i += 61) {
            ok += std::fprintf(f, "%.*s", 61, lines.data() + i) == 61;
        }
        last = std::fprintf(f, "%s", block.c_str());
        BOOST_TEST(std::fflush(f) == 0);
        BOOST_TEST(std::fclose(f) == 0);
        done = true;
    });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(200ms);
    BOOST_TEST(!done);
    BOOST_TEST(ticker.count() - before >= 10, "ticks while the writer was parked: " << ticker.count() - before);
    std::string got;
    auto reader = grove::spawn([&] { got = read_all(p.r); });
    settle(writer, 10s, "writer");
    settle(reader, 10s, "reader");
    BOOST_TEST(ok == static_cast<long>(lines.size() / 61));
    BOOST_TEST(last == static_cast<int>(block.size()));
    BOOST_TEST(got.size() == lines.size() + block.size());
    BOOST_TEST((got == lines + block));
}

BOOST_AUTO_TEST_CASE(fwrite_and_fputs_over_a_socketpair_with_fdopen_park_until_the_peer_reads) {
    Ticker ticker;
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    const int small = 8192;
    BOOST_REQUIRE(::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    FILE* out = ::fdopen(sv[0], "w");
    FILE* in = ::fdopen(sv[1], "r");
    BOOST_REQUIRE(out != nullptr);
    BOOST_REQUIRE(in != nullptr);
    const std::string data = pattern(1024 * 1024, 5);
    std::size_t wrote = 0;
    int put = -2;
    bool done = false;
    auto writer = grove::spawn([&] {
        wrote = std::fwrite(data.data(), 1, data.size(), out);
        put = std::fputs("tail\n", out);
        BOOST_TEST(std::fclose(out) == 0);
        done = true;
    });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(150ms);
    BOOST_TEST(!done);
    BOOST_TEST(ticker.count() - before >= 10);
    std::string got(data.size() + 5, '\0');
    std::size_t n = 0;
    int end = 0;
    auto reader = grove::spawn([&] {
        n = std::fread(got.data(), 1, got.size(), in);
        end = std::fgetc(in);
    });
    settle(writer, 10s, "writer");
    settle(reader, 10s, "reader");
    BOOST_TEST(wrote == data.size());
    BOOST_TEST(put >= 0);
    BOOST_TEST(n == got.size());
    BOOST_TEST((got == data + "tail\n"));
    BOOST_TEST(end == EOF);
    std::fclose(in);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_parked_in_fwrite_gives_its_short_count_and_ecanceled) {
    Pipe p;
    FILE* f = p.writer();
    const std::string data = pattern(1024 * 1024, 1);
    std::size_t n = 99;
    int err = 0;
    bool after_suspension = false;
    auto writer = grove::spawn([&] {
        n = std::fwrite(data.data(), 1, data.size(), f);
        err = errno;
        grove::this_fiber::yield();  // the next C++ suspension: FiberExit
        after_suspension = true;
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!writer.ready());
    const auto t0 = Clock::now();
    writer.kill();
    if (settle(writer, 1s, "killed writer")) {
        BOOST_TEST(ms_since(t0) < 200);
        BOOST_CHECK_THROW(writer.join(), grove::FiberExit);
    }
    const std::size_t cap = capacity(p.r);
    BOOST_TEST(n == cap, "fwrite gave " << n << ", the pipe holds " << cap);
    BOOST_TEST(err == ECANCELED);
    BOOST_TEST(!after_suspension);
    BOOST_TEST(std::ferror(f) != 0);
    // What was written is the start of the data; after clearerr the FILE
    // writes again.
    const std::string head = read_n(p.r, n);
    BOOST_TEST((head == data.substr(0, n)));
    std::clearerr(f);
    BOOST_TEST(std::fputs("after\n", f) >= 0);
    BOOST_TEST(std::fflush(f) == 0);
    BOOST_TEST(read_n(p.r, 6) == "after\n");
    BOOST_TEST(std::fclose(f) == 0);
}

BOOST_AUTO_TEST_CASE(kill_of_a_fiber_parked_in_fprintf_to_a_full_pipe_gives_minus_one_ecanceled) {
    Pipe p;
    p.fill();
    FILE* f = p.writer();
    ::setvbuf(f, nullptr, _IONBF, 0);
    int r = 0;
    int err = 0;
    auto writer = grove::spawn([&] {
        r = std::fprintf(f, "%s %d\n", "never", 1);
        err = errno;
        grove::this_fiber::yield();
    });
    grove::this_fiber::sleep_for(50ms);
    BOOST_REQUIRE(!writer.ready());
    writer.kill();
    if (settle(writer, 1s, "killed fprintf")) {
        BOOST_CHECK_THROW(writer.join(), grove::FiberExit);
    }
    BOOST_TEST(r == -1);
    BOOST_TEST(err == ECANCELED);
    BOOST_TEST(std::ferror(f) != 0);
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_fflush_to_a_full_pipe_gives_eof_etimedout_then_timeout_error) {
    Pipe p;
    const std::size_t cap = p.fill();
    FILE* f = p.writer();
    int put = 0;
    int r = 0;
    int err = 0;
    long ms = 0;
    bool threw = false;
    auto writer = grove::spawn([&] {
        grove::Timeout limit(100ms);
        const auto t0 = Clock::now();
        put = std::fprintf(f, "buffered %d\n", 7);  // fits the buffer: no wait
        r = std::fflush(f);
        err = errno;
        ms = ms_since(t0);
        try {
            grove::this_fiber::yield();
        } catch (const grove::TimeoutError& e) {
            threw = e.source() == &limit;
        }
    });
    settle(writer, 3s, "fflush under Timeout");
    BOOST_TEST(put == 11);
    BOOST_TEST(r == EOF);
    BOOST_TEST(err == ETIMEDOUT);
    BOOST_TEST(ms >= 95);
    BOOST_TEST(ms < 1500);
    BOOST_TEST(threw);
    BOOST_TEST(std::ferror(f) != 0);
    // The FILE is usable after clearerr once the pipe has room.
    BOOST_TEST(read_n(p.r, cap).size() == cap);
    std::clearerr(f);
    BOOST_TEST(std::fprintf(f, "again %d\n", 8) == 8);
    BOOST_TEST(std::fflush(f) == 0);
    BOOST_TEST(read_n(p.r, 8) == "again 8\n");
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(grove_timeout_around_dprintf_to_a_full_pipe_gives_minus_one_etimedout) {
    Pipe p;
    p.fill();
    int r = 0;
    int err = 0;
    auto writer = grove::spawn([&] {
        grove::Timeout limit(100ms);
        r = ::dprintf(p.w, "%d\n", 42);
        err = errno;
        try {
            grove::this_fiber::yield();
        } catch (const grove::TimeoutError&) {
        }
    });
    settle(writer, 3s, "dprintf under Timeout");
    BOOST_TEST(r == -1);
    BOOST_TEST(err == ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(dprintf_of_a_large_text_to_a_slow_pipe_lets_other_fibers_run) {
    Ticker ticker;
    Pipe p;
    const std::string text = pattern(300 * 1024, 2);
    int r = 0;
    auto writer = grove::spawn([&] { r = ::dprintf(p.w, "%s|%d", text.c_str(), 9); });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(100ms);
    BOOST_TEST(!writer.ready());
    BOOST_TEST(ticker.count() - before >= 5);
    std::string got;
    auto reader = grove::spawn([&] { got = read_n(p.r, text.size() + 2); });
    settle(writer, 5s, "dprintf writer");
    settle(reader, 5s, "reader");
    BOOST_TEST(r == static_cast<int>(text.size() + 2));
    BOOST_TEST((got == text + "|9"));
}

BOOST_AUTO_TEST_CASE(two_fibers_writing_one_file_never_interleave_inside_a_call) {
    Pipe p;
    FILE* f = p.writer();
    // Lines longer than the buffer: each is written straight from the
    // caller's memory and parks part-way while the pipe is full.
    const std::string a = std::string(20000, 'A') + "\n";
    const std::string b = std::string(20000, 'B') + "\n";
    int bad = 0;
    auto put = [&](const std::string& line) {
        return grove::spawn([&] {
            for (int i = 0; i < 20; ++i) {
                bad += std::fputs(line.c_str(), f) < 0;
            }
        });
    };
    auto wa = put(a);
    auto wb = put(b);
    std::string got;
    auto reader = grove::spawn([&] {
        grove::this_fiber::sleep_for(50ms);
        got = read_n(p.r, 40 * a.size());
    });
    settle(wa, 10s, "writer a");
    settle(wb, 10s, "writer b");
    BOOST_TEST(std::fflush(f) == 0);
    settle(reader, 10s, "reader");
    BOOST_TEST(bad == 0);
    BOOST_REQUIRE(got.size() == 40 * a.size());
    int as = 0;
    int bs = 0;
    for (std::size_t i = 0; i < got.size(); i += a.size()) {
        const std::string line = got.substr(i, a.size());
        as += line == a;
        bs += line == b;
    }
    BOOST_TEST(as == 20);
    BOOST_TEST(bs == 20);
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(putc_macro_and_fputs_to_a_line_buffered_pipe_park_and_keep_every_byte) {
    Ticker ticker;
    Pipe p;
    FILE* f = p.writer();
    ::setvbuf(f, nullptr, _IOLBF, 0);
    const std::string data = pattern(256 * 1024, 4);
    long ok = 0;
    auto writer = grove::spawn([&] {
        for (std::size_t i = 0; i < data.size() / 2; ++i) {
            ok += putc_unlocked(data[i], f) == static_cast<unsigned char>(data[i]);
        }
        ok += std::fputs(data.c_str() + data.size() / 2, f) >= 0;
        ok += std::fflush(f) == 0;
    });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(100ms);
    BOOST_TEST(!writer.ready());
    BOOST_TEST(ticker.count() - before >= 5);
    std::string got;
    auto reader = grove::spawn([&] { got = read_n(p.r, data.size()); });
    settle(writer, 5s, "writer");
    settle(reader, 5s, "reader");
    BOOST_TEST(ok == static_cast<long>(data.size() / 2 + 2));
    BOOST_TEST((got == data));
    std::fclose(f);
}

BOOST_AUTO_TEST_CASE(fclose_writes_pending_output_cooperatively) {
    Ticker ticker;
    Pipe p;
    p.fill();
    FILE* f = p.writer();
    int put = 0;
    int closed = -2;
    auto writer = grove::spawn([&] {
        put = std::fputs("pending\n", f);
        closed = std::fclose(f);
    });
    const long before = ticker.count();
    grove::this_fiber::sleep_for(100ms);
    BOOST_TEST(!writer.ready());
    BOOST_TEST(ticker.count() - before >= 5);
    std::string got;
    auto reader = grove::spawn([&] { got = read_all(p.r); });
    settle(writer, 5s, "writer");
    settle(reader, 5s, "reader");
    BOOST_TEST(put >= 0);
    BOOST_TEST(closed == 0);
    BOOST_TEST(got.size() == capacity(p.r) + 8);
    BOOST_TEST(got.substr(got.size() - 8) == "pending\n");
}

BOOST_AUTO_TEST_SUITE_END()

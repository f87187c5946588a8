// bench_shim: plain libc calls that the shim turns into fiber operations,
// beside what they cost without it, in one process and one run.
//
//   sched_yield()  in two fibers: a fiber yield (the shim) against the
//                  system call itself (syscall(SYS_sched_yield), the shim
//                  cannot see it) and grove's own this_fiber::yield;
//   usleep(0)      in one fiber: what a zero sleep costs through the shim
//                  (POSIX lets it return at once; the shim yields);
//   poll(fd, 1, 0) in one fiber, on a pipe that stays empty: a lone
//                  fiber busy-polling (the shim yields after each empty
//                  look) against the system call without the shim.
//   pipe write+read in one fiber, 64 bytes, the pipe never full or empty:
//                  the shim's ready path (one call each, RWF_NOWAIT)
//                  against the two system calls without the shim;
//   1 MiB through a pipe in 64 KiB writes and reads, writer and reader
//                  fibers on one thread, against the same between two OS
//                  threads with the system calls alone (per MiB).
//
// Usage: bench_shim [--reps N]   (linked with the shim, no LD_PRELOAD needed)
#include <grove/grove.hpp>

#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double ns_per(Clock::time_point t0, long ops) {
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

double raw_sched_yield(long n) {
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        ::syscall(SYS_sched_yield);
    }
    return ns_per(t0, n);
}

template <class Yield>
double two_fibers(long n, Yield yield) {
    auto body = [n, yield] {
        for (long i = 0; i < n; ++i) {
            yield();
        }
    };
    const auto t0 = Clock::now();
    auto a = grove::spawn(body);
    auto b = grove::spawn(body);
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

double grove_yield(long n) {
    return two_fibers(n, [] { grove::this_fiber::yield(); });
}

double shim_sched_yield(long n) {
    return two_fibers(n, [] { ::sched_yield(); });
}

double shim_usleep0(long n) {
    return two_fibers(n, [] { ::usleep(0); });
}

// A lone fiber polling an empty pipe with a zero timeout, n times; `look`
// makes one poll.
template <class Look>
double lone_poll(long n, Look look) {
    int p[2];
    if (::pipe(p) != 0) {
        std::perror("pipe");
        std::exit(1);
    }
    double ns = 0;
    grove::spawn([&] {
        struct pollfd fd{p[0], POLLIN, 0};
        const auto t0 = Clock::now();
        for (long i = 0; i < n; ++i) {
            look(&fd);
        }
        ns = ns_per(t0, n);
    }).join();
    ::close(p[0]);
    ::close(p[1]);
    return ns;
}

// ppoll: the system call every architecture has (poll is made of it where
// there is no poll system call).
double raw_poll0(long n) {
    return lone_poll(n, [](struct pollfd* fd) {
        const struct timespec zero{};
        ::syscall(SYS_ppoll, fd, 1, &zero, nullptr, 0);
    });
}

double shim_poll0(long n) {
    return lone_poll(n, [](struct pollfd* fd) { ::poll(fd, 1, 0); });
}

struct PipeEnds {
    int r = -1;
    int w = -1;
    PipeEnds() {
        int p[2];
        if (::pipe(p) != 0) {
            std::perror("pipe");
            std::exit(1);
        }
        r = p[0];
        w = p[1];
    }
    ~PipeEnds() {
        ::close(r);
        ::close(w);
    }
};

// n rounds of a 64-byte write then read on one pipe, in one fiber.
template <class Write, class Read>
double pipe_round(long n, Write wr, Read rd) {
    PipeEnds p;
    double ns = 0;
    grove::spawn([&] {
        char buf[64] = {};
        const auto t0 = Clock::now();
        for (long i = 0; i < n; ++i) {
            wr(p.w, buf, sizeof buf);
            rd(p.r, buf, sizeof buf);
        }
        ns = ns_per(t0, n);
    }).join();
    return ns;
}

double raw_pipe_round(long n) {
    return pipe_round(
        n, [](int fd, const char* b, std::size_t k) { ::syscall(SYS_write, fd, b, k); },
        [](int fd, char* b, std::size_t k) { ::syscall(SYS_read, fd, b, k); });
}

double shim_pipe_round(long n) {
    return pipe_round(
        n, [](int fd, const char* b, std::size_t k) { (void)!::write(fd, b, k); },
        [](int fd, char* b, std::size_t k) { (void)!::read(fd, b, k); });
}

constexpr std::size_t kChunk = 64 << 10;

// Writes n MiB to fd in kChunk pieces with `wr`; reads them back with `rd`.
template <class Write>
void pump_out(int fd, long mib, Write wr) {
    static char buf[kChunk];
    for (long i = 0; i < mib * 16; ++i) {
        std::size_t done = 0;
        while (done < kChunk) {
            const long w = wr(fd, buf + done, kChunk - done);
            if (w <= 0) {
                std::exit(1);
            }
            done += static_cast<std::size_t>(w);
        }
    }
}

template <class Read>
void pump_in(int fd, long mib, Read rd) {
    static char buf[kChunk];
    long left = mib << 20;
    while (left > 0) {
        const long r = rd(fd, buf, kChunk);
        if (r <= 0) {
            std::exit(1);
        }
        left -= r;
    }
}

double shim_pipe_bulk(long mib) {
    PipeEnds p;
    const auto t0 = Clock::now();
    auto w = grove::spawn([&] { pump_out(p.w, mib, [](int fd, const char* b, std::size_t k) { return ::write(fd, b, k); }); });
    auto r = grove::spawn([&] { pump_in(p.r, mib, [](int fd, char* b, std::size_t k) { return ::read(fd, b, k); }); });
    w.join();
    r.join();
    return ns_per(t0, mib);
}

double threads_pipe_bulk(long mib) {
    PipeEnds p;
    const auto t0 = Clock::now();
    std::thread w([&] {
        pump_out(p.w, mib, [](int fd, const char* b, std::size_t k) { return ::syscall(SYS_write, fd, b, k); });
    });
    std::thread r([&] { pump_in(p.r, mib, [](int fd, char* b, std::size_t k) { return ::syscall(SYS_read, fd, b, k); }); });
    w.join();
    r.join();
    return ns_per(t0, mib);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

struct Figure {
    const char* label;
    long iterations;
    double (*run)(long);
    std::vector<double> samples{};
};

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
            return 2;
        }
    }
    std::vector<Figure> figures = {
        {"`sched_yield` system call, no shim (reference)", 200'000, raw_sched_yield},
        {"grove `this_fiber::yield` (2 fibers), per switch", 2'000'000, grove_yield},
        {"plain `sched_yield()` through the shim (2 fibers)", 2'000'000, shim_sched_yield},
        {"plain `usleep(0)` through the shim (2 fibers)", 2'000'000, shim_usleep0},
        {"`ppoll` system call, zero timeout (reference)", 500'000, raw_poll0},
        {"plain `poll(fd, 1, 0)` through the shim (1 fiber)", 500'000, shim_poll0},
        {"pipe write+read of 64 B, system calls (reference)", 200'000, raw_pipe_round},
        {"pipe plain write+read of 64 B through the shim", 200'000, shim_pipe_round},
        {"1 MiB through a pipe, 2 OS threads, syscalls (ref.)", 200, threads_pipe_bulk},
        {"1 MiB through a pipe, 2 fibers, plain calls, shim", 200, shim_pipe_bulk},
    };
    for (auto& f : figures) {
        f.run(f.iterations / 10);
    }
    for (int r = 0; r < reps; ++r) {
        for (auto& f : figures) {
            f.samples.push_back(f.run(f.iterations));
        }
    }
    const double base = median(figures[1].samples);
    std::printf("grove shim micro benchmarks: median of %d runs (ns; ratio = median / grove yield median)\n\n", reps);
    std::printf("| %-52s | %9s | %9s | %9s | %9s |\n", "figure", "median ns", "min", "max", "vs yield");
    std::printf("|------------------------------------------------------|----------:|----------:|----------:|----------:|\n");
    for (const auto& f : figures) {
        const auto [lo, hi] = std::minmax_element(f.samples.begin(), f.samples.end());
        const double m = median(f.samples);
        std::printf("| %-52s | %9.1f | %9.1f | %9.1f | %8.1fx |\n", f.label, m, *lo, *hi, m / base);
    }
    return 0;
}

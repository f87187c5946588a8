// bench_micro: the cost of grove's scheduling primitives, against the raw
// Boost.Context switch they are built on and against Boost.Fiber, measured
// in one process and one run so the figures compare (this VM is noisy:
// compare only figures from the same run).
//
// Each figure runs `--reps` times (default 7), interleaved (rep 1 of every
// figure, then rep 2...) so drift in host load spreads over all of them;
// the table shows median, min and max, and the median over the raw jump's.
//
// Usage: bench_micro [--reps N] [--scale F] [NAME_SUBSTRING...]
//   --scale multiplies every iteration count (0.01 for a quick look under
//   callgrind); names select figures, e.g. `bench_micro spawn`.
// Pin it for steadier figures: taskset -c 1 build/tests/bench/bench_micro
#include <grove/grove.hpp>

#include <boost/context/detail/fcontext.hpp>
#ifndef GROVE_BENCH_NO_BOOST_FIBER
#include <boost/fiber/all.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ns_per(Clock::time_point t0, long ops) {
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

// ---------------------------------------------------------------- raw --
namespace bctx = boost::context::detail;

void bounce(bctx::transfer_t t) {
    for (;;) {
        t = bctx::jump_fcontext(t.fctx, nullptr);
    }
}

// One jump_fcontext, one direction (as peers/micro/ctx_switch.cpp).
double raw_jump(long n) {
    static bctx::fcontext_t f = [] {
        constexpr std::size_t kSize = 64 * 1024;
        // Leaked on purpose: bounce never returns.
        char* stack = static_cast<char*>(std::malloc(kSize));
        return bctx::make_fcontext(stack + kSize, kSize, bounce);
    }();
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        f = bctx::jump_fcontext(f, nullptr).fctx;
    }
    return ns_per(t0, 2 * n);
}

// A clock read, which every wait with a deadline makes (deadline_after).
double clock_read(long n) {
    std::int64_t sum = 0;
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        sum += Clock::now().time_since_epoch().count();
    }
    volatile std::int64_t sink = sum;
    (void)sink;
    return ns_per(t0, n);
}

// -------------------------------------------------------------- grove --
// this_fiber::yield between two fibers; ns per yield (one switch).
double grove_yield(long n) {
    auto yielder = [n] {
        for (long i = 0; i < n; ++i) {
            grove::this_fiber::yield();
        }
    };
    const auto t0 = Clock::now();
    auto a = grove::spawn(yielder);
    auto b = grove::spawn(yielder);
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

// spawn an empty fiber and join it, one at a time; stacks come from the
// hub's pool (warm after the first round).
double grove_spawn_join(long n) {
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        grove::spawn([] {}).join();
    }
    return ns_per(t0, n);
}

// Two fibers, two Events: each sets the other's and waits on its own.
// ns per hand-off (half a round trip). With a deadline, every wait that
// parks also inserts a timer and cancels it on wake-up.
template <bool kDeadline>
double event_pingpong(long n) {
    grove::Event ping;
    grove::Event pong;
    auto wait = [](grove::Event& e) {
        if constexpr (kDeadline) {
            e.wait(1h);
        } else {
            e.wait();
        }
        e.clear();
    };
    const auto t0 = Clock::now();
    auto a = grove::spawn([&] {
        for (long i = 0; i < n; ++i) {
            ping.set();
            wait(pong);
        }
    });
    auto b = grove::spawn([&] {
        for (long i = 0; i < n; ++i) {
            wait(ping);
            pong.set();
        }
    });
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

// Unbuffered Channel<int> both ways; ns per hand-off.
double channel_pingpong(long n) {
    grove::Channel<int> there;
    grove::Channel<int> back;
    const auto t0 = Clock::now();
    auto a = grove::spawn([&] {
        for (long i = 0; i < n; ++i) {
            there.send(static_cast<int>(i));
            back.recv();
        }
    });
    auto b = grove::spawn([&] {
        for (long i = 0; i < n; ++i) {
            auto v = there.recv();
            back.send(*v);
        }
    });
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

// Two fibers contend for one Mutex, each holding it across a yield, so
// every lock() finds it taken and every unlock() wakes the other; ns per
// lock+yield+unlock cycle.
double mutex_handoff(long n) {
    grove::Mutex m;
    auto worker = [&] {
        for (long i = 0; i < n; ++i) {
            m.lock();
            grove::this_fiber::yield();
            m.unlock();
        }
    };
    const auto t0 = Clock::now();
    auto a = grove::spawn(worker);
    auto b = grove::spawn(worker);
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

// ------------------------------------------------------- Boost.Fiber --
#ifndef GROVE_BENCH_NO_BOOST_FIBER
double bfiber_yield(long n) {
    auto yielder = [n] {
        for (long i = 0; i < n; ++i) {
            boost::this_fiber::yield();
        }
    };
    const auto t0 = Clock::now();
    boost::fibers::fiber a(yielder);
    boost::fibers::fiber b(yielder);
    a.join();
    b.join();
    return ns_per(t0, 2 * n);
}

double bfiber_spawn_join(long n) {
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        boost::fibers::fiber f([] {});
        f.join();
    }
    return ns_per(t0, n);
}
#endif

// ------------------------------------------------------------ driver --
struct Figure {
    const char* name;
    const char* label;
    long iterations;  // at scale 1; each run takes roughly 0.05-0.3 s
    double (*run)(long);
    std::vector<double> samples{};
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

void print_row(const char* label, double med, double lo, double hi, double base) {
    std::printf("| %-52s | %9.1f | %9.1f | %9.1f | %7.1fx |\n", label, med, lo, hi, med / base);
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    double scale = 1.0;
    std::vector<std::string> filters;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = std::atof(argv[++i]);
        } else if (argv[i][0] == '-') {
            std::fprintf(stderr, "usage: %s [--reps N] [--scale F] [NAME_SUBSTRING...]\n", argv[0]);
            return 2;
        } else {
            filters.emplace_back(argv[i]);
        }
    }

    std::vector<Figure> figures = {
        {"raw_jump", "raw `jump_fcontext` switch (one direction)", 10'000'000, raw_jump},
        {"grove_yield", "grove `this_fiber::yield` (2 fibers), per switch", 2'000'000, grove_yield},
        {"grove_spawn_join", "grove `spawn([]{}).join()`, warm stack pool", 1'000'000, grove_spawn_join},
        {"event_pingpong", "grove Event ping-pong, per hand-off", 1'000'000, event_pingpong<false>},
        {"event_deadline_pingpong", "grove Event ping-pong, `wait(1h)`, per hand-off", 1'000'000,
         event_pingpong<true>},
        {"clock_read", "`steady_clock::now()` (reference for the timed wait)", 2'000'000, clock_read},
        {"channel_pingpong", "grove Channel<int>(0) ping-pong, per hand-off", 1'000'000, channel_pingpong},
        {"mutex_handoff", "grove Mutex, 2 fibers lock+yield+unlock, per cycle", 1'000'000, mutex_handoff},
#ifndef GROVE_BENCH_NO_BOOST_FIBER
        {"bfiber_yield", "Boost.Fiber `this_fiber::yield` (2 fibers)", 1'000'000, bfiber_yield},
        {"bfiber_spawn_join", "Boost.Fiber spawn + join", 200'000, bfiber_spawn_join},
#endif
    };
    auto selected = [&](const Figure& f) {
        if (f.run == raw_jump) {
            return true;  // the baseline of the ratio column
        }
        if (filters.empty()) {
            return true;
        }
        return std::any_of(filters.begin(), filters.end(),
                           [&](const std::string& s) { return std::strstr(f.name, s.c_str()) != nullptr; });
    };
    std::erase_if(figures, [&](const Figure& f) { return !selected(f); });
    for (auto& f : figures) {
        f.iterations = std::max(1L, static_cast<long>(static_cast<double>(f.iterations) * scale));
    }

    // Warm-up: fault in stacks, fill the stack pool, set up Boost.Fiber's
    // scheduler, settle the CPU clock.
    for (auto& f : figures) {
        f.run(std::max(1L, f.iterations / 10));
    }
    for (int r = 0; r < reps; ++r) {
        for (auto& f : figures) {
            f.samples.push_back(f.run(f.iterations));
        }
    }

    const double base = median(figures.front().samples);
    std::printf("grove micro benchmarks: median of %d runs (ns; ratio = median / raw jump median)\n\n", reps);
    std::printf("| %-52s | %9s | %9s | %9s | %8s |\n", "figure", "median ns", "min", "max", "vs jump");
    std::printf("|%s|%s|%s|%s|%s|\n", std::string(54, '-').c_str(), std::string(10, '-').append(":").c_str(),
                std::string(10, '-').append(":").c_str(), std::string(10, '-').append(":").c_str(),
                std::string(9, '-').append(":").c_str());
    const Figure* plain = nullptr;
    const Figure* timed = nullptr;
    for (const auto& f : figures) {
        const auto [lo, hi] = std::minmax_element(f.samples.begin(), f.samples.end());
        print_row(f.label, median(f.samples), *lo, *hi, base);
        if (f.run == event_pingpong<false>) {
            plain = &f;
        } else if (f.run == event_pingpong<true>) {
            timed = &f;
        }
    }
    if (plain != nullptr && timed != nullptr) {
        // Per run, timed minus untimed: one timer insert + cancel per hand-off.
        std::vector<double> d;
        for (std::size_t i = 0; i < plain->samples.size(); ++i) {
            d.push_back(timed->samples[i] - plain->samples[i]);
        }
        const auto [lo, hi] = std::minmax_element(d.begin(), d.end());
        print_row("timer insert+cancel (the two Event rows' difference)", median(d), *lo, *hi, base);
    }
    return 0;
}

// bench_scale: how many fibers one hub holds parked, and what each costs.
//
// Spawns N fibers that each sleep (grove::this_fiber::sleep_for) for a
// while, waits until every one of them is parked, reads the process's
// memory from /proc/self/status, then joins them all. Prints one line of
// key=value figures:
//
//   fibers=N spawn_per_s=... park_per_s=... rss_kb=... rss_per_fiber_b=...
//   pte_kb=... pte_per_fiber_b=... maps=... total_s=... warm_park_per_s=...
//
// spawn_per_s counts the spawn calls alone (a spawned fiber is queued);
// park_per_s the time from the first spawn until all N have run and parked
// (each takes a stack and runs to its sleep). rss_per_fiber_b is the growth
// of VmRSS over the baseline taken before the first spawn, divided by N;
// page tables (VmPTE) are reported apart; maps is the number of lines of
// /proc/self/maps (mappings) while all are parked. warm_park_per_s: a
// second round of N on the stacks the first left pooled.
//
// Usage: bench_scale [--fibers N] [--sleep-ms MS]
#include <grove/grove.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

long status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::size_t n = std::strlen(key);
    while (std::getline(in, line)) {
        if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') {
            return std::strtol(line.c_str() + n + 1, nullptr, 10);
        }
    }
    return -1;
}

long count_maps() {
    std::ifstream in("/proc/self/maps");
    std::string line;
    long n = 0;
    while (std::getline(in, line)) {
        ++n;
    }
    return n;
}

double secs(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "bench_scale: %s\nusage: bench_scale [--fibers N] [--sleep-ms MS]\n", why);
    std::exit(2);
}

long parse_count(const char* s) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end == s || *end != '\0' || v <= 0) {
        usage("expected a positive number");
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    long fibers = 100000;
    long sleep_ms = 2000;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--fibers" && i + 1 < argc) {
            fibers = parse_count(argv[++i]);
        } else if (a == "--sleep-ms" && i + 1 < argc) {
            sleep_ms = parse_count(argv[++i]);
        } else {
            usage(("unknown argument " + a).c_str());
        }
    }

    std::vector<grove::Fiber<void>> handles;
    handles.reserve(static_cast<std::size_t>(fibers));
    // Touch the handle array now so it is part of the baseline, not of the
    // per-fiber figure.
    handles.resize(static_cast<std::size_t>(fibers));
    handles.clear();
    const long rss0 = status_kb("VmRSS");
    const long pte0 = status_kb("VmPTE");

    long parked = 0;
    const auto d = std::chrono::milliseconds(sleep_ms);
    const auto t0 = Clock::now();
    for (long i = 0; i < fibers; ++i) {
        handles.push_back(grove::spawn([&parked, d] {
            ++parked;
            grove::this_fiber::sleep_for(d);
        }));
    }
    const auto t1 = Clock::now();
    while (parked < fibers) {
        grove::this_fiber::yield();
    }
    const auto t2 = Clock::now();
    const long rss = status_kb("VmRSS");
    const long pte = status_kb("VmPTE");
    const long maps = count_maps();
    grove::join_all(handles);
    const auto t3 = Clock::now();

    // Round two: the same again on the stacks the first round left pooled.
    handles.clear();
    parked = 0;
    const auto w0 = Clock::now();
    for (long i = 0; i < fibers; ++i) {
        handles.push_back(grove::spawn([&parked] {
            ++parked;
            grove::this_fiber::sleep_for(std::chrono::milliseconds(1));
        }));
    }
    while (parked < fibers) {
        grove::this_fiber::yield();
    }
    const auto w1 = Clock::now();
    grove::join_all(handles);

    const double per_fiber = static_cast<double>(rss - rss0) * 1024.0 / static_cast<double>(fibers);
    std::printf(
        "fibers=%ld spawn_per_s=%.0f park_per_s=%.0f rss_kb=%ld rss_per_fiber_b=%.0f pte_kb=%ld "
        "pte_per_fiber_b=%.0f maps=%ld total_s=%.3f warm_park_per_s=%.0f\n",
        fibers, static_cast<double>(fibers) / secs(t0, t1), static_cast<double>(fibers) / secs(t0, t2), rss,
        per_fiber, pte, static_cast<double>(pte - pte0) * 1024.0 / static_cast<double>(fibers), maps,
        secs(t0, t3), static_cast<double>(fibers) / secs(w0, w1));
    return 0;
}

// bench_startup: what preloading the shim adds to starting a program that
// never uses fibers, against the same program started bare and with an
// empty library preloaded (the price of preloading anything at all).
//
//   bench_startup [--runs N] --preload LIB --empty LIB [--grove-run PATH] -- PROG [ARGS...]
//
// Each round starts PROG once in every configuration, in turn, so a drift
// of the machine's speed hits them all alike; the figures are medians over
// the rounds, the ratios medians of the per-round ratios to "bare" and to
// "empty". Each start is posix_spawn + wait4: wall time from before the
// spawn to the reaped child, the child's minor page faults and CPU time from
// its rusage. PROG's output goes to /dev/null.
//
// Configurations:
//   bare        PROG
//   empty       LD_PRELOAD=<empty library> PROG
//   preload     LD_PRELOAD=<libgrove_shim_preload.so> PROG (native threads)
//   green       the same with grove-run's settings (GROVE_THREADS=green),
//               without grove-run's own exec
//   grove-run   grove-run PROG (its exec included), if --grove-run is given
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct Config {
    std::string name;
    std::vector<std::string> env;   // added to (or replacing in) the environment
    std::vector<std::string> argv;  // the command
};

struct Sample {
    double wall_us;
    double cpu_us;
    double faults;
};

double now_us() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// The environment with `extra` set (NAME=value entries replace NAME).
std::vector<std::string> environment(const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        if (name.rfind("LD_PRELOAD", 0) == 0 || name.rfind("GROVE_", 0) == 0) {
            continue;  // every configuration says its own
        }
        out.push_back(entry);
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

std::vector<char*> pointers(std::vector<std::string>& v) {
    std::vector<char*> p;
    for (auto& s : v) {
        p.push_back(s.data());
    }
    p.push_back(nullptr);
    return p;
}

Sample run_once(Config& c, std::vector<std::string>& env) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    auto argv = pointers(c.argv);
    auto envp = pointers(env);
    const double t0 = now_us();
    pid_t pid;
    const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        std::fprintf(stderr, "bench_startup: cannot start %s: %s\n", argv[0], std::strerror(rc));
        std::exit(2);
    }
    int status = 0;
    struct rusage ru{};
    if (::wait4(pid, &status, 0, &ru) != pid) {
        std::perror("bench_startup: wait4");
        std::exit(2);
    }
    const double t1 = now_us();
    if (!WIFEXITED(status)) {
        std::fprintf(stderr, "bench_startup: %s (%s) did not exit normally\n", argv[0], c.name.c_str());
        std::exit(2);
    }
    const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    return {t1 - t0, cpu, static_cast<double>(ru.ru_minflt)};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: bench_startup [--runs N] --preload LIB --empty LIB [--grove-run PATH] -- PROG [ARGS...]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 200;
    std::string preload, empty, grove_run;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (i + 1 >= argc) {
            usage();
        }
        if (a == "--runs") {
            runs = std::atoi(argv[++i]);
        } else if (a == "--preload") {
            preload = argv[++i];
        } else if (a == "--empty") {
            empty = argv[++i];
        } else if (a == "--grove-run") {
            grove_run = argv[++i];
        } else {
            usage();
        }
    }
    if (i >= argc || preload.empty() || empty.empty() || runs < 5) {
        usage();
    }
    std::vector<std::string> prog(argv + i, argv + argc);
    if (prog[0].find('/') == std::string::npos) {
        std::fprintf(stderr, "bench_startup: give PROG as a path\n");
        return 2;
    }

    std::vector<Config> configs = {
        {"bare", {}, prog},
        {"empty", {"LD_PRELOAD=" + empty}, prog},
        {"preload", {"LD_PRELOAD=" + preload}, prog},
        {"green", {"LD_PRELOAD=" + preload, "GROVE_THREADS=green"}, prog},
    };
    if (!grove_run.empty()) {
        std::vector<std::string> cmd = {grove_run, "--"};
        cmd.insert(cmd.end(), prog.begin(), prog.end());
        configs.push_back({"grove-run", {}, cmd});
    }
    std::vector<std::vector<std::string>> envs;
    for (auto& c : configs) {
        envs.push_back(environment(c.env));
    }

    for (std::size_t k = 0; k < configs.size(); ++k) {  // warm the page cache
        run_once(configs[k], envs[k]);
    }
    std::vector<std::vector<Sample>> samples(configs.size());
    for (int r = 0; r < runs; ++r) {
        // Rotate the order each round: no configuration always runs first.
        for (std::size_t j = 0; j < configs.size(); ++j) {
            const std::size_t k = (j + static_cast<std::size_t>(r)) % configs.size();
            samples[k].push_back(run_once(configs[k], envs[k]));
        }
    }

    std::string shown;
    for (const auto& s : prog) {
        shown += (shown.empty() ? "" : " ") + s;
    }
    std::printf("Start-up of `%s`, %d rounds (medians; ratios are medians of per-round ratios)\n\n", shown.c_str(),
                runs);
    std::printf("| configuration | wall µs | CPU µs | minor faults | wall / bare | wall / empty | CPU / bare |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t k = 0; k < configs.size(); ++k) {
        std::vector<double> wall, cpu, faults, vs_bare, vs_empty, cpu_vs_bare;
        for (int r = 0; r < runs; ++r) {
            const Sample& s = samples[k][static_cast<std::size_t>(r)];
            wall.push_back(s.wall_us);
            cpu.push_back(s.cpu_us);
            faults.push_back(s.faults);
            vs_bare.push_back(s.wall_us / samples[0][static_cast<std::size_t>(r)].wall_us);
            vs_empty.push_back(s.wall_us / samples[1][static_cast<std::size_t>(r)].wall_us);
            const double base_cpu = samples[0][static_cast<std::size_t>(r)].cpu_us;
            if (base_cpu > 0) {
                cpu_vs_bare.push_back(s.cpu_us / base_cpu);
            }
        }
        std::printf("| %s | %.0f | %.0f | %.0f | %.3f | %.3f | %s |\n", configs[k].name.c_str(), median(wall),
                    median(cpu), median(faults), median(vs_bare), median(vs_empty),
                    cpu_vs_bare.size() * 2 > static_cast<std::size_t>(runs)
                        ? std::to_string(median(cpu_vs_bare)).substr(0, 5).c_str()
                        : "n/a");
    }
    return 0;
}

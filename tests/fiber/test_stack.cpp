#define BOOST_TEST_MODULE stack
#include <boost/test/unit_test.hpp>

#include <grove/fiber.hpp>
#include <grove/sync.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Uses about `depth` KiB of stack; the volatile frame cannot be optimised
// away and the addition after the call keeps it from being a tail call.
[[gnu::noinline]] int use_stack_kib(int depth) {
    volatile char frame[1024];
    frame[0] = static_cast<char>(depth);
    frame[sizeof frame - 1] = static_cast<char>(depth);
    if (depth <= 1) {
        return frame[0];
    }
    return use_stack_kib(depth - 1) + frame[sizeof frame - 1];
}

// Recurses until the stack runs out (the bound is far beyond any stack).
[[gnu::noinline]] long overflow(long n) {
    volatile char frame[512];
    frame[0] = static_cast<char>(n);
    if (n > (1L << 40)) {
        return frame[0];
    }
    return overflow(n + 1) + frame[0];
}

struct ChildResult {
    int status = 0;       // waitpid status
    std::string err;      // what the child wrote to stderr
    std::string out;      // what the child wrote to its report pipe
};

// True if `number` occurs in `text` as a whole number (not inside a longer
// run of digits), so id 1 is not found in "256".
bool contains_number(const std::string& text, const std::string& number) {
    for (std::size_t pos = text.find(number); pos != std::string::npos; pos = text.find(number, pos + 1)) {
        const bool digit_before = pos > 0 && std::isdigit(static_cast<unsigned char>(text[pos - 1]));
        const std::size_t end = pos + number.size();
        const bool digit_after = end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]));
        if (!digit_before && !digit_after) {
            return true;
        }
    }
    return false;
}

std::string drain(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    return out;
}

// Runs body(report_fd) in a forked child with stderr captured; the child
// exits with body's return value. No Boost.Test macro runs in the child.
ChildResult run_in_child(const std::function<int(int)>& body) {
    ChildResult r;
    int err_pipe[2];
    int out_pipe[2];
    BOOST_REQUIRE_EQUAL(::pipe(err_pipe), 0);
    BOOST_REQUIRE_EQUAL(::pipe(out_pipe), 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(err_pipe[0]);
        ::close(out_pipe[0]);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::close(err_pipe[1]);
        int code = 0;
        try {
            code = body(out_pipe[1]);
        } catch (...) {
            code = 99;
        }
        std::fflush(stderr);
        ::_exit(code);
    }
    ::close(err_pipe[1]);
    ::close(out_pipe[1]);
    r.out = drain(out_pipe[0]);
    r.err = drain(err_pipe[0]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &r.status, 0), pid);
    return r;
}

void report(int fd, const std::string& s) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    (void)n;
}

std::string describe(int status) {
    if (WIFEXITED(status)) {
        return "exit " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return std::string("signal ") + strsignal(WTERMSIG(status));
    }
    return "status " + std::to_string(status);
}

bool died_of_overflow_signal(int status) {
    return WIFSIGNALED(status) &&
           (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT || WTERMSIG(status) == SIGBUS);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(stack)

// The fork cases come first: the parent forks before it has a hub or has
// read GROVE_STACK_SIZE, so every child starts from a clean runtime.

BOOST_AUTO_TEST_CASE(stack_overflow_in_a_named_fiber_is_reported_with_its_name) {
    const ChildResult r = run_in_child([](int out) {
        auto f = grove::spawn(grove::SpawnOptions{.name = "deep"}, [] { return overflow(0); });
        report(out, std::to_string(f.id()));
        f.join();
        return 0;  // not reached if the overflow was caught
    });
    BOOST_TEST_MESSAGE("child: " << describe(r.status) << "; stderr: " << r.err);
    BOOST_CHECK_MESSAGE(died_of_overflow_signal(r.status), "child ended by " << describe(r.status));
    BOOST_CHECK(r.err.find("stack overflow") != std::string::npos);
    BOOST_CHECK(r.err.find("deep") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stack_overflow_in_an_unnamed_fiber_is_reported_with_its_id) {
    const ChildResult r = run_in_child([](int out) {
        for (int i = 0; i < 40; ++i) {  // so the id is not a small, common number
            grove::spawn([] {}).join();
        }
        auto f = grove::spawn([] { return overflow(0); });
        report(out, std::to_string(f.id()));
        f.join();
        return 0;
    });
    BOOST_TEST_MESSAGE("child: " << describe(r.status) << "; stderr: " << r.err);
    BOOST_CHECK_MESSAGE(died_of_overflow_signal(r.status), "child ended by " << describe(r.status));
    BOOST_CHECK(r.err.find("stack overflow") != std::string::npos);
    BOOST_REQUIRE(!r.out.empty());
    BOOST_CHECK(contains_number(r.err, r.out));
}

BOOST_AUTO_TEST_CASE(overflow_of_a_packed_stack_is_reported_when_the_fiber_switches_away) {
    // Past the guard budget (here 0), stacks have no guard page; writing
    // below one spoils its red zone, which the hub checks at every switch.
    const ChildResult r = run_in_child([](int out) {
        ::setenv("GROVE_GUARDED_STACKS", "0", 1);
        grove::Event never;
        // The stack under the next one (same size: the same shared mapping).
        auto below = grove::spawn(grove::SpawnOptions{.stack_size = 64 * 1024}, [&never] { never.wait(); });
        grove::this_fiber::yield();
        auto f = grove::spawn(grove::SpawnOptions{.stack_size = 64 * 1024, .name = "packed"}, [] {
            const int v = use_stack_kib(72);  // 8 KiB past its 64 KiB
            grove::this_fiber::yield();
            return v;
        });
        report(out, std::to_string(f.id()));
        f.join();
        below.kill();
        return 0;  // not reached if the overflow was caught
    });
    BOOST_TEST_MESSAGE("child: " << describe(r.status) << "; stderr: " << r.err);
    BOOST_CHECK_MESSAGE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "child ended by " << describe(r.status));
    BOOST_CHECK(r.err.find("stack overflow") != std::string::npos);
    BOOST_CHECK(r.err.find("packed") != std::string::npos);
}

// Lines of /proc/self/maps: the process's mappings.
long mapping_count() {
    std::FILE* f = std::fopen("/proc/self/maps", "re");
    if (f == nullptr) {
        return -1;
    }
    long n = 0;
    for (int c; (c = std::fgetc(f)) != EOF;) {
        n += c == '\n' ? 1 : 0;
    }
    std::fclose(f);
    return n;
}

// N fibers parked at once; reports how many mappings that added.
int park_many_and_count_mappings(int out, int n) {
    const long before = mapping_count();
    grove::Event go;
    std::vector<grove::Fiber<void>> fibers;
    for (int i = 0; i < n; ++i) {
        fibers.push_back(grove::spawn([&go] {
            use_stack_kib(2);
            go.wait();
        }));
    }
    grove::this_fiber::yield();  // every one runs to its wait: each holds a stack
    const long during = mapping_count();
    go.set();
    grove::join_all(fibers);
    report(out, std::to_string(during - before));
    return 0;
}

BOOST_AUTO_TEST_CASE(past_the_guard_budget_stacks_share_mappings) {
    // 3000 parked fibers with a budget of 100 guarded stacks: 100 x 2
    // mappings for those, a handful of shared ones for the other 2900.
    const ChildResult r = run_in_child([](int out) {
        ::setenv("GROVE_GUARDED_STACKS", "100", 1);
        return park_many_and_count_mappings(out, 3000);
    });
    BOOST_REQUIRE_MESSAGE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                          "child ended by " << describe(r.status) << "; stderr: " << r.err);
    const long added = std::strtol(r.out.c_str(), nullptr, 10);
    BOOST_TEST_MESSAGE("mappings added: " << added);
    BOOST_CHECK_GE(added, 150);  // the guarded ones are there...
    BOOST_CHECK_LE(added, 300);  // ...and the rest did not take two each
}

BOOST_AUTO_TEST_CASE(within_the_guard_budget_every_stack_is_guarded) {
    const ChildResult r = run_in_child([](int out) {
        ::setenv("GROVE_GUARDED_STACKS", "100000", 1);
        return park_many_and_count_mappings(out, 500);
    });
    BOOST_REQUIRE_MESSAGE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                          "child ended by " << describe(r.status) << "; stderr: " << r.err);
    const long added = std::strtol(r.out.c_str(), nullptr, 10);
    BOOST_TEST_MESSAGE("mappings added: " << added);
    BOOST_CHECK_GE(added, 2 * 500 - 50);  // a guard page and a stack each (adjacent ones may merge a little)
}

BOOST_AUTO_TEST_CASE(grove_stack_size_env_sets_the_default_stack_size) {
    // 2 MiB of recursion fits the 4 MiB asked for, not the 256 KiB default.
    const ChildResult r = run_in_child([](int) {
        ::setenv("GROVE_STACK_SIZE", "4194304", 1);
        auto f = grove::spawn([] { return use_stack_kib(2048); });
        f.join();
        return 0;
    });
    BOOST_CHECK_MESSAGE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                        "child ended by " << describe(r.status) << "; stderr: " << r.err);
}

BOOST_AUTO_TEST_CASE(grove_stack_size_env_is_read_once_at_first_use) {
    // After the first spawn, lowering GROVE_STACK_SIZE must not shrink the
    // stacks of later fibers.
    const ChildResult r = run_in_child([](int) {
        ::setenv("GROVE_STACK_SIZE", "4194304", 1);
        grove::spawn([] { return use_stack_kib(4); }).join();
        ::setenv("GROVE_STACK_SIZE", "65536", 1);
        std::vector<grove::Fiber<int>> fibers;
        for (int i = 0; i < 3; ++i) {  // more than one: not only the recycled stack
            fibers.push_back(grove::spawn([] {
                grove::this_fiber::yield();
                return use_stack_kib(1024);
            }));
        }
        for (auto& f : fibers) {
            f.join();
        }
        return 0;
    });
    BOOST_CHECK_MESSAGE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                        "child ended by " << describe(r.status) << "; stderr: " << r.err);
}

BOOST_AUTO_TEST_CASE(the_default_stack_holds_a_moderate_recursion) {
    auto f = grove::spawn([] { return use_stack_kib(100); });
    BOOST_CHECK_NO_THROW(f.join(5s));
}

BOOST_AUTO_TEST_CASE(custom_stack_size_holds_200_kib_of_frames) {
    auto f = grove::spawn(grove::SpawnOptions{.stack_size = 1024 * 1024}, [] { return use_stack_kib(200); });
    BOOST_CHECK_NO_THROW(f.join(5s));
}

BOOST_AUTO_TEST_CASE(custom_stack_size_beyond_the_default_is_honoured) {
    // 700 KiB would overflow the 256 KiB default: only the option makes room.
    auto f = grove::spawn(grove::SpawnOptions{.stack_size = 1024 * 1024}, [] { return use_stack_kib(700); });
    BOOST_CHECK_NO_THROW(f.join(5s));
}

BOOST_AUTO_TEST_CASE(fibers_with_different_stack_sizes_run_side_by_side) {
    std::vector<grove::Fiber<int>> fibers;
    for (std::size_t kib : {64, 512, 128, 1024, 256}) {
        fibers.push_back(grove::spawn(grove::SpawnOptions{.stack_size = kib * 1024}, [kib] {
            grove::this_fiber::yield();
            use_stack_kib(static_cast<int>(kib / 2));
            grove::this_fiber::yield();
            return static_cast<int>(kib);
        }));
    }
    int sum = 0;
    for (auto& f : fibers) {
        sum += f.join(5s);
    }
    BOOST_CHECK_EQUAL(sum, 64 + 512 + 128 + 1024 + 256);
}

BOOST_AUTO_TEST_SUITE_END()

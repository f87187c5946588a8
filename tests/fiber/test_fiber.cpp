#define BOOST_TEST_MODULE fiber
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::Reaper;

namespace {

template <class D>
double ms(D d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom error"), code(c) {}
    int code;
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

// Everything a pipe's read end yields until EOF.
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

}  // namespace

BOOST_AUTO_TEST_SUITE(fiber)

// First in the file on purpose: the parent forks before this thread has a
// hub, so the child starts from a clean runtime.
BOOST_AUTO_TEST_CASE(exception_escaping_a_detached_fiber_is_printed_with_the_fiber_id) {
    int err_pipe[2];
    int id_pipe[2];
    BOOST_REQUIRE_EQUAL(::pipe(err_pipe), 0);
    BOOST_REQUIRE_EQUAL(::pipe(id_pipe), 0);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(err_pipe[0]);
        ::close(id_pipe[0]);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::close(err_pipe[1]);
        int status = 0;
        try {
            for (int i = 0; i < 40; ++i) {  // so the id is not a small, common number
                grove::spawn([] {}).join();
            }
            auto f = grove::spawn([] {
                grove::this_fiber::sleep_for(1ms);
                throw std::runtime_error("detached-boom-7781");
            });
            const std::string id = std::to_string(f.id()) + "\n";
            if (::write(id_pipe[1], id.data(), id.size()) != static_cast<ssize_t>(id.size())) {
                status = 10;
            }
            f.detach();
            grove::join_all();
            // Still running: the escaped exception did not end the process.
            auto g = grove::spawn([] { return 5; });
            if (g.join() != 5) {
                status = 11;
            }
        } catch (...) {
            status = 12;
        }
        ::close(id_pipe[1]);
        std::fflush(stderr);
        ::_exit(status);
    }
    ::close(err_pipe[1]);
    ::close(id_pipe[1]);
    const std::string id_text = drain(id_pipe[0]);
    const std::string err_text = drain(err_pipe[0]);
    ::close(id_pipe[0]);
    ::close(err_pipe[0]);
    int wstatus = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &wstatus, 0), pid);
    BOOST_TEST_MESSAGE("child stderr: " << err_text);
    BOOST_REQUIRE(WIFEXITED(wstatus));
    BOOST_CHECK_EQUAL(WEXITSTATUS(wstatus), 0);
    const std::string id = id_text.substr(0, id_text.find('\n'));
    BOOST_REQUIRE(!id.empty());
    BOOST_CHECK_NE(id, "0");
    BOOST_CHECK(err_text.find("detached-boom-7781") != std::string::npos);
    BOOST_CHECK(contains_number(err_text, id));
}

BOOST_AUTO_TEST_CASE(a_killed_fiber_ends_quietly_even_when_detached) {
    int err_pipe[2];
    BOOST_REQUIRE_EQUAL(::pipe(err_pipe), 0);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(err_pipe[0]);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::close(err_pipe[1]);
        int status = 0;
        try {
            auto joined = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
            auto detached = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
            grove::this_fiber::yield();
            joined.kill();
            detached.kill();
            detached.detach();
            try {
                joined.join();
                status = 20;
            } catch (const grove::FiberExit&) {
            }
            grove::join_all();
        } catch (...) {
            status = 21;
        }
        std::fflush(stderr);
        ::_exit(status);
    }
    ::close(err_pipe[1]);
    const std::string err_text = drain(err_pipe[0]);
    ::close(err_pipe[0]);
    int wstatus = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &wstatus, 0), pid);
    BOOST_REQUIRE(WIFEXITED(wstatus));
    BOOST_CHECK_EQUAL(WEXITSTATUS(wstatus), 0);
    BOOST_CHECK_MESSAGE(err_text.empty(), "a kill printed: " << err_text);
}

BOOST_AUTO_TEST_CASE(a_fiber_can_kill_another_fiber) {
    auto victim = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(victim);
    auto killer = grove::spawn([&victim] {
        victim.kill();
        try {
            victim.join();
        } catch (const grove::FiberExit&) {
            return true;
        }
        return false;
    });
    reaper.add(killer);
    BOOST_CHECK(killer.join(5s));
    BOOST_CHECK(!victim.valid());
}

BOOST_AUTO_TEST_CASE(spawn_queues_the_fiber_without_running_it) {
    std::vector<std::string> seq;
    auto f = grove::spawn([&] { seq.push_back("fiber"); });
    Reaper reaper;
    reaper.add(f);
    seq.push_back("spawner");
    BOOST_CHECK(!f.ready());
    f.join(5s);
    const std::vector<std::string> expected{"spawner", "fiber"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(join_returns_the_result_of_the_callable) {
    auto f = grove::spawn([](int x) { return x * 2; }, 21);
    static_assert(std::is_same_v<decltype(f), grove::Fiber<int>>);
    BOOST_CHECK_EQUAL(f.join(5s), 42);
}

BOOST_AUTO_TEST_CASE(join_returns_a_string_result) {
    auto f = grove::spawn([](std::string a, std::string b) { return a + b; }, std::string("gro"), "ve");
    BOOST_CHECK_EQUAL(f.join(), "grove");
}

BOOST_AUTO_TEST_CASE(fiber_void_runs_and_joins) {
    int calls = 0;
    grove::Fiber<void> f = grove::spawn([&calls] { ++calls; });
    BOOST_CHECK_EQUAL(calls, 0);
    f.join(5s);
    BOOST_CHECK_EQUAL(calls, 1);
    BOOST_CHECK(!f.valid());
}

BOOST_AUTO_TEST_CASE(join_leaves_the_handle_empty_and_a_second_join_throws_system_error) {
    auto f = grove::spawn([] { return 1; });
    BOOST_CHECK(f.valid());
    BOOST_CHECK_EQUAL(f.join(5s), 1);
    BOOST_CHECK(!f.valid());
    BOOST_CHECK(!f);
    BOOST_CHECK_EQUAL(f.id(), 0u);
    BOOST_CHECK_THROW(f.join(), std::system_error);
}

BOOST_AUTO_TEST_CASE(join_on_a_moved_from_fiber_throws_system_error) {
    auto f = grove::spawn([] { return 3; });
    grove::Fiber<int> g = std::move(f);
    BOOST_CHECK(!f.valid());
    BOOST_CHECK_THROW(f.join(), std::system_error);
    BOOST_CHECK_THROW(f.wait(), std::system_error);
    BOOST_CHECK_EQUAL(g.join(5s), 3);
}

BOOST_AUTO_TEST_CASE(join_on_a_default_constructed_fiber_throws_system_error) {
    grove::Fiber<int> f;
    BOOST_CHECK(!f.valid());
    BOOST_CHECK(!f.ready());
    BOOST_CHECK_THROW(f.join(), std::system_error);
    BOOST_CHECK_THROW(f.join(10ms), std::system_error);
}

BOOST_AUTO_TEST_CASE(join_rethrows_the_custom_exception_the_fiber_threw) {
    auto f = grove::spawn([]() -> int { throw CustomError(77); });
    try {
        f.join(5s);
        BOOST_ERROR("join did not throw");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 77);
        BOOST_CHECK_EQUAL(std::string(e.what()), "custom error");
    }
    BOOST_CHECK(!f.valid());
}

BOOST_AUTO_TEST_CASE(join_rethrows_a_non_std_exception) {
    auto f = grove::spawn([] { throw 1234; });
    try {
        f.join(5s);
        BOOST_ERROR("join did not throw");
    } catch (int v) {
        BOOST_CHECK_EQUAL(v, 1234);
    }
}

BOOST_AUTO_TEST_CASE(exception_reports_what_the_fiber_threw_after_wait) {
    auto f = grove::spawn([] { throw CustomError(5); });
    BOOST_CHECK(f.exception() == nullptr);  // not finished yet
    BOOST_CHECK(f.wait(5s));
    BOOST_CHECK(f.ready());
    BOOST_CHECK(!f.killed());
    std::exception_ptr e = f.exception();
    BOOST_REQUIRE(e != nullptr);
    BOOST_CHECK_THROW(std::rethrow_exception(e), CustomError);
    BOOST_CHECK_THROW(f.join(), CustomError);
}

BOOST_AUTO_TEST_CASE(join_with_timeout_throws_timeout_error_and_keeps_the_handle) {
    auto f = grove::spawn([] {
        grove::this_fiber::sleep_for(10s);
        return 1;
    });
    Reaper reaper;
    reaper.add(f);
    const auto t0 = Clock::now();
    try {
        f.join(20ms);
        BOOST_ERROR("join(20ms) did not throw");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == nullptr);
    }
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK(f.valid());
    BOOST_CHECK(!f.ready());
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(wait_with_timeout_returns_false_and_join_stays_possible) {
    auto f = grove::spawn([] {
        grove::this_fiber::sleep_for(100ms);
        return 9;
    });
    Reaper reaper;
    reaper.add(f);
    const auto t0 = Clock::now();
    BOOST_CHECK(!f.wait(50ms));
    BOOST_CHECK(Clock::now() - t0 >= 50ms);
    BOOST_CHECK(f.valid());
    BOOST_CHECK(!f.ready());
    BOOST_CHECK_EQUAL(f.join(5s), 9);
}

BOOST_AUTO_TEST_CASE(wait_returns_true_and_does_not_consume_the_result) {
    auto f = grove::spawn([] { return std::string("kept"); });
    BOOST_CHECK(f.wait());
    BOOST_CHECK(f.ready());
    BOOST_CHECK(f.valid());
    BOOST_CHECK(f.wait(1ms));
    BOOST_CHECK_EQUAL(f.join(), "kept");
}

BOOST_AUTO_TEST_CASE(wait_until_returns_false_at_the_time_point) {
    auto f = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK(!f.wait_until(Clock::now() + 20ms));
    BOOST_CHECK(!f.wait_until(std::chrono::system_clock::now() + 20ms));
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(ready_is_false_until_the_fiber_ends) {
    bool go = false;
    auto f = grove::spawn([&go] {
        while (!go) {
            grove::this_fiber::yield();
        }
    });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK(!f.ready());
    grove::this_fiber::yield();
    BOOST_CHECK(!f.ready());
    go = true;
    BOOST_CHECK(f.wait(5s));
    BOOST_CHECK(f.ready());
    BOOST_CHECK(!f.killed());
    f.join();
}

BOOST_AUTO_TEST_CASE(kill_makes_join_throw_fiber_exit_and_unwinds_the_fiber) {
    bool after_sleep = false;
    bool unwound = false;
    auto f = grove::spawn([&] {
        struct Guard {
            bool* flag;
            ~Guard() { *flag = true; }
        } guard{&unwound};
        grove::this_fiber::sleep_for(10s);
        after_sleep = true;
        return 1;
    });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();  // let it park in sleep_for
    BOOST_CHECK(!unwound);
    const auto t0 = Clock::now();
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    BOOST_CHECK(Clock::now() - t0 < 5s);
    BOOST_CHECK(unwound);
    BOOST_CHECK(!after_sleep);
}

BOOST_AUTO_TEST_CASE(killed_reports_a_kill_after_wait) {
    auto f = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();
    f.kill();
    BOOST_CHECK(f.wait(5s));
    BOOST_CHECK(f.ready());
    BOOST_CHECK(f.killed());
    BOOST_CHECK(f.exception() == nullptr);
    BOOST_CHECK_THROW(f.join(), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(kill_is_idempotent) {
    int runs = 0;
    auto f = grove::spawn([&runs] {
        ++runs;
        grove::this_fiber::sleep_for(10s);
    });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();
    f.kill();
    f.kill();
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(runs, 1);
}

BOOST_AUTO_TEST_CASE(kill_before_start_means_the_fiber_never_runs) {
    int runs = 0;
    auto f = grove::spawn([&runs] { ++runs; });
    Reaper reaper;
    reaper.add(f);
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    grove::this_fiber::sleep_for(5ms);
    BOOST_CHECK_EQUAL(runs, 0);
}

// Detached and killed before its start: its callable is destroyed by the
// fiber itself as it ends, never inside the switch of whichever fiber
// happens to park (which may be in the middle of anything, malloc
// included), and still without running it.
BOOST_AUTO_TEST_CASE(a_fiber_killed_before_start_is_destroyed_in_its_own_context) {
    struct Witness {
        grove::FiberId* destroyed_in;
        bool armed = true;
        explicit Witness(grove::FiberId* d) : destroyed_in(d) {}
        Witness(Witness&& o) noexcept : destroyed_in(o.destroyed_in) { o.armed = false; }
        ~Witness() {
            if (armed) {
                *destroyed_in = grove::this_fiber::id();
            }
        }
    };
    grove::FiberId destroyed_in = 0;
    int runs = 0;
    const grove::FiberId main_id = grove::this_fiber::id();
    {
        auto f = grove::spawn([w = Witness(&destroyed_in), &runs] { ++runs; });
        f.kill();
        f.detach();
    }
    grove::this_fiber::sleep_for(5ms);  // main parks: the killed fiber comes up next
    BOOST_CHECK_EQUAL(runs, 0);
    BOOST_CHECK(destroyed_in != 0);
    BOOST_CHECK(destroyed_in != main_id);
}

BOOST_AUTO_TEST_CASE(kill_of_a_finished_fiber_keeps_its_result) {
    auto f = grove::spawn([] { return 8; });
    BOOST_CHECK(f.wait(5s));
    f.kill();
    BOOST_CHECK(!f.killed());
    BOOST_CHECK_EQUAL(f.join(), 8);
}

BOOST_AUTO_TEST_CASE(kill_of_a_ready_fiber_takes_effect_when_it_resumes_from_yield) {
    int iterations = 0;
    auto f = grove::spawn([&iterations] {
        for (;;) {
            ++iterations;
            grove::this_fiber::yield();
        }
    });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();  // the fiber runs once, yields, and is queued behind us
    BOOST_CHECK_EQUAL(iterations, 1);
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(iterations, 1);
}

BOOST_AUTO_TEST_CASE(catch_of_std_exception_does_not_swallow_a_kill) {
    static_assert(!std::is_base_of_v<std::exception, grove::FiberExit>);
    bool swallowed = false;
    auto f = grove::spawn([&swallowed] {
        try {
            grove::this_fiber::sleep_for(10s);
        } catch (const std::exception&) {
            swallowed = true;
        }
    });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    BOOST_CHECK(!swallowed);
}

BOOST_AUTO_TEST_CASE(killing_a_joiner_leaves_the_joined_fiber_running) {
    bool go = false;
    auto target = grove::spawn([&go] {
        while (!go) {
            grove::this_fiber::sleep_for(1ms);
        }
        return 4;
    });
    Reaper reaper;
    reaper.add(target);
    auto joiner = grove::spawn([&target] { return target.wait(); });
    reaper.add(joiner);
    grove::this_fiber::yield();
    joiner.kill();
    BOOST_CHECK_THROW(joiner.join(5s), grove::FiberExit);
    BOOST_CHECK(!target.ready());
    go = true;
    BOOST_CHECK_EQUAL(target.join(5s), 4);
}

BOOST_AUTO_TEST_CASE(detach_lets_the_fiber_run_on) {
    int runs = 0;
    auto f = grove::spawn([&runs] {
        grove::this_fiber::sleep_for(5ms);
        ++runs;
    });
    f.detach();
    BOOST_CHECK(!f.valid());
    BOOST_CHECK_EQUAL(f.id(), 0u);
    grove::this_fiber::sleep_for(50ms);
    BOOST_CHECK_EQUAL(runs, 1);
}

BOOST_AUTO_TEST_CASE(dropping_the_handle_detaches_the_fiber) {
    int runs = 0;
    {
        auto f = grove::spawn([&runs] {
            grove::this_fiber::sleep_for(5ms);
            ++runs;
        });
    }
    BOOST_CHECK_EQUAL(runs, 0);
    grove::this_fiber::sleep_for(50ms);
    BOOST_CHECK_EQUAL(runs, 1);
}

BOOST_AUTO_TEST_CASE(fiber_ids_are_unique_nonzero_and_seen_from_inside) {
    std::vector<grove::Fiber<grove::FiberId>> fibers;
    for (int i = 0; i < 200; ++i) {
        fibers.push_back(grove::spawn([] { return grove::this_fiber::id(); }));
    }
    Reaper reaper;
    reaper.add(fibers);
    std::set<grove::FiberId> ids;
    for (auto& f : fibers) {
        const grove::FiberId outside = f.id();
        BOOST_CHECK_NE(outside, 0u);
        ids.insert(outside);
        BOOST_CHECK_EQUAL(f.join(5s), outside);
    }
    BOOST_CHECK_EQUAL(ids.size(), 200u);
}

BOOST_AUTO_TEST_CASE(main_fiber_id_is_zero) {
    BOOST_CHECK_EQUAL(grove::this_fiber::id(), 0u);
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(grove::this_fiber::id(), 0u);
}

BOOST_AUTO_TEST_CASE(spawn_options_name_is_visible_inside_and_on_the_handle) {
    auto f = grove::spawn(grove::SpawnOptions{.name = "worker-1"},
                          [] { return std::string(grove::this_fiber::name()); });
    BOOST_CHECK_EQUAL(std::string(f.name()), "worker-1");
    BOOST_CHECK_EQUAL(f.join(5s), "worker-1");
}

BOOST_AUTO_TEST_CASE(spawn_options_name_is_copied) {
    std::string name = "copied-name";
    auto f = grove::spawn(grove::SpawnOptions{.name = name.c_str()},
                          [] { return std::string(grove::this_fiber::name()); });
    name.assign("XXXXXXXXXXX");
    BOOST_CHECK_EQUAL(f.join(5s), "copied-name");
}

BOOST_AUTO_TEST_CASE(long_names_are_truncated_to_31_bytes) {
    const std::string long_name(60, 'n');
    auto f = grove::spawn(grove::SpawnOptions{.name = long_name.c_str()},
                          [] { return std::string(grove::this_fiber::name()); });
    BOOST_CHECK_EQUAL(f.join(5s), std::string(31, 'n'));
}

BOOST_AUTO_TEST_CASE(set_name_renames_the_running_fiber) {
    auto f = grove::spawn([] {
        grove::this_fiber::set_name("renamed");
        grove::this_fiber::yield();
        return std::string(grove::this_fiber::name());
    });
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(std::string(f.name()), "renamed");
    BOOST_CHECK_EQUAL(f.join(5s), "renamed");
}

BOOST_AUTO_TEST_CASE(spawn_later_runs_after_the_delay) {
    const auto t0 = Clock::now();
    auto f = grove::spawn_later(100ms, [t0] { return Clock::now() - t0; });
    grove::this_fiber::sleep_for(1ms);
    BOOST_CHECK(!f.ready());
    const auto started = f.join(5s);
    BOOST_CHECK(started >= 100ms);
    BOOST_CHECK(started < 1s);
}

BOOST_AUTO_TEST_CASE(spawn_later_killed_before_the_delay_never_runs) {
    int runs = 0;
    auto f = grove::spawn_later(20ms, [&runs] { ++runs; });
    Reaper reaper;
    reaper.add(f);
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
    grove::this_fiber::sleep_for(50ms);
    BOOST_CHECK_EQUAL(runs, 0);
}

BOOST_AUTO_TEST_CASE(join_all_of_a_vector_waits_for_every_fiber) {
    std::vector<int> done;
    std::vector<grove::Fiber<void>> fibers;
    for (int i = 0; i < 5; ++i) {
        fibers.push_back(grove::spawn([&done, i] {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(10 * (5 - i)));
            done.push_back(i);
        }));
    }
    Reaper reaper;
    reaper.add(fibers);
    grove::join_all(fibers);
    const std::vector<int> expected{4, 3, 2, 1, 0};
    BOOST_CHECK_EQUAL_COLLECTIONS(done.begin(), done.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(join_all_of_a_vector_rethrows_the_first_exception_after_all_ended) {
    int finished = 0;
    std::vector<grove::Fiber<int>> fibers;
    fibers.push_back(grove::spawn([&finished] {
        grove::this_fiber::sleep_for(10ms);
        ++finished;
        return 0;
    }));
    fibers.push_back(grove::spawn([]() -> int { throw CustomError(2); }));
    fibers.push_back(grove::spawn([]() -> int { throw CustomError(3); }));
    fibers.push_back(grove::spawn([&finished] {
        grove::this_fiber::sleep_for(20ms);
        ++finished;
        return 0;
    }));
    Reaper reaper;
    reaper.add(fibers);
    try {
        grove::join_all(fibers);
        BOOST_ERROR("join_all did not throw");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 2);
    }
    BOOST_CHECK_EQUAL(finished, 2);
}

BOOST_AUTO_TEST_CASE(join_all_without_arguments_waits_for_every_fiber_of_the_thread) {
    int done = 0;
    for (int i = 0; i < 10; ++i) {
        grove::spawn([&done, i] {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(i * 2));
            ++done;
        }).detach();
    }
    // A fiber that spawns another late: join_all must wait for that one too.
    grove::spawn([&done] {
        grove::this_fiber::sleep_for(5ms);
        grove::spawn([&done] {
            grove::this_fiber::sleep_for(20ms);
            ++done;
        }).detach();
    }).detach();
    grove::Timeout limit(5s);
    grove::join_all();
    BOOST_CHECK_EQUAL(done, 11);
}

BOOST_AUTO_TEST_CASE(yield_interleaves_three_fibers_in_fifo_order) {
    std::vector<char> seq;
    auto body = [&seq](char name) {
        for (int i = 0; i < 3; ++i) {
            seq.push_back(name);
            grove::this_fiber::yield();
        }
    };
    auto a = grove::spawn(body, 'a');
    auto b = grove::spawn(body, 'b');
    auto c = grove::spawn(body, 'c');
    Reaper reaper;
    reaper.add(a);
    reaper.add(b);
    reaper.add(c);
    a.join(5s);
    b.join(5s);
    c.join(5s);
    const std::vector<char> expected{'a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c'};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(yield_in_main_lets_every_ready_fiber_run_once) {
    std::vector<std::string> seq;
    auto body = [&seq](std::string name) {
        seq.push_back(name + "1");
        grove::this_fiber::yield();
        seq.push_back(name + "2");
    };
    auto a = grove::spawn(body, "a");
    auto b = grove::spawn(body, "b");
    Reaper reaper;
    reaper.add(a);
    reaper.add(b);
    grove::this_fiber::yield();
    seq.push_back("main");
    a.join(5s);
    b.join(5s);
    const std::vector<std::string> expected{"a1", "b1", "main", "a2", "b2"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(yield_with_no_other_fiber_returns) {
    for (int i = 0; i < 1000; ++i) {
        grove::this_fiber::yield();
    }
    BOOST_CHECK(true);
}

BOOST_AUTO_TEST_CASE(sleep_for_sleeps_at_least_the_duration) {
    const auto t0 = Clock::now();
    grove::this_fiber::sleep_for(10ms);
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 10ms);
    BOOST_CHECK(took < 1s);
}

BOOST_AUTO_TEST_CASE(sleep_for_in_a_fiber_sleeps_at_least_the_duration) {
    auto f = grove::spawn([] {
        const auto t0 = Clock::now();
        grove::this_fiber::sleep_for(10ms);
        return Clock::now() - t0;
    });
    const auto took = f.join(5s);
    BOOST_CHECK(took >= 10ms);
    BOOST_CHECK(took < 1s);
}

BOOST_AUTO_TEST_CASE(sleep_for_a_negative_duration_returns_at_once) {
    const auto t0 = Clock::now();
    grove::this_fiber::sleep_for(-1s);
    grove::this_fiber::sleep_for(0ms);
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(sleep_for_a_huge_duration_is_killable) {
    auto f = grove::spawn([] { grove::this_fiber::sleep_for(std::chrono::hours::max()); });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::sleep_for(5ms);
    BOOST_CHECK(!f.ready());
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(sleep_until_a_steady_clock_time_point) {
    const auto t0 = Clock::now();
    grove::this_fiber::sleep_until(t0 + 15ms);
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 15ms);
    BOOST_CHECK(took < 1s);
}

BOOST_AUTO_TEST_CASE(sleep_until_a_system_clock_time_point) {
    const auto t0 = Clock::now();
    grove::this_fiber::sleep_until(std::chrono::system_clock::now() + 15ms);
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 14ms);  // the clock conversion may lose a few microseconds
    BOOST_CHECK(took < 1s);
}

BOOST_AUTO_TEST_CASE(sleep_until_a_past_time_point_returns_at_once) {
    const auto t0 = Clock::now();
    grove::this_fiber::sleep_until(t0 - 1s);
    grove::this_fiber::sleep_until(std::chrono::system_clock::now() - 1h);
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(sleepers_wake_in_deadline_order) {
    std::vector<int> order;
    std::vector<grove::Fiber<void>> fibers;
    for (int d : {40, 10, 30, 20}) {
        fibers.push_back(grove::spawn([&order, d] {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(d));
            order.push_back(d);
        }));
    }
    Reaper reaper;
    reaper.add(fibers);
    grove::join_all(fibers);
    const std::vector<int> expected{10, 20, 30, 40};
    BOOST_CHECK_EQUAL_COLLECTIONS(order.begin(), order.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(join_on_self_throws_resource_deadlock_would_occur) {
    grove::Fiber<int> self;
    std::error_code code;
    bool threw = false;
    self = grove::spawn([&self, &code, &threw] {
        try {
            self.join();
        } catch (const std::system_error& e) {
            threw = true;
            code = e.code();
        }
        return 6;
    });
    Reaper reaper;
    reaper.add(self);
    BOOST_CHECK(self.wait(5s));
    BOOST_CHECK(threw);
    BOOST_CHECK(code == std::errc::resource_deadlock_would_occur);
    BOOST_CHECK_EQUAL(self.join(), 6);
}

BOOST_AUTO_TEST_CASE(arguments_are_moved_into_the_fiber) {
    auto p = std::make_unique<int>(41);
    auto f = grove::spawn([](std::unique_ptr<int> q) { return *q + 1; }, std::move(p));
    BOOST_CHECK(p == nullptr);
    BOOST_CHECK_EQUAL(f.join(5s), 42);
}

BOOST_AUTO_TEST_CASE(move_only_result_is_returned_by_join) {
    auto f = grove::spawn([] { return std::make_unique<int>(3); });
    std::unique_ptr<int> r = f.join(5s);
    BOOST_REQUIRE(r != nullptr);
    BOOST_CHECK_EQUAL(*r, 3);
}

BOOST_AUTO_TEST_CASE(lvalue_arguments_are_copied_into_the_fiber) {
    std::string s = "original";
    auto f = grove::spawn([](std::string mine) {
        mine += "-changed";
        return mine;
    }, s);
    BOOST_CHECK_EQUAL(f.join(5s), "original-changed");
    BOOST_CHECK_EQUAL(s, "original");
}

BOOST_AUTO_TEST_CASE(fibers_spawn_and_join_fibers) {
    auto outer = grove::spawn([] {
        std::vector<grove::Fiber<int>> inner;
        for (int i = 1; i <= 4; ++i) {
            inner.push_back(grove::spawn([i] {
                grove::this_fiber::yield();
                return i * 10;
            }));
        }
        int sum = 0;
        for (auto& f : inner) {
            sum += f.join();
        }
        return sum;
    });
    BOOST_CHECK_EQUAL(outer.join(5s), 100);
}

BOOST_AUTO_TEST_CASE(hundred_thousand_fibers_spawn_and_join) {
    constexpr int kCount = 100000;
    std::vector<grove::Fiber<int>> fibers;
    fibers.reserve(kCount);
    const auto t0 = Clock::now();
    for (int i = 0; i < kCount; ++i) {
        fibers.push_back(grove::spawn([](int x) { return x; }, i));
    }
    Reaper reaper;
    reaper.add(fibers);
    long long sum = 0;
    for (auto& f : fibers) {
        sum += f.join(10s);
    }
    BOOST_TEST_MESSAGE("100k spawn+join: " << ms(Clock::now() - t0) << " ms");
    BOOST_CHECK_EQUAL(sum, static_cast<long long>(kCount) * (kCount - 1) / 2);
}

BOOST_AUTO_TEST_CASE(yield_loop_does_not_starve_a_sleeper) {
    bool stop = false;
    long yields = 0;
    const auto t0 = Clock::now();
    // The spinner gives up after 3 s on its own, so a starved sleeper turns
    // into a failed check rather than a hang.
    auto spinner = grove::spawn([&] {
        while (!stop && Clock::now() - t0 < 3s) {
            ++yields;
            grove::this_fiber::yield();
        }
    });
    auto sleeper = grove::spawn([&] {
        grove::this_fiber::sleep_for(5ms);
        stop = true;
        return Clock::now() - t0;
    });
    Reaper reaper;
    reaper.add(spinner);
    reaper.add(sleeper);
    const auto slept = sleeper.join(10s);
    spinner.join(10s);
    BOOST_TEST_MESSAGE("sleeper woke after " << ms(slept) << " ms, " << yields << " yields");
    BOOST_CHECK(slept >= 5ms);
    BOOST_CHECK(slept < 1s);
    BOOST_CHECK(yields > 0);
}

BOOST_AUTO_TEST_CASE(sleep_for_one_millisecond_median_error_is_small) {
    constexpr int kSleeps = 200;
    std::vector<double> errors;
    errors.reserve(kSleeps);
    int early = 0;
    for (int i = 0; i < kSleeps; ++i) {
        const auto t0 = Clock::now();
        grove::this_fiber::sleep_for(1ms);
        const auto took = Clock::now() - t0;
        if (took < 1ms) {
            ++early;
        }
        errors.push_back(ms(took) - 1.0);
    }
    std::sort(errors.begin(), errors.end());
    const double median = errors[kSleeps / 2];
    BOOST_TEST_MESSAGE("sleep_for(1ms) error: median " << median << " ms, p90 " << errors[kSleeps * 9 / 10]
                                                        << " ms, max " << errors.back() << " ms");
    BOOST_CHECK_EQUAL(early, 0);
    BOOST_CHECK_LT(median, 2.0);
}

BOOST_AUTO_TEST_CASE(errno_is_preserved_per_fiber_across_switches) {
    int seen_a = 0;
    int seen_b = 0;
    auto a = grove::spawn([&seen_a] {
        errno = EINVAL;
        grove::this_fiber::yield();
        grove::this_fiber::yield();
        seen_a = errno;
    });
    auto b = grove::spawn([&seen_b] {
        errno = ENOENT;
        grove::this_fiber::yield();
        grove::this_fiber::yield();
        seen_b = errno;
    });
    Reaper reaper;
    reaper.add(a);
    reaper.add(b);
    errno = EPERM;
    grove::this_fiber::yield();
    const int main_after_yield = errno;
    a.join(5s);
    b.join(5s);
    BOOST_CHECK_EQUAL(main_after_yield, EPERM);
    BOOST_CHECK_EQUAL(seen_a, EINVAL);
    BOOST_CHECK_EQUAL(seen_b, ENOENT);
}

BOOST_AUTO_TEST_CASE(errno_is_preserved_across_a_sleep) {
    auto a = grove::spawn([] {
        errno = ERANGE;
        grove::this_fiber::sleep_for(5ms);
        return errno;
    });
    auto b = grove::spawn([] {
        errno = EAGAIN;
        grove::this_fiber::sleep_for(2ms);
        return errno;
    });
    BOOST_CHECK_EQUAL(a.join(5s), ERANGE);
    BOOST_CHECK_EQUAL(b.join(5s), EAGAIN);
}

BOOST_AUTO_TEST_CASE(two_threads_run_their_own_fibers_independently) {
    struct Result {
        long sum = 0;
        grove::FiberId main_id = 99;
        std::vector<grove::FiberId> ids;
        bool error = false;
    };
    auto run = [](Result* r, int base) {
        try {
            r->main_id = grove::this_fiber::id();
            std::vector<grove::Fiber<int>> fibers;
            for (int i = 0; i < 100; ++i) {
                fibers.push_back(grove::spawn([base, i] {
                    grove::this_fiber::yield();
                    grove::this_fiber::sleep_for(std::chrono::milliseconds(i % 5));
                    return base + i;
                }));
            }
            for (auto& f : fibers) {
                r->ids.push_back(f.id());
                r->sum += f.join(10s);
            }
        } catch (...) {
            r->error = true;
        }
    };
    Result r1;
    Result r2;
    std::thread t1(run, &r1, 1000);
    std::thread t2(run, &r2, 2000);
    t1.join();
    t2.join();
    BOOST_CHECK(!r1.error);
    BOOST_CHECK(!r2.error);
    BOOST_CHECK_EQUAL(r1.main_id, 0u);
    BOOST_CHECK_EQUAL(r2.main_id, 0u);
    BOOST_CHECK_EQUAL(r1.sum, 100 * 1000 + 4950);
    BOOST_CHECK_EQUAL(r2.sum, 100 * 2000 + 4950);
    std::set<grove::FiberId> all(r1.ids.begin(), r1.ids.end());
    all.insert(r2.ids.begin(), r2.ids.end());
    BOOST_CHECK_EQUAL(all.size(), 200u);  // ids are unique per process
    BOOST_CHECK(all.count(0) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

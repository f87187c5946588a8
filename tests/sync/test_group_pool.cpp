#define BOOST_TEST_MODULE group_pool
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::CaseDeadline;
using grove_test::Reaper;

namespace {

struct CustomError : std::runtime_error {
    explicit CustomError(int c) : std::runtime_error("custom error"), code(c) {}
    int code;
};

// Counts fibers inside a section and remembers the most seen at once.
struct Concurrency {
    int now = 0;
    int max = 0;
    void enter() {
        ++now;
        max = std::max(max, now);
    }
    void leave() { --now; }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(group, CaseDeadline)

BOOST_AUTO_TEST_CASE(spawn_adds_members_and_finished_members_leave) {
    grove::Group g;
    BOOST_CHECK(g.empty());
    grove::Event release_a;
    grove::Event release_b;
    auto a = g.spawn([&release_a] {
        release_a.wait();
        return 1;
    });
    auto b = g.spawn([&release_b] {
        release_b.wait();
        return 2;
    });
    auto c = g.spawn([] { return 3; });
    Reaper reaper;
    reaper.add(a);
    reaper.add(b);
    reaper.add(c);
    BOOST_CHECK_EQUAL(g.size(), 3u);
    BOOST_CHECK(c.wait(5s));
    BOOST_CHECK_EQUAL(g.size(), 2u);
    release_a.set();
    BOOST_CHECK(a.wait(5s));
    BOOST_CHECK_EQUAL(g.size(), 1u);
    release_b.set();
    BOOST_CHECK(b.wait(5s));
    BOOST_CHECK_EQUAL(g.size(), 0u);
    BOOST_CHECK(g.empty());
    BOOST_CHECK_EQUAL(a.join() + b.join() + c.join(), 6);
}

BOOST_AUTO_TEST_CASE(join_waits_for_every_member) {
    grove::Group g;
    int done = 0;
    for (int i = 0; i < 5; ++i) {
        g.spawn([&done, i] {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(2 * i));
            ++done;
        }).detach();
    }
    {
        grove::Timeout limit(5s);
        g.join();
    }
    BOOST_CHECK_EQUAL(done, 5);
    BOOST_CHECK(g.empty());
}

BOOST_AUTO_TEST_CASE(join_of_an_empty_group_returns_at_once) {
    grove::Group g;
    const auto t0 = Clock::now();
    g.join();
    BOOST_CHECK(g.join(1s));
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(join_with_timeout_returns_false_while_members_run) {
    grove::Group g;
    auto f = g.spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(f);
    const auto t0 = Clock::now();
    BOOST_CHECK(!g.join(20ms));
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
    BOOST_CHECK_EQUAL(g.size(), 1u);
    g.kill();
    BOOST_CHECK(g.empty());
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(join_does_not_rethrow_member_exceptions_by_default) {
    grove::Group g;
    auto f = g.spawn([] { throw CustomError(1); });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK_NO_THROW(g.join());
    BOOST_CHECK_THROW(f.join(), CustomError);
}

BOOST_AUTO_TEST_CASE(join_with_raise_error_rethrows_the_first_exception) {
    grove::Group g;
    auto ok = g.spawn([] {
        grove::this_fiber::sleep_for(10ms);
        return 1;
    });
    g.spawn([] {
        grove::this_fiber::sleep_for(2ms);
        throw CustomError(7);
    }).detach();
    Reaper reaper;
    reaper.add(ok);
    try {
        grove::Timeout limit(5s);
        g.join(true);
        BOOST_ERROR("join(true) did not rethrow");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 7);
    }
}

BOOST_AUTO_TEST_CASE(kill_ends_every_member) {
    grove::Group g;
    int finished = 0;
    std::vector<grove::Fiber<void>> members;
    for (int i = 0; i < 4; ++i) {
        members.push_back(g.spawn([&finished] {
            grove::this_fiber::sleep_for(10s);
            ++finished;
        }));
    }
    Reaper reaper;
    reaper.add(members);
    grove::this_fiber::yield();
    const auto t0 = Clock::now();
    g.kill();
    BOOST_CHECK(Clock::now() - t0 < 5s);
    BOOST_CHECK(g.empty());
    for (auto& m : members) {
        BOOST_CHECK(m.ready());
        BOOST_CHECK(m.killed());
        BOOST_CHECK_THROW(m.join(), grove::FiberExit);
    }
    BOOST_CHECK_EQUAL(finished, 0);
}

BOOST_AUTO_TEST_CASE(kill_without_wait_returns_before_members_end) {
    grove::Group g;
    auto f = g.spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();
    g.kill(false);
    BOOST_CHECK(g.join(5s));
    BOOST_CHECK(g.empty());
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(destructor_kills_running_members) {
    int finished = 0;
    grove::Fiber<void> a;
    grove::Fiber<void> b;
    Reaper reaper;
    reaper.add(a);
    reaper.add(b);
    {
        grove::Group g;
        a = g.spawn([&finished] {
            grove::this_fiber::sleep_for(10s);
            ++finished;
        });
        b = g.spawn([&finished] {
            grove::this_fiber::sleep_for(10s);
            ++finished;
        });
        grove::this_fiber::yield();
    }
    BOOST_CHECK(a.ready());
    BOOST_CHECK(b.ready());
    BOOST_CHECK(a.killed());
    BOOST_CHECK(b.killed());
    BOOST_CHECK_EQUAL(finished, 0);
}

BOOST_AUTO_TEST_CASE(killed_group_joiner_leaves_the_members_running) {
    grove::Group g;
    grove::Event release;
    auto member = g.spawn([&release] {
        release.wait();
        return 5;
    });
    auto joiner = grove::spawn([&g] { g.join(); });
    Reaper reaper;
    reaper.add(member);
    reaper.add(joiner);
    grove::this_fiber::yield();
    joiner.kill();
    BOOST_CHECK_THROW(joiner.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(g.size(), 1u);
    BOOST_CHECK(!member.ready());
    release.set();
    BOOST_CHECK_EQUAL(member.join(5s), 5);
    BOOST_CHECK(g.empty());
}

BOOST_AUTO_TEST_CASE(group_join_inside_a_timeout_scope_throws_timeout_error) {
    grove::Group g;
    auto member = g.spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(member);
    {
        grove::Timeout t(20ms);
        try {
            g.join();
            BOOST_ERROR("join was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &t);
        }
    }
    BOOST_CHECK_EQUAL(g.size(), 1u);
    g.kill();
    BOOST_CHECK(g.empty());
}

BOOST_AUTO_TEST_CASE(join_all_of_a_group_joins_it) {
    grove::Group g;
    int done = 0;
    g.spawn([&done] {
        grove::this_fiber::sleep_for(5ms);
        ++done;
    }).detach();
    grove::Timeout limit(5s);
    grove::join_all(g);
    BOOST_CHECK_EQUAL(done, 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(pool, CaseDeadline)

BOOST_AUTO_TEST_CASE(pool_of_size_zero_throws_invalid_argument) {
    BOOST_CHECK_THROW(grove::Pool(0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(capacity_and_free_count_track_running_members) {
    grove::Pool p(2);
    BOOST_CHECK_EQUAL(p.capacity(), 2u);
    BOOST_CHECK_EQUAL(p.free_count(), 2u);
    auto a = p.spawn([] { grove::this_fiber::sleep_for(10ms); });
    Reaper reaper;
    reaper.add(a);
    BOOST_CHECK_EQUAL(p.free_count(), 1u);
    BOOST_CHECK_EQUAL(p.size(), 1u);
    a.join(5s);
    BOOST_CHECK_EQUAL(p.free_count(), 2u);
    BOOST_CHECK(p.empty());
}

BOOST_AUTO_TEST_CASE(never_more_than_n_members_run_at_once) {
    grove::Pool p(3);
    Concurrency c;
    int done = 0;
    for (int i = 0; i < 20; ++i) {
        p.spawn([&] {
            c.enter();
            grove::this_fiber::sleep_for(2ms);
            c.leave();
            ++done;
        }).detach();
        BOOST_CHECK_LE(p.size(), 3u);
    }
    {
        grove::Timeout limit(5s);
        p.join();
    }
    BOOST_CHECK_EQUAL(done, 20);
    BOOST_CHECK_EQUAL(c.max, 3);
    BOOST_CHECK_EQUAL(p.free_count(), 3u);
}

BOOST_AUTO_TEST_CASE(spawn_waits_for_a_free_slot) {
    grove::Pool p(1);
    auto first = p.spawn([] {
        grove::this_fiber::sleep_for(20ms);
        return 1;
    });
    Reaper reaper;
    reaper.add(first);
    const auto t0 = Clock::now();
    auto second = p.spawn([] { return 2; });
    reaper.add(second);
    BOOST_CHECK(first.ready());  // the slot came free only when it ended
    BOOST_CHECK(Clock::now() - t0 >= 15ms);
    BOOST_CHECK_EQUAL(first.join(), 1);
    BOOST_CHECK_EQUAL(second.join(5s), 2);
}

BOOST_AUTO_TEST_CASE(killed_fiber_waiting_in_spawn_takes_no_slot) {
    grove::Pool p(1);
    int ran = 0;
    auto busy = p.spawn([] { grove::this_fiber::sleep_for(20ms); });
    auto blocked = grove::spawn([&] {
        p.spawn([&ran] { ++ran; }).join();
    });
    Reaper reaper;
    reaper.add(busy);
    reaper.add(blocked);
    grove::this_fiber::yield();  // blocked parks in Pool::spawn
    blocked.kill();
    BOOST_CHECK_THROW(blocked.join(5s), grove::FiberExit);
    busy.join(5s);
    grove::this_fiber::sleep_for(5ms);
    BOOST_CHECK_EQUAL(ran, 0);
    BOOST_CHECK_EQUAL(p.free_count(), 1u);
    BOOST_CHECK(p.empty());
}

BOOST_AUTO_TEST_CASE(spawn_waiting_for_a_slot_inside_a_timeout_scope_throws) {
    grove::Pool p(1);
    auto busy = p.spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(busy);
    {
        grove::Timeout t(20ms);
        try {
            p.spawn([] {}).join();
            BOOST_ERROR("spawn was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &t);
        }
    }
    BOOST_CHECK_EQUAL(p.size(), 1u);
    p.kill();
    BOOST_CHECK_EQUAL(p.free_count(), 1u);
}

BOOST_AUTO_TEST_CASE(map_returns_results_in_input_order) {
    grove::Pool p(4);
    const std::vector<int> input{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    Concurrency c;
    std::vector<int> finish_order;
    auto out = [&] {
        grove::Timeout limit(5s);
        return p.map(
            [&](int x) {
                c.enter();
                // Later items finish first within each batch.
                grove::this_fiber::sleep_for(std::chrono::milliseconds(10 - x));
                finish_order.push_back(x);
                c.leave();
                return x * x;
            },
            input);
    }();
    const std::vector<int> expected{0, 1, 4, 9, 16, 25, 36, 49, 64, 81};
    BOOST_CHECK_EQUAL_COLLECTIONS(out.begin(), out.end(), expected.begin(), expected.end());
    BOOST_CHECK_EQUAL(c.max, 4);
    BOOST_CHECK(!std::is_sorted(finish_order.begin(), finish_order.end()));
}

BOOST_AUTO_TEST_CASE(map_rethrows_the_first_exception_after_all_have_ended) {
    grove::Pool p(2);
    int finished = 0;
    const std::vector<int> input{1, 2, 3, 4};
    try {
        grove::Timeout limit(5s);
        p.map(
            [&finished](int x) {
                grove::this_fiber::sleep_for(1ms);
                if (x == 2) {
                    throw CustomError(x);
                }
                ++finished;
                return x;
            },
            input);
        BOOST_ERROR("map did not rethrow");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 2);
    }
    BOOST_CHECK_EQUAL(finished, 3);
}

BOOST_AUTO_TEST_CASE(imap_unordered_delivers_every_result) {
    grove::Pool p(3);
    Concurrency c;
    std::vector<int> input;
    for (int i = 0; i < 20; ++i) {
        input.push_back(i);
    }
    auto results = p.imap_unordered(
        [&c](int x) {
            c.enter();
            grove::this_fiber::sleep_for(std::chrono::milliseconds((x * 7) % 5));
            c.leave();
            return x * 10;
        },
        input);
    std::vector<int> got;
    {
        grove::Timeout limit(5s);
        for (int r : *results) {
            got.push_back(r);
        }
    }
    std::sort(got.begin(), got.end());
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) {
        expected.push_back(i * 10);
    }
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
    BOOST_CHECK_LE(c.max, 3);
    BOOST_CHECK_GE(c.max, 2);
    grove::Timeout limit(5s);
    p.join();
}

BOOST_AUTO_TEST_CASE(imap_unordered_results_arrive_as_they_are_ready) {
    grove::Pool p(3);
    const std::vector<int> input{30, 10, 20};
    auto results = p.imap_unordered(
        [](int ms) {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(ms));
            return ms;
        },
        input);
    std::vector<int> got;
    {
        grove::Timeout limit(5s);
        for (int r : *results) {
            got.push_back(r);
        }
    }
    const std::vector<int> expected{10, 20, 30};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
    grove::Timeout limit(5s);
    p.join();
}

BOOST_AUTO_TEST_CASE(imap_unordered_of_an_empty_range_yields_nothing) {
    grove::Pool p(2);
    auto results = p.imap_unordered([](int x) { return x; }, std::vector<int>{});
    int count = 0;
    grove::Timeout limit(5s);
    for (int r : *results) {
        (void)r;
        ++count;
    }
    BOOST_CHECK_EQUAL(count, 0);
}

BOOST_AUTO_TEST_CASE(imap_unordered_rethrows_a_failure_at_the_end_of_iteration) {
    grove::Pool p(2);
    auto results = p.imap_unordered(
        [](int x) {
            grove::this_fiber::sleep_for(std::chrono::milliseconds(x));
            if (x == 5) {
                throw CustomError(x);
            }
            return x;
        },
        std::vector<int>{1, 5, 20, 30});
    std::vector<int> got;
    try {
        grove::Timeout limit(5s);
        for (int r : *results) {
            got.push_back(r);
        }
        BOOST_ERROR("iteration did not rethrow");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 5);
    }
    BOOST_CHECK(std::find(got.begin(), got.end(), 1) != got.end());
    grove::Timeout limit(5s);
    p.join();
}

BOOST_AUTO_TEST_CASE(destructor_of_a_pool_kills_running_members) {
    grove::Fiber<void> f;
    Reaper reaper;
    reaper.add(f);
    {
        grove::Pool p(2);
        f = p.spawn([] { grove::this_fiber::sleep_for(10s); });
        grove::this_fiber::yield();
    }
    BOOST_CHECK(f.ready());
    BOOST_CHECK(f.killed());
}

BOOST_AUTO_TEST_SUITE_END()

#define BOOST_TEST_MODULE event
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::CaseDeadline;
using grove_test::Reaper;

BOOST_FIXTURE_TEST_SUITE(event, CaseDeadline)

BOOST_AUTO_TEST_CASE(a_new_event_is_not_set) {
    grove::Event ev;
    BOOST_CHECK(!ev.is_set());
}

BOOST_AUTO_TEST_CASE(set_and_clear_change_is_set) {
    grove::Event ev;
    ev.set();
    BOOST_CHECK(ev.is_set());
    ev.set();
    BOOST_CHECK(ev.is_set());
    ev.clear();
    BOOST_CHECK(!ev.is_set());
}

BOOST_AUTO_TEST_CASE(wait_after_set_returns_at_once) {
    grove::Event ev;
    ev.set();
    const auto t0 = Clock::now();
    BOOST_CHECK(ev.wait());
    BOOST_CHECK(ev.wait(1s));
    BOOST_CHECK(ev.wait(-1s));
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(wait_parks_until_another_fiber_sets_the_event) {
    grove::Event ev;
    std::vector<std::string> seq;
    auto setter = grove::spawn([&] {
        seq.push_back("setter");
        ev.set();
        seq.push_back("set");
    });
    Reaper reaper;
    reaper.add(setter);
    seq.push_back("wait");
    BOOST_CHECK(ev.wait(5s));
    seq.push_back("woken");
    setter.join(5s);
    const std::vector<std::string> expected{"wait", "setter", "set", "woken"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(set_wakes_every_waiter_in_fifo_order) {
    grove::Event ev;
    std::vector<int> woken;
    std::vector<grove::Fiber<bool>> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.push_back(grove::spawn([&ev, &woken, i] {
            const bool r = ev.wait();
            woken.push_back(i);
            return r;
        }));
    }
    Reaper reaper;
    reaper.add(waiters);
    grove::this_fiber::yield();  // all three park
    BOOST_CHECK(woken.empty());
    ev.set();
    for (auto& w : waiters) {
        BOOST_CHECK(w.join(5s));
    }
    const std::vector<int> expected{0, 1, 2};
    BOOST_CHECK_EQUAL_COLLECTIONS(woken.begin(), woken.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(wait_with_timeout_returns_false_when_the_deadline_passes) {
    grove::Event ev;
    const auto t0 = Clock::now();
    BOOST_CHECK(!ev.wait(20ms));
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK(!ev.is_set());
}

BOOST_AUTO_TEST_CASE(wait_with_timeout_returns_true_when_set_in_time) {
    grove::Event ev;
    auto setter = grove::spawn([&ev] {
        grove::this_fiber::sleep_for(5ms);
        ev.set();
    });
    Reaper reaper;
    reaper.add(setter);
    const auto t0 = Clock::now();
    BOOST_CHECK(ev.wait(5s));
    BOOST_CHECK(Clock::now() - t0 < 4s);
    setter.join(5s);
}

BOOST_AUTO_TEST_CASE(wait_with_a_negative_timeout_returns_false_at_once) {
    grove::Event ev;
    const auto t0 = Clock::now();
    BOOST_CHECK(!ev.wait(-1s));
    BOOST_CHECK(!ev.wait(0ms));
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(wait_until_returns_false_at_the_time_point) {
    grove::Event ev;
    const auto t0 = Clock::now();
    BOOST_CHECK(!ev.wait_until(t0 + 15ms));
    BOOST_CHECK(Clock::now() - t0 >= 15ms);
    BOOST_CHECK(!ev.wait_until(std::chrono::system_clock::now() + 5ms));
    BOOST_CHECK(!ev.wait_until(t0 - 1s));
}

BOOST_AUTO_TEST_CASE(cleared_event_blocks_again) {
    grove::Event ev;
    ev.set();
    ev.clear();
    BOOST_CHECK(!ev.wait(10ms));
}

BOOST_AUTO_TEST_CASE(timed_out_waiter_does_not_disturb_later_waiters) {
    grove::Event ev;
    BOOST_CHECK(!ev.wait(5ms));
    int woken = 0;
    auto w = grove::spawn([&] {
        if (ev.wait()) {
            ++woken;
        }
    });
    Reaper reaper;
    reaper.add(w);
    grove::this_fiber::sleep_for(10ms);
    ev.set();
    w.join(5s);
    BOOST_CHECK_EQUAL(woken, 1);
}

BOOST_AUTO_TEST_CASE(killed_waiter_throws_fiber_exit_and_the_event_still_works) {
    grove::Event ev;
    int woken = 0;
    auto victim = grove::spawn([&] {
        ev.wait();
        ++woken;
    });
    auto survivor = grove::spawn([&] {
        ev.wait();
        ++woken;
    });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK_EQUAL(woken, 0);
    BOOST_CHECK(!survivor.ready());
    ev.set();
    survivor.join(5s);
    BOOST_CHECK_EQUAL(woken, 1);
}

BOOST_AUTO_TEST_CASE(wait_inside_a_timeout_scope_throws_timeout_error) {
    grove::Event ev;
    grove::Timeout t(20ms);
    try {
        ev.wait();
        BOOST_ERROR("wait was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
}

BOOST_AUTO_TEST_CASE(set_from_main_wakes_a_fiber_and_clear_rearms) {
    grove::Event ev;
    int rounds = 0;
    auto f = grove::spawn([&] {
        for (int i = 0; i < 3; ++i) {
            ev.wait();
            ev.clear();
            ++rounds;
        }
    });
    Reaper reaper;
    reaper.add(f);
    for (int i = 0; i < 3; ++i) {
        grove::this_fiber::yield();
        BOOST_CHECK_EQUAL(rounds, i);
        ev.set();
        grove::this_fiber::yield();
        BOOST_CHECK_EQUAL(rounds, i + 1);
    }
    f.join(5s);
    BOOST_CHECK_EQUAL(rounds, 3);
}

BOOST_AUTO_TEST_SUITE_END()

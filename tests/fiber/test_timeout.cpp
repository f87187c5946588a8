#define BOOST_TEST_MODULE timeout
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::Reaper;

namespace {

// Spins without suspending until `d` has passed.
void busy_for(Clock::duration d) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(timeout)

BOOST_AUTO_TEST_CASE(timeout_error_derives_from_runtime_error) {
    static_assert(std::is_base_of_v<std::runtime_error, grove::TimeoutError>);
    grove::Timeout t(10ms);
    try {
        grove::this_fiber::sleep_for(5s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const std::runtime_error& e) {
        BOOST_CHECK(dynamic_cast<const grove::TimeoutError*>(&e) != nullptr);
    }
}

BOOST_AUTO_TEST_CASE(sleep_past_the_deadline_throws_timeout_error_naming_the_scope) {
    const auto t0 = Clock::now();
    grove::Timeout t(20ms);
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 5s);
    BOOST_CHECK(t.expired());
}

BOOST_AUTO_TEST_CASE(timeout_does_not_fire_when_the_scope_ends_first) {
    {
        grove::Timeout t(300ms);
        grove::this_fiber::sleep_for(1ms);
    }
    BOOST_CHECK_NO_THROW(grove::this_fiber::sleep_for(400ms));
}

BOOST_AUTO_TEST_CASE(timeout_in_a_fiber_interrupts_that_fiber) {
    auto f = grove::spawn([] {
        grove::Timeout t(20ms);
        try {
            grove::this_fiber::sleep_for(10s);
        } catch (const grove::TimeoutError& e) {
            return e.source() == &t;
        }
        return false;
    });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK(f.join(5s));
}

BOOST_AUTO_TEST_CASE(timeout_scope_of_one_fiber_does_not_limit_another) {
    auto limited = grove::spawn([] {
        grove::Timeout t(10ms);
        grove::this_fiber::sleep_for(10s);
    });
    auto free = grove::spawn([] {
        grove::this_fiber::sleep_for(50ms);
        return 1;
    });
    Reaper reaper;
    reaper.add(limited);
    reaper.add(free);
    BOOST_CHECK_THROW(limited.join(5s), grove::TimeoutError);
    BOOST_CHECK_EQUAL(free.join(5s), 1);
}

BOOST_AUTO_TEST_CASE(fiber_that_never_suspends_is_not_interrupted_until_it_suspends) {
    grove::Timeout t(5ms);
    BOOST_CHECK_NO_THROW(busy_for(20ms));
    BOOST_CHECK(t.expired());
    const auto t0 = Clock::now();
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep after the deadline was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    BOOST_CHECK(Clock::now() - t0 < 1s);
}

BOOST_AUTO_TEST_CASE(inner_timeout_firing_first_is_reported) {
    grove::Timeout outer(2s);
    {
        grove::Timeout inner(20ms);
        try {
            grove::this_fiber::sleep_for(10s);
            BOOST_ERROR("sleep was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &inner);
            BOOST_CHECK(e.source() != &outer);
        }
    }
    BOOST_CHECK(!outer.expired());
    // The outer scope stays armed and is not triggered by the inner one.
    BOOST_CHECK_NO_THROW(grove::this_fiber::sleep_for(10ms));
}

BOOST_AUTO_TEST_CASE(outer_timeout_firing_first_is_reported_as_the_outer_one) {
    grove::Timeout outer(20ms);
    const grove::Timeout* inner_addr = nullptr;
    try {
        grove::Timeout inner(2s);
        inner_addr = &inner;
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &outer);
        BOOST_CHECK(e.source() != inner_addr);
    }
    BOOST_CHECK(outer.expired());
}

BOOST_AUTO_TEST_CASE(three_nested_timeouts_report_the_middle_one_when_it_fires_first) {
    grove::Timeout outer(3s);
    grove::Timeout middle(20ms);
    grove::Timeout inner(2s);
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &middle);
    }
}

BOOST_AUTO_TEST_CASE(timeout_that_fired_once_is_disarmed) {
    grove::Timeout t(10ms);
    BOOST_CHECK_THROW(grove::this_fiber::sleep_for(5s), grove::TimeoutError);
    const auto t0 = Clock::now();
    BOOST_CHECK_NO_THROW(grove::this_fiber::sleep_for(20ms));
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
    BOOST_CHECK(t.expired());
}

BOOST_AUTO_TEST_CASE(expired_turns_true_once_the_deadline_passes) {
    grove::Timeout t(15ms);
    BOOST_CHECK(!t.expired());
    busy_for(25ms);
    BOOST_CHECK(t.expired());
    t.cancel();
}

BOOST_AUTO_TEST_CASE(deadline_is_the_construction_time_plus_the_duration) {
    const auto before = Clock::now();
    grove::Timeout t(100ms);
    const auto after = Clock::now();
    BOOST_CHECK(t.deadline() >= before + 100ms);
    BOOST_CHECK(t.deadline() <= after + 100ms);
}

BOOST_AUTO_TEST_CASE(cancel_disarms_the_scope) {
    grove::Timeout t(10ms);
    t.cancel();
    BOOST_CHECK_NO_THROW(grove::this_fiber::sleep_for(30ms));
}

BOOST_AUTO_TEST_CASE(cancel_of_the_inner_scope_keeps_the_outer_armed) {
    grove::Timeout outer(30ms);
    grove::Timeout inner(10ms);
    inner.cancel();
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &outer);
    }
}

BOOST_AUTO_TEST_CASE(timeout_constructed_from_a_time_point_fires_at_it) {
    const auto t0 = Clock::now();
    grove::Timeout t(t0 + 20ms);
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
}

BOOST_AUTO_TEST_CASE(timeout_constructed_from_a_system_clock_time_point_fires) {
    const auto t0 = Clock::now();
    grove::Timeout t(std::chrono::system_clock::now() + 20ms);
    BOOST_CHECK_THROW(grove::this_fiber::sleep_for(10s), grove::TimeoutError);
    BOOST_CHECK(Clock::now() - t0 >= 19ms);
    BOOST_CHECK(Clock::now() - t0 < 5s);
}

BOOST_AUTO_TEST_CASE(negative_timeout_interrupts_the_first_suspension) {
    grove::Timeout t(-1s);
    BOOST_CHECK(t.expired());
    const auto t0 = Clock::now();
    BOOST_CHECK_THROW(grove::this_fiber::sleep_for(10s), grove::TimeoutError);
    BOOST_CHECK(Clock::now() - t0 < 1s);
}

BOOST_AUTO_TEST_CASE(timeout_interrupts_a_join) {
    auto f = grove::spawn([] { grove::this_fiber::sleep_for(10s); });
    Reaper reaper;
    reaper.add(f);
    {
        grove::Timeout t(20ms);
        try {
            f.join();
            BOOST_ERROR("join was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &t);
        }
    }
    BOOST_CHECK(f.valid());
    BOOST_CHECK(!f.ready());
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(timeout_interrupts_an_event_wait) {
    grove::Event ev;
    grove::Timeout t(20ms);
    try {
        ev.wait();
        BOOST_ERROR("wait was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
}

BOOST_AUTO_TEST_CASE(a_timed_wait_that_ends_first_returns_false_instead_of_throwing) {
    grove::Event ev;
    grove::Timeout t(2s);
    bool r = true;
    BOOST_CHECK_NO_THROW(r = ev.wait(10ms));
    BOOST_CHECK(!r);
}

BOOST_AUTO_TEST_CASE(kill_inside_a_timeout_scope_raises_fiber_exit) {
    auto f = grove::spawn([] {
        grove::Timeout t(5s);
        grove::this_fiber::sleep_for(10s);
    });
    Reaper reaper;
    reaper.add(f);
    grove::this_fiber::yield();
    f.kill();
    BOOST_CHECK_THROW(f.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_CASE(many_short_lived_scopes_leave_no_trace) {
    for (int i = 0; i < 10000; ++i) {
        grove::Timeout t(std::chrono::milliseconds(1 + i % 7));
    }
    for (int i = 0; i < 100; ++i) {
        grove::Timeout t(1s);
        grove::this_fiber::yield();
    }
    BOOST_CHECK_NO_THROW(grove::this_fiber::sleep_for(20ms));
}

BOOST_AUTO_TEST_CASE(with_timeout_returns_the_result_of_fn) {
    const int r = grove::with_timeout(1s, [] {
        grove::this_fiber::sleep_for(1ms);
        return 7;
    });
    BOOST_CHECK_EQUAL(r, 7);
}

BOOST_AUTO_TEST_CASE(with_timeout_throws_timeout_error_when_fn_is_too_slow) {
    int after = 0;
    const auto t0 = Clock::now();
    BOOST_CHECK_THROW(grove::with_timeout(20ms,
                                          [&after] {
                                              grove::this_fiber::sleep_for(10s);
                                              ++after;
                                              return 1;
                                          }),
                      grove::TimeoutError);
    BOOST_CHECK_EQUAL(after, 0);
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
    BOOST_CHECK(Clock::now() - t0 < 5s);
}

BOOST_AUTO_TEST_CASE(with_timeout_works_for_void_fn) {
    int calls = 0;
    grove::with_timeout(1s, [&calls] {
        grove::this_fiber::yield();
        ++calls;
    });
    BOOST_CHECK_EQUAL(calls, 1);
    BOOST_CHECK_THROW(grove::with_timeout(10ms, [] { grove::this_fiber::sleep_for(10s); }),
                      grove::TimeoutError);
}

BOOST_AUTO_TEST_CASE(with_timeout_or_returns_fn_result_when_in_time) {
    const int r = grove::with_timeout_or(1s, -1, [] {
        grove::this_fiber::sleep_for(1ms);
        return 5;
    });
    BOOST_CHECK_EQUAL(r, 5);
}

BOOST_AUTO_TEST_CASE(with_timeout_or_returns_the_fallback_on_its_own_timeout) {
    const std::string r = grove::with_timeout_or(20ms, std::string("fallback"), [] {
        grove::this_fiber::sleep_for(10s);
        return std::string("late");
    });
    BOOST_CHECK_EQUAL(r, "fallback");
}

BOOST_AUTO_TEST_CASE(with_timeout_or_lets_an_outer_timeout_propagate) {
    grove::Timeout outer(20ms);
    try {
        grove::with_timeout_or(2s, -1, [] {
            grove::this_fiber::sleep_for(10s);
            return 1;
        });
        BOOST_ERROR("outer timeout did not propagate");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &outer);
    }
}

BOOST_AUTO_TEST_CASE(with_timeout_in_a_fiber_works_like_in_main) {
    auto f = grove::spawn([] {
        return grove::with_timeout_or(10ms, std::string("fallback"), [] {
            grove::this_fiber::sleep_for(10s);
            return std::string("late");
        });
    });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK_EQUAL(f.join(5s), "fallback");
}

BOOST_AUTO_TEST_CASE(timeout_in_main_works_while_other_fibers_run) {
    int ticks = 0;
    auto ticker = grove::spawn([&ticks] {
        for (int i = 0; i < 1000; ++i) {
            ++ticks;
            grove::this_fiber::sleep_for(1ms);
        }
    });
    Reaper reaper;
    reaper.add(ticker);
    BOOST_CHECK_EQUAL(grove::this_fiber::id(), 0u);
    grove::Timeout t(30ms);
    try {
        grove::this_fiber::sleep_for(10s);
        BOOST_ERROR("sleep in main was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    BOOST_CHECK(ticks > 0);
    ticker.kill();
    BOOST_CHECK_THROW(ticker.join(5s), grove::FiberExit);
}

BOOST_AUTO_TEST_SUITE_END()

#define BOOST_TEST_MODULE semaphore
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <algorithm>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::CaseDeadline;
using grove_test::Reaper;

BOOST_FIXTURE_TEST_SUITE(semaphore, CaseDeadline)

BOOST_AUTO_TEST_CASE(default_semaphore_holds_one_permit) {
    grove::Semaphore s;
    BOOST_CHECK_EQUAL(s.value(), 1);
    BOOST_CHECK(!s.locked());
    BOOST_CHECK(s.try_acquire());
    BOOST_CHECK(s.locked());
    BOOST_CHECK(!s.try_acquire());
    s.release();
    BOOST_CHECK_EQUAL(s.value(), 1);
}

BOOST_AUTO_TEST_CASE(acquire_takes_available_permits_without_blocking) {
    grove::Semaphore s(2);
    const auto t0 = Clock::now();
    s.acquire();
    s.acquire();
    BOOST_CHECK(Clock::now() - t0 < 500ms);
    BOOST_CHECK_EQUAL(s.value(), 0);
    BOOST_CHECK(s.locked());
    BOOST_CHECK(!s.try_acquire());
    s.release(2);
    BOOST_CHECK_EQUAL(s.value(), 2);
}

BOOST_AUTO_TEST_CASE(zero_initial_count_is_allowed) {
    grove::Semaphore s(0);
    BOOST_CHECK_EQUAL(s.value(), 0);
    BOOST_CHECK(!s.try_acquire());
}

BOOST_AUTO_TEST_CASE(negative_initial_count_throws_invalid_argument) {
    BOOST_CHECK_THROW(grove::Semaphore(-1), std::invalid_argument);
    BOOST_CHECK_THROW(grove::BoundedSemaphore(-3), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(release_of_a_negative_count_throws_invalid_argument) {
    grove::Semaphore s(1);
    BOOST_CHECK_THROW(s.release(-1), std::invalid_argument);
    BOOST_CHECK_EQUAL(s.value(), 1);
}

BOOST_AUTO_TEST_CASE(acquire_blocks_until_another_fiber_releases) {
    grove::Semaphore s(0);
    std::vector<std::string> seq;
    auto releaser = grove::spawn([&] {
        seq.push_back("release");
        s.release();
    });
    Reaper reaper;
    reaper.add(releaser);
    seq.push_back("acquire");
    BOOST_CHECK(s.try_acquire_for(5s));
    seq.push_back("acquired");
    releaser.join(5s);
    BOOST_CHECK_EQUAL(s.value(), 0);
    const std::vector<std::string> expected{"acquire", "release", "acquired"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(release_hands_permits_to_waiters_in_fifo_order) {
    grove::Semaphore s(0);
    std::vector<int> order;
    std::vector<grove::Fiber<void>> waiters;
    for (int i = 0; i < 4; ++i) {
        waiters.push_back(grove::spawn([&s, &order, i] {
            s.acquire();
            order.push_back(i);
        }));
    }
    Reaper reaper;
    reaper.add(waiters);
    grove::this_fiber::yield();
    BOOST_CHECK(order.empty());
    for (int i = 0; i < 4; ++i) {
        s.release();
        grove::this_fiber::yield();
        BOOST_CHECK_EQUAL(order.size(), static_cast<std::size_t>(i + 1));
    }
    grove::join_all(waiters);
    const std::vector<int> expected{0, 1, 2, 3};
    BOOST_CHECK_EQUAL_COLLECTIONS(order.begin(), order.end(), expected.begin(), expected.end());
    BOOST_CHECK_EQUAL(s.value(), 0);
}

BOOST_AUTO_TEST_CASE(release_n_wakes_exactly_n_waiters) {
    grove::Semaphore s(0);
    int acquired = 0;
    std::vector<grove::Fiber<void>> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.push_back(grove::spawn([&] {
            s.acquire();
            ++acquired;
        }));
    }
    Reaper reaper;
    reaper.add(waiters);
    grove::this_fiber::yield();
    s.release(2);
    grove::this_fiber::sleep_for(5ms);
    BOOST_CHECK_EQUAL(acquired, 2);
    BOOST_CHECK_EQUAL(s.value(), 0);
    BOOST_CHECK(!waiters[2].ready());
    s.release(1);
    grove::join_all(waiters);
    BOOST_CHECK_EQUAL(acquired, 3);
    BOOST_CHECK_EQUAL(s.value(), 0);
}

BOOST_AUTO_TEST_CASE(a_released_permit_goes_to_the_waiter_not_to_a_later_try_acquire) {
    grove::Semaphore s(0);
    bool got = false;
    auto waiter = grove::spawn([&] {
        s.acquire();
        got = true;
    });
    Reaper reaper;
    reaper.add(waiter);
    grove::this_fiber::yield();  // the waiter parks
    s.release();
    BOOST_CHECK(!s.try_acquire());  // handed off already
    BOOST_CHECK_EQUAL(s.value(), 0);
    waiter.join(5s);
    BOOST_CHECK(got);
    BOOST_CHECK_EQUAL(s.value(), 0);
}

BOOST_AUTO_TEST_CASE(try_acquire_for_returns_false_when_the_deadline_passes) {
    grove::Semaphore s(0);
    const auto t0 = Clock::now();
    BOOST_CHECK(!s.try_acquire_for(20ms));
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK_EQUAL(s.value(), 0);
}

BOOST_AUTO_TEST_CASE(try_acquire_for_returns_true_when_released_in_time) {
    grove::Semaphore s(0);
    auto releaser = grove::spawn([&s] {
        grove::this_fiber::sleep_for(5ms);
        s.release();
    });
    Reaper reaper;
    reaper.add(releaser);
    BOOST_CHECK(s.try_acquire_for(5s));
    BOOST_CHECK_EQUAL(s.value(), 0);
    releaser.join(5s);
}

BOOST_AUTO_TEST_CASE(try_acquire_for_a_negative_duration_polls) {
    grove::Semaphore s(1);
    const auto t0 = Clock::now();
    BOOST_CHECK(s.try_acquire_for(-1s));
    BOOST_CHECK(!s.try_acquire_for(-1s));
    BOOST_CHECK(Clock::now() - t0 < 500ms);
}

BOOST_AUTO_TEST_CASE(try_acquire_until_a_time_point) {
    grove::Semaphore s(0);
    const auto t0 = Clock::now();
    BOOST_CHECK(!s.try_acquire_until(t0 + 15ms));
    BOOST_CHECK(Clock::now() - t0 >= 15ms);
    s.release();
    BOOST_CHECK(s.try_acquire_until(std::chrono::system_clock::now() + 1s));
}

BOOST_AUTO_TEST_CASE(timed_out_waiter_does_not_consume_a_later_permit) {
    grove::Semaphore s(0);
    auto waiter = grove::spawn([&s] { return s.try_acquire_for(10ms); });
    Reaper reaper;
    reaper.add(waiter);
    BOOST_CHECK(!waiter.join(5s));
    s.release();
    BOOST_CHECK_EQUAL(s.value(), 1);
    BOOST_CHECK(s.try_acquire());
}

BOOST_AUTO_TEST_CASE(killed_waiter_does_not_consume_a_permit) {
    grove::Semaphore s(0);
    int acquired_by_victim = 0;
    int acquired_by_survivor = 0;
    auto victim = grove::spawn([&] {
        s.acquire();
        ++acquired_by_victim;
    });
    auto survivor = grove::spawn([&] {
        s.acquire();
        ++acquired_by_survivor;
    });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    s.release();
    survivor.join(5s);
    BOOST_CHECK_EQUAL(acquired_by_victim, 0);
    BOOST_CHECK_EQUAL(acquired_by_survivor, 1);
    BOOST_CHECK_EQUAL(s.value(), 0);
    s.release();
    BOOST_CHECK_EQUAL(s.value(), 1);
}

BOOST_AUTO_TEST_CASE(killed_waiter_already_handed_a_permit_does_not_lose_it) {
    grove::Semaphore s(0);
    bool got = false;
    auto victim = grove::spawn([&] {
        s.acquire();
        got = true;
    });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();  // parks
    s.release();                 // hands the permit to the victim...
    victim.kill();               // ...which is killed before it runs
    try {
        victim.join(5s);
    } catch (const grove::FiberExit&) {
    }
    // Either the victim got the permit (and keeps it) or it went back.
    BOOST_CHECK_EQUAL(s.value() + (got ? 1 : 0), 1);
}

BOOST_AUTO_TEST_CASE(acquire_inside_a_timeout_scope_throws_timeout_error) {
    grove::Semaphore s(0);
    {
        grove::Timeout t(20ms);
        try {
            s.acquire();
            BOOST_ERROR("acquire was not interrupted");
        } catch (const grove::TimeoutError& e) {
            BOOST_CHECK(e.source() == &t);
        }
    }
    s.release();
    BOOST_CHECK_EQUAL(s.value(), 1);
}

BOOST_AUTO_TEST_CASE(bounded_semaphore_refuses_release_above_its_initial_count) {
    grove::BoundedSemaphore s(2);
    BOOST_CHECK_THROW(s.release(), std::logic_error);
    BOOST_CHECK_EQUAL(s.value(), 2);
    s.acquire();
    BOOST_CHECK_THROW(s.release(2), std::logic_error);
    BOOST_CHECK_EQUAL(s.value(), 1);
    BOOST_CHECK_NO_THROW(s.release());
    BOOST_CHECK_EQUAL(s.value(), 2);
}

BOOST_AUTO_TEST_CASE(bounded_semaphore_hands_off_to_waiters_like_a_semaphore) {
    grove::BoundedSemaphore s(1);
    s.acquire();
    bool got = false;
    auto waiter = grove::spawn([&] {
        s.acquire();
        got = true;
        s.release();
    });
    Reaper reaper;
    reaper.add(waiter);
    grove::this_fiber::yield();
    BOOST_CHECK_NO_THROW(s.release());
    waiter.join(5s);
    BOOST_CHECK(got);
    BOOST_CHECK_EQUAL(s.value(), 1);
}

BOOST_AUTO_TEST_CASE(semaphore_limits_concurrency_of_many_fibers) {
    grove::Semaphore s(3);
    int running = 0;
    int max_running = 0;
    std::vector<grove::Fiber<void>> workers;
    for (int i = 0; i < 20; ++i) {
        workers.push_back(grove::spawn([&] {
            s.acquire();
            ++running;
            max_running = std::max(max_running, running);
            grove::this_fiber::sleep_for(1ms);
            --running;
            s.release();
        }));
    }
    Reaper reaper;
    reaper.add(workers);
    grove::join_all(workers);
    BOOST_CHECK_EQUAL(max_running, 3);
    BOOST_CHECK_EQUAL(s.value(), 3);
}

BOOST_AUTO_TEST_SUITE_END()

#define BOOST_TEST_MODULE mutex_condvar
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using grove_test::CaseDeadline;
using grove_test::Reaper;

BOOST_FIXTURE_TEST_SUITE(mutex, CaseDeadline)

BOOST_AUTO_TEST_CASE(lock_and_unlock_from_one_fiber) {
    grove::Mutex m;
    BOOST_CHECK(!m.locked());
    m.lock();
    BOOST_CHECK(m.locked());
    m.unlock();
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(works_with_lock_guard_unique_lock_and_scoped_lock) {
    grove::Mutex m;
    {
        std::lock_guard<grove::Mutex> g(m);
        BOOST_CHECK(m.locked());
    }
    BOOST_CHECK(!m.locked());
    {
        std::unique_lock<grove::Mutex> lk(m);
        BOOST_CHECK(lk.owns_lock());
        lk.unlock();
        BOOST_CHECK(!m.locked());
        lk.lock();
        BOOST_CHECK(m.locked());
    }
    BOOST_CHECK(!m.locked());
    {
        std::unique_lock<grove::Mutex> lk(m, 10ms);
        BOOST_CHECK(lk.owns_lock());
    }
    grove::Mutex m2;
    {
        std::scoped_lock both(m, m2);
        BOOST_CHECK(m.locked());
        BOOST_CHECK(m2.locked());
    }
    BOOST_CHECK(!m.locked());
    BOOST_CHECK(!m2.locked());
}

BOOST_AUTO_TEST_CASE(lock_blocks_until_the_owner_unlocks) {
    grove::Mutex m;
    std::vector<std::string> seq;
    m.lock();
    auto other = grove::spawn([&] {
        seq.push_back("lock");
        std::lock_guard<grove::Mutex> g(m);
        seq.push_back("locked");
    });
    Reaper reaper;
    reaper.add(other);
    grove::this_fiber::yield();
    BOOST_CHECK(!other.ready());
    seq.push_back("unlock");
    m.unlock();
    other.join(5s);
    BOOST_CHECK(!m.locked());
    const std::vector<std::string> expected{"lock", "unlock", "locked"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(waiters_get_the_lock_in_fifo_order) {
    grove::Mutex m;
    std::vector<int> order;
    m.lock();
    std::vector<grove::Fiber<void>> fibers;
    for (int i = 0; i < 4; ++i) {
        fibers.push_back(grove::spawn([&m, &order, i] {
            std::lock_guard<grove::Mutex> g(m);
            order.push_back(i);
            grove::this_fiber::yield();  // hold it across a switch
        }));
    }
    Reaper reaper;
    reaper.add(fibers);
    grove::this_fiber::yield();
    m.unlock();
    // Main competes again right away: it must queue behind the four.
    m.lock();
    order.push_back(99);
    m.unlock();
    grove::join_all(fibers);
    const std::vector<int> expected{0, 1, 2, 3, 99};
    BOOST_CHECK_EQUAL_COLLECTIONS(order.begin(), order.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(try_lock_fails_while_another_fiber_holds_the_mutex) {
    grove::Mutex m;
    bool result = true;
    m.lock();
    auto other = grove::spawn([&] { result = m.try_lock(); });
    Reaper reaper;
    reaper.add(other);
    other.join(5s);
    BOOST_CHECK(!result);
    m.unlock();
    BOOST_CHECK(m.try_lock());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(try_lock_for_returns_false_when_the_deadline_passes) {
    grove::Mutex m;
    m.lock();
    auto other = grove::spawn([&m] {
        const auto t0 = Clock::now();
        const bool got = m.try_lock_for(20ms);
        return std::make_pair(got, Clock::now() - t0);
    });
    Reaper reaper;
    reaper.add(other);
    const auto [got, took] = other.join(5s);
    BOOST_CHECK(!got);
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK(m.locked());
    m.unlock();  // still ours
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(try_lock_for_succeeds_when_unlocked_in_time) {
    grove::Mutex m;
    m.lock();
    auto other = grove::spawn([&m] {
        const bool got = m.try_lock_for(5s);
        if (got) {
            m.unlock();
        }
        return got;
    });
    Reaper reaper;
    reaper.add(other);
    grove::this_fiber::sleep_for(5ms);
    m.unlock();
    BOOST_CHECK(other.join(5s));
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(try_lock_until_a_time_point) {
    grove::Mutex m;
    m.lock();
    auto other = grove::spawn([&m] {
        return m.try_lock_until(Clock::now() + 10ms) ||
               m.try_lock_until(std::chrono::system_clock::now() + 10ms);
    });
    Reaper reaper;
    reaper.add(other);
    BOOST_CHECK(!other.join(5s));
    m.unlock();
}

BOOST_AUTO_TEST_CASE(relock_by_the_owner_throws_resource_deadlock_would_occur) {
    grove::Mutex m;
    m.lock();
    try {
        m.lock();
        BOOST_ERROR("relock did not throw");
    } catch (const std::system_error& e) {
        BOOST_CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    }
    BOOST_CHECK(m.locked());
    m.unlock();
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(relock_by_the_owner_fiber_throws_too) {
    grove::Mutex m;
    auto f = grove::spawn([&m] {
        std::lock_guard<grove::Mutex> g(m);
        try {
            m.lock();
        } catch (const std::system_error& e) {
            return e.code() == std::errc::resource_deadlock_would_occur;
        }
        return false;
    });
    Reaper reaper;
    reaper.add(f);
    BOOST_CHECK(f.join(5s));
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(unlock_by_a_non_owner_throws_operation_not_permitted) {
    grove::Mutex m;
    m.lock();
    auto other = grove::spawn([&m] {
        try {
            m.unlock();
        } catch (const std::system_error& e) {
            return e.code() == std::errc::operation_not_permitted;
        }
        return false;
    });
    Reaper reaper;
    reaper.add(other);
    BOOST_CHECK(other.join(5s));
    BOOST_CHECK(m.locked());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(unlock_of_an_unlocked_mutex_throws_operation_not_permitted) {
    grove::Mutex m;
    try {
        m.unlock();
        BOOST_ERROR("unlock did not throw");
    } catch (const std::system_error& e) {
        BOOST_CHECK(e.code() == std::errc::operation_not_permitted);
    }
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(killed_waiter_does_not_get_the_lock) {
    grove::Mutex m;
    int victim_locked = 0;
    int survivor_locked = 0;
    m.lock();
    auto victim = grove::spawn([&] {
        std::lock_guard<grove::Mutex> g(m);
        ++victim_locked;
    });
    auto survivor = grove::spawn([&] {
        std::lock_guard<grove::Mutex> g(m);
        ++survivor_locked;
    });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK(m.locked());
    m.unlock();
    survivor.join(5s);
    BOOST_CHECK_EQUAL(victim_locked, 0);
    BOOST_CHECK_EQUAL(survivor_locked, 1);
    BOOST_CHECK(!m.locked());
    BOOST_CHECK(m.try_lock());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(killed_waiter_already_handed_the_lock_does_not_keep_it) {
    grove::Mutex m;
    m.lock();
    auto victim = grove::spawn([&m] { std::lock_guard<grove::Mutex> g(m); });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();
    m.unlock();    // may hand the lock straight to the victim...
    victim.kill(); // ...which is killed before it runs
    try {
        victim.join(5s);
    } catch (const grove::FiberExit&) {
    }
    BOOST_CHECK(!m.locked());
    BOOST_CHECK(m.try_lock());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(lock_inside_a_timeout_scope_throws_timeout_error_without_the_lock) {
    grove::Mutex m;
    m.lock();
    auto other = grove::spawn([&m] {
        grove::Timeout t(20ms);
        try {
            m.lock();
        } catch (const grove::TimeoutError& e) {
            return e.source() == &t;
        }
        return false;
    });
    Reaper reaper;
    reaper.add(other);
    BOOST_CHECK(other.join(5s));
    m.unlock();
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(condvar, CaseDeadline)

BOOST_AUTO_TEST_CASE(wait_with_a_predicate_returns_once_it_holds) {
    grove::Mutex m;
    grove::CondVar cv;
    int value = 0;
    auto waiter = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        cv.wait(lk, [&] { return value == 3; });
        BOOST_CHECK(lk.owns_lock());
        return value;
    });
    Reaper reaper;
    reaper.add(waiter);
    for (int i = 1; i <= 3; ++i) {
        grove::this_fiber::yield();
        {
            std::lock_guard<grove::Mutex> g(m);
            value = i;
        }
        cv.notify_all();
    }
    BOOST_CHECK_EQUAL(waiter.join(5s), 3);
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(wait_releases_the_lock_while_parked) {
    grove::Mutex m;
    grove::CondVar cv;
    bool ready = false;
    auto waiter = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        cv.wait(lk, [&] { return ready; });
    });
    Reaper reaper;
    reaper.add(waiter);
    grove::this_fiber::yield();
    BOOST_CHECK(!m.locked());
    BOOST_CHECK(m.try_lock());
    ready = true;
    cv.notify_one();
    m.unlock();
    waiter.join(5s);
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(notify_one_wakes_exactly_one_waiter_in_fifo_order) {
    grove::Mutex m;
    grove::CondVar cv;
    std::vector<int> woken;
    std::vector<grove::Fiber<void>> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.push_back(grove::spawn([&, i] {
            std::unique_lock<grove::Mutex> lk(m);
            cv.wait(lk);
            woken.push_back(i);
        }));
    }
    Reaper reaper;
    reaper.add(waiters);
    grove::this_fiber::yield();
    for (int round = 1; round <= 3; ++round) {
        cv.notify_one();
        grove::this_fiber::sleep_for(2ms);
        BOOST_CHECK_EQUAL(woken.size(), static_cast<std::size_t>(round));
    }
    grove::join_all(waiters);
    const std::vector<int> expected{0, 1, 2};
    BOOST_CHECK_EQUAL_COLLECTIONS(woken.begin(), woken.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(notify_all_wakes_every_waiter) {
    grove::Mutex m;
    grove::CondVar cv;
    int woken = 0;
    std::vector<grove::Fiber<void>> waiters;
    for (int i = 0; i < 5; ++i) {
        waiters.push_back(grove::spawn([&] {
            std::unique_lock<grove::Mutex> lk(m);
            cv.wait(lk);
            ++woken;
        }));
    }
    Reaper reaper;
    reaper.add(waiters);
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(woken, 0);
    cv.notify_all();
    grove::join_all(waiters);
    BOOST_CHECK_EQUAL(woken, 5);
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(notify_without_waiters_is_not_remembered) {
    grove::Mutex m;
    grove::CondVar cv;
    cv.notify_one();
    cv.notify_all();
    std::unique_lock<grove::Mutex> lk(m);
    BOOST_CHECK(cv.wait_for(lk, 10ms) == std::cv_status::timeout);
    BOOST_CHECK(lk.owns_lock());
}

BOOST_AUTO_TEST_CASE(wait_for_returns_timeout_and_holds_the_lock_again) {
    grove::Mutex m;
    grove::CondVar cv;
    std::unique_lock<grove::Mutex> lk(m);
    const auto t0 = Clock::now();
    BOOST_CHECK(cv.wait_for(lk, 20ms) == std::cv_status::timeout);
    const auto took = Clock::now() - t0;
    BOOST_CHECK(took >= 20ms);
    BOOST_CHECK(took < 1s);
    BOOST_CHECK(m.locked());
    BOOST_CHECK_NO_THROW(lk.unlock());  // we are the owner again
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(wait_for_returns_no_timeout_when_notified) {
    grove::Mutex m;
    grove::CondVar cv;
    auto notifier = grove::spawn([&] {
        grove::this_fiber::sleep_for(5ms);
        std::lock_guard<grove::Mutex> g(m);
        cv.notify_one();
    });
    Reaper reaper;
    reaper.add(notifier);
    std::unique_lock<grove::Mutex> lk(m);
    BOOST_CHECK(cv.wait_for(lk, 5s) == std::cv_status::no_timeout);
    BOOST_CHECK(lk.owns_lock());
    lk.unlock();
    notifier.join(5s);
}

BOOST_AUTO_TEST_CASE(wait_for_with_a_predicate_returns_false_on_timeout) {
    grove::Mutex m;
    grove::CondVar cv;
    std::unique_lock<grove::Mutex> lk(m);
    const auto t0 = Clock::now();
    BOOST_CHECK(!cv.wait_for(lk, 15ms, [] { return false; }));
    BOOST_CHECK(Clock::now() - t0 >= 15ms);
    BOOST_CHECK(cv.wait_for(lk, 15ms, [] { return true; }));
    BOOST_CHECK(lk.owns_lock());
}

BOOST_AUTO_TEST_CASE(wait_until_a_system_clock_time_point_times_out) {
    grove::Mutex m;
    grove::CondVar cv;
    std::unique_lock<grove::Mutex> lk(m);
    const auto t0 = Clock::now();
    BOOST_CHECK(cv.wait_until(lk, std::chrono::system_clock::now() + 15ms) == std::cv_status::timeout);
    BOOST_CHECK(Clock::now() - t0 >= 14ms);
    BOOST_CHECK(!cv.wait_until(lk, Clock::now() + 5ms, [] { return false; }));
    BOOST_CHECK(lk.owns_lock());
}

BOOST_AUTO_TEST_CASE(killed_waiter_holds_the_lock_again_when_fiber_exit_propagates) {
    grove::Mutex m;
    grove::CondVar cv;
    bool held_during_unwind = false;
    auto victim = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        try {
            cv.wait(lk);
        } catch (const grove::FiberExit&) {
            held_during_unwind = lk.owns_lock() && m.locked();
            throw;
        }
    });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();
    BOOST_CHECK(!m.locked());
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK(held_during_unwind);
    BOOST_CHECK(!m.locked());  // the unique_lock's destructor unlocked cleanly
    BOOST_CHECK(m.try_lock());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(killed_waiter_waits_for_the_lock_before_fiber_exit_propagates) {
    grove::Mutex m;
    grove::CondVar cv;
    std::vector<std::string> seq;
    auto victim = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        try {
            cv.wait(lk);
        } catch (const grove::FiberExit&) {
            seq.push_back(lk.owns_lock() ? "victim-relocked" : "victim-no-lock");
            throw;
        }
    });
    Reaper reaper;
    reaper.add(victim);
    grove::this_fiber::yield();
    m.lock();  // main holds the lock when the kill lands
    victim.kill();
    grove::this_fiber::sleep_for(5ms);
    seq.push_back("main-unlock");
    m.unlock();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK(!m.locked());
    const std::vector<std::string> expected{"main-unlock", "victim-relocked"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
    BOOST_CHECK(m.try_lock());
    m.unlock();
}

BOOST_AUTO_TEST_CASE(killed_waiter_is_not_counted_by_notify_one) {
    grove::Mutex m;
    grove::CondVar cv;
    int woken = 0;
    auto victim = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        cv.wait(lk);
        ++woken;
    });
    auto survivor = grove::spawn([&] {
        std::unique_lock<grove::Mutex> lk(m);
        cv.wait(lk);
        ++woken;
    });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    cv.notify_one();  // must reach the survivor, not the dead victim
    survivor.join(5s);
    BOOST_CHECK_EQUAL(woken, 1);
    BOOST_CHECK(!m.locked());
}

BOOST_AUTO_TEST_CASE(wait_inside_a_timeout_scope_throws_with_the_lock_held_again) {
    grove::Mutex m;
    grove::CondVar cv;
    std::unique_lock<grove::Mutex> lk(m);
    grove::Timeout t(20ms);
    try {
        cv.wait(lk);
        BOOST_ERROR("wait was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
    BOOST_CHECK(lk.owns_lock());
    BOOST_CHECK(m.locked());
    BOOST_CHECK_NO_THROW(lk.unlock());
}

BOOST_AUTO_TEST_CASE(wait_works_with_the_mutex_itself_as_the_lock) {
    grove::Mutex m;
    grove::CondVar cv;
    bool flag = false;
    auto setter = grove::spawn([&] {
        std::lock_guard<grove::Mutex> g(m);
        flag = true;
        cv.notify_all();
    });
    Reaper reaper;
    reaper.add(setter);
    m.lock();
    const bool ok = cv.wait_for(m, 5s, [&] { return flag; });
    BOOST_CHECK(ok);
    BOOST_CHECK(m.locked());
    m.unlock();
    setter.join(5s);
}

BOOST_AUTO_TEST_SUITE_END()

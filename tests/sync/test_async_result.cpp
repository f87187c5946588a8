#define BOOST_TEST_MODULE async_result
#include <boost/test/unit_test.hpp>

#include "../support/fiber_cases.hpp"

#include <grove/fiber.hpp>
#include <grove/sync.hpp>
#include <grove/timeout.hpp>

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

}  // namespace

BOOST_FIXTURE_TEST_SUITE(async_result, CaseDeadline)

BOOST_AUTO_TEST_CASE(a_new_result_is_not_ready) {
    grove::AsyncResult<int> r;
    BOOST_CHECK(!r.ready());
    BOOST_CHECK(!r.successful());
}

BOOST_AUTO_TEST_CASE(get_returns_a_value_already_set) {
    grove::AsyncResult<int> r;
    r.set_value(5);
    BOOST_CHECK(r.ready());
    BOOST_CHECK(r.successful());
    BOOST_CHECK_EQUAL(r.get(), 5);
    BOOST_CHECK_EQUAL(r.get(), 5);  // repeatable
    BOOST_CHECK_EQUAL(r.get(1ms), 5);
}

BOOST_AUTO_TEST_CASE(get_waits_for_the_value_set_by_another_fiber) {
    grove::AsyncResult<std::string> r;
    std::vector<std::string> seq;
    auto producer = grove::spawn([&] {
        seq.push_back("produce");
        grove::this_fiber::sleep_for(5ms);
        r.set_value("hello");
    });
    Reaper reaper;
    reaper.add(producer);
    seq.push_back("get");
    BOOST_CHECK_EQUAL(r.get(5s), "hello");
    seq.push_back("got");
    producer.join(5s);
    const std::vector<std::string> expected{"get", "produce", "got"};
    BOOST_CHECK_EQUAL_COLLECTIONS(seq.begin(), seq.end(), expected.begin(), expected.end());
}

BOOST_AUTO_TEST_CASE(every_waiter_gets_the_value) {
    grove::AsyncResult<int> r;
    std::vector<grove::Fiber<int>> getters;
    for (int i = 0; i < 4; ++i) {
        getters.push_back(grove::spawn([&r, i] { return r.get() + i; }));
    }
    Reaper reaper;
    reaper.add(getters);
    grove::this_fiber::yield();
    r.set_value(100);
    int sum = 0;
    for (auto& g : getters) {
        sum += g.join(5s);
    }
    BOOST_CHECK_EQUAL(sum, 400 + 0 + 1 + 2 + 3);
}

BOOST_AUTO_TEST_CASE(get_with_timeout_throws_timeout_error_when_nothing_arrives) {
    grove::AsyncResult<int> r;
    const auto t0 = Clock::now();
    try {
        r.get(20ms);
        BOOST_ERROR("get did not throw");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == nullptr);
    }
    BOOST_CHECK(Clock::now() - t0 >= 20ms);
    BOOST_CHECK(Clock::now() - t0 < 1s);
    BOOST_CHECK(!r.ready());
    r.set_value(1);  // still usable
    BOOST_CHECK_EQUAL(r.get(1s), 1);
}

BOOST_AUTO_TEST_CASE(wait_with_timeout_returns_false_then_true) {
    grove::AsyncResult<int> r;
    BOOST_CHECK(!r.wait(10ms));
    r.set_value(2);
    BOOST_CHECK(r.wait(10ms));
    BOOST_CHECK(r.wait());
}

BOOST_AUTO_TEST_CASE(set_exception_makes_get_rethrow_the_custom_type) {
    grove::AsyncResult<int> r;
    auto producer = grove::spawn([&r] {
        grove::this_fiber::yield();
        r.set_exception(std::make_exception_ptr(CustomError(31)));
    });
    Reaper reaper;
    reaper.add(producer);
    try {
        r.get(5s);
        BOOST_ERROR("get did not throw");
    } catch (const CustomError& e) {
        BOOST_CHECK_EQUAL(e.code, 31);
    }
    BOOST_CHECK(r.ready());
    BOOST_CHECK(!r.successful());
    BOOST_CHECK_THROW(r.get(), CustomError);  // every get rethrows
    producer.join(5s);
}

BOOST_AUTO_TEST_CASE(setting_twice_throws_logic_error) {
    grove::AsyncResult<int> a;
    a.set_value(1);
    BOOST_CHECK_THROW(a.set_value(2), std::logic_error);
    BOOST_CHECK_THROW(a.set_exception(std::make_exception_ptr(CustomError(1))), std::logic_error);
    BOOST_CHECK_EQUAL(a.get(), 1);

    grove::AsyncResult<int> b;
    b.set_exception(std::make_exception_ptr(CustomError(2)));
    BOOST_CHECK_THROW(b.set_value(3), std::logic_error);
    BOOST_CHECK_THROW(b.get(), CustomError);
}

BOOST_AUTO_TEST_CASE(set_exception_with_null_throws_invalid_argument) {
    grove::AsyncResult<int> r;
    BOOST_CHECK_THROW(r.set_exception(nullptr), std::invalid_argument);
    BOOST_CHECK(!r.ready());
    grove::AsyncResult<void> v;
    BOOST_CHECK_THROW(v.set_exception(nullptr), std::invalid_argument);
    BOOST_CHECK(!v.ready());
}

BOOST_AUTO_TEST_CASE(move_only_values_are_held_and_handed_out_by_reference) {
    grove::AsyncResult<std::unique_ptr<int>> r;
    auto producer = grove::spawn([&r] { r.set_value(std::make_unique<int>(9)); });
    Reaper reaper;
    reaper.add(producer);
    std::unique_ptr<int>& v = r.get(5s);
    BOOST_REQUIRE(v != nullptr);
    BOOST_CHECK_EQUAL(*v, 9);
    std::unique_ptr<int> taken = std::move(r.get());
    BOOST_CHECK_EQUAL(*taken, 9);
    producer.join(5s);
}

BOOST_AUTO_TEST_CASE(void_result_get_returns_once_set) {
    grove::AsyncResult<void> r;
    BOOST_CHECK(!r.ready());
    BOOST_CHECK(!r.successful());
    int order = 0;
    int got_at = -1;
    auto getter = grove::spawn([&] {
        r.get();
        got_at = order++;
    });
    Reaper reaper;
    reaper.add(getter);
    grove::this_fiber::yield();
    BOOST_CHECK_EQUAL(got_at, -1);
    ++order;
    r.set_value();
    getter.join(5s);
    BOOST_CHECK_EQUAL(got_at, 1);
    BOOST_CHECK(r.ready());
    BOOST_CHECK(r.successful());
}

BOOST_AUTO_TEST_CASE(void_result_get_with_timeout_throws_timeout_error) {
    grove::AsyncResult<void> r;
    const auto t0 = Clock::now();
    BOOST_CHECK_THROW(r.get(15ms), grove::TimeoutError);
    BOOST_CHECK(Clock::now() - t0 >= 15ms);
    BOOST_CHECK(!r.wait(1ms));
}

BOOST_AUTO_TEST_CASE(void_result_rethrows_the_exception_and_refuses_a_second_set) {
    grove::AsyncResult<void> r;
    r.set_exception(std::make_exception_ptr(CustomError(4)));
    BOOST_CHECK(r.ready());
    BOOST_CHECK(!r.successful());
    BOOST_CHECK_THROW(r.get(), CustomError);
    BOOST_CHECK_THROW(r.set_value(), std::logic_error);
    grove::AsyncResult<void> s;
    s.set_value();
    BOOST_CHECK_THROW(s.set_value(), std::logic_error);
    BOOST_CHECK_NO_THROW(s.get(1s));
}

BOOST_AUTO_TEST_CASE(killed_getter_throws_fiber_exit_and_the_result_is_still_delivered) {
    grove::AsyncResult<int> r;
    auto victim = grove::spawn([&r] { return r.get(); });
    auto survivor = grove::spawn([&r] { return r.get(); });
    Reaper reaper;
    reaper.add(victim);
    reaper.add(survivor);
    grove::this_fiber::yield();
    victim.kill();
    BOOST_CHECK_THROW(victim.join(5s), grove::FiberExit);
    BOOST_CHECK(!r.ready());
    r.set_value(12);
    BOOST_CHECK_EQUAL(survivor.join(5s), 12);
}

BOOST_AUTO_TEST_CASE(get_inside_a_timeout_scope_throws_timeout_error) {
    grove::AsyncResult<int> r;
    grove::Timeout t(20ms);
    try {
        r.get();
        BOOST_ERROR("get was not interrupted");
    } catch (const grove::TimeoutError& e) {
        BOOST_CHECK(e.source() == &t);
    }
}

BOOST_AUTO_TEST_SUITE_END()

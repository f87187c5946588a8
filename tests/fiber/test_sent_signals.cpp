// The hub's side of signals sent to one fiber (what the shim's pthread_kill
// of a green thread uses): the marked fiber runs the sent-signal hook
// itself, as it resumes. A poke interrupts a wait in a signal window; any
// other wait is only paused, and goes on after the hook, with its deadline,
// its kill and a wake that came while the hook itself waited; a fiber
// marked while ready runs the hook as it resumes.
#define BOOST_TEST_MODULE sent_signals
#include <boost/test/unit_test.hpp>

#include <vector>

#include <grove/fiber.hpp>

#include "hub/hub.hpp"

namespace {

using grove::detail::FiberCore;
using grove::detail::Hub;
using grove::detail::kNoDeadline;
using grove::detail::Waiter;
using grove::detail::WakeReason;

// What the hook saw, in order: the fiber it ran in, each time.
std::vector<FiberCore*> hook_ran_in;
// A wait the hook makes itself, if set (a handler that waits).
Waiter* hook_waits_on = nullptr;

void hook(FiberCore* f) noexcept {
    f->signals_sent = false;
    hook_ran_in.push_back(Hub::current().running());
    if (hook_waits_on != nullptr) {
        Waiter* w = hook_waits_on;
        hook_waits_on = nullptr;
        Hub::current().park(*w, kNoDeadline, true);
    }
}

struct Fixture {
    Fixture() {
        hook_ran_in.clear();
        hook_waits_on = nullptr;
        Hub::current().set_sent_hook(&hook);
    }
    ~Fixture() { Hub::current().set_sent_hook(nullptr); }
};

void mark_and_poke(FiberCore* f) {
    f->signals_sent = true;
    f->hub->poke(f);
}

BOOST_FIXTURE_TEST_CASE(a_plain_wait_runs_the_hook_and_waits_on, Fixture) {
    Hub& hub = Hub::current();
    Waiter w;
    FiberCore* core = nullptr;
    WakeReason why = WakeReason::none;
    auto f = grove::spawn([&] {
        core = hub.running();
        why = hub.park(w, kNoDeadline, true);
    });
    grove::this_fiber::yield();
    BOOST_REQUIRE(core != nullptr);
    mark_and_poke(core);
    grove::this_fiber::yield();
    grove::this_fiber::yield();
    BOOST_TEST(hook_ran_in.size() == 1u);
    BOOST_TEST((hook_ran_in.at(0) == core));
    BOOST_TEST(!f.ready());  // still waiting
    BOOST_TEST((why == WakeReason::none));
    hub.unpark(w, WakeReason::ready);
    f.join();
    BOOST_TEST((why == WakeReason::ready));
}

BOOST_FIXTURE_TEST_CASE(a_wait_in_a_signal_window_is_interrupted, Fixture) {
    Hub& hub = Hub::current();
    FiberCore* core = nullptr;
    WakeReason why = WakeReason::none;
    std::size_t hooks_before_return = 0;
    auto f = grove::spawn([&] {
        core = hub.running();
        core->signal_interruptible = true;  // as the shim's SignalWindow
        Waiter w;
        why = hub.park(w, kNoDeadline, true);
        hooks_before_return = hook_ran_in.size();
        core->signal_interruptible = false;
    });
    grove::this_fiber::yield();
    mark_and_poke(core);
    f.join();
    BOOST_TEST((why == WakeReason::interrupted));
    BOOST_TEST(hooks_before_return == 1u);  // the handler ran before the call saw EINTR
}

BOOST_FIXTURE_TEST_CASE(a_paused_wait_keeps_its_deadline, Fixture) {
    Hub& hub = Hub::current();
    FiberCore* core = nullptr;
    WakeReason why = WakeReason::none;
    grove::detail::Nanos woke = 0;
    const grove::detail::Nanos deadline = hub.now() + 50'000'000;
    auto f = grove::spawn([&] {
        core = hub.running();
        Waiter w;
        why = hub.park(w, deadline, true);
        woke = hub.now();
    });
    grove::this_fiber::yield();
    mark_and_poke(core);
    f.join();
    BOOST_TEST(hook_ran_in.size() == 1u);
    BOOST_TEST((why == WakeReason::timed_out));
    BOOST_TEST(woke >= deadline);
}

BOOST_FIXTURE_TEST_CASE(a_kill_that_came_while_paused_ends_the_wait, Fixture) {
    Hub& hub = Hub::current();
    FiberCore* core = nullptr;
    WakeReason why = WakeReason::none;
    auto f = grove::spawn([&] {
        core = hub.running();
        Waiter w;
        why = hub.park(w, kNoDeadline, true);
    });
    grove::this_fiber::yield();
    mark_and_poke(core);  // ready now: the kill is only marked
    f.kill();
    f.join();
    BOOST_TEST(hook_ran_in.size() == 1u);
    BOOST_TEST((why == WakeReason::killed));  // not waiting on after the hook
}

BOOST_FIXTURE_TEST_CASE(a_wake_while_the_hook_waits_is_kept, Fixture) {
    Hub& hub = Hub::current();
    Waiter outer;
    Waiter inner;
    FiberCore* core = nullptr;
    WakeReason why = WakeReason::none;
    auto f = grove::spawn([&] {
        core = hub.running();
        why = hub.park(outer, kNoDeadline, true);
    });
    grove::this_fiber::yield();
    hook_waits_on = &inner;
    mark_and_poke(core);
    grove::this_fiber::yield();  // the hook runs and waits on `inner`
    BOOST_TEST(hook_ran_in.size() == 1u);
    hub.unpark(outer, WakeReason::ready);  // the call's own wake, meanwhile
    grove::this_fiber::yield();
    BOOST_TEST(!f.ready());  // the hook still waits: the wake did not resume it
    hub.unpark(inner, WakeReason::ready);
    f.join();
    BOOST_TEST((why == WakeReason::ready));
}

BOOST_FIXTURE_TEST_CASE(marked_while_ready, Fixture) {
    Hub& hub = Hub::current();
    std::vector<int> order;
    FiberCore* core = nullptr;
    auto f = grove::spawn([&] {
        order.push_back(static_cast<int>(hook_ran_in.size()));
        core = hub.running();
        grove::this_fiber::yield();
        order.push_back(static_cast<int>(hook_ran_in.size()));
    });
    grove::this_fiber::yield();  // it starts, then yields
    BOOST_REQUIRE(core != nullptr);
    core->signals_sent = true;  // ready in the run queue: no poke needed
    hub.poke(core);             // and a poke changes nothing
    f.join();
    BOOST_TEST(order.size() == 2u);
    BOOST_TEST(order.at(0) == 0);
    BOOST_TEST(order.at(1) == 1);  // ran as it came back from its yield
    BOOST_TEST((hook_ran_in.at(0) == core));
}

}  // namespace

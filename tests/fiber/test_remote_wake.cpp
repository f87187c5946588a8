// Wake-ups from other OS threads (Hub::post_remote, what the shim uses
// when a thread outside the green ones hands a lock or a signal to a green
// waiter): a fiber parked with no deadline is woken by a post from another
// thread whether the hub sleeps in its poll or is busy running fibers; a
// post to a waiter already woken otherwise leaves it woken for its own
// reason and is still marked done; many posts from several threads all
// land, in order per thread.
#define BOOST_TEST_MODULE remote_wake
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <grove/fiber.hpp>

#include "hub/hub.hpp"

namespace {

using grove::detail::Hub;
using grove::detail::WakeReason;
using grove::detail::Waiter;

// A parked fiber's waiter and its post record, published for other threads.
struct Parked {
    Waiter w;
    Hub::Remote r;
    std::atomic<bool> parking{false};
    Hub* hub = nullptr;
};

// Parks the running fiber on p until a post, or `deadline` (ns on the hub
// clock), and returns the reason.
WakeReason park_for_post(Parked& p, grove::detail::Nanos deadline) {
    Hub& hub = Hub::current();
    p.hub = &hub;
    p.r.w = &p.w;
    p.parking.store(true, std::memory_order_release);
    return hub.park(p.w, deadline, false);
}

void post_when_parked(Parked& p, std::chrono::milliseconds delay) {
    while (!p.parking.load(std::memory_order_acquire)) {
        std::this_thread::yield();
    }
    std::this_thread::sleep_for(delay);
    p.hub->post_remote(p.r);
}

}  // namespace

BOOST_AUTO_TEST_CASE(wakes_a_hub_asleep_in_its_poll) {
    Parked p;
    std::thread other([&] { post_when_parked(p, std::chrono::milliseconds(30)); });
    const auto t0 = std::chrono::steady_clock::now();
    const WakeReason why = park_for_post(p, grove::detail::kNoDeadline);
    const auto waited = std::chrono::steady_clock::now() - t0;
    other.join();
    BOOST_TEST((why == WakeReason::ready));
    BOOST_TEST(p.r.done);
    BOOST_TEST(waited >= std::chrono::milliseconds(25));
    BOOST_TEST(waited < std::chrono::seconds(5));
}

BOOST_AUTO_TEST_CASE(wakes_a_hub_busy_with_other_fibers) {
    // Another fiber yields in a loop, so the hub never sleeps in its poll:
    // the post is still seen.
    std::atomic<bool> stop{false};
    long spins = 0;
    grove::Fiber busy = grove::spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            ++spins;
            grove::this_fiber::yield();
        }
    });
    Parked p;
    std::thread other([&] { post_when_parked(p, std::chrono::milliseconds(10)); });
    const WakeReason why = park_for_post(p, grove::detail::kNoDeadline);
    stop = true;
    busy.join();
    other.join();
    BOOST_TEST((why == WakeReason::ready));
    BOOST_TEST(p.r.done);
    BOOST_TEST(spins > 0);
}

BOOST_AUTO_TEST_CASE(a_post_to_a_waiter_woken_otherwise_is_marked_done) {
    Parked p;
    // The deadline passes before the post: the wait ends timed out.
    const WakeReason why = park_for_post(p, Hub::current().now() + 5'000'000);
    BOOST_TEST((why == WakeReason::timed_out));
    std::thread other([&] { p.hub->post_remote(p.r); });
    other.join();
    // The waiter (as the shim does) waits for the post it knows is coming.
    while (!p.r.done) {
        Hub::current().park(p.w, grove::detail::kNoDeadline, false);
    }
    BOOST_TEST(p.r.done);
    BOOST_TEST((p.w.why == WakeReason::ready));
}

BOOST_AUTO_TEST_CASE(many_posts_from_several_threads_all_land) {
    constexpr int kThreads = 3;
    constexpr int kEach = 300;
    std::vector<Parked> parked(kThreads * kEach);
    std::vector<grove::Fiber<void>> fibers;
    std::atomic<int> woken{0};
    for (auto& p : parked) {
        fibers.push_back(grove::spawn([&p, &woken] {
            if (park_for_post(p, grove::detail::kNoDeadline) == WakeReason::ready) {
                woken.fetch_add(1);
            }
        }));
    }
    grove::this_fiber::yield();  // every fiber parks
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
        posters.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                Parked& p = parked[t * kEach + i];
                while (!p.parking.load(std::memory_order_acquire)) {
                    std::this_thread::yield();
                }
                p.hub->post_remote(p.r);
            }
        });
    }
    for (auto& f : fibers) {
        f.join();
    }
    for (auto& t : posters) {
        t.join();
    }
    BOOST_TEST(woken.load() == kThreads * kEach);
}

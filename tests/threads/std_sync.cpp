// The rest of the C++ thread library over pthreads: jthread, stop tokens
// and their callbacks, condition_variable_any's stoppable wait,
// shared_mutex, timed_mutex, recursive_mutex, call_once,
// future/async/promise, latch, barrier, counting_semaphore,
// this_thread::get_id.
#include "threads_test.h"

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <semaphore>
#include <set>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

// GCC 12 warns, wrongly, that libstdc++'s stop_source constructor may read
// the jthread it is a member of uninitialised, once stop callbacks are used
// in the same file (<stop_token>: _M_state(*this) only takes the address).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

int main() {
    {  // jthread with a stop token
        std::atomic<int> loops{0};
        {
            std::jthread t([&](std::stop_token st) {
                while (!st.stop_requested()) {
                    std::this_thread::sleep_for(1ms);
                    ++loops;
                }
            });
            std::this_thread::sleep_for(20ms);
        }  // request_stop + join
        std::printf("jthread stopped after some loops: %s\n", loops.load() > 0 ? "yes" : "no");
    }
    {  // shared_mutex: readers share, a writer excludes
        std::shared_mutex sm;
        int value = 0;
        std::atomic<int> max_readers{0}, readers{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < 8; ++i) {
            ts.emplace_back([&] {
                std::shared_lock<std::shared_mutex> l(sm);
                int r = ++readers;
                int m = max_readers.load();
                while (r > m && !max_readers.compare_exchange_weak(m, r)) {
                }
                std::this_thread::sleep_for(10ms);
                --readers;
            });
        }
        for (int i = 0; i < 4; ++i) {
            ts.emplace_back([&] {
                for (int k = 0; k < 100; ++k) {
                    std::unique_lock<std::shared_mutex> l(sm);
                    ++value;
                }
            });
        }
        for (auto& t : ts) {
            t.join();
        }
        std::printf("shared_mutex: value %d, readers overlapped: %s\n", value, max_readers.load() > 1 ? "yes" : "no");
    }
    {  // timed_mutex: try_lock_for expires while another thread holds it
        std::timed_mutex tm;
        std::promise<void> locked;
        std::promise<void> release;
        std::thread holder([&] {
            std::lock_guard<std::timed_mutex> l(tm);
            locked.set_value();
            release.get_future().wait();
        });
        locked.get_future().wait();
        const bool got = tm.try_lock_for(30ms);
        release.set_value();
        holder.join();
        const bool got2 = tm.try_lock_for(30ms);
        std::printf("timed_mutex: while held %s, after %s\n", got ? "locked" : "timed out", got2 ? "locked" : "timed out");
        if (got2) {
            tm.unlock();
        }
    }
    {  // recursive_mutex
        std::recursive_mutex rm;
        rm.lock();
        rm.lock();
        bool other = true;
        std::thread t([&] { other = rm.try_lock(); });
        t.join();
        rm.unlock();
        rm.unlock();
        std::printf("recursive_mutex: other thread try_lock %s\n", other ? "true" : "false");
    }
    {  // call_once from many threads
        std::once_flag once;
        std::atomic<int> calls{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < 16; ++i) {
            ts.emplace_back([&] { std::call_once(once, [&] { std::this_thread::sleep_for(5ms); ++calls; }); });
        }
        for (auto& t : ts) {
            t.join();
        }
        std::printf("call_once: %d call\n", calls.load());
    }
    {  // async / future / promise
        auto f1 = std::async(std::launch::async, [] {
            std::this_thread::sleep_for(10ms);
            return 6 * 7;
        });
        auto f2 = std::async(std::launch::async, [] { return std::string("hello"); });
        std::promise<int> p;
        std::future<int> pf = p.get_future();
        std::thread t([&] {
            std::this_thread::sleep_for(10ms);
            p.set_value(7);
        });
        const auto st = pf.wait_for(1ms);
        std::printf("future: %d %s %d (early wait_for: %s)\n", f1.get(), f2.get().c_str(), pf.get(),
                    st == std::future_status::timeout ? "timeout" : "ready");
        t.join();
        auto fe = std::async(std::launch::async, []() -> int { throw std::runtime_error("boom"); });
        try {
            fe.get();
        } catch (const std::exception& e) {
            std::printf("future exception: %s\n", e.what());
        }
    }
    {  // latch and barrier
        constexpr int n = 50;
        std::latch done(n);
        std::barrier sync(n);
        std::atomic<int> phase_sum{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i) {
            ts.emplace_back([&, i] {
                for (int round = 0; round < 3; ++round) {
                    phase_sum += i;
                    sync.arrive_and_wait();
                }
                done.count_down();
            });
        }
        done.wait();
        for (auto& t : ts) {
            t.join();
        }
        std::printf("latch+barrier: sum %d\n", phase_sum.load());
    }
    {  // counting_semaphore bounds concurrency
        std::counting_semaphore<3> sem(3);
        std::atomic<int> inside{0}, peak{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < 12; ++i) {
            ts.emplace_back([&] {
                sem.acquire();
                int v = ++inside;
                int p = peak.load();
                while (v > p && !peak.compare_exchange_weak(p, v)) {
                }
                std::this_thread::sleep_for(5ms);
                --inside;
                sem.release();
            });
        }
        for (auto& t : ts) {
            t.join();
        }
        std::printf("counting_semaphore: peak %d\n", peak.load());
    }
    {  // ids: distinct per thread, equal to itself
        std::set<std::thread::id> ids;
        std::mutex m;
        std::vector<std::thread> ts;
        for (int i = 0; i < 10; ++i) {
            ts.emplace_back([&] {
                std::lock_guard<std::mutex> l(m);
                ids.insert(std::this_thread::get_id());
            });
        }
        for (auto& t : ts) {
            t.join();
        }
        ids.insert(std::this_thread::get_id());
        std::printf("thread ids: %zu distinct\n", ids.size());
    }
    {  // a stop callback registered in one thread, run by a stop requested in another
        std::atomic<int> ran{0};
        std::jthread t([&](std::stop_token st) {
            std::stop_callback cb(st, [&] { ++ran; });
            std::this_thread::sleep_for(50ms);  // the request comes meanwhile; then cb unregisters
        });
        std::this_thread::sleep_for(10ms);
        const bool first = t.request_stop();
        t.join();
        std::printf("stop_callback from another thread: ran %d time(s), first request %s\n", ran.load(),
                    first ? "true" : "false");
    }
    {  // condition_variable_any's wait with a stop token, ended by jthread's stop
        std::condition_variable_any cv;
        std::mutex m;
        std::atomic<bool> returned_false{false};
        {
            std::jthread t([&](std::stop_token st) {
                std::unique_lock lock(m);
                returned_false = !cv.wait(lock, st, [] { return false; });
            });
            std::this_thread::sleep_for(20ms);
        }  // request_stop and join
        std::printf("condition_variable_any stop-token wait: ended by the stop, predicate %s\n",
                    returned_false.load() ? "false" : "true");
    }
    std::printf("end\n");
    std::fflush(stdout);
    tt_report_threads();
    return 0;
}

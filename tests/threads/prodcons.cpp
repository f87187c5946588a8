// Producer/consumer with std::thread, std::mutex and std::condition_variable:
// 4 producers, 4 consumers, a bounded queue of 8. Every item is consumed
// exactly once; totals are printed.
#include "threads_test.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr int kProducers = 4;
constexpr int kConsumers = 4;
constexpr int kItems = 20000;  // per producer
constexpr std::size_t kCapacity = 8;

std::mutex mu;
std::condition_variable not_full;
std::condition_variable not_empty;
std::deque<int> queue;
int producers_left = kProducers;

}  // namespace

int main() {
    std::vector<std::thread> threads;
    std::vector<std::int64_t> consumed_sum(kConsumers, 0);
    std::vector<int> consumed_count(kConsumers, 0);
    for (int p = 0; p < kProducers; ++p) {
        threads.emplace_back([p] {
            for (int i = 0; i < kItems; ++i) {
                std::unique_lock<std::mutex> lock(mu);
                not_full.wait(lock, [] { return queue.size() < kCapacity; });
                queue.push_back(p * kItems + i);
                not_empty.notify_one();
            }
            std::lock_guard<std::mutex> lock(mu);
            if (--producers_left == 0) {
                not_empty.notify_all();
            }
        });
    }
    for (int c = 0; c < kConsumers; ++c) {
        threads.emplace_back([c, &consumed_sum, &consumed_count] {
            for (;;) {
                std::unique_lock<std::mutex> lock(mu);
                not_empty.wait(lock, [] { return !queue.empty() || producers_left == 0; });
                if (queue.empty()) {
                    return;
                }
                const int v = queue.front();
                queue.pop_front();
                not_full.notify_one();
                lock.unlock();
                consumed_sum[c] += v;
                ++consumed_count[c];
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    std::int64_t sum = 0;
    int count = 0;
    for (int c = 0; c < kConsumers; ++c) {
        sum += consumed_sum[c];
        count += consumed_count[c];
    }
    const std::int64_t n = static_cast<std::int64_t>(kProducers) * kItems;
    std::printf("consumed %d items, sum %lld, expected %lld\n", count, static_cast<long long>(sum),
                static_cast<long long>(n * (n - 1) / 2));

    // wait_for that expires, and notify before the deadline.
    {
        std::unique_lock<std::mutex> lock(mu);
        const bool got = not_empty.wait_for(lock, std::chrono::milliseconds(50), [] { return false; });
        std::printf("wait_for with nobody notifying: %s\n", got ? "true" : "false");
    }
    {
        bool flag = false;
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            std::lock_guard<std::mutex> lock(mu);
            flag = true;
            not_empty.notify_all();
        });
        std::unique_lock<std::mutex> lock(mu);
        const bool got = not_empty.wait_for(lock, std::chrono::seconds(10), [&] { return flag; });
        lock.unlock();
        t.join();
        std::printf("wait_for with a notifier: %s\n", got ? "true" : "false");
    }
    std::printf("end\n");
    std::fflush(stdout);
    tt_report_threads();
    return 0;
}

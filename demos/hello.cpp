// hello: three fibers sleep 3 s each, at the same time.
//
// Each fiber prints a greeting, sleeps 3 s, and prints again. Sleeping
// parks only the fiber, never the thread, so the hub runs the other two
// meanwhile: the whole program takes about 3 s, not the 9 s that three
// blocking sleeps in a row would take.
#include <grove/grove.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

int main() {
    using namespace std::chrono_literals;
    using Clock = std::chrono::steady_clock;

    // Line-buffered even into a pipe, so each line shows when it happens.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    const auto start = Clock::now();
    std::vector<grove::Fiber<void>> fibers;
    for (int n = 1; n <= 3; ++n) {
        fibers.push_back(grove::spawn([n] {
            std::printf("Hello from fiber %d\n", n);
            grove::this_fiber::sleep_for(3s);
            std::printf("World from fiber %d\n", n);
        }));
    }
    // The fibers start running here, when main() suspends to wait for them.
    grove::join_all(fibers);

    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("3 fibers x 3 s of sleep took %.2f s in total: they slept at the same time "
                "(one after another would take 9 s).\n",
                secs);
    return 0;
}

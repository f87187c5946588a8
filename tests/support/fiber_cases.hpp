// Helpers shared by the fiber test cases (tests/fiber, tests/sync). Header-only.
#pragma once

#include <grove/fiber.hpp>
#include <grove/timeout.hpp>

#include <chrono>
#include <functional>
#include <vector>

namespace grove_test {

using namespace std::chrono_literals;

// Kills and reaps the registered fibers when a case leaves early (a failed
// BOOST_REQUIRE, an unexpected exception), so no fiber stays parked on the
// dead frame of a finished case. Handles already joined are skipped.
class Reaper {
public:
    Reaper() = default;
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;
    ~Reaper() {
        for (auto it = fns_.rbegin(); it != fns_.rend(); ++it) {
            (*it)();
        }
    }
    template <class T>
    void add(grove::Fiber<T>& f) {
        fns_.push_back([&f] {
            if (f.valid()) {
                f.kill();
                try {
                    f.wait(2s);
                } catch (...) {
                }
            }
        });
    }
    template <class T>
    void add(std::vector<grove::Fiber<T>>& v) {
        fns_.push_back([&v] {
            for (auto& f : v) {
                if (f.valid()) {
                    f.kill();
                }
            }
            for (auto& f : v) {
                if (f.valid()) {
                    try {
                        f.wait(2s);
                    } catch (...) {
                    }
                }
            }
        });
    }

private:
    std::vector<std::function<void()>> fns_;
};

// Every case runs under a deadline: a wait that never ends becomes a
// TimeoutError (a failed case) instead of a stalled suite.
struct CaseDeadline {
    grove::Timeout limit{10s};
};

}  // namespace grove_test

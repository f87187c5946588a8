// Time as the runtime sees it: signed nanoseconds on CLOCK_MONOTONIC, the
// clock std::chrono::steady_clock reads on Linux. Deadlines are absolute;
// kNoDeadline means "wait forever".
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace grove::detail {

using Nanos = std::int64_t;
inline constexpr Nanos kNoDeadline = std::numeric_limits<Nanos>::max();

// CLOCK_MONOTONIC now, through the vDSO (no syscall).
Nanos now_ns() noexcept;

// A relative timeout as an absolute deadline. A negative duration counts as
// zero (an already-passed deadline: poll once, never block); a huge one
// saturates to kNoDeadline instead of overflowing.
template <class Rep, class Period>
Nanos deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
    using namespace std::chrono;
    if (d <= d.zero()) {
        return now_ns();
    }
    // Compare in floating point so that duration<long, ratio<3600>>::max()
    // and friends cannot overflow on the way to nanoseconds.
    const long double ns = duration<long double, std::nano>(d).count();
    const Nanos now = now_ns();
    if (ns >= static_cast<long double>(kNoDeadline - now)) {
        return kNoDeadline;
    }
    Nanos whole = static_cast<Nanos>(ns);
    if (static_cast<long double>(whole) < ns) {
        ++whole;  // round up: never wake before the time asked for
    }
    return now + whole;
}

// An absolute time on any clock as a monotonic deadline. steady_clock maps
// exactly; other clocks (system_clock) are converted at the moment of the
// call, as std::condition_variable::wait_until does.
template <class Clock, class Duration>
Nanos deadline_at(std::chrono::time_point<Clock, Duration> t) noexcept {
    using namespace std::chrono;
    if constexpr (std::is_same_v<Clock, steady_clock>) {
        const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
        return ns < 0 ? 0 : static_cast<Nanos>(ns);
    } else {
        return deadline_after(t - Clock::now());
    }
}

}  // namespace grove::detail

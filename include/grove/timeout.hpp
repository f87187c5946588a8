// Scoped deadlines, as gevent's Timeout: while a grove::Timeout is alive in
// a fiber, any suspension of that fiber (sleep, I/O wait, Event, Channel,
// join, lock) that reaches the deadline throws grove::TimeoutError there.
//
//     {
//         grove::Timeout limit(100ms);
//         auto line = stream.read_some(buf);   // throws TimeoutError past 100 ms
//     }
//     auto r = grove::with_timeout(2s, [&] { return fetch(); });
//
// Nesting: every enclosing Timeout stays armed; the one whose deadline comes
// first fires and is named by TimeoutError::source(). A fiber that never
// suspends is never interrupted (cooperative scheduling).
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <utility>

#include <grove/detail/time.hpp>

namespace grove {

namespace detail {
struct FiberCore;
}

class Timeout;

// Thrown at a suspension point inside an expired grove::Timeout scope, by
// with_timeout, and by join(timeout) / AsyncResult::get(timeout).
class TimeoutError : public std::runtime_error {
public:
    explicit TimeoutError(const Timeout* source = nullptr)
        : std::runtime_error("grove: timed out"), source_(source) {}

    // The Timeout scope that fired, or nullptr for a call's own timeout.
    const Timeout* source() const noexcept { return source_; }

private:
    const Timeout* source_;
};

class Timeout {
public:
    template <class Rep, class Period>
    explicit Timeout(std::chrono::duration<Rep, Period> d) : Timeout(detail::deadline_after(d), Tag{}) {}

    template <class Clock, class Duration>
    explicit Timeout(std::chrono::time_point<Clock, Duration> t) : Timeout(detail::deadline_at(t), Tag{}) {}

    ~Timeout();

    Timeout(const Timeout&) = delete;
    Timeout& operator=(const Timeout&) = delete;

    // True once the deadline has passed (whether or not it fired yet).
    bool expired() const noexcept;

    // Disarms this scope early; later suspensions are no longer limited by it.
    void cancel() noexcept;

    std::chrono::steady_clock::time_point deadline() const noexcept {
        return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_));
    }

private:
    struct Tag {};
    Timeout(detail::Nanos deadline, Tag);

    friend struct detail::FiberCore;
    friend class TimeoutAccess;

    detail::Nanos deadline_;
    Timeout* outer_ = nullptr;          // next enclosing scope of the same fiber
    detail::FiberCore* owner_ = nullptr;
    bool armed_ = true;
};

// Runs fn() under a Timeout of d; returns its result or throws TimeoutError.
template <class Rep, class Period, class Fn>
decltype(auto) with_timeout(std::chrono::duration<Rep, Period> d, Fn&& fn) {
    Timeout limit(d);
    return std::invoke(std::forward<Fn>(fn));
}

// As with_timeout, but returns `fallback` instead of throwing when *this*
// limit fires (an outer Timeout's error still propagates).
template <class Rep, class Period, class Fn, class T>
auto with_timeout_or(std::chrono::duration<Rep, Period> d, T&& fallback, Fn&& fn)
    -> std::common_type_t<std::invoke_result_t<Fn>, std::decay_t<T>> {
    Timeout limit(d);
    try {
        return std::invoke(std::forward<Fn>(fn));
    } catch (const TimeoutError& e) {
        if (e.source() != &limit) {
            throw;
        }
        return std::forward<T>(fallback);
    }
}

}  // namespace grove

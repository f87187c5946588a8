// Fibers: spawn, join, kill, and what a fiber can do to itself.
//
//     grove::Fiber<int> f = grove::spawn([](int x) { return x * 2; }, 21);
//     int v = f.join();   // 42
//
// A spawned fiber is queued, not run at once; it runs when the spawner
// suspends (join, sleep, I/O, yield). All fibers of a thread share that
// thread's hub and never migrate. A Fiber<T> handle belongs to the thread
// that spawned it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <grove/detail/time.hpp>
#include <grove/detail/wait.hpp>
#include <grove/timeout.hpp>

namespace grove {

class Group;
using FiberId = std::uint64_t;

// Raised inside a fiber by Fiber::kill(), at its current or next suspension
// point. Deliberately not a std::exception, so `catch (std::exception&)`
// does not swallow a kill (gevent's GreenletExit is a BaseException).
// Letting it escape ends the fiber quietly; join() then throws it.
class FiberExit {
public:
    const char* what() const noexcept { return "grove::FiberExit"; }
};

struct SpawnOptions {
    std::size_t stack_size = 0;  // 0: the default (GROVE_STACK_SIZE, else 256 KiB)
    const char* name = nullptr;  // copied (up to 31 bytes); shown in diagnostics
};

namespace detail {

struct FiberCore;
class TaskBase;

// A list link that knows its task (TaskBase is not standard-layout, so no
// offsetof tricks).
struct TaskHook : ListHook {
    TaskBase* task = nullptr;
};

// The state a Fiber<T> handle shares with the running fiber: the callable,
// its result, how it ended. Reference-counted by the handle and by the
// fiber while it runs; single-threaded (one hub), so the count is plain.
class TaskBase {
public:
    TaskBase() noexcept = default;
    TaskBase(const TaskBase&) = delete;
    TaskBase& operator=(const TaskBase&) = delete;
    virtual ~TaskBase();

    // Runs the callable and stores its result; may throw.
    virtual void invoke() = 0;

    FiberCore* core_ = nullptr;  // the runtime record while alive; null once ended
    FiberId id_ = 0;
    std::uint32_t refs_ = 1;     // the handle's; spawn adds the fiber's own
    bool finished_ = false;      // the callable returned or threw
    bool killed_ = false;        // it ended by FiberExit
    bool observed_ = false;      // error_ was handed to someone (join/exception())
    bool kill_before_start_ = false;
    std::exception_ptr error_;   // what escaped the callable (not FiberExit)
    TaskHook group_hook_;        // in Group::members_ while a member runs
    Group* group_ = nullptr;
    // Told when the fiber ends (set by the Group it belongs to), so the
    // scheduler need not know about groups.
    void (*on_finish_)(TaskBase*) noexcept = nullptr;
    char name_[32] = {};
};

template <class T>
class Task : public TaskBase {
public:
    std::optional<T> result_;
    T take() { return std::move(*result_); }
};

template <>
class Task<void> : public TaskBase {
public:
    void take() {}
};

template <class T, class Fn>
class TaskImpl final : public Task<T> {
public:
    explicit TaskImpl(Fn&& fn) : fn_(std::move(fn)) {}
    void invoke() override {
        if constexpr (std::is_void_v<T>) {
            std::invoke(std::move(fn_));
        } else {
            this->result_.emplace(std::invoke(std::move(fn_)));
        }
    }

private:
    Fn fn_;
};

// Runtime entry points (libgrove). `start_at` is a deadline for
// spawn_later, or 0 to queue at once. spawn_task takes its own reference.
void spawn_task(TaskBase* t, const SpawnOptions& opts, Nanos start_at);
// Parks until t finishes or `deadline`; false on deadline. Throws
// std::system_error(resource_deadlock_would_occur) when t is the caller, and
// what the caller's own kill or Timeout calls for.
bool await_task(TaskBase* t, Nanos deadline);
void kill_task(TaskBase* t) noexcept;
void release_task(TaskBase* t) noexcept;
// After await_task: rethrows the fiber's exception (FiberExit if killed).
void rethrow_task(TaskBase* t);
const char* task_name(const TaskBase* t) noexcept;
[[noreturn]] void throw_no_fiber();

}  // namespace detail

template <class T>
class Fiber {
public:
    Fiber() noexcept = default;
    explicit Fiber(detail::Task<T>* t) noexcept : task_(t) {}
    Fiber(Fiber&& o) noexcept : task_(std::exchange(o.task_, nullptr)) {}
    Fiber& operator=(Fiber&& o) noexcept {
        if (this != &o) {
            reset();
            task_ = std::exchange(o.task_, nullptr);
        }
        return *this;
    }
    Fiber(const Fiber&) = delete;
    Fiber& operator=(const Fiber&) = delete;
    // Dropping a handle detaches: the fiber runs on (gevent's rule, not
    // std::thread's terminate).
    ~Fiber() { reset(); }

    // Waits for the end and returns the result, or rethrows what the fiber
    // threw (FiberExit if it was killed). Leaves the handle empty.
    T join() {
        check();
        detail::await_task(task_, detail::kNoDeadline);
        return finish();
    }

    // As join(), but throws TimeoutError (and keeps the handle) if the fiber
    // has not ended within d.
    template <class Rep, class Period>
    T join(std::chrono::duration<Rep, Period> d) {
        check();
        if (!detail::await_task(task_, detail::deadline_after(d))) {
            throw TimeoutError();
        }
        return finish();
    }

    // Waits for the end without consuming the result.
    bool wait() {
        check();
        return detail::await_task(task_, detail::kNoDeadline);
    }
    // False if the fiber is still running after d; join() stays possible.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> d) {
        check();
        return detail::await_task(task_, detail::deadline_after(d));
    }
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> t) {
        check();
        return detail::await_task(task_, detail::deadline_at(t));
    }

    // The fiber has ended (returned, threw, or was killed).
    bool ready() const noexcept { return task_ != nullptr && task_->finished_; }
    // It ended by FiberExit.
    bool killed() const noexcept { return task_ != nullptr && task_->finished_ && task_->killed_; }
    // It ended with an exception: that exception (not FiberExit), else null.
    std::exception_ptr exception() const noexcept {
        if (task_ == nullptr || !task_->finished_) {
            return nullptr;
        }
        task_->observed_ = true;
        return task_->error_;
    }

    // Raises FiberExit in the fiber at its current or next suspension point
    // (a fiber not yet started never runs). Idempotent; does not wait: use
    // join() or wait() for that.
    void kill() noexcept {
        if (task_ != nullptr) {
            detail::kill_task(task_);
        }
    }

    // Lets the fiber run on its own; the handle becomes empty. An exception
    // escaping a detached fiber is printed to stderr.
    void detach() noexcept { reset(); }

    FiberId id() const noexcept { return task_ != nullptr ? task_->id_ : 0; }
    const char* name() const noexcept { return task_ != nullptr ? detail::task_name(task_) : ""; }
    bool valid() const noexcept { return task_ != nullptr; }
    explicit operator bool() const noexcept { return valid(); }

private:
    void check() const {
        if (task_ == nullptr) {
            detail::throw_no_fiber();
        }
    }
    T finish() {
        detail::Task<T>* t = task_;
        struct Release {
            Fiber* f;
            ~Release() { f->reset(); }
        } release{this};
        detail::rethrow_task(t);
        return t->take();
    }
    void reset() noexcept {
        if (task_ != nullptr) {
            detail::release_task(std::exchange(task_, nullptr));
        }
    }

    detail::Task<T>* task_ = nullptr;
};

namespace detail {

template <class F, class... Args>
using spawn_result_t = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;

template <class F, class... Args>
auto make_task(F&& f, Args&&... args) {
    using R = spawn_result_t<F, Args...>;
    auto call = [fn = std::forward<F>(f), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable -> decltype(auto) {
        return std::apply(std::move(fn), std::move(tup));
    };
    return new TaskImpl<R, decltype(call)>(std::move(call));
}

}  // namespace detail

// Queues a new fiber running f(args...) (arguments are copied or moved into
// it, as std::thread does). The fiber takes its stack when it first runs; if
// none can be had then, it ends at once and join() throws std::system_error.
template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
Fiber<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
    auto* t = detail::make_task(std::forward<F>(f), std::forward<Args>(args)...);
    Fiber<detail::spawn_result_t<F, Args...>> handle(t);
    detail::spawn_task(t, SpawnOptions{}, 0);
    return handle;
}

template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
Fiber<detail::spawn_result_t<F, Args...>> spawn(const SpawnOptions& opts, F&& f, Args&&... args) {
    auto* t = detail::make_task(std::forward<F>(f), std::forward<Args>(args)...);
    Fiber<detail::spawn_result_t<F, Args...>> handle(t);
    detail::spawn_task(t, opts, 0);
    return handle;
}

// Queues the fiber after `delay` (gevent's spawn_later). Killing it before
// then cancels it.
template <class Rep, class Period, class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
Fiber<detail::spawn_result_t<F, Args...>> spawn_later(std::chrono::duration<Rep, Period> delay, F&& f,
                                                      Args&&... args) {
    auto* t = detail::make_task(std::forward<F>(f), std::forward<Args>(args)...);
    Fiber<detail::spawn_result_t<F, Args...>> handle(t);
    detail::spawn_task(t, SpawnOptions{}, detail::deadline_after(delay));
    return handle;
}

// Joins every fiber of a range of Fiber<T> (results discarded, the first
// exception rethrown after all have ended).
template <class Range>
    requires requires(Range& r) { std::begin(r)->wait(); }
void join_all(Range& fibers) {
    std::exception_ptr first;
    for (auto& f : fibers) {
        if (!f.valid()) {
            continue;
        }
        try {
            f.join();
        } catch (...) {
            if (!first) {
                first = std::current_exception();
            }
        }
    }
    if (first) {
        std::rethrow_exception(first);
    }
}

// Waits until every other fiber of this thread's hub has ended (main()'s
// way to let detached fibers finish).
void join_all();

namespace this_fiber {

// Lets every other ready fiber run once; this one goes to the back.
void yield();

void sleep_for_ns(detail::Nanos deadline);

template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
    sleep_for_ns(detail::deadline_after(d));
}

template <class Clock, class Duration>
void sleep_until(std::chrono::time_point<Clock, Duration> t) {
    sleep_for_ns(detail::deadline_at(t));
}

// This fiber's id: 0 for a thread's main fiber, unique per process otherwise.
FiberId id() noexcept;
const char* name() noexcept;
void set_name(const char* name) noexcept;

}  // namespace this_fiber

}  // namespace grove

// Fiber-aware synchronisation. Every wait parks the calling fiber (never the
// OS thread), honours enclosing grove::Timeout scopes, and is interrupted by
// Fiber::kill(). These objects belong to one hub: share them between fibers
// of the same thread, not across threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <exception>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <grove/detail/time.hpp>
#include <grove/detail/wait.hpp>
#include <grove/fiber.hpp>
#include <grove/timeout.hpp>

namespace grove {

// ---------------------------------------------------------------- Event --
// A flag fibers can wait for (gevent.event.Event). set() wakes every waiter
// and stays set until clear().
class Event {
public:
    Event() noexcept = default;
    ~Event();
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void set() noexcept;
    void clear() noexcept { flag_ = false; }
    bool is_set() const noexcept { return flag_; }

    // True once set; with a limit, false if it was not set in time.
    bool wait() { return wait_ns(detail::kNoDeadline); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> d) {
        return wait_ns(detail::deadline_after(d));
    }
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> t) {
        return wait_ns(detail::deadline_at(t));
    }

private:
    bool wait_ns(detail::Nanos deadline);
    detail::WaitList waiters_;
    bool flag_ = false;
};

// ---------------------------------------------------------- AsyncResult --
// A value or an exception delivered once, to any number of waiting fibers
// (gevent.event.AsyncResult, a single-hub std::promise/future in one).
template <class T>
class AsyncResult {
public:
    void set_value(T v) {
        check_unset();
        value_.emplace(std::move(v));
        ready_.set();
    }
    void set_exception(std::exception_ptr e) {
        check_unset();
        if (!e) {
            throw std::invalid_argument("grove: AsyncResult::set_exception(nullptr)");
        }
        error_ = std::move(e);
        ready_.set();
    }

    bool ready() const noexcept { return ready_.is_set(); }
    bool successful() const noexcept { return value_.has_value(); }

    // Waits, then returns a reference to the value or rethrows the exception.
    T& get() {
        ready_.wait();
        return result();
    }
    // As get(), but throws TimeoutError if nothing arrives within d.
    template <class Rep, class Period>
    T& get(std::chrono::duration<Rep, Period> d) {
        if (!ready_.wait(d)) {
            throw TimeoutError();
        }
        return result();
    }
    bool wait() { return ready_.wait(); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> d) {
        return ready_.wait(d);
    }

private:
    void check_unset() const {
        if (ready_.is_set()) {
            throw std::logic_error("grove: AsyncResult already holds a result");
        }
    }
    T& result() {
        if (error_) {
            std::rethrow_exception(error_);
        }
        return *value_;
    }
    Event ready_;
    std::optional<T> value_;
    std::exception_ptr error_;
};

template <>
class AsyncResult<void> {
public:
    void set_value() {
        check_unset();
        ready_.set();
    }
    void set_exception(std::exception_ptr e) {
        check_unset();
        if (!e) {
            throw std::invalid_argument("grove: AsyncResult::set_exception(nullptr)");
        }
        error_ = std::move(e);
        ready_.set();
    }
    bool ready() const noexcept { return ready_.is_set(); }
    bool successful() const noexcept { return ready_.is_set() && !error_; }
    void get() {
        ready_.wait();
        rethrow();
    }
    template <class Rep, class Period>
    void get(std::chrono::duration<Rep, Period> d) {
        if (!ready_.wait(d)) {
            throw TimeoutError();
        }
        rethrow();
    }
    bool wait() { return ready_.wait(); }
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> d) {
        return ready_.wait(d);
    }

private:
    void check_unset() const {
        if (ready_.is_set()) {
            throw std::logic_error("grove: AsyncResult already holds a result");
        }
    }
    void rethrow() const {
        if (error_) {
            std::rethrow_exception(error_);
        }
    }
    Event ready_;
    std::exception_ptr error_;
};

// ------------------------------------------------------------ Semaphore --
// Counting semaphore with FIFO hand-off: release() gives the permit straight
// to the longest waiter, so a stream of try_acquire()s cannot starve it.
class Semaphore {
public:
    explicit Semaphore(std::ptrdiff_t initial = 1);
    ~Semaphore();
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    void acquire() { acquire_ns(detail::kNoDeadline); }
    bool try_acquire() noexcept;
    template <class Rep, class Period>
    bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
        return acquire_ns(detail::deadline_after(d));
    }
    template <class Clock, class Duration>
    bool try_acquire_until(std::chrono::time_point<Clock, Duration> t) {
        return acquire_ns(detail::deadline_at(t));
    }
    // Returns n permits; throws std::invalid_argument for n < 0.
    void release(std::ptrdiff_t n = 1);

    std::ptrdiff_t value() const noexcept { return count_; }
    bool locked() const noexcept { return count_ <= 0; }

protected:
    bool acquire_ns(detail::Nanos deadline);
    std::ptrdiff_t count_;
    detail::WaitList waiters_;
};

// A Semaphore that refuses to be released above its initial count
// (std::logic_error): catches a release without an acquire.
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(std::ptrdiff_t initial = 1) : Semaphore(initial), limit_(initial) {}
    void release(std::ptrdiff_t n = 1);

private:
    std::ptrdiff_t limit_;
};

// ---------------------------------------------------------------- Mutex --
// Meets TimedLockable, so std::unique_lock, std::scoped_lock and
// std::lock_guard work. Misuse is a clear error, not undefined behaviour:
// lock() by the owner throws std::system_error(resource_deadlock_would_occur),
// unlock() by a non-owner throws std::system_error(operation_not_permitted).
class Mutex {
public:
    Mutex() noexcept = default;
    ~Mutex();
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() { lock_ns(detail::kNoDeadline); }
    bool try_lock();
    template <class Rep, class Period>
    bool try_lock_for(std::chrono::duration<Rep, Period> d) {
        return lock_ns(detail::deadline_after(d));
    }
    template <class Clock, class Duration>
    bool try_lock_until(std::chrono::time_point<Clock, Duration> t) {
        return lock_ns(detail::deadline_at(t));
    }
    void unlock();

    bool locked() const noexcept { return owner_ != nullptr; }

private:
    friend class CondVar;
    bool lock_ns(detail::Nanos deadline, bool interruptible = true);
    detail::FiberCore* owner_ = nullptr;
    detail::WaitList waiters_;
};

// -------------------------------------------------------------- CondVar --
// condition_variable_any for fibers: works with any BasicLockable (Mutex,
// std::unique_lock<Mutex>, ...). The lock is re-acquired before wait
// returns or throws (FiberExit, TimeoutError), so RAII guards stay right.
class CondVar {
public:
    CondVar() noexcept = default;
    ~CondVar();
    CondVar(const CondVar&) = delete;
    CondVar& operator=(const CondVar&) = delete;

    void notify_one() noexcept;
    void notify_all() noexcept;

    template <class Lock>
    void wait(Lock& lock) {
        wait_ns(&lock, &unlock_fn<Lock>, &lock_fn<Lock>, detail::kNoDeadline);
    }
    template <class Lock, class Pred>
    void wait(Lock& lock, Pred pred) {
        while (!pred()) {
            wait(lock);
        }
    }
    template <class Lock, class Clock, class Duration>
    std::cv_status wait_until(Lock& lock, std::chrono::time_point<Clock, Duration> t) {
        return wait_deadline(lock, detail::deadline_at(t));
    }
    template <class Lock, class Clock, class Duration, class Pred>
    bool wait_until(Lock& lock, std::chrono::time_point<Clock, Duration> t, Pred pred) {
        return wait_deadline(lock, detail::deadline_at(t), std::move(pred));
    }
    template <class Lock, class Rep, class Period>
    std::cv_status wait_for(Lock& lock, std::chrono::duration<Rep, Period> d) {
        return wait_deadline(lock, detail::deadline_after(d));
    }
    template <class Lock, class Rep, class Period, class Pred>
    bool wait_for(Lock& lock, std::chrono::duration<Rep, Period> d, Pred pred) {
        return wait_deadline(lock, detail::deadline_after(d), std::move(pred));
    }

private:
    template <class Lock>
    std::cv_status wait_deadline(Lock& lock, detail::Nanos deadline) {
        return wait_ns(&lock, &unlock_fn<Lock>, &lock_fn<Lock>, deadline) ? std::cv_status::no_timeout
                                                                          : std::cv_status::timeout;
    }
    template <class Lock, class Pred>
    bool wait_deadline(Lock& lock, detail::Nanos deadline, Pred pred) {
        while (!pred()) {
            if (!wait_ns(&lock, &unlock_fn<Lock>, &lock_fn<Lock>, deadline)) {
                return pred();
            }
        }
        return true;
    }
    using LockFn = void (*)(void*);
    template <class Lock>
    static void unlock_fn(void* l) {
        static_cast<Lock*>(l)->unlock();
    }
    template <class Lock>
    static void lock_fn(void* l) {
        static_cast<Lock*>(l)->lock();
    }
    // False on timeout. Re-locks even when it throws.
    bool wait_ns(void* lock, LockFn unlock, LockFn relock, detail::Nanos deadline);
    detail::WaitList waiters_;
};

// -------------------------------------------------------------- Channel --
inline constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

// send() on a closed channel (or one closed while the sender waited).
class ChannelClosed : public std::runtime_error {
public:
    ChannelClosed() : std::runtime_error("grove: send on a closed channel") {}
};

// Go-style channel. Capacity 0 is a rendezvous: send() waits until a
// receiver takes the value. Capacity n buffers n values; grove::unbounded
// never blocks senders. close() lets receivers drain what is buffered, then
// recv() returns empty; blocked senders throw ChannelClosed.
template <class T>
class Channel {
public:
    explicit Channel(std::size_t capacity = 0) : cap_(capacity) {}
    ~Channel() { close(); }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    void send(T v) { send_ns(v, detail::kNoDeadline); }
    // False (and v kept by the caller) if no room or receiver within d.
    template <class Rep, class Period>
    bool send(T& v, std::chrono::duration<Rep, Period> d) {
        return send_ns(v, detail::deadline_after(d));
    }
    bool try_send(T& v) { return send_ns(v, 0); }

    // The next value; empty once the channel is closed and drained.
    std::optional<T> recv() { return recv_ns(detail::kNoDeadline); }
    // Empty also on timeout; closed() tells the two apart.
    template <class Rep, class Period>
    std::optional<T> recv(std::chrono::duration<Rep, Period> d) {
        return recv_ns(detail::deadline_after(d));
    }
    std::optional<T> try_recv() { return recv_ns(0); }

    void close() noexcept {
        if (closed_) {
            return;
        }
        closed_ = true;
        receivers_.wake_all(detail::WakeReason::closed);
        senders_.wake_all(detail::WakeReason::closed);
    }
    bool closed() const noexcept { return closed_; }
    std::size_t size() const noexcept { return buf_.size(); }
    std::size_t capacity() const noexcept { return cap_; }

    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = T*;
        using reference = T&;

        iterator() = default;
        explicit iterator(Channel* ch) : ch_(ch) { ++*this; }
        T& operator*() { return *cur_; }
        T* operator->() { return &*cur_; }
        iterator& operator++() {
            cur_ = ch_->recv();
            if (!cur_) {
                ch_ = nullptr;
            }
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(const iterator& o) const { return ch_ == o.ch_; }

    private:
        Channel* ch_ = nullptr;
        std::optional<T> cur_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

private:
    bool send_ns(T& v, detail::Nanos deadline) {
        if (closed_) {
            throw ChannelClosed();
        }
        if (detail::Waiter* r = receivers_.front()) {
            // A receiver waits only when the buffer is empty: hand over.
            static_cast<std::optional<T>*>(r->payload)->emplace(std::move(v));
            detail::unpark(*r, detail::WakeReason::ready);
            return true;
        }
        if (buf_.size() < cap_) {
            buf_.push_back(std::move(v));
            return true;
        }
        if (deadline == 0) {
            return false;
        }
        detail::Waiter w;
        w.payload = &v;
        senders_.push_back(w);
        const detail::WakeReason why = detail::park(w, deadline);
        if (why == detail::WakeReason::closed) {
            throw ChannelClosed();
        }
        detail::throw_for(w);
        return why == detail::WakeReason::ready;
    }

    std::optional<T> recv_ns(detail::Nanos deadline) {
        std::optional<T> out;
        if (!buf_.empty()) {
            out.emplace(std::move(buf_.front()));
            buf_.pop_front();
            if (detail::Waiter* s = senders_.front()) {
                buf_.push_back(std::move(*static_cast<T*>(s->payload)));
                detail::unpark(*s, detail::WakeReason::ready);
            }
            return out;
        }
        if (detail::Waiter* s = senders_.front()) {
            // Rendezvous: take the value straight from the waiting sender.
            out.emplace(std::move(*static_cast<T*>(s->payload)));
            detail::unpark(*s, detail::WakeReason::ready);
            return out;
        }
        if (closed_ || deadline == 0) {
            return out;
        }
        detail::Waiter w;
        w.payload = &out;
        receivers_.push_back(w);
        const detail::WakeReason why = detail::park(w, deadline);
        if (why != detail::WakeReason::closed) {
            detail::throw_for(w);
        }
        return out;
    }

    std::size_t cap_;
    bool closed_ = false;
    std::deque<T> buf_;
    detail::WaitList senders_;    // payload: the T to take
    detail::WaitList receivers_;  // payload: the std::optional<T> to fill
};

// ---------------------------------------------------------------- Group --
// A set of fibers managed together (gevent.pool.Group): join them all, kill
// them all. Finished fibers leave the group by themselves.
class Group {
public:
    Group() noexcept = default;
    // Kills what is still running and waits for it: a Group does not let
    // its fibers outlive it.
    virtual ~Group();
    Group(const Group&) = delete;
    Group& operator=(const Group&) = delete;

    template <class F, class... Args>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
    Fiber<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
        auto* t = detail::make_task(std::forward<F>(f), std::forward<Args>(args)...);
        Fiber<detail::spawn_result_t<F, Args...>> handle(t);
        adopt(t);
        detail::spawn_task(t, SpawnOptions{}, 0);
        return handle;
    }

    // Waits until every fiber in the group has ended. Exceptions of the
    // members are not rethrown here (join their handles for that); with
    // raise_error, the first one is.
    void join(bool raise_error = false) { join_ns(detail::kNoDeadline, raise_error); }
    // False if some are still running after d.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> d, bool raise_error = false) {
        return join_ns(detail::deadline_after(d), raise_error);
    }
    // Kills every member; with wait, also waits for them to end.
    void kill(bool wait = true);

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

protected:
    void adopt(detail::TaskBase* t);
    bool join_ns(detail::Nanos deadline, bool raise_error);
    // Kills the members and waits for them, uninterruptibly (destructors).
    void shutdown() noexcept;

private:
    friend struct GroupAccess;
    detail::ListHook members_;   // TaskBase::group_hook_ of each running member
    detail::WaitList joiners_;   // woken when the group becomes empty
    std::exception_ptr first_error_;
    std::size_t size_ = 0;

protected:
    // Called after a member has left the group (Pool frees its slot here).
    virtual void member_finished() noexcept {}

public:
    // Runtime hook: member t ended. Not for users.
    void on_member_finished(detail::TaskBase* t) noexcept;
};

inline void join_all(Group& g) { g.join(); }

// ----------------------------------------------------------------- Pool --
// A Group of at most n concurrent fibers (gevent.pool.Pool): spawn() waits
// for a free slot first.
class Pool : public Group {
public:
    // Throws std::invalid_argument for size 0.
    explicit Pool(std::size_t size);
    ~Pool() override;

    template <class F, class... Args>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
    Fiber<detail::spawn_result_t<F, Args...>> spawn(F&& f, Args&&... args) {
        slots_.acquire();
        return Group::spawn(std::forward<F>(f), std::forward<Args>(args)...);
    }

    std::size_t free_count() const noexcept { return static_cast<std::size_t>(slots_.value()); }
    std::size_t capacity() const noexcept { return size_; }

    // fn over every element, at most size() at a time; results in input
    // order. Rethrows the first exception after all have ended.
    template <class Fn, class Range>
    auto map(Fn fn, const Range& range) {
        using Item = decltype(*std::begin(range));
        using R = std::remove_cvref_t<std::invoke_result_t<Fn&, Item>>;
        std::vector<Fiber<R>> fibers;
        for (auto&& item : range) {
            fibers.push_back(spawn([&fn](auto&& x) { return fn(x); }, item));
        }
        if constexpr (std::is_void_v<R>) {
            join_all(fibers);
        } else {
            std::vector<R> out;
            out.reserve(fibers.size());
            std::exception_ptr first;
            for (auto& f : fibers) {
                try {
                    out.push_back(f.join());
                } catch (...) {
                    if (!first) {
                        first = std::current_exception();
                    }
                }
            }
            if (first) {
                std::rethrow_exception(first);
            }
            return out;
        }
    }

    // fn over every element, at most size() at a time; results as they are
    // ready. The returned channel is closed after the last one; a failed
    // call closes it early and its exception is rethrown by
    // UnorderedResults::rethrow_if_failed() (or on iteration's end).
    template <class Fn, class Range>
    auto imap_unordered(Fn fn, Range range);

protected:
    void member_finished() noexcept override { slots_.release(); }

private:
    std::size_t size_;
    Semaphore slots_;
};

template <class R>
class UnorderedResults {
public:
    explicit UnorderedResults(std::size_t n) : ch_(unbounded), left_(n) {}
    Channel<R>& channel() noexcept { return ch_; }

    // Iterates the results; rethrows the first failure after the last
    // result delivered before it.
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = R;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(UnorderedResults* r) : r_(r) { ++*this; }
        R& operator*() { return *cur_; }
        iterator& operator++() {
            cur_ = r_->ch_.recv();
            if (!cur_) {
                UnorderedResults* r = std::exchange(r_, nullptr);
                r->rethrow_if_failed();
            }
            return *this;
        }
        bool operator==(const iterator& o) const { return r_ == o.r_; }

    private:
        UnorderedResults* r_ = nullptr;
        std::optional<R> cur_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

    void rethrow_if_failed() {
        if (error_) {
            std::rethrow_exception(std::exchange(error_, nullptr));
        }
    }

    void deliver(R r) {
        ch_.send(std::move(r));
        if (--left_ == 0) {
            ch_.close();
        }
    }
    void fail(std::exception_ptr e) {
        if (!error_) {
            error_ = e;
        }
        ch_.close();
    }

private:
    Channel<R> ch_;
    std::size_t left_;
    std::exception_ptr error_;
};

template <class Fn, class Range>
auto Pool::imap_unordered(Fn fn, Range range) {
    using Item = decltype(*std::begin(range));
    using R = std::remove_cvref_t<std::invoke_result_t<Fn&, Item>>;
    const auto n = static_cast<std::size_t>(std::distance(std::begin(range), std::end(range)));
    auto results = std::make_shared<UnorderedResults<R>>(n);
    if (n == 0) {
        results->channel().close();
        return results;
    }
    // A feeder fiber takes pool slots one by one, so the caller can start
    // consuming at once.
    Group::spawn([this, fn, range = std::move(range), results]() mutable {
        for (auto&& item : range) {
            if (results->channel().closed()) {
                break;
            }
            spawn(
                [fn, results](auto x) mutable {
                    try {
                        results->deliver(fn(x));
                    } catch (const FiberExit&) {
                        throw;
                    } catch (const ChannelClosed&) {
                    } catch (...) {
                        results->fail(std::current_exception());
                    }
                },
                item).detach();
        }
    }).detach();
    return results;
}

}  // namespace grove

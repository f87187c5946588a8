// The one waiting mechanism, as the public templates (Channel, AsyncResult)
// and the library's own primitives use it. Not for users: names here may
// change. The contract lives in lib/hub/hub.hpp beside the implementation.
//
// A wait is: link a Waiter (on the waiting fiber's stack) into the lists it
// waits on, then park(). Whoever wakes it calls unpark(w, why), which
// unlinks the waiter from *every* list (its wait list and the timer heap)
// and queues the fiber; a second unpark of the same waiter is a no-op.
#pragma once

#include <cstddef>
#include <cstdint>

#include <grove/detail/time.hpp>

namespace grove {
class Timeout;
}

namespace grove::detail {

struct FiberCore;

// Intrusive doubly-linked list node. An unlinked node points to itself, so
// unlink() is idempotent and linked() is one compare.
struct ListHook {
    ListHook* prev = this;
    ListHook* next = this;

    ListHook() noexcept = default;
    ListHook(const ListHook&) = delete;
    ListHook& operator=(const ListHook&) = delete;

    bool linked() const noexcept { return next != this; }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
    // Links this (unlinked) node just before `pos`.
    void link_before(ListHook& pos) noexcept {
        prev = pos.prev;
        next = &pos;
        pos.prev->next = this;
        pos.prev = this;
    }
};

// Why a parked fiber was resumed. Written once, by the waker (unpark), read
// by the fiber after it resumes.
enum class WakeReason : std::uint8_t {
    none,           // still parked (or never parked)
    ready,          // what it waited for happened (set, data, hand-off)
    timed_out,      // the deadline passed to park() passed
    scope_timeout,  // an enclosing grove::Timeout expired (Waiter::scope)
    killed,         // Fiber::kill(): FiberExit is due
    closed,         // the fd it waited on was closed under it
    interrupted,    // a signal handler ran while it waited in an interposed
                    // libc call (only such waits are interruptible)
};

struct Waiter {
    ListHook hook;                // in one wait list; self-linked when none
    FiberCore* fiber = nullptr;   // the parked fiber
    std::size_t timer_index = kNoTimer;  // slot in the hub's timer heap
    Nanos deadline = kNoDeadline; // when the timer fires
    WakeReason why = WakeReason::none;
    const Timeout* scope = nullptr;  // which Timeout fired (scope_timeout)
    void* payload = nullptr;      // for the waker: a Channel's value slot
    std::uintptr_t tag = 0;       // for the waker: e.g. a Semaphore's count

    static constexpr std::size_t kNoTimer = ~std::size_t{0};

    Waiter() noexcept = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    static Waiter* from_hook(ListHook* h) noexcept {
        return reinterpret_cast<Waiter*>(reinterpret_cast<char*>(h) - offsetof(Waiter, hook));
    }
};

// FIFO of waiters. Not copyable or movable: waiters point into it.
class WaitList {
public:
    WaitList() noexcept = default;
    WaitList(const WaitList&) = delete;
    WaitList& operator=(const WaitList&) = delete;

    bool empty() const noexcept { return !head_.linked(); }
    Waiter* front() noexcept { return empty() ? nullptr : Waiter::from_hook(head_.next); }
    void push_back(Waiter& w) noexcept { w.hook.link_before(head_); }

    // Wakes the first waiter with `why`; false if there was none.
    bool wake_one(WakeReason why = WakeReason::ready) noexcept;
    // Wakes every waiter; returns how many.
    std::size_t wake_all(WakeReason why = WakeReason::ready) noexcept;
    // Forgets every waiter without waking it (their fibers are gone: fork).
    void abandon() noexcept {
        head_.prev = &head_;
        head_.next = &head_;
    }

private:
    ListHook head_;
};

// Parks the running fiber, whose waiter `w` the caller has already linked
// into the lists it waits on (or none, for a plain sleep), until unpark(w)
// or `deadline`. Returns the reason. Returns at once, with w unlinked, if a
// kill is pending or an enclosing Timeout has already expired; a deadline
// already passed returns timed_out after letting other fibers run once.
// `interruptible = false` ignores kills and scoped Timeouts (used to
// re-acquire a lock on the way out of a killed wait).
WakeReason park(Waiter& w, Nanos deadline, bool interruptible = true) noexcept;

// Wakes `w` with `why`: unlinks it from its list and the timer heap, and
// queues its fiber. A no-op if w was already woken.
void unpark(Waiter& w, WakeReason why) noexcept;

// park() for C++ callers: returns true for ready, false for timed_out;
// throws FiberExit for killed, TimeoutError for scope_timeout, and
// std::system_error(EBADF) for closed.
bool park_or_throw(Waiter& w, Nanos deadline);

// Throws what `why` means (see park_or_throw); returns for ready/timed_out.
void throw_for(const Waiter& w);

}  // namespace grove::detail

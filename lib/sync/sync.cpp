// Event, Semaphore, Mutex, CondVar, Group and Pool: each a wait list plus a
// little state, all waiting through park/unpark. A waker hands over what was
// waited for (a permit, the lock) before it unparks, so a woken fiber never
// has to race for it, and a fiber killed after the hand-off still has it
// (the kill is then delivered at its next suspension).

#include <grove/sync.hpp>

#include <system_error>

#include "hub/hub.hpp"

namespace grove {

using detail::FiberCore;
using detail::Hub;
using detail::Nanos;
using detail::WakeReason;
using detail::Waiter;

// ---- Event

Event::~Event() {
    GROVE_ASSERT(waiters_.empty(), "an Event was destroyed while fibers wait on it");
}

void Event::set() noexcept {
    flag_ = true;
    waiters_.wake_all(WakeReason::ready);
}

bool Event::wait_ns(Nanos deadline) {
    if (flag_) {
        return true;
    }
    Waiter w;
    waiters_.push_back(w);
    return detail::park_or_throw(w, deadline);
}

// ---- Semaphore

Semaphore::Semaphore(std::ptrdiff_t initial) : count_(initial) {
    if (initial < 0) {
        throw std::invalid_argument("grove: Semaphore with a negative count");
    }
}

Semaphore::~Semaphore() {
    GROVE_ASSERT(waiters_.empty(), "a Semaphore was destroyed while fibers wait on it");
}

bool Semaphore::try_acquire() noexcept {
    if (count_ > 0) {
        --count_;
        return true;
    }
    return false;
}

bool Semaphore::acquire_ns(Nanos deadline) {
    if (try_acquire()) {
        return true;
    }
    Waiter w;
    waiters_.push_back(w);
    // On `ready` the releaser has already handed this fiber its permit.
    return detail::park_or_throw(w, deadline);
}

void Semaphore::release(std::ptrdiff_t n) {
    if (n < 0) {
        throw std::invalid_argument("grove: Semaphore::release of a negative count");
    }
    while (n > 0 && waiters_.wake_one(WakeReason::ready)) {
        --n;
    }
    count_ += n;
}

void BoundedSemaphore::release(std::ptrdiff_t n) {
    if (n > 0 && count_ + n > limit_) {
        throw std::logic_error("grove: BoundedSemaphore released more times than acquired");
    }
    Semaphore::release(n);
}

// ---- Mutex

Mutex::~Mutex() {
    GROVE_ASSERT(waiters_.empty(), "a Mutex was destroyed while fibers wait on it");
}

bool Mutex::try_lock() {
    if (owner_ == nullptr) {
        owner_ = Hub::current().running();
        return true;
    }
    return false;
}

bool Mutex::lock_ns(Nanos deadline, bool interruptible) {
    FiberCore* self = Hub::current().running();
    if (owner_ == self) {
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                "grove: Mutex locked twice by the same fiber");
    }
    if (owner_ == nullptr) {
        owner_ = self;
        return true;
    }
    Waiter w;
    waiters_.push_back(w);
    // On `ready`, unlock() has already made this fiber the owner.
    detail::park(w, deadline, interruptible);
    detail::throw_for(w);
    return w.why == WakeReason::ready;
}

void Mutex::unlock() {
    if (owner_ != Hub::current().running()) {
        throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                "grove: Mutex unlocked by a fiber that does not own it");
    }
    if (Waiter* w = waiters_.front()) {
        owner_ = w->fiber;
        detail::unpark(*w, WakeReason::ready);
    } else {
        owner_ = nullptr;
    }
}

// ---- CondVar

CondVar::~CondVar() {
    GROVE_ASSERT(waiters_.empty(), "a CondVar was destroyed while fibers wait on it");
}

void CondVar::notify_one() noexcept {
    waiters_.wake_one(WakeReason::ready);
}

void CondVar::notify_all() noexcept {
    waiters_.wake_all(WakeReason::ready);
}

bool CondVar::wait_ns(void* lock, LockFn unlock, LockFn relock, Nanos deadline) {
    FiberCore* self = Hub::current().running();
    Waiter w;
    waiters_.push_back(w);
    unlock(lock);
    detail::park(w, deadline, true);
    // Re-acquire whatever woke us: a kill or Timeout must leave the caller
    // holding the lock, as its RAII guard expects.
    ++self->no_interrupt;
    try {
        relock(lock);
    } catch (...) {
        --self->no_interrupt;
        throw;
    }
    --self->no_interrupt;
    detail::throw_for(w);
    return w.why == WakeReason::ready;
}

// ---- Group

Group::~Group() {
    shutdown();
}

void Group::shutdown() noexcept {
    if (size_ == 0) {
        return;
    }
    kill(false);
    FiberCore* self = Hub::current().running();
    ++self->no_interrupt;
    while (size_ > 0) {
        Waiter w;
        joiners_.push_back(w);
        detail::park(w, detail::kNoDeadline, false);
    }
    --self->no_interrupt;
}

// A member ended (TaskBase::on_finish_, called by the hub).
struct GroupAccess {
    static void member_finished(detail::TaskBase* t) noexcept { t->group_->on_member_finished(t); }
};

void Group::adopt(detail::TaskBase* t) {
    t->group_ = this;
    t->on_finish_ = &GroupAccess::member_finished;
    t->group_hook_.task = t;
    t->group_hook_.link_before(members_);
    ++t->refs_;
    ++size_;
}

void Group::on_member_finished(detail::TaskBase* t) noexcept {
    t->group_hook_.unlink();
    t->group_ = nullptr;
    t->on_finish_ = nullptr;
    --size_;
    if (t->error_ && !first_error_) {
        first_error_ = t->error_;
    }
    member_finished();
    if (size_ == 0) {
        joiners_.wake_all(WakeReason::ready);
    }
    detail::release_task(t);
}

bool Group::join_ns(Nanos deadline, bool raise_error) {
    FiberCore* self = Hub::current().running();
    if (self->task != nullptr && self->task->group_ == this) {
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                "grove: a Group member cannot join its own group");
    }
    while (size_ > 0) {
        Waiter w;
        joiners_.push_back(w);
        if (!detail::park_or_throw(w, deadline)) {
            return false;
        }
    }
    if (raise_error && first_error_) {
        std::rethrow_exception(std::exchange(first_error_, nullptr));
    }
    return true;
}

void Group::kill(bool wait) {
    for (detail::ListHook* h = members_.next; h != &members_; h = h->next) {
        detail::kill_task(static_cast<detail::TaskHook*>(h)->task);
    }
    if (wait) {
        join_ns(detail::kNoDeadline, false);
    }
}

// ---- Pool

Pool::Pool(std::size_t size) : size_(size), slots_(static_cast<std::ptrdiff_t>(size)) {
    if (size == 0) {
        throw std::invalid_argument("grove: Pool of size 0");
    }
}

Pool::~Pool() {
    // Members must end while slots_ still exists: they release into it.
    shutdown();
}

}  // namespace grove

// grove::Timeout scopes: a per-fiber chain, innermost first, that park()
// consults for its effective deadline.

#include <grove/timeout.hpp>

#include <cerrno>

#include "hub/hub.hpp"

namespace grove {

Timeout::Timeout(detail::Nanos deadline, Tag) : deadline_(deadline) {
    detail::FiberCore* self = detail::Hub::current().running();
    owner_ = self;
    outer_ = self->timeouts;
    self->timeouts = this;
}

Timeout::~Timeout() {
    // Scopes nest, so this is normally the head; anything else (a Timeout
    // on the heap, destroyed out of order) is unlinked where it sits.
    Timeout** p = &owner_->timeouts;
    while (*p != nullptr && *p != this) {
        p = &(*p)->outer_;
    }
    if (*p == this) {
        *p = outer_;
    }
}

bool Timeout::expired() const noexcept {
    return detail::now_ns() >= deadline_;
}

void Timeout::cancel() noexcept {
    armed_ = false;
}

namespace detail {

int defer_interruption(const Waiter& w) noexcept {
    FiberCore* self = w.fiber;
    switch (w.why) {
        case WakeReason::killed:
            self->kill_deferred = true;
            return ECANCELED;
        case WakeReason::scope_timeout:
            TimeoutAccess::armed(const_cast<Timeout*>(w.scope)) = false;
            self->timeout_deferred = w.scope;
            return ETIMEDOUT;
        default:
            return 0;
    }
}

void raise_if_due(FiberCore* self) {
    if (self->no_interrupt != 0) {
        return;
    }
    if (self->kill_pending || self->kill_deferred) {
        self->kill_pending = false;
        self->kill_deferred = false;
        self->timeout_deferred = nullptr;
        throw FiberExit();
    }
    if (const Timeout* t = self->timeout_deferred) {
        self->timeout_deferred = nullptr;
        throw TimeoutError(t);
    }
    if (self->timeouts == nullptr) {
        return;
    }
    const Nanos now = now_ns();
    Timeout* due = nullptr;
    for (Timeout* t = self->timeouts; t != nullptr; t = timeout_outer(t)) {
        if (timeout_armed(t) && timeout_deadline(t) <= now &&
            (due == nullptr || timeout_deadline(t) < timeout_deadline(due))) {
            due = t;
        }
    }
    if (due != nullptr) {
        TimeoutAccess::armed(due) = false;
        throw TimeoutError(due);
    }
}

}  // namespace detail
}  // namespace grove

// grove::Timeout scopes: a per-fiber chain, innermost first, that park()
// consults for its effective deadline.

#include <grove/timeout.hpp>

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

void raise_if_due(FiberCore* self) {
    if (self->no_interrupt != 0) {
        return;
    }
    if (self->kill_pending) {
        self->kill_pending = false;
        throw FiberExit();
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

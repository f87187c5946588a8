// The fiber API of include/grove/fiber.hpp over the hub.

#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <system_error>
#include <typeinfo>

#include "hub/hub.hpp"

namespace grove::detail {

Nanos now_ns() noexcept {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// An exception nobody will ever see again is reported here, the last moment
// anyone could: the shared state goes away with the handle and the fiber.
TaskBase::~TaskBase() {
    if (!error_ || observed_) {
        return;
    }
    const char* what = "an exception not derived from std::exception";
    std::string text;
    try {
        std::rethrow_exception(error_);
    } catch (const std::exception& e) {
        text = std::string(typeid(e).name()) + ": " + e.what();
        what = text.c_str();
    } catch (...) {
    }
    std::fprintf(stderr, "grove: fiber %llu%s%s%s ended by an uncaught exception: %s\n",
                 static_cast<unsigned long long>(id_), name_[0] != '\0' ? " (" : "", name_,
                 name_[0] != '\0' ? ")" : "", what);
}

void spawn_task(TaskBase* t, const SpawnOptions& opts, Nanos start_at) {
    Hub& hub = Hub::current();
    FiberCore* f = hub.new_fiber(t, opts);
    if (f == nullptr) {
        throw std::bad_alloc();
    }
    if (opts.name != nullptr) {
        std::strncpy(t->name_, opts.name, sizeof t->name_ - 1);
    }
    ++t->refs_;  // the fiber's own, dropped when it ends
    if (start_at == 0) {
        hub.make_ready(f);
    } else {
        hub.start_at(f, start_at);
    }
}

bool await_task(TaskBase* t, Nanos deadline) {
    if (t->finished_) {
        return true;
    }
    Hub& hub = Hub::current();
    FiberCore* f = t->core_;
    if (f == hub.running()) {
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                "grove: a fiber cannot join itself");
    }
    if (f->hub != &hub) {
        throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                "grove: a fiber can only be joined from its own thread");
    }
    Waiter w;
    f->joiners.push_back(w);
    return park_or_throw(w, deadline);
}

void kill_task(TaskBase* t) noexcept {
    if (!t->finished_ && t->core_ != nullptr) {
        t->core_->hub->kill(t->core_);
    }
}

void release_task(TaskBase* t) noexcept {
    if (--t->refs_ == 0) {
        delete t;
    }
}

void rethrow_task(TaskBase* t) {
    if (t->killed_) {
        throw FiberExit();
    }
    if (t->error_) {
        t->observed_ = true;
        std::rethrow_exception(t->error_);
    }
}

const char* task_name(const TaskBase* t) noexcept {
    return t->name_;
}

void throw_no_fiber() {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "grove: this Fiber handle holds no fiber (joined, detached or moved from)");
}

void throw_for(const Waiter& w) {
    switch (w.why) {
        case WakeReason::killed:
            throw FiberExit();
        case WakeReason::scope_timeout:
            TimeoutAccess::armed(const_cast<Timeout*>(w.scope)) = false;
            throw TimeoutError(w.scope);
        case WakeReason::closed:
            throw std::system_error(EBADF, std::generic_category(),
                                    "grove: the fd was closed while this fiber waited on it");
        default:
            return;
    }
}

}  // namespace grove::detail

namespace grove {

void join_all() {
    detail::Hub::current().wait_quiet();
}

namespace this_fiber {

void yield() {
    detail::Hub& hub = detail::Hub::current();
    detail::FiberCore* self = hub.running();
    if (self->kill_pending || self->kill_deferred || self->timeout_deferred != nullptr ||
        self->timeouts != nullptr) [[unlikely]] {
        detail::raise_if_due(self);
    }
    hub.yield_now();
    // A kill that arrived while this fiber sat in the run queue.
    if (self->kill_pending && self->no_interrupt == 0) {
        self->kill_pending = false;
        throw FiberExit();
    }
}

void sleep_for_ns(detail::Nanos deadline) {
    if (deadline != detail::kNoDeadline && deadline <= detail::now_ns()) {
        yield();  // sleep(0) lets the others run, as in gevent
        return;
    }
    detail::Waiter w;
    detail::park_or_throw(w, deadline);
}

FiberId id() noexcept {
    return detail::Hub::current().running()->id;
}

const char* name() noexcept {
    return detail::Hub::current().running()->name();
}

void set_name(const char* name) noexcept {
    detail::FiberCore* self = detail::Hub::current().running();
    if (self->task != nullptr && name != nullptr) {
        std::strncpy(self->task->name_, name, sizeof self->task->name_ - 1);
    }
}

}  // namespace this_fiber
}  // namespace grove

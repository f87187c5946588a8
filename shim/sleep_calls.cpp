// sleep, usleep, nanosleep, clock_nanosleep: a timer in the hub instead of
// the kernel. Results are libc's: 0, or -1/EINVAL for a malformed request
// (clock_nanosleep returns the error number instead), and EINTR with the
// remaining time when the sleep is cut short (a kill or grove::Timeout
// reaches C code as EINTR).

#include <time.h>
#include <unistd.h>

#include <climits>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

constexpr Nanos kSecond = 1'000'000'000;

bool valid(const struct timespec* t) noexcept {
    return t->tv_nsec >= 0 && t->tv_nsec < kSecond && t->tv_sec >= 0;
}

Nanos to_ns(const struct timespec* t) noexcept {
    if (t->tv_sec >= (LLONG_MAX / kSecond) - 1) {
        return kNoDeadline;
    }
    return static_cast<Nanos>(t->tv_sec) * kSecond + t->tv_nsec;
}

Nanos add(Nanos now, Nanos d) noexcept {
    return d >= kNoDeadline - now ? kNoDeadline : now + d;
}

// Writes the time left into *rem (if given); false (EFAULT) for a bad rem.
bool fill_remaining(struct timespec* rem, Nanos deadline) noexcept {
    if (rem == nullptr) {
        return true;
    }
    Nanos left = deadline == kNoDeadline ? 0 : deadline - detail::now_ns();
    if (left < 0) {
        left = 0;
    }
    struct timespec t{static_cast<time_t>(left / kSecond), static_cast<long>(left % kSecond)};
    return copy_to_user(rem, &t, sizeof t);
}

// Parks until `deadline`. 0 when it passed; EINTR when cut short.
int sleep_until(Hub* hub, Nanos deadline) noexcept {
    if (deadline <= detail::now_ns()) {
        hub->yield_now();  // a zero sleep still lets the others run
        return 0;
    }
    detail::Waiter w;
    detail::WakeReason why;
    {
        SignalWindow window(hub);
        why = hub->park(w, deadline, true);
    }
    if (why == detail::WakeReason::timed_out) {
        return 0;
    }
    detail::defer_interruption(w);  // a kill or Timeout: raised later in C++
    return EINTR;                   // sleeps are never restarted (signal(7))
}

}  // namespace

extern "C" {

int nanosleep(const struct timespec* req_user, struct timespec* rem) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    struct timespec copy;
    if (hub == nullptr || req_user == nullptr || !copy_from_user(&copy, req_user, sizeof copy)) {
        return sys::nanosleep(req_user, rem);  // the kernel's EFAULT
    }
    const struct timespec* req = &copy;
    if (!valid(req)) {
        errno = EINVAL;
        return -1;
    }
    const int saved = errno;
    const Nanos deadline = add(detail::now_ns(), to_ns(req));
    const int r = sleep_until(hub, deadline);
    if (r != 0) {
        if (!fill_remaining(rem, deadline)) {
            return -1;  // EFAULT
        }
        errno = r;
        return -1;
    }
    errno = saved;
    return 0;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec* req_user, struct timespec* rem) {
    GROVE_CANCELLATION_POINT(ECANCELED);
    Hub* hub = hub_for_call();
    const bool ours = clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME || clock == CLOCK_BOOTTIME;
    struct timespec copy;
    if (hub == nullptr || req_user == nullptr || !ours || (flags & ~TIMER_ABSTIME) != 0 ||
        !copy_from_user(&copy, req_user, sizeof copy)) {
        return sys::clock_nanosleep(clock, flags, req_user, rem);
    }
    const struct timespec* req = &copy;
    if (!valid(req)) {
        return EINVAL;
    }
    const Nanos now = detail::now_ns();
    Nanos deadline;
    if ((flags & TIMER_ABSTIME) == 0) {
        deadline = add(now, to_ns(req));
    } else {
        // An absolute time on clock: how far it is from that clock's now,
        // measured once (a later step of the wall clock is not followed).
        struct timespec cur;
        clock_gettime(clock, &cur);
        const Nanos target = to_ns(req);
        const Nanos current = to_ns(&cur);
        deadline = target == kNoDeadline ? kNoDeadline : add(now, target > current ? target - current : 0);
    }
    const int r = sleep_until(hub, deadline);
    if (r != 0 && (flags & TIMER_ABSTIME) == 0 && !fill_remaining(rem, deadline)) {
        return EFAULT;
    }
    return r;
}

int usleep(useconds_t usec) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::usleep(usec);
    }
    const int saved = errno;
    const int r = sleep_until(hub, add(detail::now_ns(), static_cast<Nanos>(usec) * 1000));
    if (r != 0) {
        errno = r;
        return -1;
    }
    errno = saved;
    return 0;
}

unsigned int sleep(unsigned int seconds) {
    GROVE_CANCELLATION_POINT(0);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::sleep(seconds);
    }
    const Nanos deadline = add(detail::now_ns(), static_cast<Nanos>(seconds) * kSecond);
    if (sleep_until(hub, deadline) != 0) {
        // As glibc: the whole seconds left, truncated, and errno as its
        // nanosleep left it.
        errno = EINTR;
        const Nanos left = deadline - detail::now_ns();
        return left <= 0 ? 0 : static_cast<unsigned>(left / kSecond);
    }
    return 0;
}

}  // extern "C"

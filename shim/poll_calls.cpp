// poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2.
// Every answer comes from the real call with a zero timeout, so it is
// exactly the kernel's; the shim only decides when to ask again: it parks
// the fiber until one of the fds may be ready (or the timeout passes)
// instead of blocking the thread. A call with a zero timeout of its own
// that finds nothing gives the other fibers a turn (give_way).
//
// Waiting on several fds uses a short-lived epoll set of the caller's fds,
// itself waited on by the hub; one fd is waited on directly.
// A sigmask (ppoll, pselect, epoll_pwait, epoll_pwait2) is applied around
// the wait with pthread_sigmask: not atomically as the kernel does (see
// README).

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>


#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

Nanos deadline_ms(int timeout_ms) noexcept {
    return timeout_ms < 0 ? kNoDeadline : detail::now_ns() + static_cast<Nanos>(timeout_ms) * 1'000'000;
}

Nanos deadline_ts(const struct timespec* ts) noexcept {
    if (ts == nullptr) {
        return kNoDeadline;
    }
    if (ts->tv_sec < 0 || ts->tv_sec > 1'000'000'000) {
        return ts->tv_sec < 0 ? 0 : kNoDeadline;
    }
    return detail::now_ns() + static_cast<Nanos>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec;
}

bool passed(Nanos deadline) noexcept {
    return deadline != kNoDeadline && detail::now_ns() >= deadline;
}

std::uint32_t epoll_events(short ev) noexcept {
    std::uint32_t e = 0;
    if ((ev & (POLLIN | POLLRDNORM | POLLRDBAND)) != 0) {
        e |= EPOLLIN;
    }
    if ((ev & (POLLOUT | POLLWRNORM | POLLWRBAND)) != 0) {
        e |= EPOLLOUT;
    }
    if ((ev & POLLPRI) != 0) {
        e |= EPOLLPRI;
    }
    if ((ev & POLLRDHUP) != 0) {
        e |= EPOLLRDHUP;
    }
    return e;
}

// Parks until one of fds may be ready. 0: look again; -1 with errno
// ETIMEDOUT when the deadline passed, EINTR when a kill or grove::Timeout
// cut the wait short.
int wait_any(const struct pollfd* fds, nfds_t n, Nanos deadline) noexcept {
    int wait_fd = -1;
    short wait_events = POLLIN;
    int set = -1;
    nfds_t live = 0;
    for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].fd >= 0) {
            ++live;
            wait_fd = fds[i].fd;
            wait_events = fds[i].events;
        }
    }
    // One fd, one direction: the hub waits on it directly. Anything else
    // (both directions, POLLPRI, several fds) goes through an epoll set.
    const bool simple = live == 1 && (wait_events == POLLIN || wait_events == POLLOUT);
    if (live == 0) {
        // Nothing to wait for: a plain sleep until the deadline.
        detail::Waiter w;
        Hub& hub = Hub::current();
        detail::WakeReason why;
        {
            SignalWindow window(&hub);
            why = hub.park(w, deadline, true);
        }
        if (why == detail::WakeReason::timed_out) {
            errno = ETIMEDOUT;
            return -1;
        }
        detail::defer_interruption(w);
        errno = EINTR;
        return -1;
    }
    if (!simple) {
        // For this call only: at the kernel's number, not a high one as the
        // library's long-lived fds (hub/own_fd.hpp).
        set = sys::epoll_create1(EPOLL_CLOEXEC);
        if (set < 0) {
            return -1;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].fd < 0) {
                continue;
            }
            struct epoll_event ev{};
            ev.events = epoll_events(fds[i].events);
            if (sys::epoll_ctl(set, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0 && errno == EEXIST) {
                struct epoll_event cur{};
                cur.events = ev.events;
                for (nfds_t j = 0; j < i; ++j) {
                    if (fds[j].fd == fds[i].fd) {
                        cur.events |= epoll_events(fds[j].events);
                    }
                }
                sys::epoll_ctl(set, EPOLL_CTL_MOD, fds[i].fd, &cur);
            }
            // Other failures (EPERM for a regular file) cannot matter: poll
            // calls such fds always ready, so the first look returned them.
        }
        wait_fd = set;
        wait_events = POLLIN;
    }
    int r;
    {
        SignalWindow window(&Hub::current());
        r = detail::io_wait(wait_fd, wait_events, deadline);
    }
    const int err = errno;
    if (set >= 0) {
        detail::io_close(set);
    }
    if (r == 0) {
        return 0;
    }
    if (err == ETIMEDOUT && passed(deadline)) {
        errno = ETIMEDOUT;
    } else if (err == ECANCELED || err == ETIMEDOUT || err == EINTR) {
        errno = EINTR;  // poll, select and epoll_wait are never restarted
    } else {
        errno = err;
    }
    return -1;
}

// The call's mask, while it lasts. Signals sent to this green thread that
// it lets in run before the call would wait (sent_ran: it then fails with
// EINTR, as the kernel's with a signal pending), and interrupt its wait.
struct MaskScope {
    sigset_t old;
    std::uint64_t bits = 0;     // the call's mask, signals 1-64
    std::uint64_t own_old = 0;
    bool on = false;
    bool own = false;  // the thread's mask in the shim's reckoning (green threads)
    SuspendSaved saved{};
    bool bad = false;  // an unreadable mask: the call fails with EFAULT, as the kernel's
    explicit MaskScope(const sigset_t* mask) noexcept {
        if (mask != nullptr) {
            if (!copy_from_user(&bits, mask, sizeof bits)) {
                bad = true;
                return;
            }
            own = own_mask_begin(mask, own_old);
            on = own || sys::pthread_sigmask(SIG_SETMASK, mask, &old) == 0;
        }
    }
    // Before the first wait; true if a sent signal's handler ran.
    bool sent_ran() noexcept {
        if (!on || saved.active) {
            return false;
        }
        return suspend_begin(bits, saved);
    }
    ~MaskScope() {
        // The thread's own mask back first: what it lets in then runs.
        if (own) {
            own_mask_end(own_old);
        } else if (on) {
            sys::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
        suspend_end(saved);
    }
};

// The call's answer: a success leaves errno as the caller had it (not the
// wait's ETIMEDOUT), as the kernel's call does.
int answer(int r, int saved) noexcept {
    if (r >= 0) {
        errno = saved;
    }
    return r;
}

int poll_until(struct pollfd* fds, nfds_t n, Nanos deadline, const sigset_t* mask) noexcept {
    const int saved = errno;
    // Open before the mask changes: a pending signal it lets in must
    // interrupt this call, as with the kernel's atomic mask swap.
    SignalWindow window(&Hub::current());
    MaskScope scope(mask);
    if (scope.bad) {
        errno = EFAULT;
        return -1;
    }
    for (;;) {
        const int r = sys::poll(fds, n, 0);
        if (r != 0 || passed(deadline)) {
            return answer(r, saved);
        }
        if (scope.sent_ran()) {
            errno = EINTR;
            return -1;
        }
        if (wait_any(fds, n, deadline) != 0) {
            if (errno == ETIMEDOUT) {
                return answer(sys::poll(fds, n, 0), saved);
            }
            return -1;
        }
    }
}

// select's sets as pollfds, and back. Linux counts each set bit once.
nfds_t to_pollfds(int nfds, const fd_set* r, const fd_set* w, const fd_set* e, struct pollfd* out) noexcept {
    nfds_t n = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
        short ev = 0;
        if (r != nullptr && FD_ISSET(fd, r)) {
            ev |= POLLIN;
        }
        if (w != nullptr && FD_ISSET(fd, w)) {
            ev |= POLLOUT;
        }
        if (e != nullptr && FD_ISSET(fd, e)) {
            ev |= POLLPRI;
        }
        if (ev != 0) {
            out[n++] = pollfd{fd, ev, 0};
        }
    }
    return n;
}

int select_until(int nfds, fd_set* r, fd_set* w, fd_set* e, Nanos deadline, const sigset_t* mask) noexcept {
    const fd_set r0 = r != nullptr ? *r : fd_set{};
    const fd_set w0 = w != nullptr ? *w : fd_set{};
    const fd_set e0 = e != nullptr ? *e : fd_set{};
    const int saved = errno;
    SignalWindow window(&Hub::current());
    MaskScope scope(mask);
    if (scope.bad) {
        errno = EFAULT;
        return -1;
    }
    struct pollfd fds[FD_SETSIZE];
    for (;;) {
        struct timeval zero{0, 0};
        const int res = sys::select(nfds, r, w, e, &zero);
        if (res != 0 || passed(deadline)) {
            return answer(res, saved);
        }
        // Nothing ready: the kernel cleared the sets. Restore them to wait.
        if (r != nullptr) {
            *r = r0;
        }
        if (w != nullptr) {
            *w = w0;
        }
        if (e != nullptr) {
            *e = e0;
        }
        if (scope.sent_ran()) {
            errno = EINTR;
            return -1;
        }
        const nfds_t n = to_pollfds(nfds, r, w, e, fds);
        if (wait_any(fds, n, deadline) != 0) {
            if (errno == ETIMEDOUT) {
                continue;  // one last look, with the kernel's answer
            }
            return -1;
        }
    }
}

// epoll_pwait and epoll_pwait2 once they would wait.
int epoll_until(int ep, struct epoll_event* events, int max, Nanos deadline, const sigset_t* mask) noexcept {
    const int saved = errno;
    SignalWindow window(&Hub::current());
    MaskScope scope(mask);
    if (scope.bad) {
        errno = EFAULT;
        return -1;
    }
    for (;;) {
        const int r = sys::epoll_wait(ep, events, max, 0);
        if (r != 0 || passed(deadline)) {
            return answer(r, saved);
        }
        if (scope.sent_ran()) {
            errno = EINTR;
            return -1;
        }
        if (detail::io_wait(ep, POLLIN, deadline) != 0) {
            if (errno == ETIMEDOUT && passed(deadline)) {
                continue;
            }
            if (errno == ECANCELED || errno == ETIMEDOUT) {
                errno = EINTR;
            }
            return -1;
        }
    }
}

// The answer of a zero-timeout call, after giving way if it found nothing.
int looked(Hub* hub, int r) noexcept {
    if (r == 0) {
        give_way(hub);
    }
    return r;
}

}  // namespace

extern "C" {

void __chk_fail(void) __attribute__((noreturn));

int poll(struct pollfd* fds, nfds_t n, int timeout) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::poll(fds, n, timeout);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    if (timeout == 0) {
        return looked(hub, sys::poll(fds, n, 0));
    }
    return poll_until(fds, n, deadline_ms(timeout), nullptr);
}

int ppoll(struct pollfd* fds, nfds_t n, const struct timespec* ts, const sigset_t* mask) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::ppoll(fds, n, ts, mask);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    if (ts != nullptr && ts->tv_sec == 0 && ts->tv_nsec == 0) {
        return looked(hub, sys::ppoll(fds, n, ts, mask));
    }
    if (ts != nullptr && (ts->tv_nsec < 0 || ts->tv_nsec >= 1'000'000'000 || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    return poll_until(fds, n, deadline_ts(ts), mask);
}

int __poll_chk(struct pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof(*fds) < n) {
        __chk_fail();
    }
    return poll(fds, n, timeout);
}

int __ppoll_chk(struct pollfd* fds, nfds_t n, const struct timespec* ts, const sigset_t* mask, size_t fdslen) {
    if (fdslen / sizeof(*fds) < n) {
        __chk_fail();
    }
    return ppoll(fds, n, ts, mask);
}

int select(int nfds, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
           struct timeval* __restrict tv) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::select(nfds, r, w, e, tv);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    if (tv != nullptr && tv->tv_sec == 0 && tv->tv_usec == 0) {
        return looked(hub, sys::select(nfds, r, w, e, tv));
    }
    if (nfds < 0 || nfds > FD_SETSIZE) {
        return sys::select(nfds, r, w, e, tv);
    }
    if (tv != nullptr && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
        errno = EINVAL;
        return -1;
    }
    Nanos deadline = kNoDeadline;
    if (tv != nullptr) {
        // Linux rounds a huge timeval down to "forever"-ish; keep it finite.
        const Nanos us = static_cast<Nanos>(tv->tv_sec) * 1'000'000 + tv->tv_usec;
        deadline = us > 1'000'000'000'000'000 ? kNoDeadline : detail::now_ns() + us * 1000;
    }
    const int res = select_until(nfds, r, w, e, deadline, nullptr);
    if (tv != nullptr && deadline != kNoDeadline) {
        // Linux reports the time not slept in the timeval.
        Nanos left = deadline - detail::now_ns();
        if (left < 0) {
            left = 0;
        }
        tv->tv_sec = static_cast<time_t>(left / 1'000'000'000);
        tv->tv_usec = static_cast<suseconds_t>((left % 1'000'000'000) / 1000);
    }
    return res;
}

int pselect(int nfds, fd_set* __restrict r, fd_set* __restrict w, fd_set* __restrict e,
            const struct timespec* __restrict ts, const sigset_t* __restrict mask) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::pselect(nfds, r, w, e, ts, mask);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    if (ts != nullptr && ts->tv_sec == 0 && ts->tv_nsec == 0) {
        return looked(hub, sys::pselect(nfds, r, w, e, ts, mask));
    }
    if (nfds < 0 || nfds > FD_SETSIZE) {
        return sys::pselect(nfds, r, w, e, ts, mask);
    }
    if (ts != nullptr && (ts->tv_nsec < 0 || ts->tv_nsec >= 1'000'000'000 || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    return select_until(nfds, r, w, e, deadline_ts(ts), mask);
}

int epoll_pwait(int ep, struct epoll_event* events, int max, int timeout, const sigset_t* mask) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::epoll_pwait(ep, events, max, timeout, mask);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    if (timeout == 0) {
        return looked(hub, sys::epoll_pwait(ep, events, max, 0, mask));
    }
    return epoll_until(ep, events, max, deadline_ms(timeout), mask);
}

int epoll_pwait2(int ep, struct epoll_event* events, int max, const struct timespec* ts, const sigset_t* mask) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::epoll_pwait2(ep, events, max, ts, mask);
    }
    hub->count_call();  // a turn for the others now and then, ready or not (hub.hpp)
    struct timespec t{};
    std::uint64_t m;
    // A bad pointer, a malformed or a zero timeout, a bad mask pointer: the
    // real call answers at once (0 only for a zero timeout that found
    // nothing).
    if ((ts != nullptr && (!copy_from_user(&t, ts, sizeof t) || t.tv_sec < 0 || t.tv_nsec < 0 ||
                           t.tv_nsec >= 1'000'000'000 || (t.tv_sec == 0 && t.tv_nsec == 0))) ||
        (mask != nullptr && !copy_from_user(&m, mask, sizeof m))) {
        return looked(hub, sys::epoll_pwait2(ep, events, max, ts, mask));
    }
    return epoll_until(ep, events, max, deadline_ts(ts != nullptr ? &t : nullptr), mask);
}

int epoll_wait(int ep, struct epoll_event* events, int max, int timeout) {
    GROVE_CANCELLATION_POINT(-1);
    return epoll_pwait(ep, events, max, timeout, nullptr);
}

}  // extern "C"

// liburing's waits for completions. liburing enters the kernel with system
// call instructions of its own, past every interposed function, so a green
// thread waiting there for a completion would hold up its OS thread, and
// with it the green threads that submit the I/O it waits for (MariaDB's
// InnoDB hung so at its start). Interposed here, as liburing exports them:
// - __io_uring_get_cqe, which io_uring_wait_cqe(), io_uring_wait_cqe_nr()
//   and io_uring_peek_cqe() (inline in its header) call through the
//   program's PLT;
// - io_uring_wait_cqes and io_uring_wait_cqe_timeout, io_uring_submit_and_wait
//   and io_uring_submit_and_wait_timeout, which reach the kernel inside
//   liburing.
// A wait that finds too few completions parks the fiber until the ring's fd
// polls readable (the kernel's sign that completions are there; with some
// there already but fewer than asked for, naps of 50 us to 1 ms), then
// looks again with liburing's own call, so what the caller gets is
// liburing's answer, with liburing's return values (the count submitted,
// -ETIME, -EINTR).
//
// Passed through: waits with a signal mask, rings whose completions need
// the waiter to enter the kernel (IOPOLL, SQPOLL, DEFER_TASKRUN), and timed
// waits on kernels without IORING_FEAT_EXT_ARG (liburing queues a timeout
// request of its own there).

#include "shim.hpp"

#if defined(GROVE_HAVE_URING)

#include <liburing.h>
#include <poll.h>

#include "io/io.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

using GetCqeFn = int (*)(struct io_uring*, struct io_uring_cqe**, unsigned, unsigned, sigset_t*);
using TimedWaitFn = int (*)(struct io_uring*, struct io_uring_cqe**, unsigned, struct __kernel_timespec*, sigset_t*);
using SubmitFn = int (*)(struct io_uring*);

constexpr unsigned kEnterToComplete = IORING_SETUP_IOPOLL | IORING_SETUP_SQPOLL | IORING_SETUP_DEFER_TASKRUN;
constexpr Nanos kFirstNap = 50'000;
constexpr Nanos kMaxNap = 1'000'000;

GetCqeFn real_get_cqe() noexcept {
    return GROVE_LIBC("__io_uring_get_cqe", GetCqeFn);
}

// This call may park, for `ring`: its hub, or null (pass it through).
Hub* hub_for_ring(const struct io_uring* ring, const sigset_t* sigmask) noexcept {
    if (sigmask != nullptr || (ring->flags & kEnterToComplete) != 0) {
        return nullptr;
    }
    return hub_for_call();
}

bool passed(Nanos deadline) noexcept {
    return deadline != kNoDeadline && detail::now_ns() >= deadline;
}

// A wait cut short (`why`: -ETIME, -EINTR...): as the kernel's, whose wait
// then says 0 if any completion is there, and liburing hands the first.
int ended(GetCqeFn real, struct io_uring* ring, struct io_uring_cqe** cqe_ptr, int why) noexcept {
    const int r = real(ring, cqe_ptr, 0, 0, nullptr);
    if (r == 0 && *cqe_ptr != nullptr) {
        return 0;
    }
    *cqe_ptr = nullptr;
    return why;
}

// Parks until `ring` holds `want` completions (the first in *cqe_ptr) or
// until `deadline`: 0, -ETIME when the deadline passed, -EINTR for a
// signal, a kill or a grove::Timeout (either with no completion there), or
// the ring's error. Every look is
// liburing's own peek (which also flushes completions the kernel kept
// back when the ring was full).
int wait_for(Hub* hub, struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned want, Nanos deadline) noexcept {
    const GetCqeFn real = real_get_cqe();
    SignalWindow window(hub, false);  // not a cancellation point in liburing
    Nanos nap = kFirstNap;
    for (;;) {
        const int r = real(ring, cqe_ptr, 0, 0, nullptr);
        if (r < 0 && r != -EAGAIN) {
            return r;
        }
        if (*cqe_ptr != nullptr && io_uring_cq_ready(ring) >= want) {
            return 0;
        }
        if (passed(deadline)) {
            return ended(real, ring, cqe_ptr, -ETIME);
        }
        int failed;
        if (*cqe_ptr == nullptr) {
            failed = detail::io_wait(ring->ring_fd, POLLIN, deadline);
        } else {
            // Some there, fewer than wanted: the fd stays readable.
            Nanos until = detail::now_ns() + nap;
            if (deadline != kNoDeadline && deadline < until) {
                until = deadline;
            }
            nap = std::min(nap * 2, kMaxNap);
            detail::Waiter w;
            const detail::WakeReason why = hub->park(w, until, true);
            failed = why == detail::WakeReason::timed_out ? 0 : -1;
            if (failed != 0) {
                const int e = detail::defer_interruption(w);
                errno = e != 0 ? e : EINTR;
            }
        }
        if (failed != 0) {
            if (errno == ETIMEDOUT && passed(deadline)) {
                continue;  // one more look, then -ETIME
            }
            // A signal (the kernel's wait ends with -EINTR), a kill or a
            // grove::Timeout; a closed ring, as the kernel says.
            const int err = errno == ECANCELED || errno == ETIMEDOUT ? EINTR : errno;
            return ended(real, ring, cqe_ptr, -err);
        }
    }
}

// liburing's answer after a wait that followed `submitted` submissions:
// the count submitted when there was one, whatever the wait said; else
// the wait's 0 or error.
int answer(int submitted, int waited) noexcept {
    return submitted > 0 ? submitted : waited;
}

// The deadline of a wait for `ts` from now.
Nanos deadline_after(const struct __kernel_timespec* ts) noexcept {
    if (ts == nullptr) {
        return kNoDeadline;
    }
    return detail::now_ns() + static_cast<Nanos>(ts->tv_sec) * 1'000'000'000 + static_cast<Nanos>(ts->tv_nsec);
}

// A timed wait that liburing would make with a timeout request of its own
// (a kernel without IORING_FEAT_EXT_ARG) or with a bad time: its own.
bool timed_by_liburing(const struct io_uring* ring, const struct __kernel_timespec* ts) noexcept {
    return ts != nullptr && ((ring->features & IORING_FEAT_EXT_ARG) == 0 || ts->tv_sec < 0 || ts->tv_nsec < 0 ||
                             ts->tv_nsec >= 1'000'000'000);
}

// Submits what the ring holds, then waits for `wait_nr` completions until
// `deadline`: liburing's answer.
int submit_then_wait(Hub* hub, struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned wait_nr, Nanos deadline) noexcept {
    const int saved = errno;
    const int submitted = GROVE_LIBC("io_uring_submit", SubmitFn)(ring);
    if (submitted < 0) {
        return submitted;
    }
    const int waited = wait_for(hub, ring, cqe_ptr, wait_nr, deadline);
    errno = saved;
    return answer(submitted, waited);
}

}  // namespace

extern "C" {

int __io_uring_get_cqe(struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned submit, unsigned wait_nr,
                       sigset_t* sigmask) {
    const GetCqeFn real = real_get_cqe();
    if (real == nullptr) {
        return -ENOSYS;
    }
    Hub* hub = hub_for_ring(ring, sigmask);
    if (hub == nullptr || wait_nr == 0) {
        return real(ring, cqe_ptr, submit, wait_nr, sigmask);
    }
    const int saved = errno;
    // Submit what was asked and take a completion already there, without
    // waiting: liburing then answers what it submitted (or -EAGAIN, with
    // nothing to submit and nothing there).
    const int first = real(ring, cqe_ptr, submit, 0, nullptr);
    if (first < 0 && (first != -EAGAIN || submit > 0)) {
        return first;  // (-EAGAIN with something to submit: the kernel's, at once)
    }
    // liburing's own wait answers what its first entry to the kernel did:
    // the submitted count, or 0 with nothing to submit.
    const int submitted = submit > 0 ? first : 0;
    if (*cqe_ptr != nullptr && io_uring_cq_ready(ring) >= wait_nr) {
        return submitted;
    }
    const int waited = wait_for(hub, ring, cqe_ptr, wait_nr, kNoDeadline);
    errno = saved;
    return answer(submitted, waited);
}

int io_uring_wait_cqes(struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned wait_nr,
                       struct __kernel_timespec* ts, sigset_t* sigmask) {
    Hub* hub = hub_for_ring(ring, sigmask);
    if (hub == nullptr || wait_nr == 0 || timed_by_liburing(ring, ts)) {
        return GROVE_LIBC("io_uring_wait_cqes", TimedWaitFn)(ring, cqe_ptr, wait_nr, ts, sigmask);
    }
    if (ts == nullptr) {
        return __io_uring_get_cqe(ring, cqe_ptr, 0, wait_nr, nullptr);  // liburing's own way
    }
    // A timed wait submits nothing (liburing's with the kernel's timed wait).
    const int saved = errno;
    const int r = wait_for(hub, ring, cqe_ptr, wait_nr, deadline_after(ts));
    errno = saved;
    return r;
}

int io_uring_wait_cqe_timeout(struct io_uring* ring, struct io_uring_cqe** cqe_ptr, struct __kernel_timespec* ts) {
    return io_uring_wait_cqes(ring, cqe_ptr, 1, ts, nullptr);
}

int io_uring_submit_and_wait(struct io_uring* ring, unsigned wait_nr) {
    using Fn = int (*)(struct io_uring*, unsigned);
    Hub* hub = hub_for_ring(ring, nullptr);
    if (hub == nullptr || wait_nr == 0) {
        return GROVE_LIBC("io_uring_submit_and_wait", Fn)(ring, wait_nr);
    }
    struct io_uring_cqe* cqe = nullptr;
    return submit_then_wait(hub, ring, &cqe, wait_nr, kNoDeadline);
}

int io_uring_submit_and_wait_timeout(struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned wait_nr,
                                     struct __kernel_timespec* ts, sigset_t* sigmask) {
    Hub* hub = hub_for_ring(ring, sigmask);
    if (hub == nullptr || wait_nr == 0 || timed_by_liburing(ring, ts)) {
        return GROVE_LIBC("io_uring_submit_and_wait_timeout", TimedWaitFn)(ring, cqe_ptr, wait_nr, ts, sigmask);
    }
    return submit_then_wait(hub, ring, cqe_ptr, wait_nr, deadline_after(ts));
}

}  // extern "C"

#endif  // GROVE_HAVE_URING

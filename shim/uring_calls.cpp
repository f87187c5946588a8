// liburing's wait for a completion. liburing enters the kernel with system
// call instructions of its own, past every interposed function, so a green
// thread waiting there for a completion would hold up its OS thread, and
// with it the green threads that submit the I/O it waits for (MariaDB's
// InnoDB hung so at its start). liburing exports __io_uring_get_cqe, which
// io_uring_wait_cqe(), io_uring_wait_cqe_nr() and io_uring_peek_cqe()
// (inline in its header) call through the program's PLT: interposed here.
// A wait for one completion that finds none parks the fiber until the
// ring's fd polls readable (the kernel's sign that completions are there),
// then looks again with liburing's own call, so what the caller gets is
// liburing's answer.
//
// Passed through: a wait for more than one completion, one with a signal
// mask, and rings whose completions need the waiter to enter the kernel
// (IOPOLL, SQPOLL, DEFER_TASKRUN). liburing's other waits
// (io_uring_wait_cqes, io_uring_submit_and_wait and their timeout forms)
// reach the kernel inside liburing and stay blocking (README).

#include "shim.hpp"

#if defined(GROVE_HAVE_URING)

#include <liburing.h>
#include <poll.h>

#include "io/io.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

using GetCqeFn = int (*)(struct io_uring*, struct io_uring_cqe**, unsigned, unsigned, sigset_t*);

constexpr unsigned kEnterToComplete = IORING_SETUP_IOPOLL | IORING_SETUP_SQPOLL | IORING_SETUP_DEFER_TASKRUN;

}  // namespace

extern "C" {

int __io_uring_get_cqe(struct io_uring* ring, struct io_uring_cqe** cqe_ptr, unsigned submit, unsigned wait_nr,
                       sigset_t* sigmask) {
    const GetCqeFn real = GROVE_LIBC("__io_uring_get_cqe", GetCqeFn);
    if (real == nullptr) {
        return -ENOSYS;
    }
    Hub* hub = hub_for_call();
    if (hub == nullptr || wait_nr != 1 || sigmask != nullptr || (ring->flags & kEnterToComplete) != 0) {
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
    const int answer = submit > 0 ? first : 0;
    if (*cqe_ptr != nullptr) {
        return answer;
    }
    SignalWindow window(hub, false);  // not a cancellation point in liburing
    for (;;) {
        if (detail::io_wait(ring->ring_fd, POLLIN, kNoDeadline) != 0) {
            // A signal (the kernel's wait ends with -EINTR), a kill or a
            // grove::Timeout; a closed ring, as the kernel says.
            const int err = errno == ECANCELED || errno == ETIMEDOUT ? EINTR : errno;
            errno = saved;
            return -err;
        }
        const int r = real(ring, cqe_ptr, 0, 0, nullptr);
        if (r < 0 && r != -EAGAIN) {
            errno = saved;
            return r;
        }
        if (*cqe_ptr != nullptr) {
            errno = saved;
            return answer;
        }
    }
}

}  // extern "C"

#endif  // GROVE_HAVE_URING

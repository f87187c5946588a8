// waitpid/wait/wait4 wait for a child without blocking the thread: through
// a pidfd when there is one child to wait for, else by polling with a
// backoff. fork gives the child a fresh hub holding only the forking fiber.
// sched_yield is a fiber yield.

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

// Sleeps the fiber; false (errno EINTR) if a signal, kill or Timeout cut it short.
bool nap(Hub* hub, Nanos d) noexcept {
    detail::Waiter w;
    detail::WakeReason why;
    {
        SignalWindow window(hub);
        why = hub->park(w, detail::now_ns() + d, true);
    }
    if (why == detail::WakeReason::timed_out) {
        return true;
    }
    detail::defer_interruption(w);
    errno = EINTR;
    return false;
}

// Not noexcept: waitpid is a cancellation point, and where the call passes
// through (an OS thread without a hub), glibc's cancellation unwinds
// through this frame.
template <class Call>
pid_t wait_child(pid_t pid, int options, Call&& call) {
    Hub* hub = hub_for_call();
    if (hub == nullptr || (options & WNOHANG) != 0) {
        return call(options);
    }
    pid_t r = call(options | WNOHANG);
    if (r != 0) {
        return r;
    }
    // One child, exit only: its pidfd becomes readable when it ends.
    int pidfd = -1;
    if (pid > 0 && (options & (WUNTRACED | WCONTINUED)) == 0) {
        pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    }
    Nanos backoff = 1'000'000;
    for (;;) {
        int w;
        if (pidfd >= 0) {
            SignalWindow window(hub);
            w = detail::io_wait(pidfd, POLLIN, kNoDeadline);
        } else {
            w = nap(hub, backoff) ? 0 : -1;
            backoff = std::min<Nanos>(backoff * 2, 50'000'000);
        }
        if (w != 0) {
            if (errno == EINTR && restarts(hub, false)) {
                continue;
            }
            if (pidfd >= 0) {
                detail::io_close(pidfd);
            }
            errno = EINTR;
            return -1;
        }
        r = call(options | WNOHANG);
        if (r != 0) {
            if (pidfd >= 0) {
                const int e = errno;
                detail::io_close(pidfd);
                errno = e;
            }
            return r;
        }
    }
}

}  // namespace

extern "C" {

pid_t waitpid(pid_t pid, int* status, int options) {
    return wait_child(pid, options, [&](int opts) { return sys::waitpid(pid, status, opts); });
}

pid_t wait(int* status) {
    return waitpid(-1, status, 0);
}

pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) noexcept {
    return wait_child(pid, options, [&](int opts) { return sys::wait4(pid, status, opts, usage); });
}

int sched_yield(void) noexcept {
    if (Hub* hub = hub_for_call()) {
        hub->yield_now();
        return 0;
    }
    return sys::sched_yield();
}

pid_t fork(void) noexcept {
    const pid_t pid = sys::fork();
    if (pid == 0) {
        note_fork_child();
        if (Hub* hub = Hub::current_if_any()) {
            hub->after_fork_child();
        }
    }
    return pid;
}

}  // extern "C"

// The shim's one decision, made at the top of every interposed call: can this
// call park a fiber, or must it go straight to libc?
//
// A call is cooperative when the shim is enabled and initialised, the calling
// thread has a hub (it uses grove, or it is the main thread and GROVE_MAIN_HUB
// is on, as grove-run sets it), and the caller is not the hub fiber itself.
// Everything else passes through unchanged: GROVE_DISABLE=1, calls made
// during dynamic loading and static constructors, threads that never used
// grove.
//
// An fd call is cooperative only for fds that can wait (sockets, pipes,
// ttys, eventfd...) and that the user did not make non-blocking. Sockets and
// the pipes the shim itself created are switched to O_NONBLOCK (and the flag
// hidden from the user); other inherited fds (a terminal on stdin) are waited
// for readiness and then called as they are, so a file description shared
// with another process is never changed under it.
#pragma once

#include <poll.h>

#include <atomic>
#include <cerrno>

#include <grove/detail/time.hpp>

#include "fd_table.hpp"
#include "signals.hpp"
#include "hub/hub.hpp"
#include "io/io.hpp"
#include "sys/sys.hpp"

namespace grove::shim {

using detail::Hub;
using detail::kNoDeadline;
using detail::Nanos;

struct Config {
    bool disabled = false;  // GROVE_DISABLE=1
    bool main_hub = false;  // GROVE_MAIN_HUB=1: the main thread is cooperative from the start
};

extern Config config;
extern std::atomic<bool> ready;  // set at the end of the shim's constructor

// This thread's hub if the call may park, else nullptr.
Hub* hub_for_call() noexcept;

// How one fd call is to be made.
enum class Path {
    passthrough,  // call libc as it is
    emulate,      // fd has the shim's O_NONBLOCK but no fiber can park: block in poll(2)
    retry,        // try, on EAGAIN park until ready, retry (fd is O_NONBLOCK)
    ready_first,  // park until ready, then the (blocking) call
};

Path fd_path(int fd, Hub*& hub, FdEntry*& entry) noexcept;

// Absolute deadline for a socket's SO_RCVTIMEO/SO_SNDTIMEO, or kNoDeadline.
inline Nanos sockopt_deadline(const FdEntry* e, bool want_write) noexcept {
    if (e == nullptr) {
        return kNoDeadline;
    }
    const Nanos t = (want_write ? e->sndtimeo : e->rcvtimeo).load(std::memory_order_relaxed);
    return t > 0 ? detail::now_ns() + t : kNoDeadline;
}

// Blocks the thread in poll(2) until fd is ready or the deadline passes: the
// wait a blocking fd would have done in the kernel. 0, or -1 with EAGAIN on
// timeout (what a blocking socket with SO_RCVTIMEO reports).
int block_until_ready(int fd, short events, Nanos deadline) noexcept;

// While alive, a signal handler running wakes this fiber's wait with
// WakeReason::interrupted (the wait then fails with EINTR), as a signal
// interrupts a thread blocked in the kernel.
class SignalWindow {
public:
    explicit SignalWindow(Hub* hub) noexcept : fiber_(hub->running()) { fiber_->signal_interruptible = true; }
    ~SignalWindow() { fiber_->signal_interruptible = false; }
    SignalWindow(const SignalWindow&) = delete;
    SignalWindow& operator=(const SignalWindow&) = delete;

private:
    detail::FiberCore* fiber_;
};

// After a wait failed with EINTR: whether the call restarts, as the kernel
// decides it (SA_RESTART on every handler that ran; never for a socket
// with a timeout set, signal(7)).
inline bool restarts(Hub* hub, bool has_timeout) noexcept {
    return !has_timeout && restart_after(hub->interrupt_signals());
}

// Runs `op` (one attempt of the real call) as the blocking call would behave.
// `timeout_errno`: what the call reports when its socket timeout expires.
template <class Op>
auto call_fd(int fd, bool want_write, Op&& op, int timeout_errno = EAGAIN) noexcept -> decltype(op()) {
    Hub* hub = nullptr;
    FdEntry* e = nullptr;
    const Path path = fd_path(fd, hub, e);
    if (path == Path::passthrough) {
        return op();
    }
    const Nanos deadline = sockopt_deadline(e, want_write);
    const short events = want_write ? POLLOUT : POLLIN;
    if (path == Path::ready_first) {
        for (;;) {
            int w;
            {
                SignalWindow window(hub);
                w = detail::io_wait(fd, events, deadline);
            }
            if (w == 0) {
                return op();
            }
            if (errno == EINTR && restarts(hub, deadline != kNoDeadline)) {
                continue;
            }
            if (errno == ETIMEDOUT && deadline != kNoDeadline && detail::now_ns() >= deadline) {
                errno = timeout_errno;
            }
            return -1;
        }
    }
    for (;;) {
        const auto r = op();
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            return r;
        }
        int w;
        if (path == Path::emulate) {
            w = block_until_ready(fd, events, deadline);
        } else {
            {
                SignalWindow window(hub);
                w = detail::io_await(fd, want_write, deadline);
            }
            if (w != 0 && errno == EINTR && restarts(hub, deadline != kNoDeadline)) {
                continue;
            }
            if (w != 0 && errno == ETIMEDOUT && deadline != kNoDeadline && detail::now_ns() >= deadline) {
                errno = timeout_errno;  // the socket's own timeout, as Linux reports it
            }
        }
        if (w != 0) {
            if (path == Path::emulate && errno == EAGAIN) {
                errno = timeout_errno;
            }
            return -1;
        }
    }
}

// Tells the hub (if any) and the fd table that `fd` is a new file.
void adopt_new_fd(int fd, FdKind kind, bool user_nonblock) noexcept;

// Saves errno across the shim's own bookkeeping.
struct ErrnoGuard {
    int saved = errno;
    ~ErrnoGuard() { errno = saved; }
};

}  // namespace grove::shim

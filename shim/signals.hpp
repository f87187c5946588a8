// What the shim knows of the user's signal handlers (signal_calls.cpp).
#pragma once

#include <signal.h>

#include <cstdint>

namespace grove::shim {

// Whether calls interrupted by `signals` (a bit per signal number) restart:
// true only if each of them has a handler installed with SA_RESTART.
bool restart_after(std::uint64_t signals) noexcept;

// Signals sent to one green thread (pthread_kill, pthread_sigqueue) run
// their handlers in that thread's own context, as it next runs
// (thread_calls.cpp). raise_sent raises one on this OS thread, for the
// running fiber, with the siginfo libc's call gives (code SI_TKILL or
// SI_QUEUE); true if its handler ran there and then. Such a handler runs
// as ordinary code of the fiber (it may wait), and no other fiber's wait
// sees it (signal_calls.cpp).
// `own`: the thread's own blocked set (bit n - 1 for signal n), which the
// OS thread takes for the raise; the handler runs under the OS thread's
// mask as it was, for the other threads' sake.
bool raise_sent(int sig, int code, union sigval value, std::uint64_t own) noexcept;
// Whether the program installed a handler of its own for sig.
bool signal_caught(int sig) noexcept;
// The sigwait family on a green thread: its sent signals in `set` (bit
// sig - 1) are taken first (the first into *info; false if none), and
// while it waits for `set` (0: no longer) a signal sent to it that it
// blocks ends the wait.
bool take_sent(std::uint64_t set, siginfo_t* info) noexcept;
void note_sigwait(std::uint64_t set) noexcept;
// The running green thread's sent signals not yet run (bit sig - 1).
std::uint64_t sent_pending() noexcept;
// What the program's handler of sig blocks while it runs (bit n - 1 for
// signal n): its sa_mask, and sig itself unless SA_NODEFER.
std::uint64_t handler_mask(int sig) noexcept;
// A call that waits with a mask of its own (sigsuspend, ppoll, pselect,
// epoll_pwait) on the green threads' thread: *set is the running thread's
// mask until own_mask_end(saved), in the reckoning of what the OS thread
// blocks (so another thread's pthread_sigmask meanwhile keeps it). false:
// not there (no green thread yet, or a bad pointer): the caller sets the
// OS thread's mask itself.
bool own_mask_begin(const sigset_t* set, std::uint64_t& saved) noexcept;
void own_mask_end(std::uint64_t saved) noexcept;
// sigsuspend (and ppoll, pselect, epoll_pwait) on a green thread: `mask`
// stands for its whole mask until suspend_end(saved). true if signals sent
// to it ran at once (the call ends with EINTR).
struct SuspendSaved {
    std::uint64_t mask;
    std::uint64_t in_handlers;
    bool suspended;
    bool active;
};
bool suspend_begin(std::uint64_t mask, SuspendSaved& saved) noexcept;
void suspend_end(const SuspendSaved& saved) noexcept;

}  // namespace grove::shim

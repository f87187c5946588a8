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
bool raise_sent(int sig, int code, union sigval value) noexcept;
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
// sigsuspend on a green thread: `mask` stands for its mask until
// suspend_end(). true if signals sent to it ran at once (the call ends).
bool suspend_begin(std::uint64_t mask) noexcept;
void suspend_end() noexcept;

}  // namespace grove::shim

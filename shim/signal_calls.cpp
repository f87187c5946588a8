// sigaction and signal: the user's handlers run inside a trampoline that
// first notes which signal arrived (Hub::signals_pending), so the hub can
// interrupt the fibers parked in interposed calls the way the kernel
// interrupts blocked syscalls: EINTR, or a restart under SA_RESTART.
//
// The kernel sees the trampoline; the user sees only its own handler:
// sigaction's old action reports what the user installed.

#include <signal.h>

#include <atomic>

#include "shim.hpp"
#include "signals.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

struct Slot {
    std::atomic<bool> wrapped{false};
    struct sigaction user{};  // the user's action while wrapped
};

Slot slots[NSIG];

void trampoline(int sig, siginfo_t* info, void* ctx) {
    if (sig > 0 && sig < 64) {
        Hub::signal_count.fetch_add(1, std::memory_order_acq_rel);
        Hub::signals_pending.fetch_or(std::uint64_t{1} << sig, std::memory_order_release);
    }
    const struct sigaction& a = slots[sig].user;
    if ((a.sa_flags & SA_SIGINFO) != 0) {
        if (a.sa_sigaction != nullptr) {
            a.sa_sigaction(sig, info, ctx);
        }
    } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN && a.sa_handler != nullptr) {
        a.sa_handler(sig);
    }
}

bool wrappable(int sig) noexcept {
    // Below 64 so the pending mask can hold it; never the signals grove
    // itself handles for the overflow report.
    return ready.load(std::memory_order_acquire) && !config.disabled && sig > 0 && sig < 64 && sig != SIGSEGV &&
           sig != SIGBUS && sig != SIGKILL && sig != SIGSTOP;
}

}  // namespace

namespace grove::shim {

bool restart_after(std::uint64_t signals) noexcept {
    if (signals == 0) {
        return true;
    }
    for (int sig = 1; sig < 64; ++sig) {
        if ((signals & (std::uint64_t{1} << sig)) == 0) {
            continue;
        }
        const Slot& s = slots[sig];
        if (!s.wrapped.load(std::memory_order_acquire) || (s.user.sa_flags & SA_RESTART) == 0) {
            return false;
        }
    }
    return true;
}

}  // namespace grove::shim

extern "C" {

int sigaction(int sig, const struct sigaction* __restrict act, struct sigaction* __restrict old) noexcept {
    if (!wrappable(sig)) {
        return sys::sigaction(sig, act, old);
    }
    Slot& slot = slots[sig];
    struct sigaction previous_user = slot.user;
    const bool was_wrapped = slot.wrapped.load(std::memory_order_acquire);
    struct sigaction kernel_old{};
    int r;
    if (act != nullptr && ((act->sa_flags & SA_SIGINFO) != 0 || (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN))) {
        struct sigaction k = *act;
        k.sa_sigaction = &trampoline;
        k.sa_flags |= SA_SIGINFO;
        // Store first: the signal may arrive as soon as the kernel has k.
        slot.user = *act;
        slot.wrapped.store(true, std::memory_order_release);
        r = sys::sigaction(sig, &k, &kernel_old);
        if (r != 0) {
            slot.user = previous_user;
            slot.wrapped.store(was_wrapped, std::memory_order_release);
        }
    } else {
        r = sys::sigaction(sig, act, &kernel_old);
        if (r == 0 && act != nullptr) {
            slot.wrapped.store(false, std::memory_order_release);
        }
    }
    if (r == 0 && old != nullptr) {
        const bool kernel_has_trampoline =
            (kernel_old.sa_flags & SA_SIGINFO) != 0 && kernel_old.sa_sigaction == &trampoline;
        *old = kernel_has_trampoline && was_wrapped ? previous_user : kernel_old;
    }
    return r;
}

// glibc's signal(): BSD semantics, that is SA_RESTART and the signal itself
// blocked while its handler runs.
sighandler_t signal(int sig, sighandler_t handler) noexcept {
    struct sigaction act{};
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    if (sig > 0 && sig < NSIG) {
        sigaddset(&act.sa_mask, sig);
    }
    act.sa_flags = SA_RESTART;
    struct sigaction old{};
    if (sigaction(sig, &act, &old) != 0) {
        return SIG_ERR;
    }
    return old.sa_handler;
}

}  // extern "C"

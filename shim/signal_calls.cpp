// sigaction and signal: the user's handlers run inside a trampoline that
// first notes which signal arrived (Hub::signals_pending), so the hub can
// interrupt the fibers parked in interposed calls the way the kernel
// interrupts blocked syscalls: EINTR, or a restart under SA_RESTART.
//
// The kernel sees the trampoline; the user sees only its own handler:
// sigaction's old action reports what the user installed.
//
// pause, sigsuspend and the sigwait family wait for signals cooperatively:
// pause and sigsuspend park until a handler runs; sigwait, sigwaitinfo and
// sigtimedwait park on a signalfd of their set (readable while one of its
// signals is pending) and take the signal with the real sigtimedwait and a
// zero timeout, so the siginfo is the kernel's.

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>

#include <atomic>
#include <bit>
#include <cstring>

#include "shim.hpp"
#include "signals.hpp"

using namespace grove;
using namespace grove::shim;

namespace {

// The user's handler of each signal the shim wrapped (its bit set in
// `wrapped`), for the trampoline, and two bits of its flags. Small and among
// the data loading writes anyway: a program that asks for every signal's
// action at start (Python does) touches nothing else of the shim's.
GROVE_LOAD_DATA constinit void* handlers[64]{};  // sa_handler or sa_sigaction
GROVE_LOAD_DATA constinit std::atomic<std::uint64_t> wrapped{0};
GROVE_LOAD_DATA constinit std::atomic<std::uint64_t> with_siginfo{0};  // SA_SIGINFO
GROVE_LOAD_DATA constinit std::atomic<std::uint64_t> with_restart{0};  // SA_RESTART
// What each handler blocks while it runs (handler_mask), for signals sent
// to one green thread, which it runs itself.
GROVE_LOAD_DATA constinit std::uint64_t blocks[64]{};

bool has(const std::atomic<std::uint64_t>& bits, int sig) noexcept {
    return (bits.load(std::memory_order_acquire) & (std::uint64_t{1} << sig)) != 0;
}

// Records (or, on failure, puts back) the user's action of sig.
void record(int sig, void* handler, bool siginfo, bool restart, std::uint64_t block) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << sig;
    handlers[sig] = handler;
    blocks[sig] = block;
    if (siginfo) {
        with_siginfo.fetch_or(bit, std::memory_order_release);
    } else {
        with_siginfo.fetch_and(~bit, std::memory_order_release);
    }
    if (restart) {
        with_restart.fetch_or(bit, std::memory_order_release);
    } else {
        with_restart.fetch_and(~bit, std::memory_order_release);
    }
}

// Signals put off while the hub copies green threads' thread-local
// variables (Hub::copying_tls): sent again to this thread, with their
// siginfo, once the copy is done. Only the thread that runs green threads
// copies images, so only it and its handlers touch these; plain statics,
// not thread-locals, which every thread of every program the shim is
// preloaded into would carry (and zero at its start).
struct Deferred {
    int sig;
    siginfo_t info;
};
constexpr int kDeferred = 32;
Deferred deferred[kDeferred];
std::atomic<int> deferred_count{0};

#if defined(__x86_64__)
long raw_tgsigqueueinfo(pid_t pid, pid_t tid, int sig, siginfo_t* info) noexcept {
    long ret;
    register long r10 asm("r10") = reinterpret_cast<long>(info);
    asm volatile("syscall"
                 : "=a"(ret)
                 : "a"(static_cast<long>(SYS_rt_tgsigqueueinfo)), "D"(static_cast<long>(pid)),
                   "S"(static_cast<long>(tid)), "d"(static_cast<long>(sig)), "r"(r10)
                 : "rcx", "r11", "memory");
    return ret;
}

void trampoline(int sig, siginfo_t* info, void* ctx);

bool defer_signal(int sig, const siginfo_t* info) noexcept {
    // A standard signal already put off: the kernel keeps one of each
    // pending, so this one merges with it (a timer faster than signal
    // delivery would otherwise fill the list during one copy).
    if (sig < SIGRTMIN) {
        const int n = deferred_count.load(std::memory_order_relaxed);
        for (int i = 0; i < n && i < kDeferred; ++i) {
            if (deferred[i].sig == sig) {
                return true;
            }
        }
    }
    // An action with SA_RESETHAND is SIG_DFL again by now: sent again, the
    // signal would meet that, so its handler runs at once.
    struct sigaction now{};
    if (sys::sigaction(sig, nullptr, &now) != 0 || (now.sa_flags & SA_SIGINFO) == 0 || now.sa_sigaction != &trampoline) {
        return false;
    }
    const int i = deferred_count.fetch_add(1, std::memory_order_relaxed);
    if (i >= kDeferred) {
        deferred_count.fetch_sub(1, std::memory_order_relaxed);
        return false;  // run it now rather than lose it
    }
    deferred[i].sig = sig;
    deferred[i].info = *info;
    return true;
}

// An OS thread outside the green ones holds a sync object's lock word
// (thread_calls.cpp) when a signal comes: one signal is put off, in the
// thread's own slot, and sent again to it at the release. A second,
// different one runs at once.
struct OsDeferred {
    int sig;
    siginfo_t info;
};
thread_local OsDeferred os_deferred [[gnu::tls_model("initial-exec")]];

bool defer_on_os_thread(int sig, const siginfo_t* info) noexcept {
    if (os_deferred.sig != 0) {
        return os_deferred.sig == sig && sig < SIGRTMIN;  // merges, as the kernel's
    }
    struct sigaction now{};
    if (sys::sigaction(sig, nullptr, &now) != 0 || (now.sa_flags & SA_SIGINFO) == 0 || now.sa_sigaction != &trampoline) {
        return false;  // SA_RESETHAND: it would meet SIG_DFL when sent again
    }
    os_deferred.info = *info;
    os_deferred.sig = sig;
    return true;
}

void send_os_deferred() noexcept {
    const int sig = os_deferred.sig;
    if (sig == 0) {
        return;
    }
    siginfo_t info = os_deferred.info;
    os_deferred.sig = 0;
    raw_tgsigqueueinfo(::getpid(), ::gettid(), sig, &info);
}

void send_deferred() noexcept {
    const int n = deferred_count.exchange(0, std::memory_order_relaxed);
    const pid_t pid = ::getpid();
    const pid_t tid = ::gettid();
    for (int i = 0; i < n && i < kDeferred; ++i) {
        raw_tgsigqueueinfo(pid, tid, deferred[i].sig, &deferred[i].info);
    }
}
#endif

// The sent signal raise_sent is raising on the green threads' thread (0:
// none). Its handler, when it runs, is the running fiber's own code, at a
// point where it may wait: no hub bookkeeping, no handler depth.
constinit int sent_raising = 0;
// The OS thread's mask before the raise, which the handler runs under.
sigset_t sent_outer_mask;

// The program's handler of sig, if any; `bracketed` between
// handler_begin() and handler_end().
void run_handler(int sig, siginfo_t* info, void* ctx, bool bracketed) {
    void* const handler = handlers[sig & 63];
    if (has(with_siginfo, sig & 63)) {
        if (handler != nullptr) {
            if (bracketed) {
                handler_begin();
            }
            reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler)(sig, info, ctx);
            if (bracketed) {
                handler_end();
            }
        }
        return;
    }
    const auto h = reinterpret_cast<sighandler_t>(handler);
    if (h != SIG_DFL && h != SIG_IGN && h != nullptr) {
        if (bracketed) {
            handler_begin();
        }
        h(sig);
        if (bracketed) {
            handler_end();
        }
    }
}

void trampoline(int sig, siginfo_t* info, void* ctx) {
    if (sent_raising == sig && info != nullptr && (info->si_code == SI_TKILL || info->si_code == SI_QUEUE) &&
        info->si_pid == ::getpid() && is_main_thread()) [[unlikely]] {
        sent_raising = 0;
        // The kernel blocked the handler's set in the OS thread, which all
        // green threads share: while it runs (and waits), the others keep
        // the mask they had; its own thread's blocking is the shim's.
        sys::pthread_sigmask(SIG_SETMASK, &sent_outer_mask, nullptr);
        if (ctx != nullptr) {
            // The kernel's frame holds 64 bits of mask (glibc's sigset_t is
            // larger; the frame's siginfo follows them).
            std::memcpy(&static_cast<ucontext_t*>(ctx)->uc_sigmask, &sent_outer_mask, sizeof(std::uint64_t));
        }
        run_handler(sig, info, ctx, false);
        return;
    }
#if defined(__x86_64__)
    if (Hub* h = Hub::current_if_any(); h != nullptr && h->copying_tls() && info != nullptr) [[unlikely]] {
        if (defer_signal(sig, info)) {
            Hub::set_after_tls_copy(send_deferred);
            h->defer_signal_during_copy();
            return;
        }
    }
    if (info != nullptr && in_spin_here() && defer_signal(sig, info)) [[unlikely]] {
        spin_deferred(send_deferred);
        return;
    }
    if (info != nullptr && in_os_spin() && defer_on_os_thread(sig, info)) [[unlikely]] {
        os_spin_deferred(send_os_deferred);
        return;
    }
#endif
    if (sig > 0 && sig < 64) {
        Hub::signal_count.fetch_add(1, std::memory_order_acq_rel);
        Hub::signals_pending.fetch_or(std::uint64_t{1} << sig, std::memory_order_release);
    }
    run_handler(sig, info, ctx, true);
}

bool wrappable(int sig) noexcept {
    // Below 64 so the pending mask can hold it; never the signals grove
    // itself handles for the overflow report.
    return ready.load(std::memory_order_acquire) && !config.disabled && sig > 0 && sig < 64 && sig != SIGSEGV &&
           sig != SIGBUS && sig != SIGKILL && sig != SIGSTOP;
}

constexpr Nanos kFirstNap = 1'000'000;
constexpr Nanos kMaxNap = 50'000'000;
constexpr struct timespec kZero{0, 0};

bool passed(Nanos deadline) noexcept {
    return deadline != kNoDeadline && detail::now_ns() >= deadline;
}

// The first 64 signals of a set (bit sig - 1), as the kernel reads it.
std::uint64_t low_bits(const sigset_t* set) noexcept {
    std::uint64_t bits;
    std::memcpy(&bits, set, sizeof bits);
    return bits;
}

// Parks the fiber until a signal handler runs (true), or a kill or a
// grove::Timeout cuts the wait short (false; recorded as deferred). The
// caller holds a SignalWindow.
bool park_until_handler(Hub* hub) noexcept {
    for (;;) {
        detail::Waiter w;
        const detail::WakeReason why = hub->park(w, kNoDeadline, true);
        if (why == detail::WakeReason::interrupted) {
            return true;
        }
        if (why == detail::WakeReason::killed || why == detail::WakeReason::scope_timeout) {
            detail::defer_interruption(w);
            return false;
        }
    }
}

// Sleeps until `until`: 0 when it passed, else -1 with errno EINTR (a
// handler ran), ECANCELED or ETIMEDOUT (a kill or a grove::Timeout). The
// caller holds a SignalWindow.
int nap_until(Hub* hub, Nanos until) noexcept {
    detail::Waiter w;
    const detail::WakeReason why = hub->park(w, until, true);
    if (why == detail::WakeReason::timed_out) {
        return 0;
    }
    const int e = detail::defer_interruption(w);
    errno = e != 0 ? e : EINTR;
    return -1;
}

// The kernel gives a signal to a sigwait that waits for it even when the
// thread leaves it unblocked: the handler does not run. While a fiber
// waits, the set's signals that have a handler and that the thread leaves
// unblocked are blocked (for every fiber of the thread: they share its
// mask), so that they stay pending for the wait.
class BlockCaught {
public:
    explicit BlockCaught(const sigset_t* set) noexcept {
        std::uint64_t want = 0;
        for (std::uint64_t bits = low_bits(set); bits != 0; bits &= bits - 1) {
            const int sig = std::countr_zero(bits) + 1;
            if (sig < 64 && has(wrapped, sig)) {
                want |= std::uint64_t{1} << (sig - 1);
            }
        }
        if (want == 0) {
            return;
        }
        ErrnoGuard keep;
        sigset_t block;
        sigset_t old;
        sigemptyset(&block);
        std::memcpy(&block, &want, sizeof want);
        if (sys::pthread_sigmask(SIG_BLOCK, &block, &old) != 0) {
            return;
        }
        added_ = want & ~low_bits(&old);
    }
    ~BlockCaught() {
        if (added_ != 0) {
            ErrnoGuard keep;
            sigset_t unblock;
            sigemptyset(&unblock);
            std::memcpy(&unblock, &added_, sizeof added_);
            sys::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
        }
    }
    bool blocked_any() const noexcept { return added_ != 0; }
    BlockCaught(const BlockCaught&) = delete;
    BlockCaught& operator=(const BlockCaught&) = delete;

private:
    std::uint64_t added_ = 0;
};

// A sent signal taken by the sigwait family: its number, with its siginfo
// copied out if asked for.
int deliver_info(const siginfo_t& got, siginfo_t* info) noexcept {
    if (info != nullptr) {
        *info = got;
    }
    return got.si_signo;
}

// While alive, the running green thread waits for `bits` (note_sigwait).
class SigwaitNote {
public:
    explicit SigwaitNote(std::uint64_t bits) noexcept { note_sigwait(bits); }
    ~SigwaitNote() { note_sigwait(0); }
    SigwaitNote(const SigwaitNote&) = delete;
    SigwaitNote& operator=(const SigwaitNote&) = delete;
};

// sigtimedwait until `deadline`, cooperatively: the real call with a zero
// timeout first; while it says EAGAIN, a wait on a signalfd of the set
// (or, without one, naps with a backoff). EAGAIN when the deadline passes,
// EINTR when a handler ran (never restarted, as signal(7) says) or a kill
// or grove::Timeout cut the wait short (then `cut` is set).
// One sent to the green thread itself comes first (take_sent).
int wait_signal(Hub* hub, const sigset_t* set, siginfo_t* info, Nanos deadline, bool& cut) noexcept {
    cut = false;
    const int saved = errno;
    std::uint64_t bits;
    if (!copy_from_user(&bits, set, sizeof bits)) {
        return sys::sigtimedwait(set, info, &kZero);  // EFAULT
    }
    siginfo_t mine;
    if (take_sent(bits, &mine)) {
        return deliver_info(mine, info);
    }
    int r = sys::sigtimedwait(set, info, &kZero);
    if (r >= 0 || errno != EAGAIN || passed(deadline)) {
        return r;  // also EFAULT for a bad info
    }
    BlockCaught block(set);
    SignalWindow window(hub);
    SigwaitNote note(bits);
    // For this wait only: at the kernel's number, not a high one as the
    // library's long-lived fds (hub/own_fd.hpp).
    const int sfd = ::signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    Nanos nap = kFirstNap;
    // A caught signal may have come before it was blocked: look again.
    bool look = block.blocked_any();
    for (;;) {
        if (take_sent(bits, &mine)) {
            r = deliver_info(mine, info);
            break;
        }
        if (look) {
            r = sys::sigtimedwait(set, info, &kZero);
            if (r >= 0) {
                errno = saved;
                break;
            }
            if (errno != EAGAIN || passed(deadline)) {
                break;
            }
        }
        look = true;
        int w;
        if (sfd >= 0) {
            w = detail::io_wait(sfd, POLLIN, deadline);
        } else {
            // No signalfd (out of fds): look again after a backoff.
            Nanos until = detail::now_ns() + nap;
            if (deadline != kNoDeadline && deadline < until) {
                until = deadline;
            }
            w = nap_until(hub, until);
            nap = std::min(nap * 2, kMaxNap);
        }
        const bool timed_out = w != 0 && errno == ETIMEDOUT && passed(deadline);
        if (w != 0 && !timed_out) {
            const bool handler = errno == EINTR;
            cut = !handler;
            // After a handler, the kernel still takes a signal of the set
            // that came meanwhile; a kill takes none.
            if (handler && take_sent(bits, &mine)) {
                r = deliver_info(mine, info);
                break;
            }
            if (handler) {
                r = sys::sigtimedwait(set, info, &kZero);
                if (r >= 0) {
                    errno = saved;
                    break;
                }
            }
            errno = EINTR;
            r = -1;
            break;
        }
    }
    if (sfd >= 0) {
        ErrnoGuard keep;
        detail::io_close(sfd);
    }
    return r;
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
        if (!has(wrapped, sig) || !has(with_restart, sig)) {
            return false;
        }
    }
    return true;
}

std::uint64_t handler_mask(int sig) noexcept {
    return sig > 0 && sig < 64 ? blocks[sig] : 0;
}

bool signal_caught(int sig) noexcept {
    return sig > 0 && sig < 64 && has(wrapped, sig);
}

bool raise_sent(int sig, int code, union sigval value, std::uint64_t own) noexcept {
    sigset_t own_set;
    sigemptyset(&own_set);
    std::memcpy(&own_set, &own, sizeof own);
    sigset_t outer;  // a nested raise in the handler changes the static
    const bool swapped = sys::pthread_sigmask(SIG_SETMASK, &own_set, &outer) == 0;
    sent_outer_mask = swapped ? outer : own_set;
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = code;
    info.si_pid = ::getpid();
    info.si_uid = ::getuid();
    info.si_value = value;
    sent_raising = sig;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // To this very thread: delivered before the call returns, unless the
    // thread blocks it (then it stays pending, as a signal of the thread's).
#if defined(__x86_64__)
    const long r = raw_tgsigqueueinfo(::getpid(), ::gettid(), sig, &info);
#else
    const long r = ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), ::gettid(), sig, &info);
#endif
    std::atomic_signal_fence(std::memory_order_seq_cst);
    const bool ran = r == 0 && sent_raising == 0;
    sent_raising = 0;
    if (swapped) {
        sys::pthread_sigmask(SIG_SETMASK, &outer, nullptr);
    }
    return ran;
}

}  // namespace grove::shim

extern "C" {

int sigaction(int sig, const struct sigaction* __restrict act, struct sigaction* __restrict old) noexcept {
    if (!wrappable(sig)) {
        return sys::sigaction(sig, act, old);
    }
    if (in_vfork_child()) [[unlikely]] {
        // The child's actions are its own (its exec resets the handled
        // ones), the records its parent's: they stay as they are, and a
        // handler goes in as it is, not through the trampoline (which
        // reads the records). An old action that is the trampoline is
        // reported as the parent's program set it.
        struct sigaction kernel_old{};
        const int r = sys::sigaction(sig, act, &kernel_old);
        if (r == 0 && old != nullptr) {
            *old = kernel_old;
            if ((kernel_old.sa_flags & SA_SIGINFO) != 0 && kernel_old.sa_sigaction == &trampoline) {
                const bool siginfo = has(with_siginfo, sig);
                old->sa_flags = (kernel_old.sa_flags & ~SA_SIGINFO) | (siginfo ? SA_SIGINFO : 0);
                if (siginfo) {
                    old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handlers[sig]);
                } else {
                    old->sa_handler = reinterpret_cast<sighandler_t>(handlers[sig]);
                }
            }
        }
        return r;
    }
    const std::uint64_t bit = std::uint64_t{1} << sig;
    const bool was_wrapped = has(wrapped, sig);
    if (act == nullptr && !was_wrapped) {
        return sys::sigaction(sig, nullptr, old);  // a look at an action the shim never touched
    }
    void* const previous = handlers[sig];
    const std::uint64_t previous_block = blocks[sig];
    const bool previous_siginfo = has(with_siginfo, sig);
    const bool previous_restart = has(with_restart, sig);
    struct sigaction kernel_old{};
    int r;
    // SIG_DFL and SIG_IGN go to the kernel as they are, SA_SIGINFO or not:
    // sa_handler and sa_sigaction share their storage, and the kernel reads
    // 0 and 1 there as the default and ignore whatever the flags say.
    if (act != nullptr && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        struct sigaction k = *act;
        k.sa_sigaction = &trampoline;
        k.sa_flags |= SA_SIGINFO;
        // Store first: the signal may arrive as soon as the kernel has k.
        const bool siginfo = (act->sa_flags & SA_SIGINFO) != 0;
        std::uint64_t block;
        std::memcpy(&block, &act->sa_mask, sizeof block);
        if ((act->sa_flags & SA_NODEFER) == 0) {
            block |= std::uint64_t{1} << (sig - 1);
        }
        record(sig, siginfo ? reinterpret_cast<void*>(act->sa_sigaction) : reinterpret_cast<void*>(act->sa_handler),
               siginfo, (act->sa_flags & SA_RESTART) != 0, block);
        wrapped.fetch_or(bit, std::memory_order_release);
        r = sys::sigaction(sig, &k, &kernel_old);
        if (r != 0) {
            record(sig, previous, previous_siginfo, previous_restart, previous_block);
            if (!was_wrapped) {
                wrapped.fetch_and(~bit, std::memory_order_release);
            }
        }
    } else {
        r = sys::sigaction(sig, act, &kernel_old);
        if (r == 0 && act != nullptr) {
            wrapped.fetch_and(~bit, std::memory_order_release);
        }
    }
    if (r == 0 && old != nullptr) {
        *old = kernel_old;
        if (was_wrapped) {
            // SA_SIGINFO in the kernel's flags is the shim's, not the user's.
            old->sa_flags = (kernel_old.sa_flags & ~SA_SIGINFO) | (previous_siginfo ? SA_SIGINFO : 0);
            if ((kernel_old.sa_flags & SA_SIGINFO) != 0 && kernel_old.sa_sigaction == &trampoline) {
                // The kernel holds the user's action with the trampoline in
                // it (mask, flags and restorer as libc gave them): the
                // user's handler goes back in.
                if (previous_siginfo) {
                    old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(previous);
                } else {
                    old->sa_handler = reinterpret_cast<sighandler_t>(previous);
                }
            }
            // Otherwise the kernel reset it (SA_RESETHAND): its SIG_DFL
            // stands, with the user's flags.
        }
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

// Never restarted, even under SA_RESTART: -1/EINTR once a handler ran. A
// kill or grove::Timeout ends it the same way.
int pause(void) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::pause();
    }
    {
        SignalWindow window(hub);
        park_until_handler(hub);
    }
    errno = EINTR;
    return -1;
}

// The thread's mask is *mask while the fiber waits: with green threads, as
// that thread's own mask in the reckoning of what the OS thread blocks;
// otherwise as the OS thread's, which every fiber then runs under (two
// fibers in sigsuspend at once restore each other's masks out of order).
int sigsuspend(const sigset_t* mask) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    std::uint64_t bits;
    if (hub == nullptr || !copy_from_user(&bits, mask, sizeof bits)) {
        return sys::sigsuspend(mask);  // a bad mask: EFAULT from libc
    }
    sigset_t set;
    sigemptyset(&set);
    std::memcpy(&set, &bits, sizeof bits);
    {
        // Open before the mask changes: a pending signal it unblocks runs
        // its handler at once, and that must end this call.
        SignalWindow window(hub);
        sigset_t old;
        std::uint64_t own_old = 0;
        const bool own = own_mask_begin(&set, own_old);
        const bool swapped = !own && sys::pthread_sigmask(SIG_SETMASK, &set, &old) == 0;
        // A signal sent to this green thread that *mask unblocks runs at once.
        SuspendSaved saved;
        if (!suspend_begin(bits, saved)) {
            park_until_handler(hub);
        }
        // The thread's own mask back first: what it lets in then runs.
        if (own) {
            own_mask_end(own_old);
        } else if (swapped) {
            sys::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
        suspend_end(saved);
    }
    errno = EINTR;
    return -1;
}

int sigtimedwait(const sigset_t* __restrict set, siginfo_t* __restrict info, const struct timespec* __restrict ts) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::sigtimedwait(set, info, ts);
    }
    Nanos deadline = kNoDeadline;
    if (ts != nullptr) {
        struct timespec t;
        // A bad pointer, a malformed or a zero timeout: the real call
        // answers at once.
        if (!copy_from_user(&t, ts, sizeof t) || t.tv_sec < 0 || t.tv_nsec < 0 || t.tv_nsec >= 1'000'000'000) {
            return sys::sigtimedwait(set, info, ts);
        }
        if (t.tv_sec == 0 && t.tv_nsec == 0) {
            // A look: one sent to this thread first.
            std::uint64_t bits;
            siginfo_t mine;
            if (copy_from_user(&bits, set, sizeof bits) && take_sent(bits, &mine)) {
                return deliver_info(mine, info);
            }
            return sys::sigtimedwait(set, info, ts);
        }
        if (t.tv_sec < 1'000'000'000) {
            deadline = detail::now_ns() + static_cast<Nanos>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
        }
    }
    bool cut;
    return wait_signal(hub, set, info, deadline, cut);
}

// The thread's pending signals include those sent to it (a green thread)
// that it has not run yet.
int sigpending(sigset_t* set) noexcept {
    using Fn = int (*)(sigset_t*);
    const int r = GROVE_LIBC("sigpending", Fn)(set);
    if (r == 0) {
        if (const std::uint64_t mine = sent_pending(); mine != 0) {
            std::uint64_t bits;
            std::memcpy(&bits, set, sizeof bits);
            bits |= mine;
            std::memcpy(set, &bits, sizeof bits);
        }
    }
    return r;
}

int sigwaitinfo(const sigset_t* __restrict set, siginfo_t* __restrict info) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::sigwaitinfo(set, info);
    }
    bool cut;
    return wait_signal(hub, set, info, kNoDeadline, cut);
}

// As libc's: returns the error number, and waits again after a handler
// ran. A kill or grove::Timeout ends it with EINTR.
int sigwait(const sigset_t* __restrict set, int* __restrict sig) {
    GROVE_CANCELLATION_POINT(ECANCELED);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::sigwait(set, sig);
    }
    siginfo_t info;
    int r;
    bool cut = false;
    do {
        r = wait_signal(hub, set, &info, kNoDeadline, cut);
    } while (r < 0 && errno == EINTR && !cut);
    if (r < 0) {
        return errno;
    }
    *sig = r;
    return 0;
}

}  // extern "C"

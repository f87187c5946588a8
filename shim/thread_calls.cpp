// Green threads: with GROVE_THREADS=green, pthreads are grove fibers on the
// main thread's hub, and every pthread synchronisation call parks fibers
// instead of the OS thread. With GROVE_THREADS=native (the default for a bare
// LD_PRELOAD; grove-run sets green) every call here goes straight to libc.
//
// Which calls are green. The mode is read once, at the first interposed call
// (it may come from a constructor before the shim's own), so an object never
// changes hands between libc and this file in mid-life. In green mode a call
// about threads themselves is green when made on the main OS thread (the
// only thread that runs green threads); from any other OS thread (a helper
// glibc or a library started behind pthread_create's back) it passes
// through to libc. Sync objects are this file's on every thread in green
// mode, since both kinds of threads may share one.
//
// Objects live in the user's own bytes (pthread_mutex_t, pthread_cond_t,
// ...), laid out below with static_asserts. All-zero is a valid initial
// state of every one of them, so the static initialisers work without an
// init call. A waiter is a WaitNode on the waiting fiber's (or OS
// thread's) stack, linked into the object's null-terminated list; the
// waker hands the resource over (mutex ownership, a semaphore unit, a
// rwlock grant) and wakes it. State changes under a lock word in the
// object, which OS threads outside the green ones take too ("waiting
// across OS threads" below).
//
// Process-shared objects (PTHREAD_PROCESS_SHARED, named semaphores) stay
// libc's: the object carries libc's own marker and every call on it goes
// to libc. A green thread's wait on a semaphore, mutex or condition
// variable of that kind parks it and looks again with libc's try (see
// "process-shared and named semaphores" and "process-shared mutexes and
// condition variables" below), since a process's own threads often post
// them (Python's multiprocessing, fio's job semaphores); a barrier's
// blocks the OS thread.
//
// Cancellation is deferred. It is acted on at this file's cancellation
// points (pthread_join, pthread_cond_*wait, sem_*wait, pthread_testcancel)
// and at the waits of the other interposed cancellation points (read,
// write, accept, connect, poll, select, sleep, waitpid...: every such wait
// opens a SignalWindow, whose cancel_hook is set here). Acting on it, as
// pthread_exit, unwinds the green thread:
// - C cleanup handlers of code built without -fexceptions (glibc's
//   pthread_cleanup_push macro: a sigsetjmp buffer registered with
//   __pthread_register_cancel) are kept in a chain per green thread. While
//   one is registered, the unwind is a forced unwind whose stop function
//   longjmps into the newest buffer once the frame holding it is reached,
//   as glibc's own does; the macro's code runs the routine and calls
//   __pthread_unwind_next, which goes on with the next buffer.
// - With no buffer left, a private exception (GreenExit) unwinds the rest,
//   running C++ destructors and -fexceptions cleanups on the way.
// The shim's own frames between a cancelled wait and the program are
// noexcept and must not be unwound: the hook lets them return normally and
// makes the interposed call return into a trampoline that then starts the
// unwind from the caller's frame, as though the call itself had unwound
// (x86-64; elsewhere only this file's own cancellation points act).

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <unwind.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sys/single_threaded.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <typeinfo>
#include <vector>

#include "preload_runtime.hpp"
#include "shim.hpp"

extern "C" void* __dso_handle;  // this library's, for its own registrations

using namespace grove;
using namespace grove::shim;
using detail::FiberCore;
using detail::Waiter;
using detail::WakeReason;

// glibc's entry points for C cleanup handlers (pthread.h declares them
// only to C code built without -fexceptions). On x86-64 they take the
// buffer in the usual first-argument register (__cleanup_fct_attribute is
// empty there).
extern "C" {
void __pthread_register_cancel(__pthread_unwind_buf_t* buf);
void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf);
void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf);
void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf);
[[noreturn]] void __pthread_unwind_next(__pthread_unwind_buf_t* buf);
}

namespace grove::shim {
GROVE_LOAD_DATA constinit CancelHook cancel_hook = nullptr;
}

namespace {

// ---- the real functions ------------------------------------------------------

#define GROVE_REAL_FUNCTIONS(X)                  \
    X(pthread_create)                            \
    X(pthread_join)                              \
    X(pthread_tryjoin_np)                        \
    X(pthread_timedjoin_np)                      \
    X(pthread_clockjoin_np)                      \
    X(pthread_detach)                            \
    X(pthread_exit)                              \
    X(pthread_self)                              \
    X(pthread_setname_np)                        \
    X(pthread_getname_np)                        \
    X(pthread_getattr_np)                        \
    X(pthread_key_create)                        \
    X(pthread_key_delete)                        \
    X(pthread_getspecific)                       \
    X(pthread_setspecific)                       \
    X(pthread_once)                              \
    X(pthread_mutex_init)                        \
    X(pthread_mutex_destroy)                     \
    X(pthread_mutex_lock)                        \
    X(pthread_mutex_trylock)                     \
    X(pthread_mutex_timedlock)                   \
    X(pthread_mutex_clocklock)                   \
    X(pthread_mutex_unlock)                      \
    X(pthread_mutex_consistent)                  \
    X(pthread_cond_init)                         \
    X(pthread_cond_destroy)                      \
    X(pthread_cond_wait)                         \
    X(pthread_cond_timedwait)                    \
    X(pthread_cond_clockwait)                    \
    X(pthread_cond_signal)                       \
    X(pthread_cond_broadcast)                    \
    X(pthread_rwlock_init)                       \
    X(pthread_rwlock_destroy)                    \
    X(pthread_rwlock_rdlock)                     \
    X(pthread_rwlock_tryrdlock)                  \
    X(pthread_rwlock_timedrdlock)                \
    X(pthread_rwlock_clockrdlock)                \
    X(pthread_rwlock_wrlock)                     \
    X(pthread_rwlock_trywrlock)                  \
    X(pthread_rwlock_timedwrlock)                \
    X(pthread_rwlock_clockwrlock)                \
    X(pthread_rwlock_unlock)                     \
    X(pthread_barrier_init)                      \
    X(pthread_barrier_destroy)                   \
    X(pthread_barrier_wait)                      \
    X(pthread_spin_init)                         \
    X(pthread_spin_destroy)                      \
    X(pthread_spin_lock)                         \
    X(pthread_spin_trylock)                      \
    X(pthread_spin_unlock)                       \
    X(sem_init)                                  \
    X(sem_destroy)                               \
    X(sem_wait)                                  \
    X(sem_trywait)                               \
    X(sem_timedwait)                             \
    X(sem_clockwait)                             \
    X(sem_post)                                  \
    X(sem_getvalue)                              \
    X(pthread_cancel)                            \
    X(pthread_testcancel)                        \
    X(pthread_setcancelstate)                    \
    X(pthread_setcanceltype)                     \
    X(pthread_kill)                              \
    X(pthread_sigqueue)                          \
    X(pthread_getschedparam)                     \
    X(pthread_setschedparam)                     \
    X(pthread_setschedprio)                      \
    X(pthread_getcpuclockid)                     \
    X(pthread_setaffinity_np)                    \
    X(pthread_getaffinity_np)                    \
    X(__pthread_register_cancel)                 \
    X(__pthread_unregister_cancel)               \
    X(__pthread_register_cancel_defer)           \
    X(__pthread_unregister_cancel_restore)       \
    X(__pthread_unwind_next)                     \
    X(syscall)

struct Real {
#define GROVE_REAL_FIELD(name) decltype(&::name) name;
    GROVE_REAL_FUNCTIONS(GROVE_REAL_FIELD)
#undef GROVE_REAL_FIELD
};
// With the load-time data: a program's first calls of these (Python makes
// a semaphore at start) write no page of their own.
GROVE_LOAD_DATA constinit Real real{};

// Each entry is looked up on its first call, not at load: a program that
// never touches a pthread function pays nothing for it. Entries only ever go
// from null to libc's function, so relaxed accesses are enough.
[[gnu::noinline, gnu::cold]] void* lookup_next(const char* name) noexcept {
    return ::dlsym(RTLD_NEXT, name);
}

template <class F>
inline F real_fn(F& slot, const char* name) noexcept {
    F f = __atomic_load_n(&slot, __ATOMIC_RELAXED);
    if (f == nullptr) [[unlikely]] {
        f = reinterpret_cast<F>(lookup_next(name));
        __atomic_store_n(&slot, f, __ATOMIC_RELAXED);
    }
    return f;
}
#define REAL(name) real_fn(real.name, #name)

// ---- the mode ----------------------------------------------------------------

enum Mode : int { kNative = 1, kGreen = 2, kUnknown = 3 };
GROVE_LOAD_DATA constinit std::atomic<int> g_mode{kUnknown};

// No function-local statics here: their guards may call syscall(SYS_futex),
// which this file interposes.
// Run once, from a constructor: with the other start-up code.
[[gnu::noinline]] GROVE_LOAD_TEXT int decide_mode() noexcept {
    read_settings();
    int expected = kUnknown;
    g_mode.compare_exchange_strong(expected, config.green_threads ? kGreen : kNative, std::memory_order_acq_rel);
    return g_mode.load(std::memory_order_acquire);
}

inline int mode() noexcept {
    const int m = g_mode.load(std::memory_order_acquire);
    return m != kUnknown ? m : decide_mode();
}

bool on_main_thread() noexcept {
    static thread_local int cached [[gnu::tls_model("initial-exec")]] = 0;  // 0 unknown, 1 main, 2 other
    if (cached == 0) {
        cached = ::gettid() == ::getpid() ? 1 : 2;  // not syscall(): interposed below
    }
    return cached == 1;
}

// This call is green: green mode, on the thread that runs green threads.
inline bool green() noexcept {
    return mode() == kGreen && on_main_thread();
}

// Sync objects are this file's, on every thread (green mode): see
// "waiting across OS threads".
inline bool green_objects() noexcept {
    return mode() == kGreen;
}

#if defined(__x86_64__)
void green_cancel_hook(FiberCore* f, bool entering) noexcept;
#endif

// The main thread is cooperative in green mode, whoever launched it.
GROVE_LOAD_TEXT __attribute__((constructor(111))) void threads_init() {
    if (mode() == kGreen) {
#if defined(__x86_64__)
        cancel_hook = green_cancel_hook;
#endif
    }
}

// The identity used as an owner: on the green threads' thread, unique per
// fiber for the process's life (FiberCore::id; the main fiber is 0, so +1
// leaves 0 for "nobody"; the hub fiber's id + 1 is 1 << 62); on any other
// OS thread, its thread id with the top bit set.
[[gnu::noinline]] std::uint64_t os_token() noexcept {
    static thread_local std::uint64_t mine [[gnu::tls_model("initial-exec")]] = 0;
    if (mine == 0) {
        mine = (std::uint64_t{1} << 63) | static_cast<std::uint32_t>(::gettid());
    }
    return mine;
}

// self_token() with on_main_thread() and its hub known.
inline std::uint64_t token_of(bool here, const Hub* hub) noexcept {
    if (!here) [[unlikely]] {
        return os_token();
    }
    return hub != nullptr ? hub->running()->id + 1 : 1;
}

std::uint64_t self_token() noexcept {
    if (!on_main_thread()) [[unlikely]] {
        return os_token();
    }
    Hub* h = Hub::current_if_any();
    return h != nullptr ? h->running()->id + 1 : 1;
}

// ---- waiting -------------------------------------------------------------------

// Forks this process has been through: a node of an earlier generation
// in an object's list stands for a waiter that stayed in the parent, and
// wakers pass it by (unlinking it).
constinit std::uint32_t g_fork_gen = 0;

// One waiter in a sync object's list. On the waiting fiber's (or thread's)
// stack.
struct WaitNode {
    Waiter w;
    WaitNode* next = nullptr;
    WaitNode* prev = nullptr;
    std::uint64_t token = 0;  // the waiter's self_token()
    int kind = 0;             // rwlock: 0 reader, 1 writer
    bool linked = false;
    // Objects shared with OS threads (see "waiting across OS threads"):
    bool posted = false;        // a wake through the hub's inbox is on its way
    Hub* hub = nullptr;         // a green waiter's hub; null: an OS thread's
    Hub::Remote remote;         // how another OS thread wakes a green waiter
    WaitNode* chain = nullptr;  // taken, to wake once the lock is released (Woken)
    sem_t os;                   // an OS thread's: posted when it is taken
    std::uint32_t gen = g_fork_gen;
};

// A node left by a fork: its waiter is in the parent only.
inline bool stale(const WaitNode& n) noexcept {
    return n.gen != g_fork_gen;
}

// A FIFO of WaitNodes in user memory: null head means empty (zero-filled
// objects are valid).
struct NodeList {
    WaitNode* head;
    WaitNode* tail;
};

void push(NodeList& l, WaitNode& n) noexcept {
    n.next = nullptr;
    n.prev = l.tail;
    if (l.tail != nullptr) {
        l.tail->next = &n;
    } else {
        l.head = &n;
    }
    l.tail = &n;
    n.linked = true;
}

void remove(NodeList& l, WaitNode& n) noexcept {
    if (!n.linked) {
        return;
    }
    (n.prev != nullptr ? n.prev->next : l.head) = n.next;
    (n.next != nullptr ? n.next->prev : l.tail) = n.prev;
    n.next = n.prev = nullptr;
    n.linked = false;
}

// The first waiter not already woken by something else, unlinked. For
// lists only the green threads' OS thread uses.
WaitNode* pop_live(NodeList& l) noexcept {
    while (WaitNode* n = l.head) {
        remove(l, *n);
        if (n->w.why == WakeReason::none) {
            return n;
        }
    }
    return nullptr;
}

// ---- waiting across OS threads -------------------------------------------------
//
// In green mode a program's objects may also be used by OS threads that
// are not green: threads started through libc's own pthread_create behind
// the shim's back (jemalloc's background thread, a library's helpers),
// grove's own resolver thread. So every thread uses this file's protocol
// on an object. Its state changes under a lock word in the object's own
// bytes, held for a few instructions (a spin; never across a wait). A
// waiter is a WaitNode in the object's list: a green one parks in its hub,
// another thread's ("OS waiter") blocks in a libc semaphore in its node.
// Whoever takes a node out of the list to give it what it waits for (the
// mutex, a signal, a unit, a grant) marks it taken under the lock and
// wakes it once the lock is released: an OS waiter with sem_post; a green
// one with unpark on the green threads' thread, or through its hub's inbox
// (Hub::post_remote) from any other. A waiter whose wait ended otherwise
// (its deadline, a signal, a kill) takes the lock: still linked, it unlinks
// itself and the wait failed; taken, it got what it waited for, and first
// waits for the wake on its way, since that wake refers to its node.

// The object's lock word. On the green threads' thread a signal handler
// that could take the same word must not run while it is held: such a
// signal is put off until the release (signal_calls.cpp), as during a copy
// of thread-local images.
constinit int g_spin_held = 0;         // the green threads' thread holds a word
constinit bool g_spin_deferred = false; // a signal was put off meanwhile
// Signal handlers running on the green threads' thread. A wake made in one
// (sem_post is async-signal-safe) may have interrupted the hub in the
// middle of its run queue: it goes through the hub's inbox instead, which
// the hub drains at its next turn. (A handler that longjmps out leaves
// this raised: wakes then take the inbox, slower but still right.)
constinit int g_handler_depth = 0;
// The same for any other OS thread (its lock words held; a signal put off).
thread_local int os_spin_held [[gnu::tls_model("initial-exec")]] = 0;
thread_local bool os_spin_pending [[gnu::tls_model("initial-exec")]] = false;
void (*g_os_send_deferred)() noexcept = nullptr;
void (*g_spin_send_deferred)() noexcept = nullptr;

// A fork child copies the word of an object another thread was changing at
// that instant: held, with no holder left. A word held for long in a
// process with no other thread is such a word, and is taken over.
constinit bool g_forked = false;  // this process is a fork child

bool only_thread() noexcept {
    char buf[512];
    const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);  // not interposed
    if (fd < 0) {
        return false;
    }
    const ssize_t n = sys::read(fd, buf, sizeof buf - 1);
    sys::close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    // Field 20 (num_threads) counts from the ")" that ends field 2.
    const char* p = std::strrchr(buf, ')');
    for (int field = 2; p != nullptr && field < 20; ++field) {
        p = std::strchr(p + 1, ' ');
    }
    return p != nullptr && std::strtol(p + 1, nullptr, 10) == 1;
}

[[gnu::noinline]] void spin_contended(std::uint32_t& word) noexcept {
    for (unsigned i = 0;; ++i) {
        if (__atomic_load_n(&word, __ATOMIC_RELAXED) == 0 &&
            __atomic_exchange_n(&word, 1, __ATOMIC_ACQUIRE) == 0) {
            return;
        }
        if (i < 100) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sys::sched_yield();  // the holder may be descheduled
            if (g_forked && i % 4096 == 0 && only_thread()) {
                __atomic_store_n(&word, 1, __ATOMIC_RELAXED);  // ours now
                return;
            }
        }
    }
}

class Spin {
public:
    explicit Spin(std::uint32_t& word) noexcept : Spin(word, on_main_thread()) {}
    // `here`: on_main_thread(), known to the caller.
    Spin(std::uint32_t& word, bool here) noexcept : word_(word), here_(here) { lock(); }
    ~Spin() {
        if (held_) {
            unlock();
        }
    }
    Spin(const Spin&) = delete;
    Spin& operator=(const Spin&) = delete;

    void lock() noexcept {
        if (here_) {
            ++g_spin_held;
        } else {
            ++os_spin_held;
        }
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (__atomic_exchange_n(&word_, 1, __ATOMIC_ACQUIRE) != 0) [[unlikely]] {
            spin_contended(word_);
        }
        held_ = true;
    }
    void unlock() noexcept {
        __atomic_store_n(&word_, 0, __ATOMIC_RELEASE);
        held_ = false;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (here_) {
            if (--g_spin_held == 0 && g_spin_deferred) [[unlikely]] {
                g_spin_deferred = false;
                if (g_spin_send_deferred != nullptr) {
                    g_spin_send_deferred();
                }
            }
        } else if (--os_spin_held == 0 && os_spin_pending) [[unlikely]] {
            os_spin_pending = false;
            if (g_os_send_deferred != nullptr) {
                g_os_send_deferred();
            }
        }
    }

private:
    std::uint32_t& word_;
    const bool here_;
    bool held_ = false;
};

// A green waiter's node, before it is linked.
void green_node(WaitNode& n, Hub& hub) noexcept {
    n.hub = &hub;
    n.remote.w = &n.w;
}

// An OS waiter's node, before it is linked.
void os_node(WaitNode& n) noexcept {
    REAL(sem_init)(&n.os, 0, 0);
}

// Nodes taken under an object's lock, to wake in order once it is released.
struct Woken {
    WaitNode* head = nullptr;
    WaitNode* tail = nullptr;
};

// Under the object's lock: n, unlinked by a waker, is given what it waits
// for; it is woken by wake(woken) after the release.
void take(WaitNode& n, Woken& woken) noexcept {
    n.next = n.prev = nullptr;
    n.linked = false;
    if (n.hub != nullptr && (!on_main_thread() || g_handler_depth != 0)) {
        n.posted = true;
    }
    n.chain = nullptr;
    (woken.tail != nullptr ? woken.tail->chain : woken.head) = &n;
    woken.tail = &n;
}

// The first node of l, taken; false if l is empty.
bool take_first(NodeList& l, Woken& woken) noexcept {
    while (WaitNode* n = l.head) {
        remove(l, *n);
        if (!stale(*n)) [[likely]] {
            take(*n, woken);
            return true;
        }
    }
    return false;
}

// Every node of l, taken, in order.
void take_all(NodeList& l, Woken& woken) noexcept {
    for (WaitNode* n = l.head; n != nullptr;) {
        WaitNode* next = n->next;
        if (!stale(*n)) [[likely]] {
            take(*n, woken);
        }
        n = next;
    }
    l = NodeList{};
}

// After the lock is released: wakes what take() gave to. A node may be
// gone as soon as it is woken: its link is read first.
void wake(const Woken& woken) noexcept {
    for (WaitNode* n = woken.head; n != nullptr;) {
        WaitNode* next = n->chain;
        if (n->hub == nullptr) {
            REAL(sem_post)(&n->os);
        } else if (n->posted) {
            n->hub->post_remote(n->remote);
        } else {
            detail::unpark(n->w, WakeReason::ready);
        }
        n = next;
    }
}

// A green waiter found its node taken after its wait ended otherwise: it
// got what it waited for; a wake through the inbox may still be on its way
// to the node, which must live until it lands.
void settle(WaitNode& n) noexcept {
    while (n.posted && !n.remote.done) {
        n.hub->park(n.w, kNoDeadline, false);
    }
}

// An OS waiter blocks until its node is taken, `abs` on `clock` (null: no
// deadline) or a signal: 0, ETIMEDOUT or EINTR. libc's own semaphore wait,
// so signals and cancellation act as in libc's waits (a caller that is no
// cancellation point holds it off with NoCancel).
// Not noexcept: a cancel acted on in it unwinds through here.
int os_block(WaitNode& n, clockid_t clock, const struct timespec* abs) {
    const int r = abs != nullptr ? REAL(sem_clockwait)(&n.os, clock, abs) : REAL(sem_wait)(&n.os);
    return r == 0 ? 0 : errno;
}

// Holds cancellation off on an OS thread for a wait that is no
// cancellation point (mutex, rwlock, barrier).
struct NoCancel {
    int old = PTHREAD_CANCEL_ENABLE;
    NoCancel() noexcept { REAL(pthread_setcancelstate)(PTHREAD_CANCEL_DISABLE, &old); }
    ~NoCancel() { REAL(pthread_setcancelstate)(old, nullptr); }
};

// os_block for a wait that is no cancellation point and that a signal's
// handler does not end (mutex, rwlock, barrier): 0 or ETIMEDOUT.
int os_block_through_signals(WaitNode& n, clockid_t clock, const struct timespec* abs) {
    NoCancel no_cancel;
    int e;
    do {
        e = os_block(n, clock, abs);
    } while (e == EINTR);
    return e;
}

// An OS waiter found its node taken after its wait ended otherwise: the
// post is on its way (it refers to the node); takes it.
void os_settle(WaitNode& n) noexcept {
    NoCancel no_cancel;
    while (REAL(sem_wait)(&n.os) != 0) {
    }
}

void settle_any(WaitNode& n) noexcept {
    if (n.hub != nullptr) {
        settle(n);
    } else {
        os_settle(n);
    }
}


constexpr long kSecond = 1'000'000'000;

bool valid_ns(const struct timespec* t) noexcept {
    return t->tv_nsec >= 0 && t->tv_nsec < kSecond;
}

bool supported_clock(clockid_t c) noexcept {
    return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC;
}

// An absolute time on `clock` as a deadline on grove's clock: the distance
// from that clock's now, measured once.
Nanos deadline_from(clockid_t clock, const struct timespec* abs) noexcept {
    const Nanos now = detail::now_ns();
    if (abs->tv_sec < 0) {
        return now;
    }
    struct timespec cur;
    ::clock_gettime(clock, &cur);
    const long double diff = (static_cast<long double>(abs->tv_sec) - cur.tv_sec) * kSecond +
                             (abs->tv_nsec - cur.tv_nsec);
    if (diff <= 0) {
        return now;
    }
    if (diff >= static_cast<long double>(kNoDeadline - now)) {
        return kNoDeadline;
    }
    return now + static_cast<Nanos>(diff);
}

// ---- green threads -----------------------------------------------------------

constexpr std::uint64_t kThreadMagic = 0x67726f7665746872ULL;  // "grovethr"

struct TsdSlot {
    std::uint64_t seq;
    void* value;
};
// A thread's values. The first kTsdFirst keys live in the record itself, as
// in glibc's: a malloc that keeps its own state under a key (jemalloc does)
// calls pthread_setspecific from inside its own initialisation, and an
// allocation there would enter it again. Keys above take `more`, grown on
// demand.
constexpr unsigned kTsdFirst = 32;
struct Tsd {
    TsdSlot first[kTsdFirst]{};
    TsdSlot* more = nullptr;  // keys kTsdFirst .. kTsdFirst + n_more - 1
    unsigned n_more = 0;
    TsdSlot* at(unsigned key) noexcept {
        if (key < kTsdFirst) {
            return &first[key];
        }
        return key - kTsdFirst < n_more ? &more[key - kTsdFirst] : nullptr;
    }
};

// Unwinds a green thread: pthread_exit and acted-on cancellation. Not a
// std::exception, so `catch (const std::exception&)` lets it through.
struct GreenExit {
    void* value;
};

void run_tsd_destructors(Tsd& tsd) noexcept;

class GreenThread;
void masks_leave(GreenThread* g) noexcept;

// Signals sent to one green thread, not run yet: the thread's own pending
// signals. A standard signal is held once (a second merges with it); a
// real-time one is queued each time, up to kMax in all. The array grows
// in the sender's call (never in a handler that interrupted the hub).
struct SentQueue {
    struct Item {
        int sig;
        int code;  // SI_TKILL (pthread_kill) or SI_QUEUE (pthread_sigqueue)
        union sigval value;
    };
    static constexpr int kMax = 1 << 15;
    Item* items = nullptr;
    int n = 0;
    int cap = 0;

    std::uint64_t bits() const noexcept {  // bit sig - 1
        std::uint64_t b = 0;
        for (int i = 0; i < n; ++i) {
            b |= std::uint64_t{1} << (items[i].sig - 1);
        }
        return b;
    }
    // The first of the lowest-numbered signal in `set` (bit sig - 1), or -1.
    int first_in(std::uint64_t set) const noexcept {
        int best = -1;
        for (int i = 0; i < n; ++i) {
            if ((set >> (items[i].sig - 1) & 1) != 0 && (best < 0 || items[i].sig < items[best].sig)) {
                best = i;
            }
        }
        return best;
    }
    Item take(int i) noexcept {
        const Item it = items[i];
        for (int j = i + 1; j < n; ++j) {
            items[j - 1] = items[j];
        }
        --n;
        return it;
    }
    // false when full, or out of memory (the sender says EAGAIN).
    bool push(const Item& it) noexcept {
        if (n == cap) {
            const int more = cap == 0 ? 4 : cap * 2;
            if (n >= kMax) {
                return false;
            }
            auto* grown = static_cast<Item*>(std::realloc(items, sizeof(Item) * static_cast<std::size_t>(more)));
            if (grown == nullptr) {
                return false;
            }
            items = grown;
            cap = more;
        }
        items[n++] = it;
        return true;
    }
    void clear() noexcept { n = 0; }
    void release() noexcept {
        std::free(items);
        items = nullptr;
        n = cap = 0;
    }
};

// A thread's signals sent to it, and what holds them back besides its mask.
struct ThreadSignals {
    SentQueue sent;                 // not run yet
    std::uint64_t sigwait_set = 0;  // in the sigwait family for these: kept for it
    std::uint64_t in_handlers = 0;  // blocked while its sent handlers run (their sa_mask and number)
    std::uint64_t suspend_mask = 0; // in sigsuspend (or a ppoll's...): its mask instead
    bool suspended = false;
};
ThreadSignals g_main_sigs;  // the main thread's
pthread_t g_green_os_thread;  // the OS thread green threads run on, once one is made

// A green thread's id in a call from another OS thread (one the shim
// left an OS thread): glibc would take it for its own thread record.
// Such a call acts on the OS thread the green threads run on, or fails.
GreenThread* as_green(pthread_t t) noexcept;
GreenThread* foreign_green(pthread_t th) noexcept {
    return !green() && green_objects() ? as_green(th) : nullptr;
}

// What a green pthread_t points to. A real pthread_t points to glibc's
// struct pthread, whose first word is a pointer: it never equals the magic.
struct ThreadRec {
    std::uint64_t magic;
    GreenThread* thread;
};

class GreenThread final : public detail::TaskBase {
public:
    void invoke() override {
        try {
            result_ = start_(arg_);
        } catch (const GreenExit& e) {
            result_ = e.value;
        } catch (...) {
            std::terminate();  // as an exception escaping a thread's start routine
        }
        // As glibc's threads end: thread_local destructors, then keys'.
        run_tls_destructors();
        run_tsd_destructors(tsd_);
        masks_leave(this);
        if (tls_ != nullptr) {
            core_->tls = nullptr;
            end_green_tls(Hub::current(), tls_);
            tls_ = nullptr;
        }
    }
    ~GreenThread() override {
        rec_.magic = 0;
        free_green_tls(tls_);  // never started
        sigs_.sent.release();  // signals it never ran go with it
    }
    void run_tls_destructors() {
        while (!tls_dtors_.empty()) {
            const TlsDtor d = tls_dtors_.back();
            tls_dtors_.pop_back();
            d.fn(d.obj);
            if (d.pin != nullptr) {
                ::dlclose(d.pin);
            }
        }
    }
    pthread_t id() noexcept { return reinterpret_cast<pthread_t>(&rec_); }

    ThreadRec rec_{kThreadMagic, this};
    void* (*start_)(void*) = nullptr;
    void* arg_ = nullptr;
    void* result_ = nullptr;
    Tsd tsd_;
    bool detached_ = false;
    bool joining_ = false;
    bool cancel_pending_ = false;
    bool cancel_disabled_ = false;
    bool in_cancel_wait_ = false;  // parked at a cancellation point of this file
    bool in_shim_wait_ = false;    // in a wait of another interposed cancellation point
    bool cancel_armed_ = false;    // that call returns into the cancel trampoline
    bool exiting_ = false;         // pthread_exit or a cancel is unwinding it
    void* exit_value_ = nullptr;   // what it exits with, meanwhile
    void* return_to_ = nullptr;    // the armed call's real return address
    __pthread_unwind_buf_t* cleanup_ = nullptr;  // newest C cleanup buffer
    _Unwind_Exception unwind_{};   // the forced unwind towards cleanup_
    std::uint64_t sigmask_ = 0;    // its signal mask (signals 1-64, bit sig - 1)
    void* tls_ = nullptr;          // its thread-local image (thread_tls.cpp), if any
    struct TlsDtor {
        void (*fn)(void*);
        void* obj;
        void* pin;  // a dlopen reference to the library of fn, or null
    };
    std::vector<TlsDtor> tls_dtors_;  // its thread_local objects' destructors, in order made
    unsigned mask_epoch_ = 0;      // counted in the masks' tally of that epoch (0: not counted)
    ThreadSignals sigs_;           // signals sent to it
};

GreenThread* as_green(pthread_t t) noexcept {
    const auto* rec = reinterpret_cast<const ThreadRec*>(t);
    return rec != nullptr && rec->magic == kThreadMagic ? rec->thread : nullptr;
}

GreenThread* green_of(FiberCore* f) noexcept {
    detail::TaskBase* t = f->task;
    return t != nullptr && typeid(*t) == typeid(GreenThread) ? static_cast<GreenThread*>(t) : nullptr;
}

GreenThread* current_green() noexcept {
    Hub* h = Hub::current_if_any();
    return h != nullptr ? green_of(h->running()) : nullptr;
}

// ---- signal masks -------------------------------------------------------------
//
// Each green thread has its own signal mask, as each thread has. The OS
// thread they share blocks a signal only while every one of them (and the
// main thread) blocks it: a process-directed signal is then taken as the
// kernel would hand it to some thread that does not block it, and a worker
// that blocks everything leaves the main thread's pause() its signals. A
// query answers the caller's own mask, and fork hands the child the
// forking thread's. Kept from the first green thread on (until then the OS
// thread's mask is the one thread's); on the main thread only, where green
// threads run. Signals 32 and 33 are glibc's own and never blocked.

struct Masks {
    bool on = false;
    unsigned epoch = 1;                  // a fork child starts a new tally
    std::uint64_t main = 0;              // the main thread's (and plain fibers')
    std::uint64_t applied = 0;           // what the OS thread blocks now
    std::uint32_t unblocked[64] = {};    // threads not blocking signal i + 1
};
Masks g_masks;

constexpr std::uint64_t kUnblockable = (std::uint64_t{1} << (SIGKILL - 1)) | (std::uint64_t{1} << (SIGSTOP - 1)) |
                                       (std::uint64_t{1} << 31) | (std::uint64_t{1} << 32);

std::uint64_t low64(const sigset_t* set) noexcept {
    std::uint64_t bits;
    std::memcpy(&bits, set, sizeof bits);
    return bits;
}

sigset_t as_set(std::uint64_t bits) noexcept {
    sigset_t set;
    sigemptyset(&set);
    std::memcpy(&set, &bits, sizeof bits);
    return set;
}

void set_os_mask(std::uint64_t bits) noexcept {
    const sigset_t set = as_set(bits);
    sys::pthread_sigmask(SIG_SETMASK, &set, nullptr);
}

void tally(std::uint64_t mask, int delta) noexcept {
    for (int i = 0; i < 64; ++i) {
        if ((mask & (std::uint64_t{1} << i)) == 0) {
            g_masks.unblocked[i] += static_cast<std::uint32_t>(delta);
        }
    }
}

// The OS thread blocks what every thread blocks.
void apply_masks() noexcept {
    std::uint64_t blocked = 0;
    for (int i = 0; i < 64; ++i) {
        if (g_masks.unblocked[i] == 0) {
            blocked |= std::uint64_t{1} << i;
        }
    }
    blocked &= ~kUnblockable;
    if (blocked != g_masks.applied) {
        set_os_mask(blocked);
        g_masks.applied = blocked;
    }
}

// Thread g's mask (null: the main thread's) becomes `want`.
std::uint64_t& mask_of(GreenThread* g) noexcept;
void set_mask_of(GreenThread* g, std::uint64_t want) noexcept {
    std::uint64_t& mine = mask_of(g);
    if (want != mine) {
        tally(mine, -1);
        tally(want, 1);
        mine = want;
        apply_masks();
    }
}

// Whether the green context of f leaves one of `signals` (bit s for signal
// s) unblocked: the kernel would hand the signal to such a thread.
bool takes_signal(const FiberCore* f, std::uint64_t signals) noexcept {
    const detail::TaskBase* t = f->task;
    const std::uint64_t mask = t != nullptr && typeid(*t) == typeid(GreenThread)
                                   ? static_cast<const GreenThread*>(t)->sigmask_
                                   : g_masks.main;
    return ((signals >> 1) & ~mask) != 0;
}

void run_sent(FiberCore* f) noexcept;
bool run_unblocked_sent() noexcept;

void masks_start() noexcept {
    if (g_masks.on) {
        return;
    }
    Hub::current().set_signal_taker(&takes_signal);
    Hub::current().set_sent_hook(&run_sent);
    g_green_os_thread = REAL(pthread_self)();
    sigset_t now;
    sys::pthread_sigmask(SIG_SETMASK, nullptr, &now);
    g_masks.main = low64(&now) & ~kUnblockable;
    g_masks.applied = g_masks.main;
    std::memset(g_masks.unblocked, 0, sizeof g_masks.unblocked);
    tally(g_masks.main, 1);
    if (GreenThread* g = current_green(); g != nullptr && g->mask_epoch_ != g_masks.epoch) {
        // A fork child's forking green thread (its mask is the OS thread's).
        g->sigmask_ = g_masks.main;
        g->mask_epoch_ = g_masks.epoch;
        tally(g->sigmask_, 1);
    }
    g_masks.on = true;
}

std::uint64_t& mask_of(GreenThread* g) noexcept {
    return g != nullptr ? g->sigmask_ : g_masks.main;
}

void masks_join(GreenThread* child, GreenThread* creator) noexcept {
    masks_start();
    child->sigmask_ = mask_of(creator);  // a new thread inherits its creator's mask
    child->mask_epoch_ = g_masks.epoch;
    tally(child->sigmask_, 1);
}

void masks_leave(GreenThread* g) noexcept {
    if (g->mask_epoch_ == g_masks.epoch && g_masks.on) {
        g->mask_epoch_ = 0;
        tally(g->sigmask_, -1);
        apply_masks();
    }
}

// pthread_sigmask for the running green context: 0 or an error number.
int green_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    std::uint64_t& mine = mask_of(current_green());
    std::uint64_t want = mine;
    if (set != nullptr) {
        sigset_t copy;
        if (!copy_from_user(&copy, set, sizeof copy)) {
            return EFAULT;
        }
        const std::uint64_t bits = low64(&copy) & ~kUnblockable;
        switch (how) {
            case SIG_BLOCK: want = mine | bits; break;
            case SIG_UNBLOCK: want = mine & ~bits; break;
            case SIG_SETMASK: want = bits; break;
            default: return EINVAL;
        }
    }
    if (old != nullptr) {
        const sigset_t out = as_set(mine);
        if (!copy_to_user(old, &out, sizeof out)) {
            return EFAULT;
        }
    }
    if (want != mine) {
        const bool unblocks = (mine & ~want) != 0;
        set_mask_of(current_green(), want);
        if (unblocks) {
            run_unblocked_sent();
        }
    }
    return 0;
}

// ---- signals sent to a green thread -------------------------------------------
//
// pthread_kill and pthread_sigqueue of a green thread queue the signal in
// it (SentQueue), and the thread runs the handler itself, in its own
// context, when it next runs: with its own thread-local variables, on its
// own stack, free to wait as a handler of a thread may (a collector's
// "suspend" handler waits in sigsuspend for its "resume" signal). A thread
// parked in an interposed call is interrupted (EINTR, or a restart under
// SA_RESTART); in any other wait it runs the handler and waits on. A
// signal the thread blocks stays queued until it unblocks it, or takes it
// with the sigwait family.

ThreadSignals& sigs_of(GreenThread* g) noexcept {
    return g != nullptr ? g->sigs_ : g_main_sigs;
}

// What blocks a signal sent to thread g (null: the main thread) now.
std::uint64_t blocking(GreenThread* g) noexcept {
    const ThreadSignals& s = sigs_of(g);
    return (s.suspended ? s.suspend_mask : mask_of(g)) | s.in_handlers | s.sigwait_set;
}

// The fiber of the thread g is (the main fiber for null).
FiberCore* fiber_of(GreenThread* g) noexcept {
    return g != nullptr ? g->core_ : Hub::current().main_fiber();
}

// The running thread, g (null: the main thread), runs the signals sent to
// it that it does not block, lowest number first; true if it raised any.
// Each is raised under the thread's own mask (the OS thread's may hold
// another thread's, in a handler or a sigsuspend), which is put back after.
bool run_sent_of(GreenThread* g) noexcept {
    ThreadSignals& s = sigs_of(g);
    fiber_of(g)->signals_sent = false;
    std::uint64_t raised = 0;  // bit n for signal n
    // In a sigsuspend the kernel delivers at once every signal the call's
    // mask lets in, each handler's mask adding to it; when they return, the
    // thread's own mask is back, and one that came meanwhile waits for it.
    std::uint64_t batch = 0;
    for (;;) {
        const std::uint64_t blocked = blocking(g) | (s.suspended ? batch : 0);
        const int i = s.sent.first_in(~blocked);
        if (i < 0) {
            break;
        }
        const SentQueue::Item it = s.sent.take(i);
        raised |= std::uint64_t{1} << it.sig;
        batch |= handler_mask(it.sig);
        const std::uint64_t outer = s.in_handlers;
        const std::uint64_t mask_before = mask_of(g);
        const std::uint64_t applied_before = g_masks.applied;
        s.in_handlers |= handler_mask(it.sig);
        raise_sent(it.sig, it.code, it.value, blocked & ~kUnblockable);
        s.in_handlers = outer;
        if (mask_of(g) != mask_before) {
            set_mask_of(g, mask_before);  // as the kernel's return from a handler puts the mask back
        } else if (!s.suspended && g_masks.applied != applied_before) {
            // A handler that waited: other threads changed their masks meanwhile.
            set_os_mask(g_masks.applied);
        }
    }
    if (raised != 0) {
        fiber_of(g)->hub->set_interrupt_signals(raised);
    }
    return raised != 0;
}

// The hub's sent-signal hook, called by f as it resumes.
void run_sent(FiberCore* f) noexcept {
    GreenThread* g = green_of(f);
    if (g != nullptr || f == Hub::current().main_fiber()) {
        run_sent_of(g);
    } else {
        f->signals_sent = false;
    }
}

// Queues sig for thread g (null: the main thread) and gets it to run it
// (or, for one it blocks, to see it in its sigwait): 0, or EAGAIN when its
// queue is full.
int send_to_thread(GreenThread* g, int sig, int code, union sigval value) noexcept {
    ThreadSignals& s = sigs_of(g);
    SentQueue& q = s.sent;
    const std::uint64_t bit = std::uint64_t{1} << (sig - 1);
    if (sig < SIGRTMIN && (q.bits() & bit) != 0) {
        return 0;  // merges with the one already pending, as the kernel's
    }
    if (!q.push(SentQueue::Item{sig, code, value})) {
        return EAGAIN;
    }
    FiberCore* f = fiber_of(g);
    if ((blocking(g) & bit) == 0) {
        f->signals_sent = true;
        if (f == f->hub->running()) {
            run_sent_of(g);  // to itself: before the call returns
        } else {
            f->hub->poke(f);
        }
    } else if ((s.sigwait_set & bit) != 0) {
        f->hub->poke(f);  // ends its sigwait, which takes it
    }
    return 0;
}

// Whether sig, sent to thread g (null: the main thread), is queued in it
// (send_to_thread): one it blocks, or one with a handler. Otherwise (no
// handler: the default action, or ignored) it acts on the process at once.
// Not from a handler that interrupted the hub or a queue's change: there
// it is raised at once, in the running context.
bool sends_to_thread(GreenThread* g, int sig) noexcept {
    if (sig <= 0 || sig >= 64 || !g_masks.on || (g != nullptr && g->core_ == nullptr) || g_handler_depth != 0) {
        return false;
    }
    return (blocking(g) >> (sig - 1) & 1) != 0 || signal_caught(sig);
}

// The running thread's signals (g: current_green()) after a change of what
// blocks them: those now unblocked run; true if any did.
bool run_unblocked_sent() noexcept {
    if (g_handler_depth != 0) {
        return false;  // in a handler that may have interrupted a queue's change
    }
    GreenThread* g = current_green();
    const ThreadSignals& s = sigs_of(g);
    if (s.sent.n == 0 || s.sent.first_in(~blocking(g)) < 0) {
        return false;
    }
    if (g == nullptr && Hub::current().running() != Hub::current().main_fiber()) {
        return false;  // a plain fiber: the main thread's run them
    }
    return run_sent_of(g);
}

}  // namespace

bool grove::shim::take_sent(std::uint64_t set, siginfo_t* info) noexcept {
    if (!green() || !g_masks.on) {
        return false;
    }
    SentQueue& q = sigs_of(current_green()).sent;
    const int i = q.n != 0 ? q.first_in(set) : -1;
    if (i < 0) {
        return false;
    }
    const SentQueue::Item it = q.take(i);
    std::memset(info, 0, sizeof *info);
    info->si_signo = it.sig;
    info->si_code = it.code == SI_TKILL ? SI_USER : it.code;  // as libc's sigtimedwait folds it
    info->si_pid = ::getpid();
    info->si_uid = ::getuid();
    info->si_value = it.value;
    return true;
}

void grove::shim::note_sigwait(std::uint64_t set) noexcept {
    if (green() && g_masks.on) {
        sigs_of(current_green()).sigwait_set = set;
    }
}

std::uint64_t grove::shim::sent_pending() noexcept {
    return green() && g_masks.on ? sigs_of(current_green()).sent.bits() : 0;
}

bool grove::shim::own_mask_begin(const sigset_t* set, std::uint64_t& saved) noexcept {
    if (!green() || !g_masks.on || in_vfork_child() || g_handler_depth != 0) {
        return false;  // (in a handler: the tally may be half changed)
    }
    std::uint64_t bits;
    if (!copy_from_user(&bits, set, sizeof bits)) {
        return false;
    }
    GreenThread* g = current_green();
    saved = mask_of(g);
    set_mask_of(g, bits & ~kUnblockable);
    return true;
}

void grove::shim::own_mask_end(std::uint64_t saved) noexcept {
    set_mask_of(current_green(), saved);
}

bool grove::shim::suspend_begin(std::uint64_t mask, SuspendSaved& saved) noexcept {
    saved.active = false;
    if (!green() || !g_masks.on) {
        return false;
    }
    ThreadSignals& s = sigs_of(current_green());
    saved = SuspendSaved{s.suspend_mask, s.in_handlers, s.suspended, true};
    // The call's mask replaces the thread's whole mask, a running
    // handler's additions included, as the kernel's.
    s.suspend_mask = mask & ~kUnblockable;
    s.in_handlers = 0;
    s.suspended = true;
    return run_unblocked_sent();
}

void grove::shim::suspend_end(const SuspendSaved& saved) noexcept {
    if (saved.active) {
        ThreadSignals& s = sigs_of(current_green());
        s.suspend_mask = saved.mask;
        s.in_handlers = saved.in_handlers;
        s.suspended = saved.suspended;
        run_unblocked_sent();  // the next one its own mask lets in, as the kernel's next delivery
    }
}

// fork (process_calls.cpp): the child is handed the forking thread's mask,
// and starts a new tally at its next green thread.
void grove::shim::masks_fork_prepare() noexcept {
    if (green() && g_masks.on) {
        const std::uint64_t mine = mask_of(current_green());
        if (mine != g_masks.applied) {
            set_os_mask(mine);
        }
    }
}

void grove::shim::masks_fork_parent() noexcept {
    if (green() && g_masks.on && mask_of(current_green()) != g_masks.applied) {
        set_os_mask(g_masks.applied);
    }
}

void grove::shim::masks_fork_child() noexcept {
    if (g_masks.on) {
        g_masks.on = false;
        ++g_masks.epoch;
        if (Hub* h = Hub::current_if_any()) {
            h->set_signal_taker(nullptr);
            h->set_sent_hook(nullptr);
        }
    }
    // A child starts with no pending signal.
    GreenThread* g = current_green();
    ThreadSignals& s = sigs_of(g);
    s.sent.clear();
    s.sigwait_set = s.in_handlers = s.suspend_mask = 0;
    s.suspended = false;
    if (g != nullptr) {
        g->core_->signals_sent = false;
    }
}

namespace {

// ---- unwinding: pthread_exit and acted-on cancellation ------------------------

// The C cleanup buffer's link to the one registered before it: glibc keeps
// its own bookkeeping in __pad too, which the macros never touch.
__pthread_unwind_buf_t*& prev_buffer(__pthread_unwind_buf_t* buf) noexcept {
    return *reinterpret_cast<__pthread_unwind_buf_t**>(&buf->__pad[0]);
}

constexpr _Unwind_Exception_Class kUnwindClass = 0x47524f5645455849ULL;  // "GROVEEXI"

// A catch (...) swallowed the forced unwind: as glibc, a fatal error.
void unwind_swallowed(_Unwind_Reason_Code, _Unwind_Exception*) {
    static const char msg[] = "grove: a green thread's exit unwind was caught and not rethrown\n";
    sys::write(2, msg, sizeof msg - 1);
    std::abort();
}

// Stops the forced unwind and jumps into the cleanup buffer once every
// frame below the buffer's has been unwound: the CFA shown with a frame is
// that of the frame it called, so this is when that CFA lies above the
// buffer. (The buffer's own frame is C built without -fexceptions: it has
// no cleanups of its own to run first.)
_Unwind_Reason_Code cleanup_stop(int, _Unwind_Action actions, _Unwind_Exception_Class, _Unwind_Exception*,
                                 struct _Unwind_Context* ctx, void* param) {
    auto* buf = static_cast<__pthread_unwind_buf_t*>(param);
    if ((actions & _UA_END_OF_STACK) != 0 || _Unwind_GetCFA(ctx) > reinterpret_cast<std::uintptr_t>(buf)) {
        if (GreenThread* g = current_green()) {
            g->cleanup_ = prev_buffer(buf);
        }
        // The macro saved no signal mask (savemask 0): nothing past the
        // common prefix of a jmp_buf is read.
        siglongjmp(reinterpret_cast<struct __jmp_buf_tag*>(buf->__cancel_jmp_buf), 1);
    }
    return _URC_NO_REASON;
}

// Unwinds the running green thread towards its exit with g->exit_value_:
// into the newest C cleanup buffer if there is one, else by GreenExit.
[[noreturn]] void continue_exit(GreenThread* g) {
    if (__pthread_unwind_buf_t* buf = g->cleanup_) {
        g->unwind_ = _Unwind_Exception{};
        g->unwind_.exception_class = kUnwindClass;
        g->unwind_.exception_cleanup = unwind_swallowed;
        _Unwind_ForcedUnwind(&g->unwind_, cleanup_stop, buf);
        // Only an unwinder failure returns: take the buffer directly.
        g->cleanup_ = prev_buffer(buf);
        siglongjmp(reinterpret_cast<struct __jmp_buf_tag*>(buf->__cancel_jmp_buf), 1);
    }
    throw GreenExit{g->exit_value_};
}

// pthread_exit(value), or an acted-on cancel, of green thread g (running).
// From here on the thread cannot be cancelled again (glibc likewise marks
// it as exiting), so cleanup handlers may use cancellation points freely.
[[noreturn]] void exit_green(GreenThread* g, void* value) {
    g->exiting_ = true;
    g->cancel_disabled_ = true;
    g->cancel_pending_ = false;
    g->exit_value_ = value;
    if (FiberCore* f = g->core_) {
        // A kill left by the cancel's wake-up must not cut the cleanup's
        // own waits short.
        f->kill_pending = false;
        f->kill_deferred = false;
    }
    continue_exit(g);
}

// A cancellation point: unwinds if a cancel is pending and enabled.
void cancel_point() {
    GreenThread* g = current_green();
    if (g != nullptr && g->cancel_pending_ && !g->cancel_disabled_) {
        exit_green(g, PTHREAD_CANCELED);
    }
}

// Marks the running green thread as parked at a cancellation point, so
// pthread_cancel wakes it (with WakeReason::killed).
struct CancelWindow {
    GreenThread* g = current_green();
    CancelWindow() noexcept {
        if (g != nullptr) {
            g->in_cancel_wait_ = true;
        }
    }
    ~CancelWindow() {
        if (g != nullptr) {
            g->in_cancel_wait_ = false;
        }
    }
};

bool cancel_due() noexcept {
    GreenThread* g = current_green();
    return g != nullptr && g->cancel_pending_ && !g->cancel_disabled_;
}

// A wait that ended early for something else than its own event or
// timeout: a cancel now due acts here (it does not return); a kill or a
// grove::Timeout is recorded, to be raised later in C++.
void wait_cut_short(detail::Waiter& w) {
    if (cancel_due()) {
        cancel_point();
    }
    detail::defer_interruption(w);
}

// ---- cancellation in the other interposed calls (x86-64) ------------------------
//
// A cancel reaches a green thread waiting in, say, read() through
// cancel_hook: pthread_cancel kills the fiber's wait (in_shim_wait_), the
// wait fails, and the shim's frames return as they do after any kill. The
// hook has meanwhile replaced the return address of the outermost shim
// frame (found by walking the stack with the unwinder, checked against
// what the slot holds) with grove_green_cancel_trampoline, which starts the
// unwind from the program's frame as if the call had unwound itself.

#if defined(__x86_64__)

extern "C" {
[[gnu::visibility("hidden")]] void* grove_green_return_address() noexcept;
[[gnu::visibility("hidden"), noreturn]] void grove_green_cancel_return();
[[gnu::visibility("hidden")]] void grove_green_cancel_trampoline();
}

// Entered by `ret` from the armed shim frame: the stack pointer is the
// caller's again, 16-byte aligned as at its call. Pushes the real return
// address back, so grove_green_cancel_return looks called from the call
// site, and jumps there.
asm(R"(
    .text
    .p2align 4
    .globl grove_green_cancel_trampoline
    .hidden grove_green_cancel_trampoline
    .type grove_green_cancel_trampoline, @function
grove_green_cancel_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    subq $16, %rsp
    call grove_green_return_address
    movq %rax, 8(%rsp)
    addq $8, %rsp
    jmp grove_green_cancel_return
    .cfi_endproc
    .size grove_green_cancel_trampoline, .-grove_green_cancel_trampoline
)");

// The objects whose frames are the shim's: this one and libgrove.
struct Objects {
    const void* shim = nullptr;
    const void* lib = nullptr;
};

Objects our_objects() noexcept {
    Objects o;
    Dl_info info;
    if (::dladdr(reinterpret_cast<void*>(&green_cancel_hook), &info) != 0) {
        o.shim = info.dli_fbase;
    }
    if (::dladdr(reinterpret_cast<void*>(&detail::defer_interruption), &info) != 0) {
        o.lib = info.dli_fbase;
    }
    return o;
}

// The unwinder shows each frame as its IP (a return address into it) and
// the CFA of the frame it called: the stack pointer just before that call,
// below which the call pushed the very return address shown.
struct Walk {
    Objects ours;
    bool seen_ours = false;
    std::uintptr_t cfa = 0;     // CFA of the outermost shim frame
    std::uintptr_t caller = 0;  // the return address into the program
    int frames = 0;
};

_Unwind_Reason_Code walk_frame(struct _Unwind_Context* ctx, void* arg) {
    auto* w = static_cast<Walk*>(arg);
    int before = 0;
    const std::uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);
    if (ip == 0 || before != 0 || ++w->frames > 64) {
        w->caller = 0;  // a signal frame or no end in sight: give up
        return _URC_END_OF_STACK;
    }
    Dl_info info;
    const bool ours = ::dladdr(reinterpret_cast<void*>(ip - 1), &info) != 0 &&
                      (info.dli_fbase == w->ours.shim || info.dli_fbase == w->ours.lib);
    if (ours) {
        w->seen_ours = true;
        return _URC_NO_REASON;
    }
    if (w->seen_ours) {
        w->caller = ip;
        w->cfa = _Unwind_GetCFA(ctx);
    }
    return _URC_END_OF_STACK;
}

// Makes the interposed call now on the stack return into the trampoline.
[[gnu::noinline]] bool arm_cancel_return(GreenThread* g) noexcept {
    Walk w;
    w.ours = our_objects();
    _Unwind_Backtrace(walk_frame, &w);
    if (w.caller == 0 || w.cfa == 0) {
        return false;
    }
    // x86-64: the return address lies just below the callee's CFA.
    auto* slot = reinterpret_cast<void**>(w.cfa - sizeof(void*));
    if (reinterpret_cast<std::uintptr_t>(*slot) != w.caller) {
        return false;
    }
    g->return_to_ = *slot;
    *slot = reinterpret_cast<void*>(&grove_green_cancel_trampoline);
    return true;
}

void green_cancel_hook(FiberCore* f, bool entering) noexcept {
    GreenThread* g = green_of(f);
    if (g == nullptr || g->exiting_) {
        return;
    }
    g->in_shim_wait_ = entering;
    if (g->cancel_pending_ && !g->cancel_disabled_ && !g->cancel_armed_) {
        g->cancel_armed_ = arm_cancel_return(g);
    }
    if (entering && g->cancel_armed_) {
        f->kill_pending = true;  // the wait about to begin ends at once
    }
}

}  // namespace

bool grove::shim::cancel_at_entry() noexcept {
    GreenThread* g = current_green();
    // (A vfork child shares the thread's state but is no thread of it.)
    if (g == nullptr || g->exiting_ || !g->cancel_pending_ || g->cancel_disabled_ || in_vfork_child()) {
        return false;
    }
    if (!g->cancel_armed_) {
        g->cancel_armed_ = arm_cancel_return(g);
    }
    return g->cancel_armed_;
}

extern "C" {

void* grove_green_return_address() noexcept {
    GreenThread* g = current_green();
    return g != nullptr ? g->return_to_ : nullptr;
}

void grove_green_cancel_return() {
    GreenThread* g = current_green();
    g->cancel_armed_ = false;
    exit_green(g, PTHREAD_CANCELED);
}

}  // extern "C"

namespace {

#endif  // __x86_64__

// ---- thread-specific data -------------------------------------------------------

struct KeyInfo {
    std::uint64_t seq;  // odd: in use
    void (*dtor)(void*);
};
constinit KeyInfo g_keys[PTHREAD_KEYS_MAX]{};
thread_local Tsd tls_tsd;  // the main fiber and other OS threads (green mode)

Tsd& my_tsd() noexcept {
    GreenThread* g = current_green();
    return g != nullptr ? g->tsd_ : tls_tsd;
}

void run_tsd_destructors(Tsd& tsd) noexcept {
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
        bool any = false;
        for (unsigned i = 0; i < kTsdFirst + tsd.n_more; ++i) {
            TsdSlot& s = *tsd.at(i);
            if (s.value == nullptr || s.seq != g_keys[i].seq || (s.seq & 1) == 0) {
                continue;
            }
            void* v = s.value;
            s.value = nullptr;
            if (g_keys[i].dtor != nullptr) {
                try {
                    g_keys[i].dtor(v);
                } catch (...) {
                    std::terminate();
                }
                any = true;
            }
        }
        if (!any) {
            break;
        }
    }
    std::free(tsd.more);
    tsd.more = nullptr;
    tsd.n_more = 0;
}

// Another OS thread's values (libc started it: the program's keys are this
// file's on every thread in green mode) get their destructors when it
// ends, through one key of libc's whose value is the thread's Tsd.
thread_local bool tls_tsd_hooked = false;

void run_os_tsd(void* tsd) noexcept {
    tls_tsd_hooked = false;  // a destructor's setspecific hooks it again
    run_tsd_destructors(*static_cast<Tsd*>(tsd));
}

void hook_os_tsd() noexcept {
    static const pthread_key_t key = [] {
        pthread_key_t k = PTHREAD_KEYS_MAX;
        REAL(pthread_key_create)(&k, run_os_tsd);
        return k;
    }();
    if (key != PTHREAD_KEYS_MAX && REAL(pthread_setspecific)(key, &tls_tsd) == 0) {
        tls_tsd_hooked = true;
    }
}

// ---- mutex -----------------------------------------------------------------------

// Layout in pthread_mutex_t. `kind` stays where glibc's __kind is, which
// the static initialisers (PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP...) set.
struct GMutex {
    std::uint64_t owner;  // self_token of the owner; 0 unlocked
    std::uint32_t count;  // recursion depth
    std::uint32_t lock;   // the lock word (Spin)
    int kind;             // glibc's: type in the low 2 bits, flags above
    int pad1;
    NodeList waiters;
};
static_assert(sizeof(GMutex) <= sizeof(pthread_mutex_t));
static_assert(offsetof(GMutex, kind) == offsetof(pthread_mutex_t, __data.__kind));
constexpr int kMutexPshared = 128;  // glibc's PTHREAD_MUTEX_PSHARED_BIT

GMutex* gm(pthread_mutex_t* m) noexcept {
    return reinterpret_cast<GMutex*>(m);
}
bool mutex_is_real(pthread_mutex_t* m) noexcept {
    return (gm(m)->kind & kMutexPshared) != 0;
}

// A waiter whose wait ended otherwise than by a wake takes the lock
// `word` of the object whose list `l` holds its node: true if the node was
// still there (now unlinked: the wait failed), false if it had been taken
// (what it waited for is its own; the wake on its way has landed).
bool leave(std::uint32_t& word, NodeList& l, WaitNode& n) noexcept {
    Spin spin(word);
    if (n.linked) {
        remove(l, n);
        return true;
    }
    spin.unlock();
    settle_any(n);
    return false;
}

// Locks m for the caller. `abs` (on `clock`) null: no deadline. EINVAL
// for a bad time is reported only when the call has to wait, as glibc does.
int mutex_lock_slow(GMutex* m, bool try_only, clockid_t clock, const struct timespec* abs, bool interruptible,
                    bool here, Hub* hub, std::uint64_t tok);

inline int mutex_lock(GMutex* m, bool try_only, clockid_t clock, const struct timespec* abs, bool interruptible) {
    const bool here = on_main_thread();
    Hub* hub = here ? Hub::current_if_any() : nullptr;
    // A loop that takes a free mutex again and again (a flag polled under
    // its lock) still lets the other green threads run now and then.
    if (hub != nullptr && !hub->in_hub_fiber()) {
        hub->count_call();
    }
    const std::uint64_t tok = token_of(here, hub);
    {
        Spin spin(m->lock, here);
        if (m->owner == 0) [[likely]] {
            m->owner = tok;
            m->count = 1;
            return 0;
        }
    }
    return mutex_lock_slow(m, try_only, clock, abs, interruptible, here, hub, tok);
}

[[gnu::noinline]] int mutex_lock_slow(GMutex* m, bool try_only, clockid_t clock, const struct timespec* abs,
                                      bool interruptible, bool here, Hub* hub, std::uint64_t tok) {
    const int type = m->kind & 3;
    Spin spin(m->lock, here);
    for (;;) {
        if (m->owner == 0) {
            m->owner = tok;
            m->count = 1;
            return 0;
        }
        if (m->owner == tok) {
            if (type == PTHREAD_MUTEX_RECURSIVE) {
                if (m->count == UINT32_MAX) {
                    return EAGAIN;
                }
                ++m->count;
                return 0;
            }
            if (type == PTHREAD_MUTEX_ERRORCHECK) {
                return try_only ? EBUSY : EDEADLK;
            }
        }
        if (try_only) {
            return EBUSY;
        }
        if (abs != nullptr && !valid_ns(abs)) {
            return EINVAL;
        }
        if (!here || hub != nullptr) {
            break;
        }
        // The first wait of the thread makes its hub, outside the lock,
        // and looks again.
        spin.unlock();
        hub = &Hub::current();
        spin.lock();
    }
    WaitNode n;
    n.token = tok;
    if (!here) {
        os_node(n);
        push(m->waiters, n);
        spin.unlock();
        const int e = os_block_through_signals(n, clock, abs);
        return e == 0 || !leave(m->lock, m->waiters, n) ? 0 : e;
    }
    green_node(n, *hub);
    push(m->waiters, n);
    spin.unlock();
    const Nanos deadline = abs != nullptr ? deadline_from(clock, abs) : kNoDeadline;
    for (;;) {
        const WakeReason why = hub->park(n.w, deadline, interruptible);
        if (why == WakeReason::ready) {
            return 0;  // handed over by unlock
        }
        spin.lock();
        if (!n.linked) {
            spin.unlock();
            settle(n);
            return 0;  // handed over meanwhile
        }
        if (why == WakeReason::timed_out) {
            remove(m->waiters, n);
            return ETIMEDOUT;
        }
        spin.unlock();
        // Killed (a cancel: mutex_lock is no cancellation point) or a
        // signal: neither ends a mutex wait, which keeps its place.
        detail::defer_interruption(n.w);
        interruptible = false;
    }
}

int mutex_unlock_slow(GMutex* m, bool here, std::uint64_t tok) noexcept;

inline int mutex_unlock(GMutex* m) noexcept {
    const bool here = on_main_thread();
    const std::uint64_t tok = token_of(here, here ? Hub::current_if_any() : nullptr);
    {
        Spin spin(m->lock, here);
        if (m->owner == tok && m->waiters.head == nullptr && ((m->kind & 3) != PTHREAD_MUTEX_RECURSIVE || m->count == 1))
            [[likely]] {
            m->owner = 0;
            m->count = 0;
            return 0;
        }
    }
    return mutex_unlock_slow(m, here, tok);
}

[[gnu::noinline]] int mutex_unlock_slow(GMutex* m, bool here, std::uint64_t tok) noexcept {
    const int type = m->kind & 3;
    Woken woken;
    {
        Spin spin(m->lock, here);
        if (m->owner != tok) {
            if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
                return EPERM;
            }
            if (m->owner == 0) {
                return 0;
            }
        }
        if (type == PTHREAD_MUTEX_RECURSIVE && --m->count > 0) {
            return 0;
        }
        if (take_first(m->waiters, woken)) {
            m->owner = woken.head->token;  // hand-off: no barging, FIFO
            m->count = 1;
        } else {
            m->owner = 0;
            m->count = 0;
        }
    }
    wake(woken);
    return 0;
}

// ---- condition variable ----------------------------------------------------------

struct GCond {
    NodeList waiters;
    std::uint32_t lock;   // the lock word (Spin)
    unsigned char pad[16];
    std::uint32_t wrefs;  // glibc's __wrefs: bit 0 process-shared, bit 1 monotonic clock
    unsigned char pad2[8];
};
static_assert(sizeof(GCond) == sizeof(pthread_cond_t));
static_assert(offsetof(GCond, wrefs) == offsetof(pthread_cond_t, __data.__wrefs));

GCond* gc(pthread_cond_t* c) noexcept {
    return reinterpret_cast<GCond*>(c);
}
bool cond_is_real(pthread_cond_t* c) noexcept {
    return (gc(c)->wrefs & 1) != 0;
}

void libc_object_changed(const void* s, bool all) noexcept;
int shared_unlock_check(pthread_mutex_t* m) noexcept;
bool error_checking(const pthread_mutex_t* m) noexcept;
int any_mutex_unlock(pthread_mutex_t* m) noexcept {
    if (mutex_is_real(m)) {
        if (green() && error_checking(m)) {
            if (const int e = shared_unlock_check(m); e != 0) {
                return e;
            }
        }
        const int r = REAL(pthread_mutex_unlock)(m);
        if (r == 0) {
            libc_object_changed(m, false);
        }
        return r;
    }
    return mutex_unlock(gm(m));
}
int shared_mutex_lock(Hub* hub, pthread_mutex_t* m, Nanos deadline, bool bad_time) noexcept;
Hub* shared_object_hub() noexcept;
int any_mutex_relock(pthread_mutex_t* m) {
    if (mutex_is_real(m)) {
        if (Hub* hub = shared_object_hub()) {
            return shared_mutex_lock(hub, m, kNoDeadline, false);
        }
        return REAL(pthread_mutex_lock)(m);
    }
    mutex_lock(gm(m), false, CLOCK_MONOTONIC, nullptr, false);
    return 0;
}

void cond_signal(GCond* c, bool all) noexcept {
    Woken woken;
    {
        Spin spin(c->lock);
        if (all) {
            take_all(c->waiters, woken);
        } else {
            take_first(c->waiters, woken);
        }
    }
    wake(woken);
}

// An OS waiter's wait, unwound by a cancel acted on in it: its node leaves
// (a signal it was given goes to the next waiter), and the mutex is taken
// again before the cleanup handlers run, as POSIX asks.
struct OsCondWait {
    GCond* c;
    pthread_mutex_t* m;
    WaitNode& n;
    bool waiting = true;
    ~OsCondWait() {
        if (waiting) {
            if (!leave(c->lock, c->waiters, n)) {
                cond_signal(c, false);
            }
            any_mutex_relock(m);
        }
    }
};

// Links n into c's waiters, then releases m: 0, or m's unlock error with
// n gone from the list again (a signal it was given passes on).
int cond_enqueue(GCond* c, pthread_mutex_t* m, WaitNode& n) noexcept {
    {
        Spin spin(c->lock);
        push(c->waiters, n);
    }
    const int e = any_mutex_unlock(m);
    if (e != 0 && !leave(c->lock, c->waiters, n)) {
        cond_signal(c, false);
    }
    return e;
}

int cond_wait_os(GCond* c, pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) {
    WaitNode n;
    os_node(n);
    if (const int e = cond_enqueue(c, m, n); e != 0) {
        return e;
    }
    int e;
    {
        OsCondWait unwinding{c, m, n};
        do {
            e = os_block(n, clock, abs);  // a cancellation point
        } while (e == EINTR);
        unwinding.waiting = false;
    }
    if (e != 0 && !leave(c->lock, c->waiters, n)) {
        e = 0;  // signalled as the wait ended
    }
    any_mutex_relock(m);
    return e;
}

// `deadline` for a green waiter; `clock` and `abs` (null: none) for an OS
// waiter.
int cond_wait(pthread_cond_t* cv, pthread_mutex_t* m, Nanos deadline, clockid_t clock,
              const struct timespec* abs) {
    GCond* c = gc(cv);
    if (!on_main_thread()) {
        return cond_wait_os(c, m, clock, abs);
    }
    cancel_point();
    Hub& hub = Hub::current();
    WaitNode n;
    green_node(n, hub);
    if (const int e = cond_enqueue(c, m, n); e != 0) {
        return e;
    }
    WakeReason why;
    {
        CancelWindow window;
        why = hub.park(n.w, deadline, true);
    }
    const bool signalled = why == WakeReason::ready || !leave(c->lock, c->waiters, n);
    const int relocked = any_mutex_relock(m);  // (libc's, process-shared: its error comes first)
    if (why == WakeReason::timed_out) {
        return relocked != 0 ? relocked : signalled ? 0 : ETIMEDOUT;
    }
    if (why != WakeReason::ready) {
        // A cancel, with the mutex held again as POSIX asks (a signal this
        // waiter was given goes to the next); anything else is a spurious
        // wake-up, which callers must expect.
        if (signalled && cancel_due()) {
            cond_signal(c, false);
        }
        wait_cut_short(n.w);
    }
    return relocked;
}

// ---- rwlock ----------------------------------------------------------------------

struct GRwlock {
    std::uint64_t writer;  // self_token of the write owner; 0 none
    std::uint32_t readers;
    std::uint32_t lock;    // the lock word (Spin)
    unsigned char pad1[12];
    int shared;            // glibc's __shared: nonzero for process-shared
    NodeList waiters;
    unsigned int flags;    // glibc's __flags: PTHREAD_RWLOCK_PREFER_*
    unsigned int pad2;
};
static_assert(sizeof(GRwlock) == sizeof(pthread_rwlock_t));
static_assert(offsetof(GRwlock, shared) == offsetof(pthread_rwlock_t, __data.__shared));
static_assert(offsetof(GRwlock, flags) == offsetof(pthread_rwlock_t, __data.__flags));

GRwlock* gr(pthread_rwlock_t* r) noexcept {
    return reinterpret_cast<GRwlock*>(r);
}
bool rwlock_is_real(pthread_rwlock_t* r) noexcept {
    return gr(r)->shared != 0;
}
bool prefers_writers(const GRwlock* r) noexcept {
    return r->flags != PTHREAD_RWLOCK_PREFER_READER_NP;
}

// Under the lock, with the lock free or read-held: grants what the
// queue's front allows.
void rwlock_grant(GRwlock* r, Woken& woken) noexcept {
    if (r->writer != 0) {
        return;
    }
    for (WaitNode* n = r->waiters.head; n != nullptr;) {
        WaitNode* next = n->next;
        if (stale(*n)) [[unlikely]] {
            remove(r->waiters, *n);
        } else if (n->kind == 1) {
            if (r->readers == 0) {
                remove(r->waiters, *n);
                r->writer = n->token;
                take(*n, woken);
                return;
            }
            if (prefers_writers(r)) {
                return;  // readers behind a waiting writer wait
            }
        } else {
            remove(r->waiters, *n);
            ++r->readers;
            take(*n, woken);
        }
        n = next;
    }
}

bool writer_waiting(GRwlock* r) noexcept {
    for (WaitNode* n = r->waiters.head; n != nullptr; n = n->next) {
        if (n->kind == 1 && !stale(*n)) {
            return true;
        }
    }
    return false;
}

// A wait that failed: its node leaves, and a writer that gave up may let
// readers behind it in. False if the node had been granted meanwhile.
bool rwlock_leave(GRwlock* r, WaitNode& n) noexcept {
    Woken woken;
    bool left = false;
    {
        Spin spin(r->lock);
        if (n.linked) {
            remove(r->waiters, n);
            rwlock_grant(r, woken);
            left = true;
        }
    }
    if (!left) {
        settle_any(n);
        return false;
    }
    wake(woken);
    return true;
}

int rwlock_lock(GRwlock* r, bool write, bool try_only, clockid_t clock, const struct timespec* abs) {
    if (abs != nullptr && !valid_ns(abs)) {
        return EINVAL;
    }
    const bool here = on_main_thread();
    Hub* hub = here ? Hub::current_if_any() : nullptr;
    const std::uint64_t tok = self_token();
    Spin spin(r->lock);
    for (;;) {
        if (r->writer == tok) {
            return try_only ? EBUSY : EDEADLK;
        }
        if (write ? (r->writer == 0 && r->readers == 0)
                  : (r->writer == 0 && !(prefers_writers(r) && writer_waiting(r)))) {
            if (write) {
                r->writer = tok;
            } else {
                if (r->readers == UINT32_MAX) {
                    return EAGAIN;
                }
                ++r->readers;
            }
            return 0;
        }
        if (try_only) {
            return EBUSY;
        }
        if (!here || hub != nullptr) {
            break;
        }
        spin.unlock();  // the thread's first wait makes its hub (mutex_lock)
        hub = &Hub::current();
        spin.lock();
    }
    WaitNode n;
    n.token = tok;
    n.kind = write ? 1 : 0;
    if (!here) {
        os_node(n);
        push(r->waiters, n);
        spin.unlock();
        const int e = os_block_through_signals(n, clock, abs);
        return e == 0 || !rwlock_leave(r, n) ? 0 : e;
    }
    green_node(n, *hub);
    push(r->waiters, n);
    spin.unlock();
    const Nanos deadline = abs != nullptr ? deadline_from(clock, abs) : kNoDeadline;
    bool interruptible = true;
    for (;;) {
        const WakeReason why = hub->park(n.w, deadline, interruptible);
        if (why == WakeReason::ready) {
            return 0;
        }
        if (why == WakeReason::timed_out) {
            return rwlock_leave(r, n) ? ETIMEDOUT : 0;
        }
        spin.lock();
        const bool waiting = n.linked;
        spin.unlock();
        if (!waiting) {
            settle(n);
            return 0;
        }
        detail::defer_interruption(n.w);  // not a cancellation point
        interruptible = false;
    }
}

int rwlock_unlock(GRwlock* r) noexcept {
    Woken woken;
    {
        Spin spin(r->lock);
        if (r->writer != 0 && r->writer == self_token()) {
            r->writer = 0;
        } else if (r->readers > 0) {
            --r->readers;
        } else {
            return 0;  // glibc does not check either
        }
        rwlock_grant(r, woken);
    }
    wake(woken);
    return 0;
}

// ---- barrier ---------------------------------------------------------------------

struct GBarrier {
    std::uint32_t count;
    std::uint32_t arrived;
    NodeList waiters;
    std::uint32_t magic;  // kBarrierMagic: ours; else libc's (process-shared)
    std::uint32_t lock;   // the lock word (Spin)
};
static_assert(sizeof(GBarrier) == sizeof(pthread_barrier_t));
constexpr std::uint32_t kBarrierMagic = 0x67626172;  // "gbar"

GBarrier* gb(pthread_barrier_t* b) noexcept {
    return reinterpret_cast<GBarrier*>(b);
}

// ---- semaphore -------------------------------------------------------------------

struct GSem {
    std::uint32_t value;
    std::uint32_t lock;   // the lock word (Spin)
    NodeList waiters;
    std::uint32_t magic;  // kSemMagic: ours; else libc's (shared, named)
    std::uint32_t pad2;
};
static_assert(sizeof(GSem) == sizeof(sem_t));
constexpr std::uint32_t kSemMagic = 0x6773656d;  // "gsem"

GSem* gs(sem_t* s) noexcept {
    return reinterpret_cast<GSem*>(s);
}
bool sem_is_green(sem_t* s) noexcept {
    return mode() == kGreen && gs(s)->magic == kSemMagic;
}

// A unit more: to the first waiter, else to the value. -1 with errno.
int sem_put(GSem* s) noexcept {
    Woken woken;
    {
        Spin spin(s->lock);
        if (s->waiters.head == nullptr && s->value < SEM_VALUE_MAX) [[likely]] {
            ++s->value;
            return 0;
        }
        if (!take_first(s->waiters, woken)) {
            if (s->value == SEM_VALUE_MAX) {
                errno = EOVERFLOW;
                return -1;
            }
            ++s->value;
        }
    }
    wake(woken);  // the unit goes to it
    return 0;
}

// An OS waiter's wait, unwound by a cancel acted on in it: its node leaves,
// and a unit it was given goes back.
struct OsSemWait {
    GSem* s;
    WaitNode& n;
    bool waiting = true;
    ~OsSemWait() {
        if (waiting && !leave(s->lock, s->waiters, n)) {
            sem_put(s);
        }
    }
};

// sem_wait on an OS thread: libc's own semaphore wait in the node, so
// signals, SA_RESTART and cancellation act as in libc's.
int sem_wait_os(GSem* s, clockid_t clock, const struct timespec* abs) {
    const int saved = errno;
    WaitNode n;
    {
        Spin spin(s->lock);
        if (s->value > 0) {
            --s->value;
            return 0;
        }
        os_node(n);
        push(s->waiters, n);
    }
    int e;
    {
        OsSemWait unwinding{s, n};
        e = os_block(n, clock, abs);
        unwinding.waiting = false;
    }
    if (e == 0 || !leave(s->lock, s->waiters, n)) {
        errno = saved;
        return 0;
    }
    errno = e;
    return -1;
}

// -1 with errno, as sem_wait. A signal whose handlers all have SA_RESTART
// does not end an untimed wait (the kernel restarts libc's futex wait); it
// ends a timed one with EINTR, as libc's sem_timedwait does.
int sem_wait_green(GSem* s, Nanos deadline) {
    cancel_point();
    {
        Spin spin(s->lock, true);
        if (s->value > 0) [[likely]] {
            --s->value;
            return 0;
        }
    }
    const int saved = errno;
    Hub& hub = Hub::current();  // the thread's first wait makes it
    for (;;) {
        WaitNode n;
        {
            Spin spin(s->lock);
            if (s->value > 0) {
                --s->value;
                errno = saved;
                return 0;
            }
            green_node(n, hub);
            push(s->waiters, n);
        }
        WakeReason why;
        {
            SignalWindow signals(&hub, false);  // its own CancelWindow
            CancelWindow window;
            why = hub.park(n.w, deadline, true);
        }
        if (why == WakeReason::ready || !leave(s->lock, s->waiters, n)) {
            errno = saved;
            return 0;  // a unit handed over by sem_post
        }
        if (why == WakeReason::timed_out) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (why == WakeReason::interrupted && deadline == kNoDeadline && restarts(&hub, false)) {
            continue;
        }
        wait_cut_short(n.w);
        errno = EINTR;  // a signal, or a kill
        return -1;
    }
}

// ---- process-shared and named semaphores ----------------------------------------
//
// The object is libc's (another process may use it) and so are its post,
// trywait and getvalue; only a green wait is cooperative. It looks with
// sem_trywait and, while that says EAGAIN, parks: a sem_post made here by a
// green thread wakes a parked waiter of that address at once (the table
// below); a post by another process, or by an OS thread outside the green
// threads, is seen at the next look, after a nap growing from 1 ms to
// 25 ms as the file-lock waits' (fd_calls.cpp). A woken waiter is handed
// nothing: it looks again, and parks again if a trywait or another
// process took the unit first.

// Parked waiters by semaphore address (Waiter::tag): those of the one hub
// that runs green threads.
constexpr std::size_t kSharedSemBuckets = 64;
constinit NodeList g_shared_sem[kSharedSemBuckets]{};
constinit bool g_shared_sem_atfork = false;  // the fork handler below is registered
constexpr Nanos kSharedSemFirstNap = 1'000'000;
constexpr Nanos kSharedSemMaxNap = 25'000'000;

// (Also the process-shared mutexes' and condition variables' waiters.)
NodeList& libc_waiters(const void* s) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(s);
    return g_shared_sem[(a >> 5) % kSharedSemBuckets];
}

// A fork child has only the forking fiber: the parked waiters stayed in the
// parent, and a post in the child must not wake their copies. Registered
// at the first wait, not at start-up, which it would slow.
void forget_shared_sem_waiters() noexcept {
    for (NodeList& b : g_shared_sem) {
        b = NodeList{};
    }
}

// Registered at the first wait, not at start-up, which it would slow.
void forget_waiters_at_fork() noexcept {
    if (!g_shared_sem_atfork) {
        g_shared_sem_atfork = true;
        ::pthread_atfork(nullptr, nullptr, forget_shared_sem_waiters);
    }
}

// -1 with errno, as sem_wait. Not noexcept: a cancellation point.
// A signal ends the wait with EINTR, except that sem_wait (`timed` false)
// goes on when every handler that ran has SA_RESTART: so does libc's, whose
// untimed futex wait the kernel restarts (signal(7)).
int shared_sem_wait(Hub* hub, sem_t* s, bool timed, Nanos deadline) {
    cancel_point();
    const int saved = errno;
    NodeList& b = libc_waiters(s);
    WaitNode n;
    n.w.tag = reinterpret_cast<std::uintptr_t>(s);
    Nanos nap = kSharedSemFirstNap;
    for (;;) {
        if (REAL(sem_trywait)(s) == 0) {
            errno = saved;
            return 0;
        }
        if (errno != EAGAIN) {
            return -1;
        }
        const Nanos now = detail::now_ns();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        forget_waiters_at_fork();
        push(b, n);
        WakeReason why;
        {
            SignalWindow signals(hub, false);  // its own CancelWindow
            CancelWindow window;
            why = hub->park(n.w, std::min(deadline, now + nap), true);
        }
        remove(b, n);
        if (why == WakeReason::timed_out) {
            nap = std::min(nap * 2, kSharedSemMaxNap);
            continue;
        }
        if (why == WakeReason::ready ||
            (why == WakeReason::interrupted && !timed && restarts(hub, false))) {
            continue;
        }
        wait_cut_short(n.w);
        errno = EINTR;  // a signal, or a kill
        return -1;
    }
}

// For a wait on libc's semaphore: the hub to park in when the call is
// green and made where a fiber may park; else null (it passes through).
Hub* shared_sem_hub() noexcept {
    return green() ? hub_for_call() : nullptr;
}

// After a change of libc's object at `s` (a post, an unlock, a signal) on
// the green threads' thread: its first parked waiter (every one, `all`)
// looks again. (From a handler, which may have interrupted a change of the
// list, nothing: the waiter's next look sees it.)
void libc_object_changed(const void* s, bool all) noexcept {
    if (!green() || g_handler_depth != 0) {
        return;
    }
    NodeList& b = libc_waiters(s);
    for (WaitNode* n = b.head; n != nullptr;) {
        WaitNode* next = n->next;
        if (n->w.tag == reinterpret_cast<std::uintptr_t>(s) && n->w.why == WakeReason::none) {
            remove(b, *n);
            detail::unpark(n->w, WakeReason::ready);
            if (!all) {
                return;
            }
        }
        n = next;
    }
}

// ---- process-shared mutexes and condition variables -----------------------------
//
// libc's objects as well (another process may hold or wait on them), with
// the semaphores' cooperative waits on the green threads' thread. A lock
// tries with libc's trylock and parks between tries: woken at once by a
// green thread's unlock of the same address, else after a nap growing from
// 1 ms to 25 ms. A condition wait unlocks the mutex, parks until a green
// thread's signal or broadcast of that condition, its deadline, or a look
// after 10 ms, locks again and returns 0: at worst a spurious wake-up,
// which callers expect (they test their predicate again); a signal from
// another process is seen at that look. Green threads share one OS thread
// id, so libc counts them as one owner of a recursive or error-checking
// mutex.

constexpr Nanos kSharedCondLook = 10'000'000;

// Process-shared error-checking mutexes held by green threads: libc knows
// the owner's OS thread only (the same for all of them), so the green
// owner is kept here, for EDEADLK on a relock and EPERM on another's
// unlock, as libc answers threads.
struct SharedOwner {
    const pthread_mutex_t* m;
    const void* owner;
};
constexpr int kSharedOwners = 64;
constinit SharedOwner g_shared_owners[kSharedOwners]{};

bool error_checking(const pthread_mutex_t* m) noexcept {
    return (m->__data.__kind & 3) == PTHREAD_MUTEX_ERRORCHECK_NP;
}

const void* green_self() noexcept {
    return Hub::current().running();
}

SharedOwner* shared_owner(const pthread_mutex_t* m) noexcept {
    for (SharedOwner& o : g_shared_owners) {
        if (o.m == m) {
            return &o;
        }
    }
    return nullptr;
}

// After libc's lock or trylock of m succeeded for the running green context.
void note_shared_owner(const pthread_mutex_t* m) noexcept {
    if (!error_checking(m)) {
        return;
    }
    SharedOwner* o = shared_owner(m);
    if (o == nullptr) {
        o = shared_owner(nullptr);  // a free slot; with none, libc's answers stand
    }
    if (o != nullptr) {
        *o = SharedOwner{m, green_self()};
    }
}

// 0 or libc's error (EINVAL, ETIMEDOUT, EOWNERDEAD...), as its lock.
int shared_mutex_lock(Hub* hub, pthread_mutex_t* m, Nanos deadline, bool bad_time) noexcept {
    NodeList& b = libc_waiters(m);
    WaitNode n;
    n.w.tag = reinterpret_cast<std::uintptr_t>(m);
    Nanos nap = kSharedSemFirstNap;
    for (;;) {
        const int r = REAL(pthread_mutex_trylock)(m);
        if (r == 0) {
            note_shared_owner(m);
        }
        if (r != EBUSY) {
            return r;
        }
        if (error_checking(m)) {
            if (const SharedOwner* o = shared_owner(m); o != nullptr && o->owner == green_self()) {
                return EDEADLK;
            }
        }
        if (bad_time) {
            return EINVAL;  // libc checks the time once it would wait
        }
        const Nanos now = detail::now_ns();
        if (now >= deadline) {
            return ETIMEDOUT;
        }
        forget_waiters_at_fork();
        push(b, n);
        const WakeReason why = hub->park(n.w, std::min(deadline, now + nap), false);
        remove(b, n);
        if (why == WakeReason::timed_out) {
            nap = std::min(nap * 2, kSharedSemMaxNap);
        }
    }
}

// Before a green unlock of libc's error-checking mutex m: EPERM when
// another green context holds it; else its record goes.
int shared_unlock_check(pthread_mutex_t* m) noexcept {
    SharedOwner* o = shared_owner(m);
    if (o == nullptr) {
        return 0;
    }
    if (o->owner != green_self()) {
        return EPERM;
    }
    *o = SharedOwner{};
    return 0;
}

// The green threads' hub when this call on libc's object may park.
Hub* shared_object_hub() noexcept {
    return green() && g_handler_depth == 0 ? hub_for_call() : nullptr;
}

// A wait on libc's condition c; m is either kind of mutex. Not noexcept:
// a cancellation point.
int shared_cond_wait(Hub* hub, pthread_cond_t* c, pthread_mutex_t* m, Nanos deadline) {
    cancel_point();
    if (const int e = any_mutex_unlock(m); e != 0) {
        return e;
    }
    NodeList& b = libc_waiters(c);
    WaitNode n;
    n.w.tag = reinterpret_cast<std::uintptr_t>(c);
    forget_waiters_at_fork();
    push(b, n);
    WakeReason why;
    {
        CancelWindow window;
        why = hub->park(n.w, std::min(deadline, detail::now_ns() + kSharedCondLook), true);
    }
    remove(b, n);
    // As glibc's: the relock's error (EOWNERDEAD...) comes first.
    const int relocked = any_mutex_relock(m);
    if (why != WakeReason::ready && why != WakeReason::timed_out) {
        wait_cut_short(n.w);  // a cancel is acted on with the mutex held
    }
    if (relocked != 0) {
        return relocked;
    }
    return deadline != kNoDeadline && detail::now_ns() >= deadline ? ETIMEDOUT : 0;
}

// ---- futex (std::atomic::wait, std::latch, std::barrier, std::future) -------------

// Waiters of the emulated futex, by address. Waiter::tag holds the address,
// the node's token the bitset. A bucket has a lock word: OS threads wake
// green waiters too (see "waiting across OS threads").
constexpr std::size_t kFutexBuckets = 256;
constinit NodeList g_futex[kFutexBuckets]{};
constinit std::uint32_t g_futex_lock[kFutexBuckets]{};

std::size_t futex_bucket(const void* addr) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(addr);
    return (a >> 2) % kFutexBuckets;
}

long futex_wait(std::uint32_t* addr, std::uint32_t val, Nanos deadline, std::uint32_t bitset) {
    Hub& hub = Hub::current();
    const std::size_t b = futex_bucket(addr);
    WaitNode n;
    n.w.tag = reinterpret_cast<std::uintptr_t>(addr);
    n.token = bitset;
    green_node(n, hub);
    {
        // The value is read under the lock a waker of another thread takes
        // after its store: it sees this node, or this sees its store.
        Spin spin(g_futex_lock[b]);
        if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != val) {
            errno = EAGAIN;
            return -1;
        }
        push(g_futex[b], n);
    }
    WakeReason why;
    {
        SignalWindow signals(&hub, false);  // a futex wait is no cancellation point
        why = hub.park(n.w, deadline, true);
    }
    if (why == WakeReason::ready || !leave(g_futex_lock[b], g_futex[b], n)) {
        return 0;
    }
    if (why == WakeReason::timed_out) {
        errno = ETIMEDOUT;
        return -1;
    }
    detail::defer_interruption(n.w);
    errno = EINTR;
    return -1;
}

// Wakes up to `count` green waiters of addr, from any thread.
long futex_wake(std::uint32_t* addr, int count, std::uint32_t bitset) noexcept {
    const std::size_t b = futex_bucket(addr);
    long woken_count = 0;
    Woken woken;
    {
        Spin spin(g_futex_lock[b]);
        for (WaitNode* n = g_futex[b].head; n != nullptr && woken_count < count;) {
            WaitNode* next = n->next;
            if (stale(*n)) [[unlikely]] {
                remove(g_futex[b], *n);
            } else if (n->w.tag == reinterpret_cast<std::uintptr_t>(addr) && (n->token & bitset) != 0) {
                remove(g_futex[b], *n);
                take(*n, woken);
                ++woken_count;
            }
            n = next;
        }
    }
    wake(woken);
    return woken_count;
}

}  // namespace

namespace {

using ThreadAtexitFn = int (*)(void (*)(void*), void*, void*);

void load_home_tls(void*) noexcept {
    GreenThread* g = current_green();
    if (g == nullptr || g->tls_ == nullptr || g->core_ == nullptr) {
        return;  // the main thread's variables are the ones loaded
    }
    g->run_tls_destructors();
    g->core_->tls = nullptr;  // it runs on the main thread's from here on
    Hub::current().forget_tls(g->tls_);
}

int real_thread_atexit(void (*fn)(void*), void* obj, void* dso) noexcept {
    return GROVE_LIBC("__cxa_thread_atexit_impl", ThreadAtexitFn)(fn, obj, dso);
}

// The first green thread with variables of its own has just been made
// (green threads are made on the main thread only).
constinit bool g_tls_started = false;
void green_tls_started() noexcept {
    if (!g_tls_started) {
        g_tls_started = true;
        real_thread_atexit(load_home_tls, nullptr, &__dso_handle);
    }
}

}  // namespace


extern "C" {

// ---- threads ------------------------------------------------------------------------

int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    if (!green() || !g_masks.on || in_vfork_child()) {
        return sys::pthread_sigmask(how, set, old);
    }
    return green_sigmask(how, set, old);
}

int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    if (!green() || !g_masks.on || in_vfork_child()) {
        using Fn = int (*)(int, const sigset_t*, sigset_t*);
        return GROVE_LIBC("sigprocmask", Fn)(how, set, old);
    }
    const int e = green_sigmask(how, set, old);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return 0;
}

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
    if (!green()) {
        return REAL(pthread_create)(thread, attr, start, arg);
    }
    std::size_t stack = config.thread_stack;
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr != nullptr) {
        std::size_t asked = 0;
        pthread_attr_t def;
        std::size_t def_size = 0;
        if (pthread_getattr_default_np(&def) == 0) {
            pthread_attr_getstacksize(&def, &def_size);
            pthread_attr_destroy(&def);
        }
        // Only a size the program chose; the rlimit default (8 MiB) is not.
        if (pthread_attr_getstacksize(attr, &asked) == 0 && asked != def_size) {
            stack = asked;
        }
        pthread_attr_getdetachstate(attr, &detach);
    }
    auto* t = new (std::nothrow) GreenThread();
    if (t == nullptr) {
        return EAGAIN;
    }
    t->start_ = start;
    t->arg_ = arg;
    const Hub::TlsImages* images = green_tls_images();
    if (images != nullptr) {
        t->tls_ = new_green_tls();
        if (t->tls_ == nullptr) {
            delete t;
            return EAGAIN;
        }
    }
    masks_join(t, current_green());
    try {
        detail::spawn_task(t, SpawnOptions{stack, nullptr}, 0);
    } catch (...) {
        masks_leave(t);
        delete t;
        return EAGAIN;
    }
    if (images != nullptr) {
        t->core_->tls = t->tls_;
        Hub::current().set_tls_images(images);
        green_tls_started();
    }
    *thread = t->id();
    if (detach == PTHREAD_CREATE_DETACHED) {
        t->detached_ = true;
        detail::release_task(t);  // the handle's reference: nobody joins
    }
    // As glibc's pthread_create: the process has more than one thread now.
    // Libraries read it to leave out work only a lone thread may skip
    // (libstdc++'s stop_token releases a callback's waiter only if false).
    __libc_single_threaded = 0;
    return 0;
}

}  // extern "C"

namespace {

// Joins green thread t from a green caller. 0, ETIMEDOUT, EDEADLK, EINVAL.
int join_green(GreenThread* t, void** ret, Nanos deadline, bool try_only) {
    if (t == current_green()) {
        return EDEADLK;
    }
    if (t->detached_ || t->joining_) {
        return EINVAL;
    }
    if (!t->finished_) {
        if (try_only) {
            return EBUSY;
        }
        cancel_point();
        Hub& hub = Hub::current();
        t->joining_ = true;
        for (;;) {
            Waiter w;
            t->core_->joiners.push_back(w);
            WakeReason why;
            {
                CancelWindow window;
                why = hub.park(w, deadline, true);
            }
            if (why == WakeReason::ready || t->finished_) {
                break;
            }
            if (why == WakeReason::timed_out) {
                t->joining_ = false;
                return ETIMEDOUT;
            }
            if (cancel_due()) {
                t->joining_ = false;
                cancel_point();
            }
            detail::defer_interruption(w);
        }
    }
    if (ret != nullptr) {
        *ret = t->result_;
    }
    detail::release_task(t);
    return 0;
}

// Joins an OS thread libc started (a library's own, past the shim) from a
// green thread without holding up the others: the thread it waits for may
// need one of them first (a lock it holds, a post). libc's try, then naps
// of 1 ms doubling to 25 ms between tries: an ended thread is joined up to
// 25 ms late. Returns libc's answer, or ETIMEDOUT at the deadline. -1: not
// here (no hub on this thread, or the hub's own fiber): the caller calls
// libc's.
constexpr Nanos kOsJoinBackoffFirst = 1'000'000;
constexpr Nanos kOsJoinBackoffMax = 25'000'000;

int join_os(pthread_t th, void** ret, Nanos deadline) {
    Hub* hub = Hub::current_if_any();
    if (hub == nullptr || hub->in_hub_fiber()) {
        return -1;
    }
    cancel_point();
    Nanos backoff = kOsJoinBackoffFirst;
    // libc's timed join with a deadline long past: all of libc's checks
    // (detached, joined already, a join of oneself or of one's joiner),
    // then ETIMEDOUT at once if the thread still runs.
    const struct timespec past{-1, 0};
    for (;;) {
        const int r = REAL(pthread_clockjoin_np)(th, ret, CLOCK_MONOTONIC, &past);
        if (r != ETIMEDOUT) {
            return r;
        }
        const Nanos now = detail::now_ns();
        if (now >= deadline) {
            return ETIMEDOUT;
        }
        Waiter w;
        WakeReason why;
        {
            CancelWindow window;
            why = hub->park(w, std::min(now + backoff, deadline), true);
        }
        if (why != WakeReason::timed_out) {
            if (cancel_due()) {
                cancel_point();
            }
            detail::defer_interruption(w);
        }
        backoff = std::min(backoff * 2, kOsJoinBackoffMax);
    }
}

}  // namespace

extern "C" {

int pthread_join(pthread_t th, void** ret) {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    if (!green()) {
        return REAL(pthread_join)(th, ret);
    }
    if (GreenThread* t = as_green(th)) {
        return join_green(t, ret, kNoDeadline, false);
    }
    const int r = join_os(th, ret, kNoDeadline);
    return r != -1 ? r : REAL(pthread_join)(th, ret);
}

int pthread_tryjoin_np(pthread_t th, void** ret) noexcept {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    GreenThread* t = green() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_tryjoin_np)(th, ret);
    }
    return join_green(t, ret, kNoDeadline, true);
}

int pthread_clockjoin_np(pthread_t th, void** ret, clockid_t clock, const struct timespec* abs) {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    if (!green()) {
        return REAL(pthread_clockjoin_np)(th, ret, clock, abs);
    }
    // As glibc's: an unsupported clock is refused at once; a deadline
    // before 1970 has passed; one with invalid nanoseconds is no deadline
    // (glibc's wait fails and is tried again until the thread ends).
    if (!supported_clock(clock)) {
        return EINVAL;
    }
    const Nanos deadline =
        abs != nullptr && (abs->tv_sec < 0 || valid_ns(abs)) ? deadline_from(clock, abs) : kNoDeadline;
    if (GreenThread* t = as_green(th)) {
        return join_green(t, ret, deadline, false);
    }
    const int r = join_os(th, ret, deadline);
    return r != -1 ? r : REAL(pthread_clockjoin_np)(th, ret, clock, abs);
}

int pthread_timedjoin_np(pthread_t th, void** ret, const struct timespec* abs) {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    if (!green()) {
        return REAL(pthread_timedjoin_np)(th, ret, abs);
    }
    return pthread_clockjoin_np(th, ret, CLOCK_REALTIME, abs);
}

int pthread_detach(pthread_t th) noexcept {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    GreenThread* t = green() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_detach)(th);
    }
    if (t->detached_ || t->joining_) {
        return EINVAL;
    }
    t->detached_ = true;
    detail::release_task(t);
    return 0;
}

void pthread_exit(void* value) {
    if (green()) {
        if (GreenThread* g = current_green()) {
            if (&load_unwinder != nullptr) {
                load_unwinder();  // before the unwind, as glibc's pthread_exit
            }
            exit_green(g, value);
        }
        // The main thread: the process lives on until the last thread ends,
        // then exits with status 0 (as glibc's exit of the last thread).
        Hub& hub = Hub::current();
        if (!hub.in_hub_fiber() && hub.running()->task == nullptr) {
            grove::join_all();
            run_tsd_destructors(tls_tsd);
            std::exit(0);
        }
    }
    REAL(pthread_exit)(value);
    __builtin_unreachable();
}

// A thread_local object's destructor (libstdc++'s __cxa_thread_atexit
// lands here): one that belongs to a green thread with its own variables
// runs when that green thread ends; others (the main thread's, other OS
// threads', grove's own) go to glibc's list, which glibc runs when the OS
// thread ends and at exit(), on whatever variables are loaded then. So
// while green threads have their own, that list always ends with
// load_home_tls (glibc runs the newest first), registered again after each
// registration passed on: at an exit() from a green thread, it runs that
// thread's destructors (as exit() runs the caller's) and loads the main
// thread's variables back for the main thread's destructors.
int __cxa_thread_atexit_impl(void (*fn)(void*), void* obj, void* dso) noexcept {
    const bool images = green() && green_tls_images() != nullptr;
    if (images) {
        GreenThread* g = current_green();
        if (g != nullptr && g->tls_ != nullptr && in_green_tls(obj)) {
            // A library loaded with dlopen stays loaded until the
            // destructor has run, as glibc keeps it (its count of pending
            // destructors): pinned by a reference of our own.
            void* pin = nullptr;
            Dl_info where{};
            if (dladdr(dso, &where) != 0 && where.dli_fname != nullptr) {
                pin = ::dlopen(where.dli_fname, RTLD_NOW | RTLD_NOLOAD);
            }
            try {
                g->tls_dtors_.push_back({fn, obj, pin});
            } catch (...) {
                std::fputs("grove: out of memory registering a thread_local destructor\n", stderr);
                std::abort();
            }
            return 0;
        }
    }
    const int rc = real_thread_atexit(fn, obj, dso);
    if (images) {
        real_thread_atexit(load_home_tls, nullptr, &__dso_handle);
    }
    return rc;
}

pthread_t pthread_self(void) noexcept {
    if (mode() == kGreen) {
        if (GreenThread* g = current_green()) {
            return g->id();
        }
    }
    return REAL(pthread_self)();
}

int pthread_equal(pthread_t a, pthread_t b) noexcept {
    return a == b;
}

int pthread_setname_np(pthread_t th, const char* name) noexcept {
    GreenThread* t = green_objects() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_setname_np)(th, name);
    }
    const std::size_t len = std::strlen(name);
    if (len > 15) {
        return ERANGE;
    }
    std::memcpy(t->name_, name, len + 1);
    return 0;
}

int pthread_getname_np(pthread_t th, char* buf, size_t len) noexcept {
    GreenThread* t = green_objects() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_getname_np)(th, buf, len);
    }
    const std::size_t n = std::strlen(t->name_);
    if (len < n + 1) {
        return ERANGE;
    }
    std::memcpy(buf, t->name_, n + 1);
    return 0;
}

// A green thread's attributes: the real main thread's, with the fiber's own
// stack and detach state.
int pthread_getattr_np(pthread_t th, pthread_attr_t* attr) noexcept {
    GreenThread* t = green_objects() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_getattr_np)(th, attr);
    }
    const int e = REAL(pthread_getattr_np)(g_green_os_thread, attr);
    if (e != 0) {
        return e;
    }
    if (FiberCore* f = t->core_; f != nullptr && f->stack.base != nullptr) {
        pthread_attr_setstack(attr, f->stack.limit(), f->stack.usable());
        // Its own guard page, below the stack as glibc puts a thread's (the
        // main thread's attributes say 0, and Rust's runtime aborts a
        // thread that reports no guard page).
        pthread_attr_setguardsize(attr, f->stack.guarded ? detail::StackPool::page_size() : 0);
    }
    pthread_attr_setdetachstate(attr, t->detached_ ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    return 0;
}

// Calls about the OS thread: a green thread's id stands for the main thread.
#define GROVE_MAIN_THREAD_CALL(name, params, ...)                 \
    int name params noexcept {                                    \
        if (green_objects() && as_green(th) != nullptr) {         \
            th = g_green_os_thread;                                \
        }                                                         \
        return REAL(name)(th, ##__VA_ARGS__);                      \
    }
GROVE_MAIN_THREAD_CALL(pthread_getschedparam, (pthread_t th, int* policy, struct sched_param* p), policy, p)
GROVE_MAIN_THREAD_CALL(pthread_setschedparam, (pthread_t th, int policy, const struct sched_param* p), policy, p)
GROVE_MAIN_THREAD_CALL(pthread_setschedprio, (pthread_t th, int prio), prio)
GROVE_MAIN_THREAD_CALL(pthread_getcpuclockid, (pthread_t th, clockid_t* c), c)
GROVE_MAIN_THREAD_CALL(pthread_setaffinity_np, (pthread_t th, size_t n, const cpu_set_t* s), n, s)
GROVE_MAIN_THREAD_CALL(pthread_getaffinity_np, (pthread_t th, size_t n, cpu_set_t* s), n, s)
#undef GROVE_MAIN_THREAD_CALL

}  // extern "C"

namespace {

// glibc's own two signals, which its pthread_kill and pthread_sigqueue
// refuse before looking at the thread.
bool libc_internal_signal(int sig) noexcept {
    return sig == SIGRTMIN - 2 || sig == SIGRTMIN - 1;
}

// A green thread, or the main thread itself, signals the main thread (th,
// not green) with a signal the main thread queues (sends_to_thread): its
// handler is the main thread's to run, in its own context. (A plain fiber
// is part of the main thread: its signal runs where it is.)
bool to_main_thread(pthread_t th, int sig) noexcept {
    if (!green() || libc_internal_signal(sig) || th != REAL(pthread_self)()) {
        return false;
    }
    Hub* hub = Hub::current_if_any();
    return hub != nullptr && (current_green() != nullptr || hub->running() == hub->main_fiber()) &&
           sends_to_thread(nullptr, sig);
}

// Signal `sig` (not 0) for green thread t, still running, sent by
// `raise_here` to the OS thread the green threads share: for a signal
// whose action is the process's (the default, or ignored). Only t's wait
// is interrupted (EINTR, or a restart under SA_RESTART), as the kernel
// interrupts only the thread it is sent to; none if t is not waiting.
template <class Raise>
int signal_green(GreenThread* t, int sig, Raise&& raise_here) noexcept {
    if (t == current_green() || t->core_ == nullptr || sig <= 0 || sig >= 64) {
        return raise_here();
    }
    Hub* hub = t->core_->hub;
    const std::uint64_t before = Hub::signal_count.load(std::memory_order_acquire);
    hub->aim_signal(t->core_, sig);
    const int r = raise_here();
    if (Hub::signal_count.load(std::memory_order_acquire) == before) {
        hub->unaim_signal(t->core_, sig);  // ignored, or held back: no handler ran
    }
    return r;
}

}  // namespace

extern "C" {

// pthread_kill on a green thread: signal 0 probes it; an ended one (not
// joined yet) gets nothing and says 0, whatever the number, as glibc's.
int pthread_kill(pthread_t th, int sig) noexcept {
    if (GreenThread* f = foreign_green(th)) {
        return f->finished_ ? 0 : REAL(pthread_kill)(g_green_os_thread, sig);  // its handler runs there, in whatever runs
    }
    GreenThread* t = green() ? as_green(th) : nullptr;
    if (t == nullptr) {
        if (to_main_thread(th, sig)) {
            return send_to_thread(nullptr, sig, SI_TKILL, sigval{});
        }
        return REAL(pthread_kill)(th, sig);
    }
    if (libc_internal_signal(sig)) {
        return EINVAL;
    }
    if (sig == 0 || t->finished_) {
        return 0;
    }
    if (sends_to_thread(t, sig)) {
        return send_to_thread(t, sig, SI_TKILL, sigval{});
    }
    return signal_green(t, sig, [&] { return REAL(pthread_kill)(REAL(pthread_self)(), sig); });
}

// raise in a green thread, or in the main thread's own fiber: as
// pthread_kill of itself, so no other thread's wait sees it, and a signal
// it blocks waits for it alone.
int raise(int sig) noexcept {
    if (green() && g_masks.on) {
        GreenThread* g = current_green();
        if ((g != nullptr || Hub::current().running() == Hub::current().main_fiber()) && sends_to_thread(g, sig)) {
            const int e = send_to_thread(g, sig, SI_TKILL, sigval{});
            if (e != 0) {
                errno = e;
                return -1;
            }
            return 0;
        }
    }
    using Fn = int (*)(int);
    return GROVE_LIBC("raise", Fn)(sig);
}

// pthread_sigqueue likewise, with its value; an ended green thread: ESRCH,
// as glibc's.
int pthread_sigqueue(pthread_t th, int sig, const union sigval value) noexcept {
    if (GreenThread* f = foreign_green(th)) {
        return f->finished_ ? ESRCH : REAL(pthread_sigqueue)(g_green_os_thread, sig, value);
    }
    GreenThread* t = green() ? as_green(th) : nullptr;
    if (t == nullptr) {
        if (to_main_thread(th, sig)) {
            return send_to_thread(nullptr, sig, SI_QUEUE, value);
        }
        return REAL(pthread_sigqueue)(th, sig, value);
    }
    if (libc_internal_signal(sig)) {
        return EINVAL;
    }
    if (t->finished_) {
        return ESRCH;
    }
    if (sig == 0) {
        return 0;
    }
    if (sends_to_thread(t, sig)) {
        return send_to_thread(t, sig, SI_QUEUE, value);
    }
    return signal_green(t, sig, [&] { return REAL(pthread_sigqueue)(REAL(pthread_self)(), sig, value); });
}

// ---- cancellation ---------------------------------------------------------------------

int pthread_cancel(pthread_t th) {
    if (foreign_green(th) != nullptr) {
        return ESRCH;  // no wait across OS threads for a green thread's end
    }
    GreenThread* t = green() ? as_green(th) : nullptr;
    if (t == nullptr) {
        return REAL(pthread_cancel)(th);
    }
    if (t->finished_) {
        return 0;
    }
    if (&load_unwinder != nullptr) {
        load_unwinder();  // here, as glibc's: the target's unwind may begin in a signal handler
    }
    t->cancel_pending_ = true;
    if (!t->cancel_disabled_ && (t->in_cancel_wait_ || t->in_shim_wait_) && t->core_ != nullptr) {
        t->core_->hub->kill(t->core_);
    }
    return 0;
}

void pthread_testcancel(void) {
    if (green() && current_green() != nullptr) {
        cancel_point();
        return;
    }
    REAL(pthread_testcancel)();
}

int pthread_setcancelstate(int state, int* old) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(pthread_setcancelstate)(state, old);
    }
    if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) {
        return EINVAL;
    }
    if (old != nullptr) {
        *old = g->cancel_disabled_ ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
    }
    g->cancel_disabled_ = state == PTHREAD_CANCEL_DISABLE;
    return 0;
}

// C cleanup handlers of code built without -fexceptions (pthread.h's
// pthread_cleanup_push when __EXCEPTIONS is not defined): a green thread's
// buffers are chained here, newest first; exit_green runs them.
void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(__pthread_register_cancel)(buf);
    }
    prev_buffer(buf) = g->cleanup_;
    g->cleanup_ = buf;
}

void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(__pthread_unregister_cancel)(buf);
    }
    g->cleanup_ = prev_buffer(buf);
}

// The _defer_np forms also switch to deferred cancellation and back, which
// green threads always have.
void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(__pthread_register_cancel_defer)(buf);
    }
    prev_buffer(buf) = g->cleanup_;
    g->cleanup_ = buf;
}

void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(__pthread_unregister_cancel_restore)(buf);
    }
    g->cleanup_ = prev_buffer(buf);
}

// A cleanup routine has run during an exit: on to the next one, or the
// rest of the unwind.
void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr || !g->exiting_) {
        REAL(__pthread_unwind_next)(buf);
        __builtin_unreachable();
    }
    continue_exit(g);
}

// Asynchronous cancellation is accepted but acts as deferred.
int pthread_setcanceltype(int type, int* old) {
    GreenThread* g = green() ? current_green() : nullptr;
    if (g == nullptr) {
        return REAL(pthread_setcanceltype)(type, old);
    }
    if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) {
        return EINVAL;
    }
    if (old != nullptr) {
        *old = PTHREAD_CANCEL_DEFERRED;
    }
    return 0;
}

// ---- thread-specific data ----------------------------------------------------------------

int pthread_key_create(pthread_key_t* key, void (*dtor)(void*)) noexcept {
    if (mode() != kGreen) {
        return REAL(pthread_key_create)(key, dtor);
    }
    for (unsigned i = 0; i < PTHREAD_KEYS_MAX; ++i) {
        if ((g_keys[i].seq & 1) == 0) {
            g_keys[i].dtor = dtor;
            ++g_keys[i].seq;
            *key = i;
            return 0;
        }
    }
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) noexcept {
    if (mode() != kGreen) {
        return REAL(pthread_key_delete)(key);
    }
    if (key >= PTHREAD_KEYS_MAX || (g_keys[key].seq & 1) == 0) {
        return EINVAL;
    }
    ++g_keys[key].seq;
    return 0;
}

void* pthread_getspecific(pthread_key_t key) noexcept {
    if (mode() != kGreen) {
        return REAL(pthread_getspecific)(key);
    }
    if (key >= PTHREAD_KEYS_MAX) {
        return nullptr;
    }
    const TsdSlot* s = my_tsd().at(key);
    if (s == nullptr || s->seq != g_keys[key].seq) {
        return nullptr;
    }
    return s->value;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
    if (mode() != kGreen) {
        return REAL(pthread_setspecific)(key, value);
    }
    if (key >= PTHREAD_KEYS_MAX || (g_keys[key].seq & 1) == 0) {
        return EINVAL;
    }
    Tsd& tsd = my_tsd();
    TsdSlot* s = tsd.at(key);
    if (s == nullptr) {
        unsigned n = tsd.n_more == 0 ? kTsdFirst : tsd.n_more;
        while (kTsdFirst + n <= key) {
            n *= 2;
        }
        auto* more = static_cast<TsdSlot*>(std::realloc(tsd.more, n * sizeof(TsdSlot)));
        if (more == nullptr) {
            return ENOMEM;
        }
        std::memset(more + tsd.n_more, 0, (n - tsd.n_more) * sizeof(TsdSlot));
        tsd.more = more;
        tsd.n_more = n;
        s = tsd.at(key);
    }
    *s = TsdSlot{g_keys[key].seq, const_cast<void*>(value)};
    if (value != nullptr && !tls_tsd_hooked && &tsd == &tls_tsd && !on_main_thread()) [[unlikely]] {
        hook_os_tsd();
    }
    return 0;
}

}  // extern "C"

namespace {
// Fibers waiting for some pthread_once routine to finish; each looks again.
constinit NodeList g_once_waiters{};
constexpr int kOnceInProgress = 1;
constexpr int kOnceDone = 2;  // glibc's __PTHREAD_ONCE_DONE: libc agrees
}  // namespace

extern "C" {

int pthread_once(pthread_once_t* once, void (*init)(void)) {
    if (!green()) {
        return REAL(pthread_once)(once, init);
    }
    // Another OS thread may run the same once with libc's own: the state
    // is claimed with a compare-and-swap as libc's is, libc's waiters are
    // woken with a futex wake, and a routine libc runs is looked at again
    // after a nap (it wakes only futex waiters).
    Nanos nap = 1'000'000;
    for (;;) {
        int v = __atomic_load_n(once, __ATOMIC_ACQUIRE);
        if ((v & kOnceDone) != 0) {
            return 0;
        }
        if ((v & kOnceInProgress) != 0) {
            WaitNode n;
            push(g_once_waiters, n);
            const WakeReason why = Hub::current().park(n.w, detail::now_ns() + nap, false);
            remove(g_once_waiters, n);
            if (why == WakeReason::timed_out) {
                nap = std::min<Nanos>(nap * 2, 25'000'000);
            }
            continue;
        }
        if (__atomic_compare_exchange_n(once, &v, kOnceInProgress, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
            break;
        }
    }
    auto finish = [once](int state) {
        __atomic_store_n(once, state, __ATOMIC_RELEASE);
        while (WaitNode* n = pop_live(g_once_waiters)) {
            detail::unpark(n->w, WakeReason::ready);
        }
        // A once completes once per object: a system call here is cheap.
        REAL(syscall)(SYS_futex, once, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
    };
    try {
        init();
    } catch (...) {
        finish(0);  // cancelled or thrown: the next caller runs it
        throw;
    }
    finish(kOnceDone);
    return 0;
}

// ---- mutex ----------------------------------------------------------------------------------

int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) noexcept {
    if (!green_objects()) {
        return REAL(pthread_mutex_init)(m, attr);
    }
    int type = PTHREAD_MUTEX_DEFAULT;
    int pshared = PTHREAD_PROCESS_PRIVATE;
    int robust = PTHREAD_MUTEX_STALLED;
    if (attr != nullptr) {
        pthread_mutexattr_gettype(attr, &type);
        pthread_mutexattr_getpshared(attr, &pshared);
        pthread_mutexattr_getrobust(attr, &robust);
    }
    if (pshared == PTHREAD_PROCESS_SHARED) {
        return REAL(pthread_mutex_init)(m, attr);
    }
    std::memset(m, 0, sizeof *m);
    // Robust: accepted; a green thread cannot die holding it except by
    // pthread_exit/cancel, and EOWNERDEAD is not reported (README).
    gm(m)->kind = (type & 3) | (robust == PTHREAD_MUTEX_ROBUST ? 16 : 0);
    return 0;
}

int pthread_mutex_destroy(pthread_mutex_t* m) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        return REAL(pthread_mutex_destroy)(m);
    }
    return gm(m)->owner != 0 ? EBUSY : 0;
}

int pthread_mutex_lock(pthread_mutex_t* m) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        if (Hub* hub = green_objects() ? shared_object_hub() : nullptr) {
            return shared_mutex_lock(hub, m, kNoDeadline, false);
        }
        return REAL(pthread_mutex_lock)(m);
    }
    return mutex_lock(gm(m), false, CLOCK_REALTIME, nullptr, true);
}

int pthread_mutex_trylock(pthread_mutex_t* m) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        const int r = REAL(pthread_mutex_trylock)(m);
        if (r == 0 && green_objects() && green()) {
            note_shared_owner(m);
        }
        return r;
    }
    return mutex_lock(gm(m), true, CLOCK_REALTIME, nullptr, true);
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abs) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        if (Hub* hub = green_objects() ? shared_object_hub() : nullptr) {
            const bool bad = !valid_ns(abs);
            return shared_mutex_lock(hub, m, bad ? kNoDeadline : deadline_from(CLOCK_REALTIME, abs), bad);
        }
        return REAL(pthread_mutex_timedlock)(m, abs);
    }
    return mutex_lock(gm(m), false, CLOCK_REALTIME, abs, true);
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        if (Hub* hub = green_objects() && supported_clock(clock) ? shared_object_hub() : nullptr) {
            const bool bad = !valid_ns(abs);
            return shared_mutex_lock(hub, m, bad ? kNoDeadline : deadline_from(clock, abs), bad);
        }
        return REAL(pthread_mutex_clocklock)(m, clock, abs);
    }
    if (!supported_clock(clock)) {
        return EINVAL;
    }
    return mutex_lock(gm(m), false, clock, abs, true);
}

int pthread_mutex_unlock(pthread_mutex_t* m) noexcept {
    if (!green_objects()) {
        return REAL(pthread_mutex_unlock)(m);
    }
    return any_mutex_unlock(m);
}

int pthread_mutex_consistent(pthread_mutex_t* m) noexcept {
    if (!green_objects() || mutex_is_real(m)) {
        return REAL(pthread_mutex_consistent)(m);
    }
    return EINVAL;  // never inconsistent: EOWNERDEAD is not reported
}

// ---- condition variables -------------------------------------------------------------------

int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* attr) noexcept {
    if (!green_objects()) {
        return REAL(pthread_cond_init)(c, attr);
    }
    int pshared = PTHREAD_PROCESS_PRIVATE;
    clockid_t clock = CLOCK_REALTIME;
    if (attr != nullptr) {
        pthread_condattr_getpshared(attr, &pshared);
        pthread_condattr_getclock(attr, &clock);
    }
    if (pshared == PTHREAD_PROCESS_SHARED) {
        return REAL(pthread_cond_init)(c, attr);
    }
    std::memset(c, 0, sizeof *c);
    gc(c)->wrefs = clock == CLOCK_MONOTONIC ? 2 : 0;
    return 0;
}

int pthread_cond_destroy(pthread_cond_t* c) noexcept {
    if (!green_objects() || cond_is_real(c)) {
        return REAL(pthread_cond_destroy)(c);
    }
    return 0;
}

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
    if (!green_objects() || cond_is_real(c)) {
        if (Hub* hub = green_objects() ? shared_object_hub() : nullptr) {
            return shared_cond_wait(hub, c, m, kNoDeadline);
        }
        return REAL(pthread_cond_wait)(c, m);
    }
    return cond_wait(c, m, kNoDeadline, CLOCK_REALTIME, nullptr);
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abs) {
    if (!green_objects() || cond_is_real(c)) {
        if (Hub* hub = green_objects() && valid_ns(abs) ? shared_object_hub() : nullptr) {
            const clockid_t clock = (gc(c)->wrefs & 2) != 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
            return shared_cond_wait(hub, c, m, deadline_from(clock, abs));
        }
        return REAL(pthread_cond_timedwait)(c, m, abs);
    }
    if (!valid_ns(abs)) {
        return EINVAL;
    }
    const clockid_t clock = (gc(c)->wrefs & 2) != 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    return cond_wait(c, m, deadline_from(clock, abs), clock, abs);
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) {
    if (!green_objects() || cond_is_real(c)) {
        if (Hub* hub = green_objects() && supported_clock(clock) && valid_ns(abs) ? shared_object_hub() : nullptr) {
            return shared_cond_wait(hub, c, m, deadline_from(clock, abs));
        }
        return REAL(pthread_cond_clockwait)(c, m, clock, abs);
    }
    if (!supported_clock(clock) || !valid_ns(abs)) {
        return EINVAL;
    }
    return cond_wait(c, m, deadline_from(clock, abs), clock, abs);
}

int pthread_cond_signal(pthread_cond_t* c) noexcept {
    if (!green_objects() || cond_is_real(c)) {
        const int r = REAL(pthread_cond_signal)(c);
        if (r == 0) {
            libc_object_changed(c, false);  // a green waiter of it too
        }
        return r;
    }
    cond_signal(gc(c), false);
    return 0;
}

int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
    if (!green_objects() || cond_is_real(c)) {
        const int r = REAL(pthread_cond_broadcast)(c);
        if (r == 0) {
            libc_object_changed(c, true);
        }
        return r;
    }
    cond_signal(gc(c), true);
    return 0;
}

// ---- rwlocks -----------------------------------------------------------------------------

int pthread_rwlock_init(pthread_rwlock_t* r, const pthread_rwlockattr_t* attr) noexcept {
    if (!green_objects()) {
        return REAL(pthread_rwlock_init)(r, attr);
    }
    int pshared = PTHREAD_PROCESS_PRIVATE;
    int kind = PTHREAD_RWLOCK_PREFER_READER_NP;
    if (attr != nullptr) {
        pthread_rwlockattr_getpshared(attr, &pshared);
        pthread_rwlockattr_getkind_np(attr, &kind);
    }
    if (pshared == PTHREAD_PROCESS_SHARED) {
        return REAL(pthread_rwlock_init)(r, attr);
    }
    std::memset(r, 0, sizeof *r);
    gr(r)->flags = static_cast<unsigned>(kind);
    return 0;
}

int pthread_rwlock_destroy(pthread_rwlock_t* r) noexcept {
    if (!green_objects() || rwlock_is_real(r)) {
        return REAL(pthread_rwlock_destroy)(r);
    }
    return 0;
}

#define GROVE_RWLOCK_CALL(name, params, args, write, try_only, clock, abs) \
    int name params noexcept {                                              \
        if (!green_objects() || rwlock_is_real(r)) {                                \
            return REAL(name) args;                                        \
        }                                                                   \
        return rwlock_lock(gr(r), write, try_only, clock, abs);             \
    }
GROVE_RWLOCK_CALL(pthread_rwlock_rdlock, (pthread_rwlock_t* r), (r), false, false, CLOCK_REALTIME, nullptr)
GROVE_RWLOCK_CALL(pthread_rwlock_wrlock, (pthread_rwlock_t* r), (r), true, false, CLOCK_REALTIME, nullptr)
GROVE_RWLOCK_CALL(pthread_rwlock_tryrdlock, (pthread_rwlock_t* r), (r), false, true, CLOCK_REALTIME, nullptr)
GROVE_RWLOCK_CALL(pthread_rwlock_trywrlock, (pthread_rwlock_t* r), (r), true, true, CLOCK_REALTIME, nullptr)
GROVE_RWLOCK_CALL(pthread_rwlock_timedrdlock, (pthread_rwlock_t* r, const struct timespec* a), (r, a), false,
                  false, CLOCK_REALTIME, a)
GROVE_RWLOCK_CALL(pthread_rwlock_timedwrlock, (pthread_rwlock_t* r, const struct timespec* a), (r, a), true,
                  false, CLOCK_REALTIME, a)
#undef GROVE_RWLOCK_CALL

int pthread_rwlock_clockrdlock(pthread_rwlock_t* r, clockid_t clock, const struct timespec* a) noexcept {
    if (!green_objects() || rwlock_is_real(r)) {
        return REAL(pthread_rwlock_clockrdlock)(r, clock, a);
    }
    return supported_clock(clock) ? rwlock_lock(gr(r), false, false, clock, a) : EINVAL;
}

int pthread_rwlock_clockwrlock(pthread_rwlock_t* r, clockid_t clock, const struct timespec* a) noexcept {
    if (!green_objects() || rwlock_is_real(r)) {
        return REAL(pthread_rwlock_clockwrlock)(r, clock, a);
    }
    return supported_clock(clock) ? rwlock_lock(gr(r), true, false, clock, a) : EINVAL;
}

int pthread_rwlock_unlock(pthread_rwlock_t* r) noexcept {
    if (!green_objects() || rwlock_is_real(r)) {
        return REAL(pthread_rwlock_unlock)(r);
    }
    return rwlock_unlock(gr(r));
}

// ---- barriers ----------------------------------------------------------------------------

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) noexcept {
    if (!green_objects()) {
        return REAL(pthread_barrier_init)(b, attr, count);
    }
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (attr != nullptr) {
        pthread_barrierattr_getpshared(attr, &pshared);
    }
    std::memset(b, 0, sizeof *b);
    if (pshared == PTHREAD_PROCESS_SHARED) {
        return REAL(pthread_barrier_init)(b, attr, count);
    }
    if (count == 0 || count > INT_MAX) {
        return EINVAL;
    }
    gb(b)->count = count;
    gb(b)->magic = kBarrierMagic;
    return 0;
}

int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
    if (!green_objects() || gb(b)->magic != kBarrierMagic) {
        return REAL(pthread_barrier_destroy)(b);
    }
    if (gb(b)->arrived != 0) {
        return EBUSY;
    }
    gb(b)->magic = 0;
    return 0;
}

int pthread_barrier_wait(pthread_barrier_t* bar) noexcept {
    if (!green_objects() || gb(bar)->magic != kBarrierMagic) {
        return REAL(pthread_barrier_wait)(bar);
    }
    GBarrier* b = gb(bar);
    const bool here = on_main_thread();
    // A green arrival that is not the last waits: the thread's first wait
    // makes its hub, outside the lock.
    Hub* hub = here && b->count > 1 ? &Hub::current() : nullptr;
    Woken woken;
    Spin spin(b->lock);
    if (++b->arrived == b->count) {
        b->arrived = 0;
        take_all(b->waiters, woken);
        spin.unlock();
        wake(woken);
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    // Not a cancellation point; nothing but the last arrival ends it.
    WaitNode n;
    if (!here) {
        os_node(n);
        push(b->waiters, n);
        spin.unlock();
        os_block_through_signals(n, CLOCK_MONOTONIC, nullptr);
        return 0;
    }
    green_node(n, *hub);
    push(b->waiters, n);
    spin.unlock();
    bool interruptible = true;
    for (;;) {
        const WakeReason why = hub->park(n.w, kNoDeadline, interruptible);
        if (why == WakeReason::ready) {
            return 0;
        }
        spin.lock();
        const bool waiting = n.linked;
        spin.unlock();
        if (!waiting) {
            settle(n);
            return 0;
        }
        detail::defer_interruption(n.w);
        interruptible = false;
    }
}

// ---- spin locks: yield instead of spinning -------------------------------------------------

int pthread_spin_init(pthread_spinlock_t* l, int pshared) noexcept {
    if (!green()) {
        return REAL(pthread_spin_init)(l, pshared);
    }
    *l = 0;
    return 0;
}

int pthread_spin_destroy(pthread_spinlock_t* l) noexcept {
    if (!green()) {
        return REAL(pthread_spin_destroy)(l);
    }
    return 0;
}

int pthread_spin_lock(pthread_spinlock_t* l) noexcept {
    if (!green()) {
        return REAL(pthread_spin_lock)(l);
    }
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0) {
        Hub& hub = Hub::current();
        if (hub.in_hub_fiber()) {
            sched_yield();
        } else {
            hub.yield_now();
        }
    }
    return 0;
}

int pthread_spin_trylock(pthread_spinlock_t* l) noexcept {
    if (!green()) {
        return REAL(pthread_spin_trylock)(l);
    }
    if (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0) {
        return 0;
    }
    if (Hub* h = Hub::current_if_any(); h != nullptr && !h->in_hub_fiber()) {
        h->count_call();  // a spin on trylock lets the holder run now and then
    }
    return EBUSY;
}

int pthread_spin_unlock(pthread_spinlock_t* l) noexcept {
    if (!green()) {
        return REAL(pthread_spin_unlock)(l);
    }
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
    return 0;
}

// ---- unnamed semaphores ----------------------------------------------------------------------

int sem_init(sem_t* s, int pshared, unsigned value) noexcept {
    if (!green_objects() || pshared != 0) {
        if (mode() == kGreen) {
            std::memset(s, 0, sizeof *s);  // no stale marker of ours
        }
        return REAL(sem_init)(s, pshared, value);
    }
    if (value > SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    std::memset(s, 0, sizeof *s);
    gs(s)->value = value;
    gs(s)->magic = kSemMagic;
    return 0;
}

int sem_destroy(sem_t* s) noexcept {
    if (!sem_is_green(s)) {
        return REAL(sem_destroy)(s);
    }
    gs(s)->magic = 0;
    return 0;
}

int sem_wait(sem_t* s) {
    if (!sem_is_green(s)) {
        if (Hub* hub = shared_sem_hub()) {
            return shared_sem_wait(hub, s, false, kNoDeadline);
        }
        return REAL(sem_wait)(s);
    }
    return on_main_thread() ? sem_wait_green(gs(s), kNoDeadline) : sem_wait_os(gs(s), CLOCK_REALTIME, nullptr);
}

int sem_trywait(sem_t* s) noexcept {
    if (!sem_is_green(s)) {
        return REAL(sem_trywait)(s);
    }
    GSem* g = gs(s);
    Spin spin(g->lock);
    if (g->value > 0) {
        --g->value;
        return 0;
    }
    errno = EAGAIN;
    return -1;
}

// A timed wait: EINVAL for a bad clock or time, as libc checks them first.
int sem_wait_until(sem_t* s, clockid_t clock, const struct timespec* abs) {
    if (!supported_clock(clock) || !valid_ns(abs)) {
        errno = EINVAL;
        return -1;
    }
    if (Hub* hub = sem_is_green(s) ? nullptr : shared_sem_hub()) {
        return shared_sem_wait(hub, s, true, deadline_from(clock, abs));
    }
    return on_main_thread() ? sem_wait_green(gs(s), deadline_from(clock, abs)) : sem_wait_os(gs(s), clock, abs);
}

int sem_timedwait(sem_t* s, const struct timespec* abs) {
    if (!sem_is_green(s) && shared_sem_hub() == nullptr) {
        return REAL(sem_timedwait)(s, abs);
    }
    return sem_wait_until(s, CLOCK_REALTIME, abs);
}

int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abs) {
    if (!sem_is_green(s) && shared_sem_hub() == nullptr) {
        return REAL(sem_clockwait)(s, clock, abs);
    }
    return sem_wait_until(s, clock, abs);
}

int sem_post(sem_t* s) noexcept {
    if (!sem_is_green(s)) {
        const int r = REAL(sem_post)(s);
        if (r == 0) {
            libc_object_changed(s, false);
        }
        return r;
    }
    return sem_put(gs(s));
}

int sem_getvalue(sem_t* s, int* value) noexcept {
    if (!sem_is_green(s)) {
        return REAL(sem_getvalue)(s, value);
    }
    *value = static_cast<int>(__atomic_load_n(&gs(s)->value, __ATOMIC_RELAXED));
    return 0;
}

// ---- futex through syscall(): libstdc++'s atomic waits and futures -------------------------

long syscall(long number, ...) noexcept {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (long& x : a) {
        x = va_arg(ap, long);
    }
    va_end(ap);
    if (number == SYS_futex && green_objects() && !on_main_thread()) {
        // Another OS thread's wake reaches the green threads' emulated
        // waits as well as the kernel's.
        const int op = static_cast<int>(a[1]) & FUTEX_CMD_MASK;
        if ((op == FUTEX_WAKE || op == FUTEX_WAKE_BITSET) && a[2] > 0) {
            const auto bits = op == FUTEX_WAKE ? ~0u : static_cast<std::uint32_t>(a[5]);
            const auto val = static_cast<std::uint32_t>(a[2]);
            if (bits != 0) {
                const long mine = futex_wake(reinterpret_cast<std::uint32_t*>(a[0]), static_cast<int>(std::min<std::uint32_t>(val, INT_MAX)), bits);
                if (mine >= static_cast<long>(val)) {
                    return mine;
                }
                const long theirs = REAL(syscall)(number, a[0], a[1], val - mine, a[3], a[4], a[5]);
                return theirs < 0 ? (mine > 0 ? mine : theirs) : mine + theirs;
            }
        }
    }
    if (number == SYS_futex && green()) {
        Hub* hub = Hub::current_if_any();
        if (hub != nullptr && !hub->in_hub_fiber()) {
            auto* addr = reinterpret_cast<std::uint32_t*>(a[0]);
            const int op = static_cast<int>(a[1]) & FUTEX_CMD_MASK;
            const bool realtime = (a[1] & FUTEX_CLOCK_REALTIME) != 0;
            const auto val = static_cast<std::uint32_t>(a[2]);
            const auto* ts = reinterpret_cast<const struct timespec*>(a[3]);
            switch (op) {
                case FUTEX_WAIT:
                case FUTEX_WAIT_BITSET: {
                    Nanos deadline = kNoDeadline;
                    if (ts != nullptr) {
                        if (!valid_ns(ts) || ts->tv_sec < 0) {
                            errno = EINVAL;
                            return -1;
                        }
                        deadline = op == FUTEX_WAIT
                                       ? detail::now_ns() + ts->tv_sec * kSecond + ts->tv_nsec
                                       : deadline_from(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, ts);
                    }
                    const auto bits = op == FUTEX_WAIT ? ~0u : static_cast<std::uint32_t>(a[5]);
                    if (bits == 0) {
                        errno = EINVAL;
                        return -1;
                    }
                    return futex_wait(addr, val, deadline, bits);
                }
                case FUTEX_WAKE:
                case FUTEX_WAKE_BITSET: {
                    const auto bits = op == FUTEX_WAKE ? ~0u : static_cast<std::uint32_t>(a[5]);
                    // Also wake real waiters: another OS thread may sleep there.
                    const long mine = futex_wake(addr, static_cast<int>(val), bits);
                    if (mine >= static_cast<long>(val)) {
                        return mine;
                    }
                    const long theirs = REAL(syscall)(number, a[0], a[1], val - mine, a[3], a[4], a[5]);
                    return theirs < 0 ? mine : mine + theirs;
                }
                default:
                    break;
            }
        }
    }
    return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

}  // extern "C"

#if !defined(__x86_64__)
// Elsewhere only this file's own cancellation points act (see above).
bool grove::shim::cancel_at_entry() noexcept {
    return false;
}
#endif

void grove::shim::handler_begin() noexcept {
    if (on_main_thread()) {
        ++g_handler_depth;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    }
}

void grove::shim::handler_end() noexcept {
    if (on_main_thread()) {
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        --g_handler_depth;
    }
}

bool grove::shim::in_os_spin() noexcept {
    return os_spin_held != 0 && !on_main_thread();
}

void grove::shim::os_spin_deferred(void (*send)() noexcept) noexcept {
    g_os_send_deferred = send;
    os_spin_pending = true;
}

void grove::shim::sync_fork_child() noexcept {
    ++g_fork_gen;
    g_forked = true;
}

bool grove::shim::in_spin_here() noexcept {
    return g_spin_held != 0 && on_main_thread();
}

void grove::shim::spin_deferred(void (*send)() noexcept) noexcept {
    g_spin_send_deferred = send;
    g_spin_deferred = true;
}

// The hub: one per OS thread, created on first use. It owns the run queue,
// the timers, the poller and the fibers' runtime records, and implements
// park/unpark (include/grove/detail/wait.hpp), the one waiting mechanism.
//
// Invariants (asserted where they are cheap):
// 1. A fiber is exactly one of running, ready (in run_queue_), parked (one
//    Waiter, FiberCore::waiter), or dead. Only the running fiber touches the
//    hub's queues outside of unpark().
// 2. A switch goes straight from the parking fiber to the next ready one;
//    the hub fiber runs only when the queue is empty, or every kPollEvery
//    switches so that a loop of yields cannot starve timers and I/O.
// 3. Only the hub fiber calls Poller::wait and Ring::enter; it never parks.
//    With a ring, the thread blocks in the ring alone (epoll is watched
//    from it).
// 4. Nothing on the switch path allocates or makes a syscall. errno is
//    saved and restored per fiber across each switch.
// 5. A dead fiber's stack and record are recycled by whoever runs next (it
//    cannot free the stack it is still standing on).
#pragma once

#include <grove/detail/wait.hpp>
#include <grove/fiber.hpp>
#include <grove/timeout.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "context/stack.hpp"
#include "context/switch.hpp"
#include "hub/poller.hpp"
#include "hub/ring.hpp"
#include "hub/timer_heap.hpp"

#define GROVE_ASSERT(cond, msg)                            \
    do {                                                   \
        if (!(cond)) [[unlikely]] {                        \
            ::grove::detail::assert_fail(#cond, msg, __FILE__, __LINE__); \
        }                                                  \
    } while (0)

namespace grove::detail {

[[noreturn]] void assert_fail(const char* cond, const char* msg, const char* file, int line) noexcept;

class Hub;

// This thread's hub (null before first use). initial-exec: one load, no
// call into the TLS resolver, on the switch path.
extern constinit __attribute__((tls_model("initial-exec"))) thread_local Hub* tls_hub;

// Fd lives: a layer that sees every number created and closed process-wide
// (the shim's fd table) counts the lives of each number and tells the hubs
// through this function, which gives a number's current life. Each hub then
// recognises a state it kept from an earlier life of the number, closed in
// another thread or by a call it never saw, and forgets it rather than wait
// on a registration the kernel has dropped. Unset (the fiber API alone),
// every number has life 0. Set once, before hubs use fds.
using FdLifeFn = std::uint32_t (*)(int fd) noexcept;
extern std::atomic<FdLifeFn> fd_life_fn;
inline void set_fd_life(FdLifeFn fn) noexcept {
    fd_life_fn.store(fn, std::memory_order_release);
}

enum class FiberState : std::uint8_t {
    ready,    // in the run queue (owner: the hub)
    running,  // Hub::current_ (owner: itself)
    parked,   // one Waiter links it (owner: whoever wakes that waiter)
    dead,     // ended; recycled at the next switch
};

struct FiberCore {
    Context ctx = nullptr;          // saved context while not running
    FiberCore* run_next = nullptr;  // run queue link
    Hub* hub = nullptr;
    TaskBase* task = nullptr;       // null for the main and hub fibers
    Waiter* waiter = nullptr;       // while parked
    Timeout* timeouts = nullptr;    // innermost live grove::Timeout scope
    Stack stack;                    // none for the main fiber
    SanitizerState san;
    WaitList joiners;               // fibers in join()/wait() on this one
    Waiter start;                   // spawn_later: the timer before the start
    FiberId id = 0;
    int saved_errno = 0;
    FiberState state = FiberState::ready;
    bool started = false;
    bool kill_pending = false;      // FiberExit due at the next suspension
    // A kill or Timeout that a POSIX-style call (grove::io, the shim) has
    // reported as ECANCELED/ETIMEDOUT/EINTR. C code that retries such a call
    // parks normally (no busy loop); the next C++ suspension point throws it.
    bool kill_deferred = false;
    const Timeout* timeout_deferred = nullptr;
    bool shielded = false;          // parked with interruptible = false
    bool signal_interruptible = false;  // in an interposed call: a signal wakes it
    std::uint64_t signal_epoch = 0;     // Hub::signal_count when that call began
    ListHook signal_hook;           // in Hub::signal_waiters_ while so parked
    unsigned no_interrupt = 0;      // >0: every park is uninterruptible
    bool signals_sent = false;      // has signals of its own to run (Hub::poke)
    std::size_t stack_size = 0;     // asked for at spawn (0: default)
    void* tls = nullptr;            // its own thread-local image (Hub::TlsImages); null: the thread's
    const char* name() const noexcept;
};

// FIFO of ready fibers, linked through FiberCore::run_next.
class RunQueue {
public:
    bool empty() const noexcept { return head_ == nullptr; }
    void push(FiberCore* f) noexcept {
        f->run_next = nullptr;
        if (tail_ != nullptr) {
            tail_->run_next = f;
        } else {
            head_ = f;
        }
        tail_ = f;
    }
    FiberCore* pop() noexcept {
        FiberCore* f = head_;
        if (f != nullptr) {
            head_ = f->run_next;
            if (head_ == nullptr) {
                tail_ = nullptr;
            }
        }
        return f;
    }

private:
    FiberCore* head_ = nullptr;
    FiberCore* tail_ = nullptr;
};

// Per-fd state, kept by fd number and reused: type-stable, never freed while
// the hub lives, so a stale pointer can never reach freed memory.
struct FdState {
    WaitList readers;
    WaitList writers;
    std::uint32_t seq = 0;       // bumped at close; events carry it
    bool registered = false;     // in the poller (one epoll_ctl per lifetime)
    bool nonblock = false;       // the io layer set O_NONBLOCK on it
    // Read readiness hint. The poller sets it on every readable edge, even
    // with no reader waiting; a reader clears it when a stream socket reads
    // short (its queue is then empty) or says EAGAIN. While it is clear the
    // next read waits first instead of trying a read that can only say
    // EAGAIN: any data arriving after the drain raises a new edge, which
    // sets it again (edge-triggered, so nothing is missed).
    bool readable = true;
    // A hang-up or error was reported: reads now end at once (EOF, error)
    // with no further edge, so the hint must never hold them back again.
    bool hung_up = false;
    std::int8_t stream = -1;     // SOCK_STREAM socket? -1 not yet known
    // Which life of the number this state belongs to, as the layer above
    // counts them (set_fd_life): a number closed and reused where this hub
    // did not see it (another thread, close_range) is told apart by it.
    std::uint32_t life = 0;
    ListHook ring_ops;           // RingOp::fd_hook of its operations in the ring
};

class Hub {
public:
    // This thread's hub, created on first use.
    static Hub& current() noexcept {
        Hub* h = tls_hub;
        return h != nullptr ? *h : create();
    }
    static Hub* current_if_any() noexcept { return tls_hub; }

    FiberCore* running() const noexcept { return current_; }
    FiberCore* main_fiber() noexcept { return &main_fiber_; }
    bool in_hub_fiber() const noexcept { return current_ == &hub_fiber_; }

    // --- fibers
    FiberCore* new_fiber(TaskBase* t, const SpawnOptions& opts) noexcept;
    void make_ready(FiberCore* f) noexcept {
        f->state = FiberState::ready;
        run_queue_.push(f);
    }
    // Puts the running fiber at the back of the run queue and runs the next.
    void yield_now() noexcept {
        make_ready(current_);
        switch_to(next_to_run());
        if (current_->signals_sent) [[unlikely]] {
            run_sent(current_);
        }
    }
    // No preemption, but no starvation by calls that never wait either:
    // the shim counts the calls it makes that could have waited; a fiber
    // that makes kTurnCalls of them with no switch in between (a loop on
    // an fd that is always ready) lets the others have a turn, the hub
    // looking at fds and timers first, then goes on.
    void count_call() noexcept {
        if (++calls_ >= kTurnCalls) [[unlikely]] {
            take_turn();
        }
    }
    // The running fiber (never the hub's) goes to the back of the run
    // queue, and the hub makes a turn of its loop.
    void take_turn() noexcept {
        make_ready(current_);
        switch_to(&hub_fiber_);
        if (current_->signals_sent) [[unlikely]] {
            run_sent(current_);
        }
    }
    void kill(FiberCore* f) noexcept;
    std::size_t live_fibers() const noexcept { return live_; }
    void wait_quiet();
    // spawn_later: f is parked on its own start timer until `at`.
    void start_at(FiberCore* f, Nanos at) noexcept;

    // --- park / unpark (see detail/wait.hpp)
    WakeReason park(Waiter& w, Nanos deadline, bool interruptible) noexcept;
    void unpark(Waiter& w, WakeReason why) noexcept;

    // --- fds
    FdState& fd_state(int fd);
    FdState* fd_state_if_any(int fd) noexcept {
        return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? fds_[fd].get() : nullptr;
    }
    // Waits until fd is readable (want_write false) or writable. Returns
    // ready, timed_out, scope_timeout, killed, closed; on registration
    // failure, none with errno set.
    WakeReason wait_fd(int fd, bool want_write, Nanos deadline) noexcept;
    // fd is about to be closed: wakes its waiters with `closed` and forgets
    // its registration. Also right after an fd number is (re)created.
    void fd_forget(int fd) noexcept;
    // fd_forget of every number in [first, last] this hub keeps a state for.
    void fd_forget_range(unsigned first, unsigned last) noexcept;
    // The number's current life (see set_fd_life) is `life`: a state left
    // from an earlier one is forgotten (fd_forget) before it misleads a
    // wait, a registration or a hint.
    void fd_sync(int fd, std::uint32_t life) noexcept {
        FdState* s = fd_state_if_any(fd);
        if (s != nullptr && s->life != life) [[unlikely]] {
            fd_forget(fd);
        }
    }

    // The read readiness hint (FdState::readable) of fd: true unless a read
    // has seen the fd drained since its last readable edge.
    bool maybe_readable(int fd) const noexcept {
        const FdState* s = fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? fds_[fd].get() : nullptr;
        return s == nullptr || s->readable || s->hung_up;
    }
    // A read on fd returned `got` of `asked` bytes (or -1 with EAGAIN):
    // clears the hint when that proves the fd's queue empty, sets it when a
    // full buffer says more may be there.
    // `known_stream`: the caller knows fd is a byte stream socket (saves
    // asking the kernel once per fd).
    void note_read(int fd, long got, std::size_t asked, bool known_stream = false) noexcept;
    // Whether fd is a SOCK_STREAM socket (asked of the kernel once per fd).
    bool stream_socket(int fd) noexcept;

    // --- the ring (ring.hpp), when GROVE_IO asks for it
    // This hub's ring, made on first use; null when the hub stays on epoll
    // (not asked for, or the kernel refused: then never tried again).
    Ring* ring() noexcept {
        return ring_ != nullptr || !ring_wanted_ ? ring_ : open_ring();
    }
    bool ring_active() const noexcept { return ring_ != nullptr; }
    // The ring is in use or may be made: worth asking whether an fd suits it.
    bool ring_enabled() const noexcept { return ring_ != nullptr || ring_wanted_; }
    // One recv (write false) or send through the ring: queues it, parks
    // until its completion or `deadline`, a kill or a Timeout; an early end
    // cancels the operation and waits, uninterruptibly, for its completion.
    // Returns the completion's result (a count, or -errno: -ECANCELED when
    // the cancel won) and in `early` why the wait ended early (none if it
    // did not; closed if fd_forget cancelled it). -EAGAIN with early none:
    // the ring could not take it, wait on epoll instead.
    long ring_call(bool write, int fd, const void* buf, std::size_t n, int flags, Nanos deadline,
                   WakeReason& early) noexcept;

    Nanos now() const noexcept { return now_ns(); }

    // Signals (set by the shim's handler trampoline; any thread): a bit per
    // signal number that ran a handler since the hub last looked.
    static std::atomic<std::uint64_t> signals_pending;
    // Handlers run so far, process-wide: a wait is interrupted only by a
    // signal that came after its call began (FiberCore::signal_epoch).
    static std::atomic<std::uint64_t> signal_count;
    // The signals that interrupted the most recent `interrupted` wake-up.
    std::uint64_t interrupt_signals() const noexcept { return interrupt_signals_; }
    // Which waits a signal that ran a handler interrupts. Without a taker,
    // every interruptible wait that began before it (each fiber stands for
    // a thread blocked in the kernel). With one (the shim's green threads,
    // on their hub), one wait, as the kernel hands a process-wide signal to
    // one thread: the main fiber's if `takes(main, signals)`, whether or not
    // it waits, else the first waiting fiber that takes them; if none does,
    // every one, as without a taker. `signals` has bit s for signal s.
    using SignalTaker = bool (*)(const FiberCore* f, std::uint64_t signals) noexcept;
    void set_signal_taker(SignalTaker takes) noexcept { signal_taker_ = takes; }
    // Signal `sig` was sent to fiber f alone (the shim's pthread_kill of a
    // green thread): when the hub delivers it, only f's wait is interrupted,
    // if it is in one, and no other's. Aimed before the signal is raised;
    // unaimed if no handler ran (ignored, or blocked: it is then a
    // process-wide one when it comes). Forgotten if f ends first. Up to
    // kMaxAims fibers at once; beyond, a signal goes as a process-wide one.
    void aim_signal(FiberCore* f, int sig) noexcept;
    void unaim_signal(FiberCore* f, int sig) noexcept;
    // Signals sent to one fiber (the shim's pthread_kill of a green thread)
    // whose handlers must run in that fiber's own context: the sender marks
    // f->signals_sent and pokes f; f calls `hook(f)` itself as it next
    // resumes (from a park or a yield, or at its start), and the hook
    // clears the mark and runs them.
    using SentHook = void (*)(FiberCore* f) noexcept;
    void set_sent_hook(SentHook hook) noexcept { sent_hook_ = hook; }
    // Gets f to resume soon. A fiber parked in an interposed call (its
    // signal window open) is interrupted, as a signal interrupts a thread
    // blocked in the kernel. Any other wait of f, with f->signals_sent
    // set, is only paused: f runs the hook, then waits on, as a thread in
    // an uninterruptible wait runs a handler and waits on. A fiber that is
    // ready or running needs nothing.
    void poke(FiberCore* f) noexcept;
    // The signals (bit s for signal s) whose handlers ran for the wait the
    // next `interrupted` reason answers (see interrupt_signals).
    void set_interrupt_signals(std::uint64_t signals) noexcept { interrupt_signals_ = signals; }

    // Thread-local images (the shim's green threads). A fiber whose `tls`
    // is set has its own copy of the program's thread-local variables; the
    // live copy is in the thread's TLS block, and the hub swaps it at a
    // switch to a fiber whose image is not the one loaded: `save` copies
    // the live variables into an image, `load` copies an image into them.
    // The hub fiber runs on whatever is loaded; every other fiber (main,
    // fibers without an image) shares the thread's own, which the hub
    // keeps in a buffer of `size` bytes while another is loaded.
    struct TlsImages {
        void (*save)(void* image) noexcept;
        void (*load)(const void* image) noexcept;
        std::size_t size;
    };
    // Makes the buffer for the thread's own here, not at the first swap:
    // a switch runs in whatever the fibers were doing (malloc, say) and
    // allocates nothing.
    void set_tls_images(const TlsImages* images) noexcept;
    // While the hub copies images, a signal handler must not run: a write
    // it made to a thread-local variable between the copy out and the copy
    // in would be lost. The shim's trampoline asks copying_tls(), puts the
    // signal off (defer_signal_during_copy), and the hub calls
    // `after_copy` (set once, process-wide) when the copy is done.
    bool copying_tls() const noexcept { return tls_copying_.load(std::memory_order_relaxed); }
    void defer_signal_during_copy() noexcept { tls_deferred_.store(true, std::memory_order_relaxed); }
    static void set_after_tls_copy(void (*after_copy)() noexcept) noexcept { after_tls_copy_ = after_copy; }
    // `image` is about to be freed (its fiber is ending): if it is the one
    // loaded, the thread's own is loaded back, and `image` is not saved.
    void forget_tls(const void* image) noexcept;

    // --- wake-ups from other OS threads
    // A Remote names a waiter of this hub that another thread wakes with
    // `ready` through post_remote(): the record goes into the hub's inbox
    // (lock-free), and the hub's thread, woken from its poll by an eventfd
    // if it sleeps there, unparks the waiter (a no-op if it was woken
    // otherwise meanwhile) and sets `done`. The record must live until then:
    // a waiter that was posted and woke for another reason waits for
    // `done`, which only the hub's own thread writes and reads.
    struct Remote {
        Remote* next = nullptr;
        Waiter* w = nullptr;
        bool done = false;
    };
    // Any thread. The eventfd is made at the first post: a hub that is
    // never posted to has none.
    void post_remote(Remote& r) noexcept;

    // In a child just forked: the hub keeps only the running fiber (as fork
    // keeps only the calling thread). Other fibers are dropped unrun, the
    // poller is a new epoll set (the parent's is shared across fork), no fd
    // is registered, and the parent's ring is dropped unused (a fresh one is
    // made on first use). If the running fiber is not main, the child process
    // exits when it ends, as it would when its only thread returned.
    void after_fork_child() noexcept;

    ~Hub();

private:
    Hub();
    friend void fiber_entry(Transfer t) noexcept;
    friend void hub_entry(Transfer t) noexcept;
    friend struct HubAccess;

    static Hub& create() noexcept;
    void switch_to(FiberCore* next) noexcept;
    void after_switch(Transfer t) noexcept;
    // The fiber to switch to when the running one stops (note 1 in hub.cpp).
    FiberCore* next_to_run() noexcept {
        if (++steps_ < kPollEvery) [[likely]] {
            FiberCore* f = run_queue_.pop();
            if (f != nullptr && f->started) [[likely]] {
                return f;
            }
            if (f != nullptr) {
                return next_to_start(f);
            }
        }
        return &hub_fiber_;
    }
    FiberCore* next_to_start(FiberCore* f) noexcept;
    bool prepare(FiberCore* f) noexcept;
    void finish(FiberCore* f) noexcept;
    void recycle(FiberCore* f) noexcept;
    void loop() noexcept;
    void poll_epoll(Nanos deadline) noexcept;
    void poll_ring(Nanos deadline) noexcept;
    void on_poll_event(std::uint64_t token, bool readable, bool writable, bool hangup) noexcept;
    Ring* open_ring() noexcept;
    void expire_timers() noexcept;
    [[noreturn]] void exit_current() noexcept;

    FiberCore* current_;
    FiberCore main_fiber_;
    FiberCore hub_fiber_;
    RunQueue run_queue_;
    TimerHeap timers_;
    Poller poller_;
    Ring* ring_ = nullptr;        // see ring(); owned
    bool ring_wanted_ = false;    // GROVE_IO asked for it and it did not fail
    StackPool stacks_;
    std::vector<std::unique_ptr<FdState>> fds_;
    std::vector<FiberCore*> free_cores_;  // its capacity covers every core made
    std::size_t cores_made_ = 0;
    WaitList quiet_;              // join_all(): woken as live_ drops to <= 1
    std::size_t live_ = 0;        // spawned fibers not yet ended
    std::size_t fd_waiters_ = 0;  // fibers parked in wait_fd; 0 lets a busy
                                  // hub skip its non-blocking poll
    unsigned steps_ = 0;          // switches since the hub last polled
    unsigned calls_ = 0;          // count_call()s since the last switch
    bool main_lost_ = false;      // a fork child whose main fiber stayed behind
    ListHook signal_waiters_;     // FiberCore::signal_hook of interruptible waits
    std::uint64_t interrupt_signals_ = 0;
    SignalTaker signal_taker_ = nullptr;
    void deliver_signals() noexcept;
    const TlsImages* tls_images_ = nullptr;
    void* tls_loaded_ = nullptr;  // the image in the TLS block (null: the thread's own)
    std::unique_ptr<std::byte[]> tls_home_;  // the thread's own while another is loaded
    std::size_t tls_home_size_ = 0;
    std::atomic<bool> tls_copying_{false};   // read by signal handlers of this thread
    std::atomic<bool> tls_deferred_{false};
    static void (*after_tls_copy_)() noexcept;
    void load_tls(void* image) noexcept;
    void copy_tls(void* save_to, const void* load_from) noexcept;
    std::atomic<Remote*> inbox_{nullptr};   // posted, newest first
    std::atomic<int> inbox_fd_{-1};         // the eventfd that wakes the poll (own_fd)
    std::atomic<bool> inbox_making_{false}; // a thread is making it
    int inbox_wake_fd() noexcept;
    void run_inbox() noexcept;
    void* alt_stack_ = nullptr;   // sigaltstack for the overflow report
    int* errno_ = nullptr;        // this thread's errno (fixed per thread)
    // aim_signal's: last, off the lines the switch reads.
    struct Aim {
        FiberCore* fiber;
        std::uint64_t signals;  // bit s for signal s
    };
    static constexpr int kMaxAims = 16;
    Aim aims_[kMaxAims]{};
    int n_aims_ = 0;
    void forget_aims(FiberCore* f) noexcept;
    SentHook sent_hook_ = nullptr;
    // Runs self's sent signals as it resumes; `w`, if given, is the wait
    // it was parked in, which goes on if a poke alone ended it.
    void run_sent(FiberCore* self, Waiter* w = nullptr, bool interruptible = false) noexcept;
    void sleep_on(FiberCore* self, Waiter& w, bool interruptible) noexcept;

    static constexpr unsigned kPollEvery = 64;
    static constexpr unsigned kTurnCalls = 64;
    // user_data of the ring's multishot poll on the epoll fd (RingOps are
    // aligned addresses, Ring::kIgnore is 0).
    static constexpr std::uint64_t kEpollTag = 1;
    // Poll token of the inbox's eventfd (no fd number's token: its fd half
    // is -1).
    static constexpr std::uint64_t kInboxToken = ~std::uint64_t{0};
};

// A POSIX-style call was woken by `w.why` (killed or scope_timeout) and
// reports it as an errno: records it for the next C++ suspension point
// (FiberCore::kill_deferred) and disarms a fired scope, so C code that
// retries is not woken again at once. Returns the errno to report
// (ECANCELED, ETIMEDOUT), or 0 for other reasons.
int defer_interruption(const Waiter& w) noexcept;

// Throws what is due at a suspension point of `self`: FiberExit for a
// pending kill, TimeoutError for an armed grove::Timeout whose deadline has
// passed (disarming it). Returns if nothing is.
void raise_if_due(FiberCore* self);

// Timeout's private fields, for park() and the scope bookkeeping.
inline Timeout* timeout_outer(Timeout* t) noexcept;
inline bool timeout_armed(const Timeout* t) noexcept;
inline Nanos timeout_deadline(const Timeout* t) noexcept;

}  // namespace grove::detail

namespace grove {

class TimeoutAccess {
public:
    static Timeout*& outer(Timeout* t) noexcept { return t->outer_; }
    static bool& armed(Timeout* t) noexcept { return t->armed_; }
    static bool armed(const Timeout* t) noexcept { return t->armed_; }
    static detail::Nanos deadline(const Timeout* t) noexcept { return t->deadline_; }
    static detail::FiberCore*& owner(Timeout* t) noexcept { return t->owner_; }
};

namespace detail {
inline Timeout* timeout_outer(Timeout* t) noexcept { return TimeoutAccess::outer(t); }
inline bool timeout_armed(const Timeout* t) noexcept { return TimeoutAccess::armed(t); }
inline Nanos timeout_deadline(const Timeout* t) noexcept { return TimeoutAccess::deadline(t); }
}  // namespace detail

}  // namespace grove

// The hub: scheduling, park/unpark, timers and fd readiness for one thread.
//
// Notes on ownership and order (numbered so the code can refer to them):
// 1. Switching. A fiber that stops running (parks, yields, dies) picks its
//    successor itself (next_to_run) and jumps there directly; the hub fiber
//    is just another successor, chosen when the run queue is empty or every
//    kPollEvery switches. The jump carries the leaving fiber's record; the
//    arriving side stores the leaving context into it (after_switch), or,
//    if the leaving fiber is dead, recycles its stack and record: a fiber
//    cannot free the stack it stands on, its successor can.
// 2. A fiber takes its stack when it first runs (prepare), not at spawn, so
//    100k queued fibers cost 100k small records, not 100k mappings.
// 3. Waking. unpark() is the only way out of park(): it unlinks the waiter
//    from its wait list and the timer heap before queueing the fiber, and
//    sets Waiter::why exactly once. A later wake-up for the same wait (a
//    timer after readiness) finds why != none and does nothing.
// 4. Kill. kill() on a parked fiber is an unpark with `killed`; on a ready
//    or running fiber, or one parked without interruption (shielded), it
//    sets kill_pending, which the next interruptible park() turns into
//    `killed` before it blocks.

#include "hub/hub.hpp"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>
#include <typeinfo>

#include "hub/own_fd.hpp"
#include "sys/sys.hpp"

namespace grove::detail {

constinit __attribute__((tls_model("initial-exec"))) thread_local Hub* tls_hub = nullptr;

namespace {

// One pointer per thread, initial-exec: the switch path reads it without a
// call into the TLS resolver.
// Destroys the thread's hub at thread exit, when no fiber is left that
// could still need it; otherwise the hub is left alone (parked fibers' stacks
// may hold objects that were never destroyed; freeing them would be worse).
struct HubReaper {
    ~HubReaper();
};
thread_local HubReaper tls_reaper;

std::atomic<FiberId> next_fiber_id{1};

// ---- stack overflow report -------------------------------------------------

struct sigaction previous_segv;
struct sigaction previous_bus;
std::atomic<bool> overflow_handler_installed{false};

void write_str(const char* s) noexcept {
    ssize_t r = sys::write(2, s, std::strlen(s));
    (void)r;
}

void write_u64(std::uint64_t v) noexcept {
    char buf[24];
    char* p = buf + sizeof buf;
    *--p = '\0';
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    write_str(p);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
    Hub* hub = tls_hub;
    if (hub != nullptr) {
        FiberCore* f = hub->running();
        if (f != nullptr && f->stack.base != nullptr && f->stack.guard_contains(info->si_addr)) {
            write_str("grove: stack overflow in fiber ");
            write_u64(f->id);
            write_str(" (");
            write_str(f->name());
            write_str("): it ran past its ");
            write_u64(f->stack.usable() / 1024);
            write_str(" KiB stack into the guard page; raise SpawnOptions::stack_size or GROVE_STACK_SIZE\n");
            signal(sig, SIG_DFL);
            raise(sig);
            return;
        }
    }
    // Not ours: hand it to whoever was there before, or die as we would have.
    const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
    if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
        prev.sa_sigaction(sig, info, uctx);
        return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
        prev.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void install_overflow_handler() noexcept {
    if (overflow_handler_installed.exchange(true)) {
        return;
    }
    struct sigaction sa{};
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

constexpr std::size_t kAltStackSize = 64 * 1024;

// Guarded stacks unmapped per idle turn of the loop, past the pool's keep.
constexpr std::size_t kTrimBatch = 32;

}  // namespace

// A fiber on a packed stack (no guard page, see context/stack.hpp) wrote
// into its red zone: it overflowed into the memory below. Caught as it
// switches away, before any fiber whose frames may lie there runs again.
[[noreturn]] static void report_red_zone(const FiberCore* f) noexcept {
    write_str("grove: stack overflow in fiber ");
    write_u64(f->id);
    write_str(" (");
    write_str(f->name());
    write_str("): it wrote below its ");
    write_u64(f->stack.usable() / 1024);
    write_str(" KiB packed stack (no guard page past GROVE_GUARDED_STACKS); raise SpawnOptions::stack_size or "
              "GROVE_STACK_SIZE\n");
    // Memory is spoiled: no handler may carry on from here.
    signal(SIGABRT, SIG_DFL);
    std::abort();
}

// ---- entry points of new contexts -------------------------------------------

void fiber_entry(Transfer t) noexcept {
    Hub& hub = *tls_hub;
    hub.after_switch(t);
    FiberCore* self = hub.current_;
    TaskBase* task = self->task;
    if (self->kill_pending) {
        self->kill_pending = false;  // killed before its start: ends unrun
        task->killed_ = true;
    } else {
        if (self->signals_sent) [[unlikely]] {
            hub.run_sent(self);  // sent before its start
        }
        try {
            task->invoke();
            // A kill reported to C code as ECANCELED, never raised since:
            // the fiber still ended because of it.
            task->killed_ = self->kill_deferred;
        } catch (const FiberExit&) {
            task->killed_ = true;
        } catch (...) {
            task->error_ = std::current_exception();
        }
    }
    hub.exit_current();
}

void hub_entry(Transfer t) noexcept {
    Hub& hub = *tls_hub;
    hub.after_switch(t);
    hub.loop();
}

// ---- construction ------------------------------------------------------------

[[noreturn]] void assert_fail(const char* cond, const char* msg, const char* file, int line) noexcept {
    std::fprintf(stderr, "grove: internal error: %s (%s) at %s:%d\n", msg, cond, file, line);
    std::abort();
}

const char* FiberCore::name() const noexcept {
    if (task != nullptr) {
        return task_name(task);
    }
    return id == 0 ? "main" : "hub";
}

Hub& Hub::create() noexcept {
    sys::resolve();
    tls_hub = new Hub();
    (void)&tls_reaper;  // odr-use: registers the thread-exit destructor
    return *tls_hub;
}

Hub::Hub() {
    errno_ = &errno;
    ring_wanted_ = Ring::wanted();
    try {
        timers_.reserve(16);  // the main fiber's waits, before any spawn (new_fiber)
    } catch (...) {
    }
    main_fiber_.hub = this;
    main_fiber_.state = FiberState::running;
    main_fiber_.started = true;
    main_fiber_.id = 0;
    current_ = &main_fiber_;

    hub_fiber_.hub = this;
    // No fiber's id, and id + 1 is not 0 either: the shim's lock owners are
    // id + 1, with 0 for nobody (and the top bit for OS threads).
    hub_fiber_.id = (FiberId{1} << 62) - 1;
    hub_fiber_.started = true;
    hub_fiber_.stack = stacks_.take(0);
    if (hub_fiber_.stack.base == nullptr) {
        std::perror("grove: cannot map the hub's stack");
        std::abort();
    }
    hub_fiber_.san.bottom = hub_fiber_.stack.limit();
    hub_fiber_.san.size = hub_fiber_.stack.usable();
    hub_fiber_.ctx = make_context(hub_fiber_.stack.top(), hub_fiber_.stack.usable(), &hub_entry);
    hub_fiber_.state = FiberState::ready;

    // An alternate signal stack, so a stack overflow can still be reported.
    alt_stack_ = ::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt_stack_ != MAP_FAILED) {
        stack_t ss{};
        stack_t old{};
        sigaltstack(nullptr, &old);
        if ((old.ss_flags & SS_DISABLE) != 0 || old.ss_sp == nullptr) {
            ss.ss_sp = alt_stack_;
            ss.ss_size = kAltStackSize;
            sigaltstack(&ss, nullptr);
        } else {
            ::munmap(alt_stack_, kAltStackSize);  // the program has its own
            alt_stack_ = nullptr;
        }
    } else {
        alt_stack_ = nullptr;
    }
    install_overflow_handler();
}

Hub::~Hub() {
    delete ring_;
    for (FiberCore* f : free_cores_) {
        delete f;
    }
    stacks_.give(hub_fiber_.stack);
    if (alt_stack_ != nullptr) {
        stack_t ss{};
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, nullptr);
        ::munmap(alt_stack_, kAltStackSize);
    }
}

HubReaper::~HubReaper() {
    Hub* hub = tls_hub;
    if (hub == nullptr || (hub->running() != nullptr && hub->running()->id != 0)) {
        return;  // exit() from inside a fiber: leave everything as it is
    }
    if (hub->live_fibers() == 0) {
        tls_hub = nullptr;
        delete hub;
    }
}

// ---- switching -----------------------------------------------------------------

void Hub::after_switch(Transfer t) noexcept {
    auto* prev = static_cast<FiberCore*>(t.data);
    sanitizer_finish_switch(current_->san, &prev->san);
    if (!prev->stack.guarded && prev->stack.red_zone_spoiled()) [[unlikely]] {
        report_red_zone(prev);
    }
    if (prev->state == FiberState::dead) {
        recycle(prev);
    } else {
        prev->ctx = t.fctx;
    }
}

void Hub::switch_to(FiberCore* next) noexcept {
    calls_ = 0;
    FiberCore* self = current_;
    if (next == self) {
        self->state = FiberState::running;
        return;
    }
    self->saved_errno = *errno_;
    if (next->tls != tls_loaded_ && next != &hub_fiber_) [[unlikely]] {
        load_tls(next->tls);
    }
    current_ = next;
    next->state = FiberState::running;
    sanitizer_start_switch(&self->san, next->san, self->state == FiberState::dead);
    const Transfer t = jump(next->ctx, self);
    // Resumed: `self` runs again (see note 1).
    after_switch(t);
    *errno_ = self->saved_errno;
}

void Hub::set_tls_images(const TlsImages* images) noexcept {
    tls_images_ = images;
    if (images != nullptr && (tls_home_ == nullptr || tls_home_size_ < images->size)) {
        tls_home_size_ = images->size;
        tls_home_.reset(new (std::nothrow) std::byte[images->size]);
        if (tls_home_ == nullptr) {
            std::fputs("grove: out of memory for the thread's thread-local image\n", stderr);
            std::abort();
        }
    }
}

void Hub::load_tls(void* image) noexcept {
    copy_tls(tls_loaded_ != nullptr ? tls_loaded_ : tls_home_.get(), image != nullptr ? image : tls_home_.get());
    tls_loaded_ = image;
}

void (*Hub::after_tls_copy_)() noexcept = nullptr;

void Hub::copy_tls(void* save_to, const void* load_from) noexcept {
    tls_copying_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (save_to != nullptr) {
        tls_images_->save(save_to);
    }
    tls_images_->load(load_from);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    tls_copying_.store(false, std::memory_order_relaxed);
    if (tls_deferred_.load(std::memory_order_relaxed)) [[unlikely]] {
        tls_deferred_.store(false, std::memory_order_relaxed);
        if (after_tls_copy_ != nullptr) {
            after_tls_copy_();
        }
    }
}

void Hub::forget_tls(const void* image) noexcept {
    if (image != nullptr && tls_loaded_ == image) {
        copy_tls(nullptr, tls_home_.get());
        tls_loaded_ = nullptr;
    }
}

// Takes a stack for a fiber about to run for the first time. A fiber killed
// before its start starts too, and ends at once (fiber_entry): finished
// here, on the switch path of whichever fiber parks, its task's
// destructors would run inside that fiber's call (perhaps inside malloc).
bool Hub::prepare(FiberCore* f) noexcept {
    if (f->started) {
        return true;
    }
    TaskBase* task = f->task;
    f->stack = stacks_.take(f->stack_size);
    if (f->stack.base == nullptr) {
        const int e = errno;
        task->error_ = std::make_exception_ptr(
            std::system_error(e, std::generic_category(), "grove: cannot map a fiber stack"));
        finish(f);
        recycle(f);
        return false;
    }
    f->san.bottom = f->stack.limit();
    f->san.size = f->stack.usable();
    f->ctx = make_context(f->stack.top(), f->stack.usable(), &fiber_entry);
    f->started = true;
    return true;
}

FiberCore* Hub::next_to_start(FiberCore* f) noexcept {
    do {
        if (prepare(f)) {
            return f;
        }
        f = run_queue_.pop();
    } while (f != nullptr);
    return &hub_fiber_;
}

void Hub::loop() noexcept {
    for (;;) {
        steps_ = 0;
        // A handler that ran before this point must not be slept through.
        if (signals_pending.load(std::memory_order_relaxed) != 0) [[unlikely]] {
            deliver_signals();
        }
        // With fibers ready, only look (timeout 0), and only if some fiber
        // waits on an fd: a poll is a syscall, dear on this path.
        bool busy = !run_queue_.empty();
        if (!busy && stacks_.has_excess()) {
            // Idle: give back some of the stacks a burst of fibers left
            // pooled, then only look for events so the rest follows soon.
            stacks_.trim(kTrimBatch);
            busy = stacks_.has_excess();
        }
        if (ring_ != nullptr) {
            // The thread blocks in the ring alone; epoll is watched from it.
            if (!busy || fd_waiters_ > 0 || ring_->needs_enter()) {
                poll_ring(busy ? 0 : timers_.next_deadline());
            }
        } else if (!busy || fd_waiters_ > 0) {
            poll_epoll(busy ? 0 : timers_.next_deadline());
        }
        if (signals_pending.load(std::memory_order_relaxed) != 0) [[unlikely]] {
            deliver_signals();
        }
        if (inbox_.load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
            run_inbox();  // posted while the hub was busy, not polling
        }
        expire_timers();
        while (FiberCore* f = run_queue_.pop()) {
            if (prepare(f)) {
                switch_to(f);
                break;
            }
        }
    }
}

void Hub::on_poll_event(std::uint64_t token, bool readable, bool writable, bool hangup) noexcept {
    if (token == kInboxToken) [[unlikely]] {
        std::uint64_t n;
        (void)sys::read(inbox_fd_.load(std::memory_order_relaxed), &n, sizeof n);  // re-arm
        run_inbox();
        return;
    }
    const int fd = static_cast<int>(token & 0xffffffffu);
    FdState* s = fd_state_if_any(fd);
    if (s == nullptr || s->seq != static_cast<std::uint32_t>(token >> 32)) {
        return;  // an event for an fd number since closed
    }
    if (hangup) {
        s->hung_up = true;
    }
    if (readable) {
        s->readable = true;
        s->readers.wake_all(WakeReason::ready);
    }
    if (writable) {
        s->writers.wake_all(WakeReason::ready);
    }
}

void Hub::poll_epoll(Nanos deadline) noexcept {
    const int n = poller_.wait(deadline, [this](std::uint64_t token, bool readable, bool writable, bool hangup) {
        on_poll_event(token, readable, writable, hangup);
    });
    if (n < 0 && errno != EINTR) {
        std::perror("grove: epoll_wait");
        std::abort();
    }
}

// One io_uring_enter (submit all, wait for a completion or the deadline),
// then every completion: a RingOp's wakes its fiber; the epoll fd's means
// "drain epoll now", with a zero timeout.
void Hub::poll_ring(Nanos deadline) noexcept {
    const int r = ring_->enter(deadline);
    if (r < 0) {
        errno = -r;
        std::perror("grove: io_uring_enter");
        std::abort();
    }
    RingCompletion done[64];
    for (;;) {
        const int n = ring_->reap(done, 64);
        for (int i = 0; i < n; ++i) {
            const RingCompletion& c = done[i];
            if (c.user_data == Ring::kIgnore) {
                continue;  // a cancel request's own answer
            }
            if (c.user_data == kEpollTag) {
                // Drain it whole: epoll raises no new wake-up for events
                // already queued in it.
                int got;
                do {
                    got = poller_.wait(0, [this](std::uint64_t token, bool readable, bool writable, bool hangup) {
                        on_poll_event(token, readable, writable, hangup);
                    });
                } while (got == Poller::kMaxEvents);
                if ((c.flags & Ring::kMore) == 0 && !ring_->prep_poll(poller_.fd(), kEpollTag)) {
                    std::perror("grove: io_uring poll on epoll");
                    std::abort();
                }
                continue;
            }
            auto* op = reinterpret_cast<RingOp*>(static_cast<std::uintptr_t>(c.user_data));
            op->res = c.res;
            op->done = true;
            op->fd_hook.unlink();
            ring_->op_done();
            unpark(op->w, WakeReason::ready);
        }
        if (n < 64) {
            break;
        }
    }
}

Ring* Hub::open_ring() noexcept {
    Ring* r = Ring::open();
    if (r == nullptr) {
        ring_wanted_ = false;  // no io_uring here: epoll, as without GROVE_IO
        return nullptr;
    }
    // From now on the thread blocks in the ring; epoll's events reach it
    // through a multishot poll on the epoll fd.
    if (!r->prep_poll(poller_.fd(), kEpollTag)) {
        delete r;
        ring_wanted_ = false;
        return nullptr;
    }
    ring_ = r;
    return r;
}

long Hub::ring_call(bool write, int fd, const void* buf, std::size_t n, int flags, Nanos deadline,
                    WakeReason& early) noexcept {
    early = WakeReason::none;
    FdState* s = fd_state_if_any(fd);
    Ring* r = ring();
    if (s == nullptr || r == nullptr) {
        return -EAGAIN;
    }
    FiberCore* self = current_;
    if (self->kill_pending && self->no_interrupt == 0) {
        // As park() would answer at once: nothing is queued for a kill.
        self->kill_pending = false;
        early = WakeReason::killed;
        return -ECANCELED;
    }
    RingOp op;
    const bool queued = write ? r->prep_send(op, fd, buf, n, flags)
                              : r->prep_recv(op, fd, const_cast<void*>(buf), n, flags);
    if (!queued) {
        return -EAGAIN;
    }
    op.fd_hook.link_before(s->ring_ops);
    const WakeReason why = park(op.w, deadline, true);
    if (!op.done) {
        // Ended early (deadline, Timeout, kill, signal): the kernel still
        // owns the buffer. Cancel, then wait for the operation's own
        // completion, which says whether the cancel won or the data came.
        early = why;
        if (!r->prep_cancel(op)) {
            // Queue full even after a submit: the completion comes anyway,
            // when the data does or the fd is closed.
        }
        while (!op.done) {
            park(op.w, kNoDeadline, false);
        }
    }
    if (op.closed) {
        early = WakeReason::closed;
    }
    return op.res;
}

std::atomic<std::uint64_t> Hub::signals_pending{0};
std::atomic<std::uint64_t> Hub::signal_count{0};

// A signal handler ran: every fiber parked in an interposed call would have
// been a thread blocked in the kernel, which the signal interrupts. Which
// one thread the kernel would have picked cannot be known, so all of them
// see it; the shim then restarts or fails each call as SA_RESTART says.
void Hub::deliver_signals() noexcept {
    interrupt_signals_ = signals_pending.exchange(0, std::memory_order_acq_rel);
    const std::uint64_t now = signal_count.load(std::memory_order_acquire);
    auto fiber_of = [](ListHook* h) {
        return reinterpret_cast<FiberCore*>(reinterpret_cast<char*>(h) - offsetof(FiberCore, signal_hook));
    };
    auto interruptible = [now](const FiberCore* f) { return f->signal_epoch < now && f->waiter != nullptr; };
    // Signals sent to one fiber: its wait alone.
    std::uint64_t aimed = 0;
    for (int i = 0; i < n_aims_;) {
        Aim& a = aims_[i];
        const std::uint64_t hit = a.signals & interrupt_signals_;
        if (hit == 0) {
            ++i;
            continue;
        }
        aimed |= hit;
        FiberCore* target = a.fiber;
        a.signals &= ~hit;
        if (a.signals == 0) {
            a = aims_[--n_aims_];
        } else {
            ++i;
        }
        if (target->signal_hook.linked() && interruptible(target)) {
            target->signal_hook.unlink();
            unpark(*target->waiter, WakeReason::interrupted);
        }
    }
    if (aimed != 0 && (interrupt_signals_ & ~aimed) == 0) {
        return;
    }
    if (signal_taker_ != nullptr && signal_waiters_.next != &signal_waiters_) {
        FiberCore* target = nullptr;
        bool found = signal_taker_(&main_fiber_, interrupt_signals_);
        if (found) {
            target = main_fiber_.signal_hook.linked() && interruptible(&main_fiber_) ? &main_fiber_ : nullptr;
        } else {
            for (ListHook* h = signal_waiters_.next; h != &signal_waiters_; h = h->next) {
                FiberCore* f = fiber_of(h);
                if (interruptible(f) && signal_taker_(f, interrupt_signals_)) {
                    target = f;
                    found = true;
                    break;
                }
            }
        }
        if (found) {
            if (target != nullptr) {
                target->signal_hook.unlink();
                unpark(*target->waiter, WakeReason::interrupted);
            }
            return;
        }
    }
    ListHook* h = signal_waiters_.next;
    while (h != &signal_waiters_) {
        ListHook* next = h->next;
        FiberCore* f = fiber_of(h);
        if (interruptible(f)) {
            h->unlink();
            unpark(*f->waiter, WakeReason::interrupted);
        }
        h = next;
    }
}

void Hub::aim_signal(FiberCore* f, int sig) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (sig & 63);
    for (int i = 0; i < n_aims_; ++i) {
        if (aims_[i].fiber == f) {
            aims_[i].signals |= bit;
            return;
        }
    }
    if (n_aims_ < kMaxAims) {
        aims_[n_aims_++] = Aim{f, bit};
    }
}

void Hub::unaim_signal(FiberCore* f, int sig) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (sig & 63);
    for (int i = 0; i < n_aims_; ++i) {
        if (aims_[i].fiber == f) {
            aims_[i].signals &= ~bit;
            if (aims_[i].signals == 0) {
                aims_[i] = aims_[--n_aims_];
            }
            return;
        }
    }
}

void Hub::forget_aims(FiberCore* f) noexcept {
    for (int i = 0; i < n_aims_;) {
        if (aims_[i].fiber == f) {
            aims_[i] = aims_[--n_aims_];
        } else {
            ++i;
        }
    }
}

void Hub::expire_timers() noexcept {
    if (timers_.empty()) {
        return;
    }
    const Nanos now = now_ns();
    while (!timers_.empty() && timers_.top()->deadline <= now) {
        Waiter* w = timers_.top();
        unpark(*w, w->scope != nullptr ? WakeReason::scope_timeout : WakeReason::timed_out);
    }
}

// ---- fibers ----------------------------------------------------------------------

FiberCore* Hub::new_fiber(TaskBase* t, const SpawnOptions& opts) noexcept {
    // Room for its stack, taken when it first runs, and for its timer:
    // the switch and park paths allocate nothing.
    try {
        timers_.reserve(live_ + 2);  // its own, the main fiber's, the others'
    } catch (...) {
        return nullptr;
    }
    if (!stacks_.expect_one()) {
        return nullptr;
    }
    FiberCore* f;
    if (!free_cores_.empty()) {
        f = free_cores_.back();
        free_cores_.pop_back();
    } else {
        // Room for every core made to come back (recycle): the switch path
        // must not allocate, as the fiber it resumes may be inside malloc.
        if (free_cores_.capacity() <= cores_made_) {
            try {
                free_cores_.reserve(std::max<std::size_t>(2 * free_cores_.capacity(), 16));
            } catch (...) {
                stacks_.unexpect_one();
                return nullptr;
            }
        }
        f = new (std::nothrow) FiberCore();
        if (f == nullptr) {
            stacks_.unexpect_one();
            return nullptr;
        }
        ++cores_made_;
    }
    f->hub = this;
    f->task = t;
    f->id = next_fiber_id.fetch_add(1, std::memory_order_relaxed);
    f->stack_size = opts.stack_size;
    f->started = false;
    f->kill_pending = false;
    f->signals_sent = false;
    f->kill_deferred = false;
    f->timeout_deferred = nullptr;
    f->shielded = false;
    f->timeouts = nullptr;
    f->waiter = nullptr;
    f->saved_errno = 0;
    f->tls = nullptr;
    f->san = {};
    f->ctx = nullptr;
    t->core_ = f;
    t->id_ = f->id;
    ++live_;
    return f;
}

void Hub::finish(FiberCore* f) noexcept {
    TaskBase* t = f->task;
    GROVE_ASSERT(f->timeouts == nullptr, "a Timeout outlived its fiber's scope");
    t->finished_ = true;
    t->core_ = nullptr;
    f->joiners.wake_all(WakeReason::ready);
    if (t->on_finish_ != nullptr) {
        t->on_finish_(t);
    }
    --live_;
    if (live_ <= 1) {
        quiet_.wake_all(WakeReason::ready);
    }
    if (main_lost_ && live_ == 0) {
        std::exit(0);  // the fork child's only fiber returned
    }
    f->task = nullptr;
    release_task(t);  // the fiber's own reference
}

void Hub::recycle(FiberCore* f) noexcept {
    if (n_aims_ != 0) [[unlikely]] {
        forget_aims(f);
    }
    if (f->stack.base != nullptr) {
        stacks_.give(f->stack);
        f->stack = {};
    }
    f->state = FiberState::dead;
    free_cores_.push_back(f);
}

void Hub::exit_current() noexcept {
    FiberCore* self = current_;
    finish(self);
    self->state = FiberState::dead;
    switch_to(next_to_run());
    GROVE_ASSERT(false, "a dead fiber was resumed");
    std::abort();
}

void Hub::kill(FiberCore* f) noexcept {
    if (f->state == FiberState::dead) {
        return;
    }
    if (f->state == FiberState::parked && !f->shielded && f->started) {
        unpark(*f->waiter, WakeReason::killed);
        return;
    }
    f->kill_pending = true;
    if (!f->started && f->state == FiberState::parked) {
        // spawn_later: cancel the start timer; it starts and ends at once (fiber_entry).
        unpark(*f->waiter, WakeReason::killed);
    }
}

void Hub::start_at(FiberCore* f, Nanos at) noexcept {
    Waiter& w = f->start;
    w.fiber = f;
    w.why = WakeReason::none;
    w.scope = nullptr;
    w.deadline = at;
    f->waiter = &w;
    f->state = FiberState::parked;
    timers_.push(w);
}

void Hub::wait_quiet() {
    const std::size_t self = current_->task != nullptr ? 1 : 0;
    while (live_ > self) {
        Waiter w;
        quiet_.push_back(w);
        park_or_throw(w, kNoDeadline);
    }
}

// ---- park / unpark -------------------------------------------------------------

// The running fiber, its wait `w` set up (linked, timed), sleeps until a
// wake-up or a poke.
inline void Hub::sleep_on(FiberCore* self, Waiter& w, bool interruptible) noexcept {
    self->waiter = &w;
    self->shielded = !interruptible;
    self->state = FiberState::parked;
    if (self->signal_interruptible) {
        self->signal_hook.link_before(signal_waiters_);
    }
    switch_to(next_to_run());
    self->signal_hook.unlink();
    self->waiter = nullptr;
    self->shielded = false;
}

WakeReason Hub::park(Waiter& w, Nanos deadline, bool interruptible) noexcept {
    FiberCore* self = current_;
    GROVE_ASSERT(self != &hub_fiber_, "the hub fiber must never park");
    w.fiber = self;
    w.why = WakeReason::none;
    w.scope = nullptr;
    interruptible = interruptible && self->no_interrupt == 0;
    if (interruptible) {
        if (self->kill_pending) {
            self->kill_pending = false;
            w.hook.unlink();
            w.why = WakeReason::killed;
            return w.why;
        }
        // The nearest enclosing deadline wins; on a tie, the innermost.
        for (Timeout* t = self->timeouts; t != nullptr; t = timeout_outer(t)) {
            if (timeout_armed(t) && timeout_deadline(t) < deadline) {
                deadline = timeout_deadline(t);
                w.scope = t;
            }
        }
    }
    if (deadline != kNoDeadline) {
        if (deadline <= now_ns()) {
            w.hook.unlink();
            w.why = w.scope != nullptr ? WakeReason::scope_timeout : WakeReason::timed_out;
            return w.why;
        }
        w.deadline = deadline;
        timers_.push(w);
    }
    sleep_on(self, w, interruptible);
    if (self->signals_sent) [[unlikely]] {
        run_sent(self, &w, interruptible);
    }
    return w.why;
}

void Hub::unpark(Waiter& w, WakeReason why) noexcept {
    if (w.why != WakeReason::none) {
        return;
    }
    w.why = why;
    w.hook.unlink();
    if (w.timer_index != Waiter::kNoTimer) {
        timers_.remove(w);
    }
    // Not when its fiber is already ready (poked), or is running a sent
    // signal's handler, perhaps parked in another wait inside it: it sees
    // w's reason once the handler returns (run_sent).
    FiberCore* f = w.fiber;
    if (f->waiter == &w && f->state == FiberState::parked) [[likely]] {
        make_ready(f);
    }
}

void Hub::poke(FiberCore* f) noexcept {
    if (f->state != FiberState::parked || !f->started || f->waiter == nullptr) {
        return;  // ready or running: it looks at its mark as it resumes
    }
    if (f->signal_hook.linked()) {
        f->signal_hook.unlink();
        unpark(*f->waiter, WakeReason::interrupted);
    } else if (f->signals_sent) {
        make_ready(f);  // its wait stays as it is
    }
}

void Hub::run_sent(FiberCore* self, Waiter* w, bool interruptible) noexcept {
    while (self->signals_sent && sent_hook_ != nullptr) {
        sent_hook_(self);  // may park and be woken again meanwhile
        if (w == nullptr || w->why != WakeReason::none) {
            return;
        }
        if (interruptible && self->kill_pending) {
            self->kill_pending = false;
            unpark(*w, WakeReason::killed);
            return;
        }
        sleep_on(self, *w, interruptible);  // only poked: the wait goes on, still linked and timed
    }
}

// ---- wake-ups from other threads ---------------------------------------------------

// The eventfd that wakes this hub's poll, made by the first poster. The
// making is rare (once per hub), so a spin among posters is enough.
int Hub::inbox_wake_fd() noexcept {
    int fd = inbox_fd_.load(std::memory_order_acquire);
    if (fd >= 0) [[likely]] {
        return fd;
    }
    while (inbox_making_.exchange(true, std::memory_order_acquire)) {
        sys::sched_yield();
    }
    fd = inbox_fd_.load(std::memory_order_acquire);
    if (fd < 0) {
        const int e = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (e < 0) {
            std::perror("grove: eventfd for a wake-up from another thread");
            std::abort();  // a waiter would never be woken
        }
        // A post made before it is in the poll set leaves it readable,
        // which the registration reports at once.
        fd = own_fd(e, inbox_fd_);
        if (poller_.add(fd, kInboxToken) != 0) {
            std::perror("grove: epoll_ctl for a wake-up from another thread");
            std::abort();
        }
    }
    inbox_making_.store(false, std::memory_order_release);
    return fd;
}

void Hub::post_remote(Remote& r) noexcept {
    Remote* head = inbox_.load(std::memory_order_relaxed);
    do {
        r.next = head;
    } while (!inbox_.compare_exchange_weak(head, &r, std::memory_order_release, std::memory_order_relaxed));
    if (head == nullptr) {
        // The hub takes the whole inbox at once: only the post that finds it
        // empty needs to wake it. `r` may be gone from here on.
        const std::uint64_t one = 1;
        (void)sys::write(inbox_wake_fd(), &one, sizeof one);
    }
}

// Hub thread: unparks everything posted, oldest first.
void Hub::run_inbox() noexcept {
    Remote* r = inbox_.exchange(nullptr, std::memory_order_acquire);
    Remote* fifo = nullptr;
    while (r != nullptr) {
        Remote* next = r->next;
        r->next = fifo;
        fifo = r;
        r = next;
    }
    while (fifo != nullptr) {
        Remote* next = fifo->next;
        Waiter& w = *fifo->w;
        fifo->done = true;  // the waiter's fiber has not run since: it reads this later
        unpark(w, WakeReason::ready);
        fifo = next;
    }
}

// ---- fds ---------------------------------------------------------------------------

// Set by the shim's constructor while the program loads.
GROVE_LOAD_DATA constinit std::atomic<FdLifeFn> fd_life_fn{nullptr};

namespace {
std::uint32_t fd_life(int fd) noexcept {
    const FdLifeFn fn = fd_life_fn.load(std::memory_order_acquire);
    return fn != nullptr ? fn(fd) : 0;
}
}  // namespace

FdState& Hub::fd_state(int fd) {
    const auto i = static_cast<std::size_t>(fd);
    if (i >= fds_.size()) {
        fds_.resize(std::max<std::size_t>(i + 1, fds_.size() * 2));
    }
    if (!fds_[i]) {
        fds_[i] = std::make_unique<FdState>();
        fds_[i]->life = fd_life(fd);
    }
    return *fds_[i];
}

WakeReason Hub::wait_fd(int fd, bool want_write, Nanos deadline) noexcept {
    if (fd < 0) {
        errno = EBADF;
        return WakeReason::none;
    }
    FdState* s;
    try {
        s = &fd_state(fd);
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
        return WakeReason::none;
    }
    if (const std::uint32_t life = fd_life(fd); s->life != life) [[unlikely]] {
        fd_forget(fd);  // left from an earlier file with this number
    }
    if (!s->registered) {
        const std::uint64_t token = (static_cast<std::uint64_t>(s->seq) << 32) | static_cast<std::uint32_t>(fd);
        if (poller_.add(fd, token) != 0 && errno != EEXIST) {
            return WakeReason::none;
        }
        s->registered = true;
    }
    Waiter w;
    (want_write ? s->writers : s->readers).push_back(w);
    ++fd_waiters_;
    const WakeReason why = park(w, deadline, true);
    --fd_waiters_;
    return why;
}

void Hub::fd_forget(int fd) noexcept {
    FdState* s = fd_state_if_any(fd);
    if (s == nullptr) {
        return;
    }
    s->readers.wake_all(WakeReason::closed);
    s->writers.wake_all(WakeReason::closed);
    if (s->ring_ops.linked()) {
        // Operations in the ring: their fibers wake, with EBADF, when the
        // completions of the cancel come. The cancel must reach the kernel
        // before the number is closed (it looks the file up by number), and
        // the ops leave this list so the number's next user starts clean.
        while (s->ring_ops.linked()) {
            RingOp* op = RingOp::from_fd_hook(s->ring_ops.next);
            op->closed = true;
            op->fd_hook.unlink();
        }
        ring_->cancel_fd_now(fd);
    }
    if (s->registered) {
        // The kernel drops the registration with the file's last reference;
        // a dup'd file would stay registered under this number, and its
        // events are told apart by the sequence number in the token.
        s->registered = false;
    }
    ++s->seq;
    s->nonblock = false;
    s->readable = true;
    s->hung_up = false;
    s->stream = -1;
    s->life = fd_life(fd);
}

void Hub::fd_forget_range(unsigned first, unsigned last) noexcept {
    const std::size_t end = std::min<std::size_t>(fds_.size(), static_cast<std::size_t>(last) + 1);
    for (std::size_t i = first; i < end; ++i) {
        if (fds_[i]) {
            fd_forget(static_cast<int>(i));
        }
    }
}

void Hub::note_read(int fd, long got, std::size_t asked, bool known_stream) noexcept {
    FdState* s = fd_state_if_any(fd);
    if (s == nullptr) {
        return;
    }
    if (got < 0) {
        s->readable = false;  // EAGAIN: drained, whatever the fd
        return;
    }
    if (got == 0) {
        return;  // EOF
    }
    if (static_cast<std::size_t>(got) >= asked) {
        s->readable = true;  // a full buffer: there may be more
        return;
    }
    // A short read proves the queue empty only on a byte stream socket
    // (not a datagram, not a tty line).
    if (s->stream < 0 && known_stream) {
        s->stream = 1;
    }
    if (stream_socket(fd)) {
        s->readable = false;
    }
}

bool Hub::stream_socket(int fd) noexcept {
    FdState* s = fd_state_if_any(fd);
    if (s == nullptr) {
        return false;
    }
    if (s->stream < 0) {
        int type = 0;
        socklen_t len = sizeof type;
        const int saved = errno;
        s->stream = sys::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM ? 1 : 0;
        errno = saved;
    }
    return s->stream == 1;
}

void Hub::after_fork_child() noexcept {
    poller_.reopen();
    // The parent's posts were for fibers the child does not have; its
    // eventfd is shared with the parent. A fresh one is made when needed.
    inbox_.store(nullptr, std::memory_order_relaxed);
    if (const int fd = inbox_fd_.exchange(-1, std::memory_order_relaxed); fd >= 0) {
        own_fd_close(fd);
    }
    inbox_making_.store(false, std::memory_order_relaxed);
    if (ring_ != nullptr) {
        // The parent's ring: never submit to it from here. A fresh one is
        // made on first use; the fibers whose operations were in it are gone.
        ring_->forget_after_fork();
        delete ring_;
        ring_ = nullptr;
    }
    ring_wanted_ = Ring::wanted();
    while (run_queue_.pop() != nullptr) {
    }
    timers_.abandon();
    quiet_.abandon();
    for (auto& s : fds_) {
        if (s) {
            s->readers.abandon();
            s->writers.abandon();
            s->ring_ops.prev = s->ring_ops.next = &s->ring_ops;
            s->registered = false;
            ++s->seq;
        }
    }
    fd_waiters_ = 0;
    steps_ = 0;
    // The parent's waits: no signal in the child may wake them.
    signal_waiters_.prev = signal_waiters_.next = &signal_waiters_;
    n_aims_ = 0;
    FiberCore* self = current_;
    live_ = self->task != nullptr ? 1 : 0;
    main_lost_ = self != &main_fiber_;
    self->joiners.abandon();
}

// ---- WaitList and the free functions of detail/wait.hpp --------------------------

bool WaitList::wake_one(WakeReason why) noexcept {
    Waiter* w = front();
    if (w == nullptr) {
        return false;
    }
    w->fiber->hub->unpark(*w, why);
    return true;
}

std::size_t WaitList::wake_all(WakeReason why) noexcept {
    std::size_t n = 0;
    while (Waiter* w = front()) {
        w->fiber->hub->unpark(*w, why);
        ++n;
    }
    return n;
}

WakeReason park(Waiter& w, Nanos deadline, bool interruptible) noexcept {
    return Hub::current().park(w, deadline, interruptible);
}

void unpark(Waiter& w, WakeReason why) noexcept {
    w.fiber->hub->unpark(w, why);
}

bool park_or_throw(Waiter& w, Nanos deadline) {
    FiberCore* self = Hub::current().running();
    if ((self->kill_deferred || self->timeout_deferred != nullptr) && self->no_interrupt == 0) {
        w.hook.unlink();
        raise_if_due(self);
    }
    park(w, deadline, true);
    throw_for(w);
    return w.why == WakeReason::ready;
}

}  // namespace grove::detail

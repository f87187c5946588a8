// The shim's one decision, made at the top of every interposed call: can this
// call park a fiber, or must it go straight to libc?
//
// A call is cooperative when the shim is enabled and initialised, the calling
// thread has a hub (it uses grove; the main thread under grove-run from its
// first green thread on, or from the start with GROVE_MAIN_HUB=1), and the
// caller is not the hub fiber itself.
// Everything else passes through unchanged: GROVE_DISABLE=1, calls made
// during dynamic loading and static constructors, threads that never used
// grove.
//
// The shim never changes an fd's file status flags for good: O_NONBLOCK
// belongs to the open file description, which dup'd fds, forked children and
// exec'd programs share. Instead each call is made non-blocking by itself:
// - sockets: MSG_DONTWAIT on every attempt (read/write become recv/send,
//   which the kernel treats identically on a socket);
// - pipes, eventfd and timerfd reads: RWF_NOWAIT on every attempt
//   (preadv2/pwritev2 at the current position);
// - named FIFOs (which refuse that flag), ttys, other devices: wait for
//   readiness, then the plain call (FIFO writes in PIPE_BUF pieces, which
//   readiness promises room for; elsewhere readiness promises less, and a
//   write to a nearly full tty can hold the thread);
// - accept: readiness first; connect and sendfile: O_NONBLOCK only for the
//   duration of the call.
// Whether the *user* made the file non-blocking, and the socket timeouts,
// are asked of the kernel on the slow path (after EAGAIN), and cached per
// fd until any F_SETFL, FIONBIO or SO_RCVTIMEO/SO_SNDTIMEO goes through
// the shim (FdCache::gen).
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include <grove/detail/time.hpp>

#include "fd_table.hpp"
#include "hub/hub.hpp"
#include "io/io.hpp"
#include "signals.hpp"
#include "sys/sys.hpp"

namespace grove::shim {

using detail::Hub;
using detail::kNoDeadline;
using detail::Nanos;

// Set on the thread that called vfork while its child runs: the child runs
// on its parent's memory (the parent thread suspended until it execs or
// exits), so every interposed call it makes passes straight through, and
// nothing it does (a close, a dup2, a sigaction, a registration in the
// hub, a park) lands in its parent's state. Written by the shim's vfork
// (process_calls.cpp): 1 in the child, 0 again when the parent resumes.
extern __thread unsigned char vfork_child asm("grove_shim_vfork_child")
    __attribute__((visibility("hidden"), tls_model("initial-exec")));

inline bool in_vfork_child() noexcept {
    return vfork_child != 0;
}

// Green threads' signal masks around fork (thread_calls.cpp): the child is
// handed the forking thread's own mask; the parent's OS thread goes back to
// what all its threads block.
void masks_fork_prepare() noexcept;
void masks_fork_parent() noexcept;
void masks_fork_child() noexcept;

// Green threads' own thread-local variables (thread_tls.cpp). The hub's
// copying functions, or null when green threads share the OS thread's
// (GROVE_THREAD_TLS=shared, or nothing to keep apart); worked out at the
// first call.
const Hub::TlsImages* green_tls_images() noexcept;
// A new thread's image (the initial values), or null (none needed, or no memory).
void* new_green_tls() noexcept;
void free_green_tls(void* image) noexcept;
// The running green thread is ending: the thread's own variables are
// loaded back, and its image and the blocks glibc made for it are freed.
void end_green_tls(Hub& hub, void* image) noexcept;
// Whether an object at p belongs to the running green thread (in its
// copied variables, or outside the shared static TLS block).
bool in_green_tls(const void* p) noexcept;

// The green threads' thread holds the lock word of a sync object
// (thread_calls.cpp): a signal handler that took the same word would spin
// forever, so the trampoline puts the signal off (signal_calls.cpp) and
// calls spin_deferred(); `send` runs at the release.
bool in_spin_here() noexcept;
// In a fork child: waiters left in sync objects' lists stayed in the
// parent, and an object's lock word may have been copied held.
void sync_fork_child() noexcept;
// The same on an OS thread outside the green ones: its own slot of one
// signal (signal_calls.cpp), which `send` sends again at the release.
bool in_os_spin() noexcept;
void os_spin_deferred(void (*send)() noexcept) noexcept;
// Around a program's signal handler (signal_calls.cpp's trampoline): wakes
// it makes on the green threads' thread go through the hub's inbox.
void handler_begin() noexcept;
void handler_end() noexcept;
void spin_deferred(void (*send)() noexcept) noexcept;

// The process's first thread (the one green threads run on).
bool is_main_thread() noexcept;

// The settings, read from the environment once, at load or at the first
// interposed call if that comes sooner (from another library's constructor).
struct Config {
    bool read = false;           // the fields below are set
    bool disabled = false;       // GROVE_DISABLE=1
    bool main_hub = false;       // GROVE_MAIN_HUB=1: the main thread makes its hub at its first call that could wait
    bool green_threads = false;  // GROVE_THREADS=green (and no OpenMP runtime loaded at start)
    bool libgrove_loaded = false;  // the program loaded a libgrove.so of its own (the shim starts over)
    std::size_t thread_stack = 0;  // GROVE_THREAD_STACK_SIZE; 0: grove's default (GROVE_STACK_SIZE)
};

extern Config config;
extern std::atomic<bool> ready;  // set at the end of the shim's constructor

// Fills `config` if it is not yet: getenv only, no syscall.
void read_settings() noexcept;

// The libc function `name` (one lib/sys does not list), looked up at its first use and then kept in
// `slot`: a constinit static among the load-time data, so that neither a
// guard variable nor a page of .bss is touched on the way (the GROVE_LIBC
// macro, GROVE_LIBC("name", type), makes one per call site). nullptr if libc has no such function.
template <class Fn>
Fn libc_function(std::atomic<Fn>& slot, const char* name) noexcept {
    Fn fn = slot.load(std::memory_order_acquire);
    if (fn == nullptr) [[unlikely]] {
        fn = reinterpret_cast<Fn>(sys::lookup(name));
        slot.store(fn, std::memory_order_release);
    }
    return fn;
}
#define GROVE_LIBC(name, ...)                                                           \
    ([]() noexcept -> __VA_ARGS__ {                                                     \
        GROVE_LOAD_DATA static constinit std::atomic<__VA_ARGS__> grove_libc_slot{nullptr}; \
        return ::grove::shim::libc_function(grove_libc_slot, name);                     \
    }())

// This thread's hub if the call may park, else nullptr.
Hub* hub_for_call() noexcept;

// Sleeps the fiber for d, the wait of calls that poll with a backoff. true
// when it slept through, or when a signal's handler ran and the call
// restarts (SA_RESTART); false with errno EINTR (no restart), or ECANCELED
// / ETIMEDOUT for a kill or a grove::Timeout (recorded as deferred).
bool nap(Hub* hub, Nanos d) noexcept;

// The fd's table bits if a call on it may park (a socket or stream), with
// `hub` set; kind_file (pass the call through) otherwise.
std::uint32_t fd_bits_for_call(int fd, Hub*& hub) noexcept;

// The program's fd numbers as the shim sees them come and go: the table
// entry is reset (a new life of the number) and this thread's hub forgets
// what it kept (waiters of a closed number wake with EBADF). Other hubs
// catch up at their next use of the number (Hub::fd_sync).
void note_fd_created(int fd, FdKind kind, std::uint32_t extra = 0) noexcept;
void note_fd_duplicated(int from, int to) noexcept;
void note_fd_closing(int fd) noexcept;  // before the real close

// A call said ENOTSOCK on what the table called a socket: the number was
// reused behind the shim's back. Forgets the entry; true if the fd still
// exists (dispatch the call again).
bool reclassify(int fd) noexcept;

// What the kernel says of fd's blocking mode and socket timeouts, cached.
struct FdMode {
    bool nonblock = false;
    bool readable = true;   // O_RDONLY or O_RDWR
    bool writable = true;   // O_WRONLY or O_RDWR
    Nanos rcvtimeo = 0;  // 0: none; <0: fail at once
    Nanos sndtimeo = 0;
};
FdMode fd_mode(int fd) noexcept;
// Something may have changed some fd's mode (F_SETFL, FIONBIO, SO_*TIMEO).
void fd_modes_changed() noexcept;

inline Nanos timeout_deadline(Nanos timeo) noexcept {
    if (timeo == 0) {
        return kNoDeadline;
    }
    return timeo < 0 ? detail::now_ns() : detail::now_ns() + timeo;
}

// Cancellation of green threads (thread_calls.cpp sets it in green mode;
// null otherwise, so the check below is one load and a branch not taken).
// Called when the outermost SignalWindow of a cancellation point opens
// (`entering`) and closes. Entering with a cancel pending, or leaving a wait
// that pthread_cancel cut short, it arranges for the call to end at once
// and for the cancellation to be acted on as the interposed call returns
// to its caller: the shim's own frames all return normally first, so
// nothing here has to survive an unwind.
using CancelHook = void (*)(detail::FiberCore* fiber, bool entering) noexcept;
extern CancelHook cancel_hook;

// A cancel already pending when a cancellation point is entered is acted on
// there, as glibc does before its syscall, whether or not the call would
// have waited: true when the running green thread has one and the call's
// return now leads into the cancellation (thread_calls.cpp). The call must
// then return at once without doing anything.
bool cancel_at_entry() noexcept;

// The first statement of every interposed cancellation point. One load and
// a branch not taken outside green mode.
#define GROVE_CANCELLATION_POINT(failed)                                         \
    do {                                                                         \
        if (::grove::shim::cancel_hook != nullptr && ::grove::shim::cancel_at_entry()) [[unlikely]] { \
            errno = ECANCELED;                                                   \
            return failed;                                                       \
        }                                                                        \
    } while (0)

// While alive, a signal handler running wakes this fiber's wait with
// WakeReason::interrupted (the wait then fails with EINTR), as a signal
// interrupts a thread blocked in the kernel.
// The window opens when the call begins (SignalEpoch), or at the wait.
// Every wait of an interposed cancellation point (read, sleep, poll,
// accept, waitpid...) is inside one, which makes the outermost window also
// the place where green-thread cancellation is noticed (cancel_hook);
// waits that are no cancellation point pass `cancellation_point = false`.
class SignalWindow {
public:
    explicit SignalWindow(Hub* hub, bool cancellation_point = true) noexcept : fiber_(hub->running()) {
        if (!fiber_->signal_interruptible) {
            fiber_->signal_epoch = Hub::signal_count.load(std::memory_order_acquire);
        }
        outer_ = fiber_->signal_interruptible;
        fiber_->signal_interruptible = true;
        if (cancel_hook != nullptr && !outer_ && cancellation_point) [[unlikely]] {
            hooked_ = true;
            cancel_hook(fiber_, true);
        }
    }
    ~SignalWindow() {
        fiber_->signal_interruptible = outer_;
        if (hooked_) [[unlikely]] {
            cancel_hook(fiber_, false);
        }
    }
    SignalWindow(const SignalWindow&) = delete;
    SignalWindow& operator=(const SignalWindow&) = delete;

private:
    detail::FiberCore* fiber_;
    bool outer_ = false;
    bool hooked_ = false;
};

// After a wait failed with EINTR: whether the call restarts, as the kernel
// decides it (SA_RESTART on every handler that ran; never for a socket
// with a timeout set, signal(7)).
inline bool restarts(Hub* hub, bool has_timeout) noexcept {
    return !has_timeout && restart_after(hub->interrupt_signals());
}

// A look that cannot wait (a zero-timeout poll, select or epoll wait; a
// WNOHANG wait for a child) found nothing. Its caller may be spinning on it
// until another thread does something, which natively the kernel lets that
// thread do by preempting the spinner; green threads share one OS thread,
// so the call gives the other fibers a turn before it returns the kernel's
// answer. A fiber parked on an fd or a timer needs the hub to look at
// readiness and timers first: the yield goes through the hub once every
// kPollEvery switches (hub.hpp), not at each call, so a spinner alone pays
// no system call for it and an epoll_wait at most once per kPollEvery
// looks (only when some fiber waits on an fd), yet a parked fiber becomes
// runnable within that many looks.
inline void give_way(Hub* hub) noexcept {
    hub->yield_now();
}

// Outcome of one cooperative wait of an interposed call.
enum class Wait {
    ready,      // look again
    timed_out,  // the call's own timeout passed
    failed,     // errno says why (EINTR, ECANCELED, ETIMEDOUT for a grove::Timeout, EBADF)
};

// Parks until fd is ready for `events` or `deadline`, with signals able to
// interrupt. A signal whose handlers all have SA_RESTART (and no timeout)
// does not end the wait, unless `restartable` is false: a call that has
// already moved data ends with its count at any signal, as the kernel's.
Wait wait_fd(Hub* hub, int fd, short events, Nanos deadline, bool restartable = true) noexcept;

// One attempt already said EAGAIN (or "not ready") on a blocking socket or
// stream: waits like the kernel would. `r` is what to return if the user's
// file is non-blocking (the attempt's own answer). Returns true to try again;
// false when the call must end, with errno set (EAGAIN on timeout).
bool wait_again(Hub* hub, int fd, short events, bool sending, Nanos& deadline, bool& deadline_known,
                bool restartable = true) noexcept;

// A blocking recv of a stream socket through the hub's ring, with the
// kernel's answers for a signal (EINTR, or a restart under SA_RESTART) and
// a socket timeout (EAGAIN). false: the ring cannot take it (wait on
// readiness instead); true: `out` is the call's result (-1 with errno).
bool ring_recv(Hub* hub, int fd, void* buf, std::size_t n, Nanos deadline, long& out) noexcept;

// Copies n bytes from/to user memory the way the kernel does, with EFAULT
// instead of a crash for a bad pointer (process_vm_readv/writev on this
// process). False with errno EFAULT on failure.
bool copy_from_user(void* dst, const void* src, std::size_t n) noexcept;
bool copy_to_user(void* dst, const void* src, std::size_t n) noexcept;
// The child of a fork must forget the parent's pid.
void note_fork_child() noexcept;

// Saves errno across the shim's own bookkeeping.
struct ErrnoGuard {
    int saved = errno;
    ~ErrnoGuard() { errno = saved; }
};

// Socket receive (read, recv, recvfrom, recvmsg, readv): `op(flags)` makes
// one attempt with the given flags. Blocking semantics: waits for data;
// with MSG_WAITALL, `more(r)` is asked to advance the buffer after a partial
// result and returns the total so far, or -1 when complete.
template <class Op>
auto socket_recv(Hub* hub, int fd, int flags, Op&& op, bool restartable = true) noexcept -> decltype(op(0)) {
    const int saved = errno;
    Nanos deadline = kNoDeadline;
    bool known = false;
    for (;;) {
        const auto r = op(flags | MSG_DONTWAIT);
        if (r >= 0) {
            errno = saved;  // libc leaves errno alone on success
            return r;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return r;
        }
        if (!wait_again(hub, fd, POLLIN, false, deadline, known, restartable)) {
            return -1;
        }
    }
}

// read()/recv() without flags on a blocking stream socket, with the hub's
// read-readiness hint: when this fd's last read proved its queue empty and
// no readable edge has come since, an attempt could only say EAGAIN, so the
// call waits first (as the kernel's blocking read would) and saves that
// system call. Data, EOF and errors all raise an edge, so the answer is the
// one the plain attempt-first loop gives. A file the user made non-blocking
// always gets its attempt.
// With the hub's ring (GROVE_IO=uring), that wait is a ring recv instead:
// the data comes with the wake-up, and the call makes no syscall of its own.
template <class Op>
auto stream_socket_recv(Hub* hub, int fd, std::uint32_t bits, void* buf, std::size_t asked, Op&& op) noexcept
    -> decltype(op(0)) {
    if ((bits & kStreamSocket) == 0) {
        return socket_recv(hub, fd, 0, op);
    }
    if (!hub->maybe_readable(fd)) {
        const FdMode m = fd_mode(fd);
        if (!m.nonblock) {
            const int saved = errno;
            Nanos deadline = timeout_deadline(m.rcvtimeo);
            if (hub->ring_enabled()) {
                long got = 0;
                if (ring_recv(hub, fd, buf, asked, deadline, got)) {
                    if (got >= 0) {
                        errno = saved;
                        hub->note_read(fd, got, asked, true);
                    }
                    return static_cast<decltype(op(0))>(got);
                }
            }
            bool known = true;
            if (!wait_again(hub, fd, POLLIN, false, deadline, known)) {
                return -1;
            }
            errno = saved;
        }
    }
    const auto r = socket_recv(hub, fd, 0, op);
    if (r >= 0) {
        hub->note_read(fd, static_cast<long>(r), asked, true);
    }
    return r;
}

// A length no user buffer can have (the user address range of 4-level
// paging): read and write say EFAULT at once, before looking at the file;
// recv and send would instead move what they can (they clip the length).
inline constexpr std::size_t kPastUserSpace = std::size_t{1} << 47;

// The most one read or write moves (the kernel's MAX_RW_COUNT, INT_MAX
// rounded down to a 4 KiB page): a blocking write of more returns this.
inline constexpr std::size_t kMaxRw = 0x7ffff000;

// Socket send (write, send, sendto, sendmsg, writev): a blocking send of a
// stream goes on until all of it is sent (at most kMaxRw bytes), or a
// signal or timeout comes after part of it (then the count);
// `advance(done)` moves the data past `done` bytes and returns false when
// nothing is left. Datagrams go whole or not at all.
template <class Op, class Advance>
auto socket_send(Hub* hub, int fd, int flags, std::size_t total, Op&& op, Advance&& advance) noexcept
    -> decltype(op(0)) {
    const int saved = errno;
    Nanos deadline = kNoDeadline;
    bool known = false;
    decltype(op(0)) sent = 0;
    total = std::min(total, kMaxRw);
    for (;;) {
        const auto r = op(flags | MSG_DONTWAIT);
        if (r >= 0) {
            sent += r;
            if (static_cast<std::size_t>(sent) >= total || !advance(static_cast<std::size_t>(r))) {
                errno = saved;
                return sent;
            }
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            break;
        }
        if (!wait_again(hub, fd, POLLOUT, true, deadline, known, sent == 0)) {
            break;  // a timeout or signal after progress: the count
        }
    }
    if (sent == 0) {
        return -1;
    }
    errno = saved;
    return sent;
}

// Stream read (pipe, tty, eventfd...). `op(nowait)` makes the read, with
// RWF_NOWAIT (preadv2 at the current position) or plainly. The flag is
// tried on pipes and on eventfd/timerfd (fd_table.hpp: nowait_usable): one
// system call when data is there, and EAGAIN, then a wait, when not. Other
// files (a named FIFO, which refuses the flag, a tty, a device) go
// readiness first, then the plain call, which then finds data (or EOF, or
// its own error). A non-blocking or write-only file goes straight to the
// plain call.
template <class Op>
auto stream_read(Hub* hub, int fd, std::uint32_t bits, Op&& op) noexcept -> decltype(op(false)) {
    const FdMode m = fd_mode(fd);
    if (m.nonblock || !m.readable) {
        return op(false);
    }
    const int saved = errno;
    if (nowait_usable(bits, false)) {
        for (;;) {
            const auto r = op(true);
            if (r >= 0) {
                errno = saved;
                return r;
            }
            if (errno != EAGAIN) {
                if (!nowait_refused(fd, false, errno)) {
                    return r;  // the read's own error (EBADF, EFAULT, EINVAL...)
                }
                errno = saved;
                break;
            }
            if (wait_fd(hub, fd, POLLIN, kNoDeadline) != Wait::ready) {
                return -1;
            }
        }
    }
    for (;;) {
        struct pollfd p{fd, POLLIN, 0};
        if (sys::poll(&p, 1, 0) != 0) {
            errno = saved;
            return op(false);
        }
        if (wait_fd(hub, fd, POLLIN, kNoDeadline) != Wait::ready) {
            return -1;
        }
    }
}

}  // namespace grove::shim

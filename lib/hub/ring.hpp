// The hub's io_uring (GROVE_IO=uring): socket reads and writes that would
// wait become ring operations, and the hub's one blocking call becomes one
// io_uring_enter per loop iteration (submit everything queued, then wait for
// a completion, a timer or a signal). epoll stays for everything else: the
// hub watches its epoll fd from the ring with a multishot poll.
//
// Contract:
// - One ring per hub, made on first use by the thread that owns the hub
//   (single issuer). open() returns null when the kernel or the build has no
//   io_uring (or GROVE_IO_URING_FAIL=1 pretends so); the hub then stays on
//   epoll.
// - A RingOp lives on the stack of the fiber that waits for it. Its address
//   is the operation's user_data, so a completion finds its op whatever
//   happened to the fd number meanwhile. The kernel owns the op's buffer
//   from prep_*() until its completion is reaped: the fiber must stay parked
//   (cancelling if it must end early) until then.
// - Nothing here blocks except enter(); only the hub fiber calls enter().
#pragma once

#include <grove/detail/time.hpp>
#include <grove/detail/wait.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace grove::detail {

struct RingOp {
    Waiter w;                 // the fiber parks on this until done
    ListHook fd_hook;         // in FdState::ring_ops while the kernel owns it
    std::int32_t res = 0;     // the completion's result (>= 0, or -errno)
    bool done = false;        // the completion was reaped
    bool closed = false;      // fd_forget() cancelled it: the call says EBADF

    static RingOp* from_fd_hook(ListHook* h) noexcept {
        return reinterpret_cast<RingOp*>(reinterpret_cast<char*>(h) - offsetof(RingOp, fd_hook));
    }
};

struct RingCompletion {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
};

class Ring {
public:
    // Whether hubs made from now on use a ring: GROVE_IO=uring (the default
    // backend is decided here and nowhere else).
    static bool wanted() noexcept;
    // True if this build has io_uring support.
    static bool built() noexcept;
    // A new ring, or null with errno set.
    static Ring* open() noexcept;
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // Queue one operation (submitted at the next enter). false: the
    // submission queue stayed full even after a submit (errno set).
    bool prep_recv(RingOp& op, int fd, void* buf, std::size_t n, int flags) noexcept;
    bool prep_send(RingOp& op, int fd, const void* buf, std::size_t n, int flags) noexcept;
    // Cancels op (its own completion follows, -ECANCELED unless it was done).
    bool prep_cancel(const RingOp& op) noexcept;
    // A multishot POLLIN on fd whose completions carry `tag`.
    bool prep_poll(int fd, std::uint64_t tag) noexcept;
    // Cancels every operation on fd and submits at once: the fd number is
    // about to be closed and may be reused, and a cancel by fd resolves the
    // number when it is submitted.
    int cancel_fd_now(int fd) noexcept;

    // Operations queued or in flight (the hub's poll tag not counted).
    bool needs_enter() const noexcept;
    void op_done() noexcept { --ops_; }

    // One io_uring_enter: submits what is queued, then waits until at least
    // one completion is there, a signal arrives or `deadline` passes (0: do
    // not wait; kNoDeadline: no limit). Returns 0 or -errno (EINTR and
    // ETIME are not errors).
    int enter(Nanos deadline) noexcept;
    // Takes up to `max` completions off the queue.
    int reap(RingCompletion* out, int max) noexcept;

    // In a forked child: drops the parent's ring without writing to it.
    void forget_after_fork() noexcept;

    // user_data of requests whose completions mean nothing (cancels).
    static constexpr std::uint64_t kIgnore = 0;
    // RingCompletion::flags: a multishot request stays armed.
    static constexpr std::uint32_t kMore = 1u << 1;

private:
    Ring() = default;
    void* get_sqe() noexcept;
    unsigned queued() const noexcept;
    int submit(unsigned min_complete, unsigned flags, const void* arg, std::size_t arg_size) noexcept;

    std::atomic<int> fd_{-1};      // moved by the shim as epoll's (Poller::fd)
    void* rings_ = nullptr;        // SQ and CQ rings, one mapping
    std::size_t rings_size_ = 0;
    void* sqes_ = nullptr;
    std::size_t sqes_size_ = 0;
    unsigned* sq_head_ = nullptr;
    unsigned* sq_tail_ = nullptr;
    unsigned sq_mask_ = 0;
    unsigned sq_entries_ = 0;
    unsigned sqe_tail_ = 0;        // ours: next free entry
    unsigned* cq_head_ = nullptr;
    unsigned* cq_tail_ = nullptr;
    unsigned cq_mask_ = 0;
    void* cqes_ = nullptr;
    std::size_t ops_ = 0;          // RingOps queued or in flight
};

}  // namespace grove::detail

// The hub's io_uring (ring.hpp). The ring is set up and driven with the raw
// system calls; liburing's header gives the kernel's structures and the
// inline helpers that fill a submission entry. Nothing is linked from
// liburing itself, so every library made of libgrove's objects links
// without it.

#include "hub/ring.hpp"
#include "hub/poller.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#if GROVE_HAVE_URING
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hub/own_fd.hpp"
#include "sys/sys.hpp"
#endif

namespace grove::detail {

namespace {

// The backend for hubs that GROVE_IO does not name.
constexpr bool kRingByDefault = false;

}  // namespace

bool Ring::wanted() noexcept {
    const char* v = std::getenv("GROVE_IO");
    if (v == nullptr || *v == '\0') {
        return kRingByDefault;
    }
    if (std::strcmp(v, "uring") == 0) {
        return true;
    }
    return false;  // "epoll", or anything unknown
}

#if GROVE_HAVE_URING

namespace {

static_assert(Ring::kMore == IORING_CQE_F_MORE);

constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 2 * kSqEntries;

unsigned load_acquire(const unsigned* p) noexcept {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void store_release(unsigned* p, unsigned v) noexcept {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

int ring_setup(unsigned entries, struct io_uring_params* p) noexcept {
    return static_cast<int>(::syscall(__NR_io_uring_setup, entries, p));
}

}  // namespace

bool Ring::built() noexcept {
    return true;
}

Ring* Ring::open() noexcept {
    if (const char* v = std::getenv("GROVE_IO_URING_FAIL"); v != nullptr && std::strcmp(v, "1") == 0) {
        errno = ENOSYS;  // debug hook: behave as a kernel without io_uring
        return nullptr;
    }
    // Deferred task work (completions are run only when the hub enters),
    // else cooperative task work, else plain: newest kernels first.
    static constexpr unsigned kFlagSets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    struct io_uring_params p;
    int fd = -1;
    for (const unsigned flags : kFlagSets) {
        std::memset(&p, 0, sizeof p);
        p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = kCqEntries;
        fd = ring_setup(kSqEntries, &p);
        if (fd >= 0 || errno != EINVAL) {
            break;
        }
    }
    if (fd < 0) {
        return nullptr;  // ENOSYS, EPERM (io_uring_disabled), ENOMEM...
    }
    constexpr unsigned kNeeded = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
    if ((p.features & kNeeded) != kNeeded) {
        sys::close(fd);
        errno = ENOSYS;
        return nullptr;
    }
    auto* r = new (std::nothrow) Ring();
    if (r == nullptr) {
        sys::close(fd);
        errno = ENOMEM;
        return nullptr;
    }
    fd = own_fd(fd, r->fd_);
    const std::size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    const std::size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    r->rings_size_ = sq_size > cq_size ? sq_size : cq_size;
    void* rings = ::mmap(nullptr, r->rings_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                         static_cast<off_t>(IORING_OFF_SQ_RING));
    if (rings == MAP_FAILED) {
        const int e = errno;
        delete r;
        errno = e;
        return nullptr;
    }
    r->rings_ = rings;
    r->sqes_size_ = p.sq_entries * sizeof(struct io_uring_sqe);
    void* sqes = ::mmap(nullptr, r->sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                        static_cast<off_t>(IORING_OFF_SQES));
    if (sqes == MAP_FAILED) {
        const int e = errno;
        delete r;
        errno = e;
        return nullptr;
    }
    r->sqes_ = sqes;
    auto* base = static_cast<char*>(rings);
    r->sq_head_ = reinterpret_cast<unsigned*>(base + p.sq_off.head);
    r->sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
    r->sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
    r->sq_entries_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_entries);
    auto* array = reinterpret_cast<unsigned*>(base + p.sq_off.array);
    for (unsigned i = 0; i < r->sq_entries_; ++i) {
        array[i] = i;  // entry i of the queue is sqe i, always
    }
    r->sqe_tail_ = *r->sq_tail_;
    r->cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
    r->cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
    r->cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
    r->cqes_ = base + p.cq_off.cqes;
    return r;
}

Ring::~Ring() {
    if (sqes_ != nullptr) {
        ::munmap(sqes_, sqes_size_);
    }
    if (rings_ != nullptr) {
        ::munmap(rings_, rings_size_);
    }
    if (const int fd = fd_.load(std::memory_order_relaxed); fd >= 0) {
        own_fd_close(fd);  // the kernel cancels whatever is still in flight
    }
}

void Ring::forget_after_fork() noexcept {
    // The mappings are shared with the parent: unmap them (that only changes
    // this process) and close this process's reference; write nothing.
    ::munmap(sqes_, sqes_size_);
    ::munmap(rings_, rings_size_);
    const int fd = fd_.load(std::memory_order_relaxed);
    own_fd_close(fd);
    sqes_ = nullptr;
    rings_ = nullptr;
    fd_.store(-1, std::memory_order_relaxed);
}

unsigned Ring::queued() const noexcept {
    return sqe_tail_ - load_acquire(sq_head_);
}

bool Ring::needs_enter() const noexcept {
    return ops_ > 0 || sqe_tail_ != load_acquire(sq_head_);
}

void* Ring::get_sqe() noexcept {
    if (queued() >= sq_entries_) {
        // Full: hand the queue to the kernel now (rare: a burst of more
        // operations than entries between two turns of the hub loop).
        if (submit(0, 0, nullptr, 0) < 0 || queued() >= sq_entries_) {
            errno = EAGAIN;
            return nullptr;
        }
    }
    auto* sqe = static_cast<struct io_uring_sqe*>(sqes_) + (sqe_tail_ & sq_mask_);
    ++sqe_tail_;
    return sqe;
}

int Ring::submit(unsigned min_complete, unsigned flags, const void* arg, std::size_t arg_size) noexcept {
    store_release(sq_tail_, sqe_tail_);
    const unsigned n = queued();
    const int fd = fd_.load(std::memory_order_relaxed);
    const long r = ::syscall(__NR_io_uring_enter, fd, n, min_complete, flags, arg, arg_size);
    return r < 0 ? -errno : 0;
}

// The SQE's length is 32 bits; the kernel moves at most this much per
// read or write call anyway (MAX_RW_COUNT), so the count it returns is the
// plain call's.
constexpr std::size_t kMaxTransfer = 0x7ffff000;

bool Ring::prep_recv(RingOp& op, int fd, void* buf, std::size_t n, int flags) noexcept {
    auto* sqe = static_cast<struct io_uring_sqe*>(get_sqe());
    if (sqe == nullptr) {
        return false;
    }
    io_uring_prep_recv(sqe, fd, buf, std::min(n, kMaxTransfer), flags);
    sqe->user_data = reinterpret_cast<std::uintptr_t>(&op);
    ++ops_;
    return true;
}

bool Ring::prep_send(RingOp& op, int fd, const void* buf, std::size_t n, int flags) noexcept {
    auto* sqe = static_cast<struct io_uring_sqe*>(get_sqe());
    if (sqe == nullptr) {
        return false;
    }
    io_uring_prep_send(sqe, fd, buf, std::min(n, kMaxTransfer), flags);
    sqe->user_data = reinterpret_cast<std::uintptr_t>(&op);
    ++ops_;
    return true;
}

bool Ring::prep_cancel(const RingOp& op) noexcept {
    auto* sqe = static_cast<struct io_uring_sqe*>(get_sqe());
    if (sqe == nullptr) {
        return false;
    }
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
    sqe->user_data = kIgnore;
    return true;
}

bool Ring::prep_poll(int fd, std::uint64_t tag) noexcept {
    auto* sqe = static_cast<struct io_uring_sqe*>(get_sqe());
    if (sqe == nullptr) {
        return false;
    }
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    sqe->user_data = tag;
    return true;
}

int Ring::cancel_fd_now(int fd) noexcept {
    auto* sqe = static_cast<struct io_uring_sqe*>(get_sqe());
    if (sqe == nullptr) {
        return -errno;
    }
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    sqe->user_data = kIgnore;
    return submit(0, 0, nullptr, 0);
}

int Ring::enter(Nanos deadline) noexcept {
    const Nanos left = wait_left(deadline);
    int r;
    if (left == 0) {
        r = submit(0, IORING_ENTER_GETEVENTS, nullptr, 0);
    } else if (left < 0) {
        r = submit(1, IORING_ENTER_GETEVENTS, nullptr, 0);
    } else {
        struct __kernel_timespec ts;
        ts.tv_sec = left / 1'000'000'000;
        ts.tv_nsec = left % 1'000'000'000;
        struct io_uring_getevents_arg arg;
        std::memset(&arg, 0, sizeof arg);
        arg.ts = reinterpret_cast<std::uintptr_t>(&ts);
        r = submit(1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    }
    // ETIME: the deadline passed; EINTR: a signal; EBUSY/EAGAIN: the
    // completion queue is full, which the next reap makes room in.
    if (r == -ETIME || r == -EINTR || r == -EBUSY || r == -EAGAIN) {
        return 0;
    }
    return r;
}

int Ring::reap(RingCompletion* out, int max) noexcept {
    unsigned head = *cq_head_;
    const unsigned tail = load_acquire(cq_tail_);
    int n = 0;
    while (head != tail && n < max) {
        const auto* cqe = static_cast<const struct io_uring_cqe*>(cqes_) + (head & cq_mask_);
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        ++n;
        ++head;
    }
    store_release(cq_head_, head);
    return n;
}

#else  // no io_uring in this build: open() always fails

bool Ring::built() noexcept {
    return false;
}

Ring* Ring::open() noexcept {
    errno = ENOSYS;
    return nullptr;
}

Ring::~Ring() = default;
void Ring::forget_after_fork() noexcept {}
unsigned Ring::queued() const noexcept { return 0; }
bool Ring::needs_enter() const noexcept { return false; }
void* Ring::get_sqe() noexcept { return nullptr; }
int Ring::submit(unsigned, unsigned, const void*, std::size_t) noexcept { return -ENOSYS; }
bool Ring::prep_recv(RingOp&, int, void*, std::size_t, int) noexcept { return false; }
bool Ring::prep_send(RingOp&, int, const void*, std::size_t, int) noexcept { return false; }
bool Ring::prep_cancel(const RingOp&) noexcept { return false; }
bool Ring::prep_poll(int, std::uint64_t) noexcept { return false; }
int Ring::cancel_fd_now(int) noexcept { return -ENOSYS; }
int Ring::enter(Nanos) noexcept { return -ENOSYS; }
int Ring::reap(RingCompletion*, int) noexcept { return 0; }

#endif

}  // namespace grove::detail

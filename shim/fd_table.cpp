#include "fd_table.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "sys/sys.hpp"

namespace grove::shim {
namespace {

constexpr int kChunkBits = 12;
constexpr int kChunkSize = 1 << kChunkBits;
constexpr int kMaxChunks = 1 << 10;  // 4M fds: beyond any RLIMIT_NOFILE here

// The first chunk (fds 0 to 4095, all most programs have) is found through
// a pointer among the load-time data: a close costs no page of .bss.
GROVE_LOAD_DATA constinit std::atomic<FdEntry*> first_chunk{nullptr};
std::atomic<FdEntry*> more_chunks[kMaxChunks];  // [0] unused

std::atomic<FdEntry*>& chunk_slot(int index) noexcept {
    return index == 0 ? first_chunk : more_chunks[index];
}

FdEntry* chunk(int index) noexcept {
    FdEntry* c = chunk_slot(index).load(std::memory_order_acquire);
    if (c != nullptr) {
        return c;
    }
    // mmap, not malloc: this may run inside an interposed call made from
    // anywhere, malloc's own locks included. Zeroed pages are valid entries.
    void* p = ::mmap(nullptr, sizeof(FdEntry) * kChunkSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0);
    if (p == MAP_FAILED) {
        return nullptr;
    }
    auto* fresh = static_cast<FdEntry*>(p);
    if (!chunk_slot(index).compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
        ::munmap(p, sizeof(FdEntry) * kChunkSize);
        return c;
    }
    return fresh;
}

std::uint32_t socket_bits(int fd) noexcept {
    int type = 0;
    socklen_t len = sizeof type;
    if (sys::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        return 0;
    }
    return type == SOCK_STREAM ? kStreamSocket : type == SOCK_SEQPACKET ? kSeqpacket : 0;
}

}  // namespace

FdEntry* fd_entry(int fd) noexcept {
    if (fd < 0 || (fd >> kChunkBits) >= kMaxChunks) {
        return nullptr;
    }
    FdEntry* c = chunk(fd >> kChunkBits);
    return c != nullptr ? &c[fd & (kChunkSize - 1)] : nullptr;
}

namespace {
// The entry of fd if its chunk exists; never allocates.
FdEntry* fd_entry_if_any(int fd) noexcept {
    if (fd < 0 || (fd >> kChunkBits) >= kMaxChunks) {
        return nullptr;
    }
    FdEntry* c = chunk_slot(fd >> kChunkBits).load(std::memory_order_acquire);
    return c != nullptr ? &c[fd & (kChunkSize - 1)] : nullptr;
}

void reset(FdEntry* e, std::uint32_t bits) noexcept {
    e->mode_gen.store(0, std::memory_order_relaxed);
    e->bits.store(bits, std::memory_order_release);
    e->life.fetch_add(1, std::memory_order_acq_rel);
}
}  // namespace

void fd_created(int fd, FdKind kind, std::uint32_t extra) noexcept {
    if (FdEntry* e = fd_entry(fd)) {
        reset(e, kind | extra);
    }
}

void fd_released(int fd) noexcept {
    // A number whose chunk does not exist has nothing to reset: no call
    // classified it and no hub keeps a state for it (fd_life_of made the
    // chunk). A program that only opens and closes files maps no table.
    if (FdEntry* e = fd_entry_if_any(fd)) {
        reset(e, 0);
    }
}

void fd_released_range(unsigned first, unsigned last) noexcept {
    // Only chunks that exist: a number in a missing chunk was never seen.
    constexpr unsigned kTop = static_cast<unsigned>(kMaxChunks) << kChunkBits;
    if (first >= kTop) {
        return;
    }
    last = std::min(last, kTop - 1);
    for (unsigned c = first >> kChunkBits; c <= (last >> kChunkBits); ++c) {
        FdEntry* chunk_entries = chunk_slot(static_cast<int>(c)).load(std::memory_order_acquire);
        if (chunk_entries == nullptr) {
            continue;
        }
        const unsigned lo = std::max(first, c << kChunkBits);
        const unsigned hi = std::min(last, ((c + 1) << kChunkBits) - 1);
        for (unsigned fd = lo; fd <= hi; ++fd) {
            reset(&chunk_entries[fd & (kChunkSize - 1)], 0);
        }
    }
}

std::uint32_t fd_life_of(int fd) noexcept {
    const FdEntry* e = fd_entry(fd);
    return e != nullptr ? e->life.load(std::memory_order_acquire) : 0;
}

void fd_duplicated(int from, int to) noexcept {
    FdEntry* a = fd_entry(from);
    FdEntry* b = fd_entry(to);
    if (a == nullptr || b == nullptr) {
        return;
    }
    reset(b, a->bits.load(std::memory_order_acquire));
}

namespace {
std::atomic<bool> nowait_off{false};
}  // namespace

bool nowait_usable(std::uint32_t bits, bool writing) noexcept {
    const std::uint32_t kinds = writing ? kFifo : (kFifo | kCounter);
    const std::uint32_t refused = writing ? kNoNowaitWrite : kNoNowaitRead;
    return (bits & kinds) != 0 && (bits & refused) == 0 && !nowait_off.load(std::memory_order_relaxed);
}

bool nowait_refused(int fd, bool writing, int err) noexcept {
    const std::uint32_t bit = writing ? kNoNowaitWrite : kNoNowaitRead;
    if (err == ENOSYS || err == EPERM) {
        nowait_off.store(true, std::memory_order_relaxed);
        return true;
    }
    if (err != EOPNOTSUPP) {
        return false;
    }
    if (FdEntry* e = fd_entry(fd)) {
        e->bits.fetch_or(bit, std::memory_order_acq_rel);
    }
    return true;
}

FdKind fd_classify(int fd, FdEntry* e) noexcept {
    std::uint32_t bits = e->bits.load(std::memory_order_acquire);
    if ((bits & kKindMask) != kind_unknown) {
        return bits & kKindMask;
    }
    const int saved = errno;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        errno = saved;
        return kind_unknown;
    }
    std::uint32_t fresh;
    if (S_ISSOCK(st.st_mode)) {
        fresh = kind_socket | socket_bits(fd);
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
        fresh = kind_file;
    } else if (S_ISFIFO(st.st_mode)) {
        fresh = kind_stream | kFifo;
    } else {
        fresh = kind_stream;  // ttys and other devices, anon inodes (eventfd, timerfd, epoll...)
    }
    errno = saved;
    // Another thread may have classified it meanwhile; either answer is the same.
    e->bits.compare_exchange_strong(bits, fresh, std::memory_order_acq_rel);
    return fresh & kKindMask;
}

}  // namespace grove::shim

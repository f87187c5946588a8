#include "fd_table.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "sys/sys.hpp"

namespace grove::shim {
namespace {

constexpr int kChunkBits = 12;
constexpr int kChunkSize = 1 << kChunkBits;
constexpr int kMaxChunks = 1 << 10;  // 4M fds: beyond any RLIMIT_NOFILE here

std::atomic<FdEntry*> chunks[kMaxChunks];

FdEntry* chunk(int index) noexcept {
    FdEntry* c = chunks[index].load(std::memory_order_acquire);
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
    if (!chunks[index].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
        ::munmap(p, sizeof(FdEntry) * kChunkSize);
        return c;
    }
    return fresh;
}

}  // namespace

FdEntry* fd_entry(int fd) noexcept {
    if (fd < 0 || (fd >> kChunkBits) >= kMaxChunks) {
        return nullptr;
    }
    FdEntry* c = chunk(fd >> kChunkBits);
    return c != nullptr ? &c[fd & (kChunkSize - 1)] : nullptr;
}

void fd_created(int fd, FdKind kind, bool user_nonblock) noexcept {
    if (FdEntry* e = fd_entry(fd)) {
        e->rcvtimeo.store(0, std::memory_order_relaxed);
        e->sndtimeo.store(0, std::memory_order_relaxed);
        e->bits.store(kind | kOwned | (user_nonblock ? kUserNonblock : 0u), std::memory_order_release);
    }
}

void fd_released(int fd) noexcept {
    if (FdEntry* e = fd_entry(fd)) {
        e->bits.store(0, std::memory_order_release);
        e->rcvtimeo.store(0, std::memory_order_relaxed);
        e->sndtimeo.store(0, std::memory_order_relaxed);
    }
}

void fd_duplicated(int from, int to) noexcept {
    FdEntry* a = fd_entry(from);
    FdEntry* b = fd_entry(to);
    if (a == nullptr || b == nullptr) {
        return;
    }
    b->rcvtimeo.store(a->rcvtimeo.load(std::memory_order_relaxed), std::memory_order_relaxed);
    b->sndtimeo.store(a->sndtimeo.load(std::memory_order_relaxed), std::memory_order_relaxed);
    b->bits.store(a->bits.load(std::memory_order_acquire), std::memory_order_release);
}

std::uint32_t fd_classify(int fd, FdEntry* e) noexcept {
    std::uint32_t bits = e->bits.load(std::memory_order_acquire);
    if ((bits & kKindMask) != kind_unknown) {
        return bits & kKindMask;
    }
    const int saved = errno;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        return kind_unknown;
    }
    const int fl = sys::fcntl(fd, F_GETFL);
    errno = saved;
    std::uint32_t kind;
    if (S_ISSOCK(st.st_mode)) {
        kind = kind_socket;
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
        kind = kind_file;
    } else {
        kind = kind_stream;  // FIFOs, ttys, anon inodes (eventfd, timerfd...)
    }
    std::uint32_t fresh = kind;
    if (fl >= 0 && (fl & O_NONBLOCK) != 0) {
        fresh |= kUserNonblock;
    }
    // Another thread may have classified it meanwhile; either answer is the same.
    e->bits.compare_exchange_strong(bits, fresh, std::memory_order_acq_rel);
    return kind;
}

}  // namespace grove::shim

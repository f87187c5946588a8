#include "hub/own_fd.hpp"

#include <fcntl.h>
#include <sys/resource.h>

#include <cerrno>
#include <climits>

#include "sys/sys.hpp"

namespace grove::detail {

// Read by every close the shim sees.
GROVE_LOAD_DATA constinit std::atomic<int> own_fd_lo{0};
GROVE_LOAD_DATA constinit std::atomic<int> own_fd_end{0};

namespace {

// Above this the floor no longer follows the limit: the kernel sizes a
// process's fd table for its highest number and fork copies the table, so
// a limit of a million must not cost every process megabytes.
constexpr rlim_t kFloorCap = 4096;

// Where the library's numbers start: kOwnFdMax below the top of the soft
// RLIMIT_NOFILE (capped). A program is handed the lowest free numbers, and
// reaches the top only once it has nearly run out; shells keep their saved
// fds at 10 and up (bash's script fd at 255). A small limit gives half.
int fd_floor() noexcept {
    rlim_t top = kFloorCap;
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < top) {
        top = rl.rlim_cur;
    }
    return static_cast<int>(top > 2 * kOwnFdMax ? top - kOwnFdMax : top / 2);
}

struct Entry {
    std::atomic<int> fd_plus_one{0};     // 0: free (so the table starts zeroed)
    std::atomic<int>* holder = nullptr;  // changed under the lock only
};

Entry table[kOwnFdMax];
std::atomic<int> used{0};  // entries ever taken: the scans stop here

// Not a pthread mutex: the shim makes those cooperative, and a change here
// is a few instructions.
std::atomic_flag lock_flag = ATOMIC_FLAG_INIT;

struct Locked {
    Locked() noexcept {
        while (lock_flag.test_and_set(std::memory_order_acquire)) {
            while (lock_flag.test(std::memory_order_relaxed)) {
                __builtin_ia32_pause();
            }
        }
    }
    ~Locked() { lock_flag.clear(std::memory_order_release); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
};

Entry* find_locked(int fd) noexcept {
    const int n = used.load(std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
        if (table[i].fd_plus_one.load(std::memory_order_relaxed) == fd + 1) {
            return &table[i];
        }
    }
    return nullptr;
}

void update_range_locked() noexcept {
    int lo = INT_MAX;
    int hi = -1;
    const int n = used.load(std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
        const int fd = table[i].fd_plus_one.load(std::memory_order_relaxed) - 1;
        if (fd >= 0) {
            lo = fd < lo ? fd : lo;
            hi = fd > hi ? fd : hi;
        }
    }
    own_fd_lo.store(hi < 0 ? 0 : lo, std::memory_order_release);
    own_fd_end.store(hi + 1, std::memory_order_release);
}

}  // namespace

int high_fd(int fd) noexcept {
    const int floor = fd_floor();
    if (fd >= floor) {
        return fd;
    }
    const int saved = errno;
    const int moved = sys::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) {
        errno = saved;
        return fd;
    }
    sys::close(fd);
    return moved;
}

int own_fd(int fd, std::atomic<int>& holder) noexcept {
    fd = high_fd(fd);
    Locked lock;
    holder.store(fd, std::memory_order_relaxed);
    Entry* e = find_locked(-1);  // a free entry
    if (e == nullptr) {
        const int n = used.load(std::memory_order_relaxed);
        if (n == kOwnFdMax) {
            return fd;
        }
        e = &table[n];
        used.store(n + 1, std::memory_order_release);
    }
    e->holder = &holder;
    e->fd_plus_one.store(fd + 1, std::memory_order_release);
    update_range_locked();
    return fd;
}

void own_fd_close(int fd) noexcept {
    {
        Locked lock;
        if (Entry* e = find_locked(fd)) {
            e->fd_plus_one.store(0, std::memory_order_release);
            e->holder = nullptr;
            update_range_locked();
        }
    }
    sys::close(fd);
}

bool own_fd_move(int fd) noexcept {
    Locked lock;
    Entry* e = find_locked(fd);
    if (e == nullptr) {
        return true;  // released meanwhile
    }
    int moved = sys::fcntl(fd, F_DUPFD_CLOEXEC, fd_floor());
    if (moved < 0) {
        moved = sys::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // nothing free up there: anywhere
        if (moved < 0) {
            return false;
        }
    }
    e->holder->store(moved, std::memory_order_relaxed);
    e->fd_plus_one.store(moved + 1, std::memory_order_release);
    update_range_locked();
    return true;
}

bool own_fd_find(int fd) noexcept {
    const int n = used.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) {
        if (table[i].fd_plus_one.load(std::memory_order_acquire) == fd + 1) {
            return true;
        }
    }
    return false;
}

int own_fds_in(unsigned first, unsigned last, int* out, int max) noexcept {
    int count = 0;
    const int n = used.load(std::memory_order_acquire);
    for (int i = 0; i < n && count < max; ++i) {
        const int fd = table[i].fd_plus_one.load(std::memory_order_acquire) - 1;
        if (fd < 0 || static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) {
            continue;
        }
        int j = count++;
        for (; j > 0 && out[j - 1] > fd; --j) {
            out[j] = out[j - 1];
        }
        out[j] = fd;
    }
    return count;
}

}  // namespace grove::detail

// The library's own long-lived fds (a hub's epoll set and ring, a DNS
// channel's epoll set): kept out of the program's way.
//
// - high_fd() moves a new fd to a high number, so the numbers a program is
//   handed (open, socket, dup: the lowest free) and the ones it picks for
//   itself (shells save fds at 10 and up) never meet the library's.
// - own_fd() does that and records the number; the shim then hides it from
//   the program: close() says EBADF and leaves it open, close_range() and
//   closefrom() skip it, and dup2()/dup3() onto it first move the library's
//   fd elsewhere (own_fd_move), updating the variable that holds it.
// - Short-lived fds (a pidfd for one waitpid, a signalfd for one sigwait, a
//   poll's private epoll set) stay where the kernel put them: the program
//   cannot reach them between its own calls, except from another thread.
//
// Reads are lock-free (any thread, a signal handler); changes take a spin
// lock. A check races with a change made meanwhile by another thread: a
// program closing numbers it does not own while the library opens its own
// may close one, as it could close another thread's fd natively.
#pragma once

#include <atomic>

namespace grove::detail {

// fd moved to a high number, close-on-exec; fd itself is closed. If no
// number up there is free, fd is returned as it was.
int high_fd(int fd) noexcept;

// high_fd(fd), recorded as the library's: stored in `holder`, which
// own_fd_move() updates, and returned. Unrecorded when the table is full.
int own_fd(int fd, std::atomic<int>& holder) noexcept;

// Closes one of the library's own fds (no longer hidden).
void own_fd_close(int fd) noexcept;

// The program is about to make fd (one of the library's) another file: a
// duplicate of it goes to another number, into its holder. fd itself stays
// open until the program's call replaces it. false with errno set when no
// number is free.
bool own_fd_move(int fd) noexcept;

// Up to `max` of the library's fds in [first, last], ascending; returns how
// many.
int own_fds_in(unsigned first, unsigned last, int* out, int max) noexcept;

// The range of recorded numbers, [lo, end): one compare rules out every
// other fd while none is recorded (end 0), and all fds below the lowest
// (lo is near the top of the limit) otherwise. Both start at zero, as all
// of this file's data does: nothing here costs a page at load.
extern std::atomic<int> own_fd_lo;
extern std::atomic<int> own_fd_end;
bool own_fd_find(int fd) noexcept;

// Whether fd is one of the library's own.
inline bool own_fd_is(int fd) noexcept {
    return fd < own_fd_end.load(std::memory_order_relaxed) && fd >= own_fd_lo.load(std::memory_order_relaxed) &&
           own_fd_find(fd);
}

// Whether [first, last] may hold one of the library's fds.
inline bool own_fd_overlaps(unsigned first, unsigned last) noexcept {
    const int end = own_fd_end.load(std::memory_order_relaxed);
    return end > 0 && first < static_cast<unsigned>(end) &&
           last >= static_cast<unsigned>(own_fd_lo.load(std::memory_order_relaxed));
}

// Most recorded fds at once: a hub has two (epoll, ring), a DNS channel one;
// the floor leaves this many numbers below the top of the limit.
inline constexpr int kOwnFdMax = 256;

}  // namespace grove::detail

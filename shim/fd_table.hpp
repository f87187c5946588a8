// What the shim knows about each fd number, process-wide (fds are shared by
// every thread and hub): what kind of file it is, and a cache of what the
// kernel said about its mode (the user's O_NONBLOCK, socket timeouts).
//
// Lifetime: an entry is reset when the shim sees the number created (socket,
// accept, pipe...) or closed (close, fclose, close_range), and each reset
// counts one more life of the number (FdEntry::life), which every hub
// compares with the state it keeps for the number (Hub::fd_sync). A number opened and closed by
// paths the shim does not see keeps kind_unknown until first use, when it
// is classified with fstat; a stale kind is caught by the call itself
// (ENOTSOCK) and reclassified.
//
// Entries are atomics: any thread may create or close any fd. Chunks are
// mmap'd on demand and never freed, so a pointer stays valid.
#pragma once

#include <atomic>
#include <cstdint>

#include <grove/detail/time.hpp>

namespace grove::shim {

using FdKind = std::uint32_t;
inline constexpr FdKind kind_unknown = 0;  // not classified yet
inline constexpr FdKind kind_socket = 1;
inline constexpr FdKind kind_stream = 2;   // pipe, FIFO, tty, eventfd, timerfd...: pollable
inline constexpr FdKind kind_file = 3;     // regular file, directory, block device: never waits

inline constexpr std::uint32_t kKindMask = 0x3;
inline constexpr std::uint32_t kStreamSocket = 1u << 2;  // SOCK_STREAM: sends and MSG_WAITALL gather
inline constexpr std::uint32_t kSeqpacket = 1u << 3;     // SOCK_SEQPACKET: write() adds MSG_EOR
inline constexpr std::uint32_t kFifo = 1u << 4;          // pipe or FIFO: RWF_NOWAIT, else PIPE_BUF pieces
inline constexpr std::uint32_t kNegRcvTimeo = 1u << 5;   // SO_RCVTIMEO set negative: fail at once
inline constexpr std::uint32_t kNegSndTimeo = 1u << 6;   // (the kernel reports those as 0)
inline constexpr std::uint32_t kCounter = 1u << 7;       // eventfd/timerfd: less than 8 bytes is EINVAL at once
inline constexpr std::uint32_t kListening = 1u << 8;     // seen listening at an accept
inline constexpr std::uint32_t kNoNowaitRead = 1u << 9;   // preadv2 RWF_NOWAIT refused (EOPNOTSUPP)
inline constexpr std::uint32_t kNoNowaitWrite = 1u << 10; // pwritev2 RWF_NOWAIT refused

struct FdEntry {
    std::atomic<std::uint32_t> bits{0};
    // Cache of the kernel's answer, valid while mode_gen == the global
    // generation (shim.hpp: fd_mode).
    std::atomic<std::uint32_t> mode_gen{0};
    std::atomic<bool> nonblock{false};
    std::atomic<bool> readable{true};
    std::atomic<bool> writable{true};
    std::atomic<detail::Nanos> rcvtimeo{0};
    std::atomic<detail::Nanos> sndtimeo{0};
    std::atomic<std::uint32_t> life{0};  // bumped at every reset
};

// The entry for fd, or nullptr for a negative or absurd number.
FdEntry* fd_entry(int fd) noexcept;

// A new file now has this number (created through the shim). `extra` are
// kStreamSocket/kSeqpacket/kFifo/kCounter bits.
void fd_created(int fd, FdKind kind, std::uint32_t extra = 0) noexcept;
// The number is being closed or replaced (close, dup2 target).
void fd_released(int fd) noexcept;
// `to` now refers to the same open file as `from`.
void fd_duplicated(int from, int to) noexcept;
// Every number in [first, last] is being closed (close_range).
void fd_released_range(unsigned first, unsigned last) noexcept;
// The number's current life. The hubs' fd life function (hub.hpp:
// set_fd_life), called when a hub makes a state for the number: it makes
// the number's chunk, so that a later close of the number, which resets
// only entries whose chunk exists, is counted.
std::uint32_t fd_life_of(int fd) noexcept;

// RWF_NOWAIT (preadv2/pwritev2) is tried on pipes (reads and writes) and
// on eventfd/timerfd reads only: a pipe's answer with it is the blocking
// call's answer where that would not wait; a device's need not be (a read
// of /dev/zero with it comes back short when the kernel would reschedule).
// Whether an attempt is worth making on a file with `bits`, for reading or
// for writing.
bool nowait_usable(std::uint32_t bits, bool writing) noexcept;
// An attempt with RWF_NOWAIT failed with errno `err`: true (and the fd
// marked, so the next call does not try) if that says the file cannot
// take the flag (EOPNOTSUPP: a named FIFO), so the call goes the
// readiness-first way; a kernel without the calls or a filter refusing
// them (ENOSYS, EPERM) turns the flag off for the process. false: `err` is
// the call's own answer.
bool nowait_refused(int fd, bool writing, int err) noexcept;

// The entry's kind, classifying the fd with fstat on first use. Returns
// kind_unknown (errno left as it was) if fstat fails (EBADF).
FdKind fd_classify(int fd, FdEntry* e) noexcept;

}  // namespace grove::shim

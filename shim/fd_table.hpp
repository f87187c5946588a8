// What the shim knows about each fd number, process-wide (fds are shared by
// every thread and hub): what kind of file it is, whether the *user* asked
// for O_NONBLOCK, whether the shim set O_NONBLOCK behind the user's back, and
// the SO_RCVTIMEO / SO_SNDTIMEO the user set.
//
// Lifetime: an entry is reset when the shim sees the number created (socket,
// accept, pipe...) or closed. A number opened and closed by paths the shim
// does not see (inside libc: fopen/fclose) keeps `kind_unknown` until first
// use, when it is classified with fstat.
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
inline constexpr std::uint32_t kUserNonblock = 1u << 2;      // the user asked for O_NONBLOCK
inline constexpr std::uint32_t kInternalNonblock = 1u << 3;  // the shim set O_NONBLOCK; hidden from F_GETFL
inline constexpr std::uint32_t kOwned = 1u << 4;             // created through the shim: may be made non-blocking

struct FdEntry {
    std::atomic<std::uint32_t> bits{0};
    std::atomic<detail::Nanos> rcvtimeo{0};  // 0: none
    std::atomic<detail::Nanos> sndtimeo{0};
};

// The entry for fd, or nullptr for a negative or absurd number.
FdEntry* fd_entry(int fd) noexcept;

// A new file now has this number (created through the shim).
void fd_created(int fd, FdKind kind, bool user_nonblock) noexcept;
// The number is being closed or replaced (close, dup2 target).
void fd_released(int fd) noexcept;
// Copies what dup must keep: the kind and the shared file status flags (a
// dup shares O_NONBLOCK with its original); timeouts are per socket, shared.
void fd_duplicated(int from, int to) noexcept;

// The entry's kind, classifying the fd with fstat on first use. Returns
// kind_unknown (and leaves errno) if fstat fails (EBADF).
std::uint32_t fd_classify(int fd, FdEntry* e) noexcept;

}  // namespace grove::shim

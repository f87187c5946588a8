// The hub's readiness source. Contract, whatever the backend:
// - add(fd, token) registers fd once for its lifetime, edge-triggered, for
//   both directions; there is no per-wait modify. Returns 0, or -1 + errno
//   (EPERM for fds that cannot be polled, such as regular files).
// - wait(deadline, fn) blocks the thread until at least one registered fd
//   has a new edge or the deadline passes (kNoDeadline: no limit; 0: just
//   look), then calls fn(token, readable, writable, hangup) per event. Returns the
//   number of events, or -1 + errno (EINTR is returned, not retried).
// - Only the hub fiber calls wait().
// - A closed fd leaves the set by itself (the kernel drops it with its last
//   reference); stale events for a reused number are filtered by the token.
#pragma once

#include <grove/detail/time.hpp>

#include <atomic>
#include <cstdint>

namespace grove::detail {

// How long a backend's wait for `deadline` may block: -1 without limit
// (kNoDeadline), 0 just look (0, or passed), else the nanoseconds left.
inline Nanos wait_left(Nanos deadline) noexcept {
    if (deadline == kNoDeadline) {
        return -1;
    }
    if (deadline <= 0) {
        return 0;
    }
    const Nanos left = deadline - now_ns();
    return left < 0 ? 0 : left;
}

class Poller {
public:
    Poller();
    ~Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    int add(int fd, std::uint64_t token) noexcept;
    int remove(int fd) noexcept;

    template <class Fn>
    int wait(Nanos deadline, Fn&& on_event) noexcept {
        const int n = wait_raw(deadline);
        for (int i = 0; i < n; ++i) {
            std::uint64_t token;
            bool readable, writable, hangup;
            event(i, token, readable, writable, hangup);
            on_event(token, readable, writable, hangup);
        }
        return n;
    }

    // The set's number: the shim may move it (hub/own_fd.hpp), from any
    // thread, when the program makes its number another file.
    int fd() const noexcept { return epfd_.load(std::memory_order_relaxed); }
    // Events one wait() returns at most.
    static constexpr int kMaxEvents = 256;
    // After fork: a new, empty set for the child (the old one is shared).
    void reopen() noexcept;

private:
    int wait_raw(Nanos deadline) noexcept;
    void event(int i, std::uint64_t& token, bool& readable, bool& writable, bool& hangup) const noexcept;

    std::atomic<int> epfd_{-1};
    bool have_pwait2_ = true;
    alignas(8) unsigned char events_[kMaxEvents * 12];  // struct epoll_event[] (packed on x86-64)
};

}  // namespace grove::detail

#include "hub/poller.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "hub/own_fd.hpp"
#include "sys/sys.hpp"

namespace grove::detail {

static_assert(sizeof(struct epoll_event) == 12, "events_ is sized for packed epoll_event");

Poller::Poller() {
    const int fd = sys::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) {
        std::perror("grove: epoll_create1");
        std::abort();
    }
    own_fd(fd, epfd_);
}

Poller::~Poller() {
    const int fd = epfd_.load(std::memory_order_relaxed);
    if (fd >= 0) {
        own_fd_close(fd);
    }
}

void Poller::reopen() noexcept {
    const int fresh = sys::epoll_create1(EPOLL_CLOEXEC);
    if (fresh < 0) {
        std::perror("grove: epoll_create1 after fork");
        std::abort();
    }
    const int old = epfd_.load(std::memory_order_relaxed);
    own_fd_close(old);
    own_fd(fresh, epfd_);
}

int Poller::add(int fd, std::uint64_t token) noexcept {
    struct epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = token;
    return sys::epoll_ctl(Poller::fd(), EPOLL_CTL_ADD, fd, &ev);
}

int Poller::remove(int fd) noexcept {
    struct epoll_event ev{};
    return sys::epoll_ctl(Poller::fd(), EPOLL_CTL_DEL, fd, &ev);
}

int Poller::wait_raw(Nanos deadline) noexcept {
    auto* evs = reinterpret_cast<struct epoll_event*>(events_);
    const Nanos left = wait_left(deadline);
    if (have_pwait2_) {
        struct timespec ts;
        ts.tv_sec = left / 1'000'000'000;
        ts.tv_nsec = left % 1'000'000'000;
        const int n = sys::epoll_pwait2(fd(), evs, kMaxEvents, left < 0 ? nullptr : &ts, nullptr);
        if (n >= 0 || errno != ENOSYS) {
            return n;
        }
        have_pwait2_ = false;
    }
    // Millisecond fallback: round up, so a timer never fires early.
    int ms = -1;
    if (left >= 0) {
        const Nanos m = (left + 999'999) / 1'000'000;
        ms = m > 0x7fffffff ? 0x7fffffff : static_cast<int>(m);
    }
    return sys::epoll_wait(fd(), evs, kMaxEvents, ms);
}

void Poller::event(int i, std::uint64_t& token, bool& readable, bool& writable, bool& hangup) const noexcept {
    const auto* evs = reinterpret_cast<const struct epoll_event*>(events_);
    const std::uint32_t e = evs[i].events;
    token = evs[i].data.u64;
    readable = (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0;
    writable = (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    hangup = (e & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0;
}

}  // namespace grove::detail

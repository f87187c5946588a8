// The shim's settings, its start-up, and the per-call decision (shim.hpp).

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "shim.hpp"

namespace grove::shim {

Config config;
std::atomic<bool> ready{false};

namespace {

bool env_on(const char* name) noexcept {
    const char* v = std::getenv(name);
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

bool is_main_thread() noexcept {
    static thread_local int cached = 0;  // 0 unknown, 1 main, 2 other
    if (cached == 0) {
        cached = ::syscall(SYS_gettid) == ::getpid() ? 1 : 2;
    }
    return cached == 1;
}

// After every library's own constructor that matters: the raw table is
// filled at priority 101 in libgrove.
__attribute__((constructor(110))) void shim_init() {
    sys::resolve();
    config.disabled = env_on("GROVE_DISABLE");
    config.main_hub = env_on("GROVE_MAIN_HUB");
    ready.store(true, std::memory_order_release);
}

}  // namespace

Hub* hub_for_call() noexcept {
    if (!ready.load(std::memory_order_acquire) || config.disabled) [[unlikely]] {
        return nullptr;
    }
    Hub* h = Hub::current_if_any();
    if (h == nullptr) {
        if (!config.main_hub || !is_main_thread()) {
            return nullptr;
        }
        h = &Hub::current();
    }
    return h->in_hub_fiber() ? nullptr : h;
}

Path fd_path(int fd, Hub*& hub, FdEntry*& entry) noexcept {
    FdEntry* e = fd_entry(fd);
    if (e == nullptr) {
        return Path::passthrough;
    }
    std::uint32_t bits = e->bits.load(std::memory_order_acquire);
    std::uint32_t kind = bits & kKindMask;
    if (kind == kind_unknown) {
        kind = fd_classify(fd, e);
        if (kind == kind_unknown) {
            return Path::passthrough;  // fstat failed: the real call reports it
        }
        bits = e->bits.load(std::memory_order_acquire);
    }
    entry = e;
    if (kind == kind_file || (bits & kUserNonblock) != 0) {
        return Path::passthrough;
    }
    hub = hub_for_call();
    if (hub == nullptr) {
        return (bits & kInternalNonblock) != 0 ? Path::emulate : Path::passthrough;
    }
    if (kind != kind_socket && (bits & kOwned) == 0) {
        return Path::ready_first;
    }
    if ((bits & kInternalNonblock) == 0) {
        ErrnoGuard keep;
        const int fl = sys::fcntl(fd, F_GETFL);
        if (fl < 0) {
            return Path::passthrough;
        }
        if ((fl & O_NONBLOCK) == 0 && sys::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            return Path::ready_first;
        }
        e->bits.fetch_or(kInternalNonblock, std::memory_order_acq_rel);
    }
    return Path::retry;
}

int block_until_ready(int fd, short events, Nanos deadline) noexcept {
    for (;;) {
        int ms = -1;
        if (deadline != kNoDeadline) {
            const Nanos left = deadline - detail::now_ns();
            if (left <= 0) {
                errno = EAGAIN;
                return -1;
            }
            ms = static_cast<int>(std::min<Nanos>((left + 999'999) / 1'000'000, 0x7fffffff));
        }
        struct pollfd p{fd, events, 0};
        const int r = sys::poll(&p, 1, ms);
        if (r > 0) {
            return 0;  // errors and hang-ups too: the real call reports them
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
}

void adopt_new_fd(int fd, FdKind kind, bool user_nonblock) noexcept {
    if (fd < 0) {
        return;
    }
    fd_created(fd, kind, user_nonblock);
    if (Hub* h = Hub::current_if_any()) {
        h->fd_forget(fd);
    }
}

}  // namespace grove::shim

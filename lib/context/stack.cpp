#include "context/stack.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <cstring>

#if defined(GROVE_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace grove::detail {

namespace {

// Guarded stacks mapped in the whole process (in use or pooled, every hub).
std::atomic<std::size_t> guarded_count{0};

// A fresh stack's top page is written at once (the fiber's first frames).
// Populate it with one madvise instead of a page fault: on virtual machines
// whose faults trap to the hypervisor, a fault costs several times the
// call (measured: ~90 us against ~11 us per page). Kernels before 5.14 say
// EINVAL, and the fault happens as before.
void prefault_top(const Stack& s) noexcept {
#ifdef MADV_POPULATE_WRITE
    const std::size_t page = StackPool::page_size();
    const auto top = reinterpret_cast<std::uintptr_t>(s.top());
    const int saved = errno;
    ::madvise(reinterpret_cast<void*>((top - 1) & ~(page - 1)), page, MADV_POPULATE_WRITE);
    errno = saved;
#else
    (void)s;
#endif
}

}  // namespace

std::size_t parse_byte_size(const char* env, std::size_t fallback, std::size_t minimum) noexcept {
    if (env == nullptr) {
        return fallback;
    }
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (end == env) {
        return fallback;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1024;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1024 * 1024;
    }
    return v >= minimum ? static_cast<std::size_t>(v) : fallback;
}

std::size_t StackPool::page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return page;
}

std::size_t StackPool::default_size() noexcept {
#if defined(GROVE_ASAN)
    constexpr std::size_t kDefault = 1024 * 1024;  // ASan frames are several times larger
#else
    constexpr std::size_t kDefault = 256 * 1024;
#endif
    static const std::size_t size = parse_byte_size(std::getenv("GROVE_STACK_SIZE"), kDefault, 16 * 1024);
    return size;
}

namespace {

// GROVE_GUARDED_STACKS, or -1 when unset (or not a number).
long long guarded_stacks_setting() noexcept {
    static const long long setting = [] {
        if (const char* env = std::getenv("GROVE_GUARDED_STACKS")) {
            char* end = nullptr;
            const unsigned long long v = std::strtoull(env, &end, 10);
            if (end != env && *end == '\0' && v <= static_cast<unsigned long long>(LLONG_MAX)) {
                return static_cast<long long>(v);
            }
        }
        return -1LL;
    }();
    return setting;
}

}  // namespace

std::size_t StackPool::guard_budget() noexcept {
    static const std::size_t budget = [] {
        if (const long long set = guarded_stacks_setting(); set >= 0) {
            return static_cast<std::size_t>(set);
        }
        // Raw system calls: this runs while a hub is being made, where the
        // shim's interposed stdio or open would want a hub themselves.
        long max_maps = 65530;
        const long fd = ::syscall(SYS_openat, AT_FDCWD, "/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[32] = {};
            const long n = ::syscall(SYS_read, fd, buf, sizeof buf - 1);
            ::syscall(SYS_close, fd);
            const long v = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
            if (v > 0) {
                max_maps = v;
            }
        }
        // Two mappings per guarded stack; leave the program 8192 and most
        // of the rest for other uses (thread stacks, malloc arenas, files).
        const long spare = max_maps - 8192;
        return spare > 0 ? static_cast<std::size_t>(spare / 4) : std::size_t{0};
    }();
    return budget;
}

bool StackPool::may_guard_another(std::size_t guarded) noexcept {
    // Without a setting, the first kFreeGuarded stacks are guarded without
    // reading the kernel's map limit (a file, three system calls at a hub's
    // start): their 128 mappings fit in any limit of 8448 or more (the
    // default is 65530). Below that they come out of the 8192 the budget
    // leaves the program, and a mapping that fails still falls back to a
    // packed stack.
    constexpr std::size_t kFreeGuarded = 64;
    if (guarded < kFreeGuarded && guarded_stacks_setting() < 0) {
        return true;
    }
    return guarded < guard_budget();
}

std::size_t StackPool::guarded_mapped() noexcept {
    return guarded_count.load(std::memory_order_relaxed);
}

void* Stack::limit() const noexcept {
    return static_cast<char*>(base) + (guarded ? StackPool::page_size() : kRedZone);
}

std::size_t Stack::usable() const noexcept {
    return size - (guarded ? StackPool::page_size() : kRedZone);
}

bool Stack::guard_contains(const void* p) const noexcept {
    return guarded && p >= base && p < limit();
}

Stack StackPool::map_guarded(std::size_t total) noexcept {
    const std::size_t page = page_size();
    void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (p == MAP_FAILED) {
        return {};
    }
    if (::mprotect(p, page, PROT_NONE) != 0) {
        const int e = errno;
        ::munmap(p, total);
        errno = e;
        return {};
    }
    guarded_count.fetch_add(1, std::memory_order_relaxed);
    const Stack s{p, total, true};
    prefault_top(s);
    return s;
}

Stack StackPool::take_packed(std::size_t total) noexcept {
    for (std::size_t i = packed_free_.size(); i-- > 0;) {
        if (packed_free_[i].size == total) {
            Stack s = packed_free_[i];
            packed_free_[i] = packed_free_.back();
            packed_free_.pop_back();
            return s;
        }
    }
    if (carve_total_ != total || carve_next_ == carve_end_) {
        // Layout: a guard page, a leading page, then the stacks, each
        // shifted down by kRedZone from page alignment, so that a stack's
        // red zone is the last kRedZone bytes of the page holding the top
        // frames of the stack below it (that page is resident while that
        // stack is in use: checking the red zone costs no page fault and no
        // memory). The first stack's red zone lies in the leading page, and
        // the guard keeps its overflow out of whatever is mapped below.
        const std::size_t page = page_size();
        const std::size_t bytes = 2 * page + slab_stacks_ * total;
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) {
            return {};
        }
        if (::mprotect(p, page, PROT_NONE) != 0) {
            const int e = errno;
            ::munmap(p, bytes);
            errno = e;
            return {};
        }
        try {
            slabs_.push_back(Slab{p, bytes});
        } catch (...) {
            ::munmap(p, bytes);
            errno = ENOMEM;
            return {};
        }
        carve_next_ = static_cast<char*>(p) + 2 * page - Stack::kRedZone;
        carve_end_ = carve_next_ + slab_stacks_ * total;
        carve_total_ = total;
        if (slab_stacks_ < kMaxSlabStacks) {
            slab_stacks_ *= 2;
        }
    }
    const Stack s{carve_next_, total, false};
    carve_next_ += total;
    prefault_top(s);
    return s;
}

// Room made ahead at each measure, so that most spawns only count down.
constexpr std::size_t kRoomAhead = 32;

// What each list needs (free + out + expected) only grows in expect_one:
// room measured here lasts room_ more spawns.
bool StackPool::make_room() noexcept {
    const std::size_t want = expected_ + 1;
    auto room = [](auto& v, std::size_t n) {
        if (v.capacity() < n + kRoomAhead) {
            v.reserve(std::max(n + kRoomAhead, 2 * v.capacity()));
        }
    };
    try {
        room(guarded_free_, guarded_free_.size() + guarded_out_ + want);
        room(packed_free_, packed_free_.size() + packed_out_ + want);
        room(slabs_, slabs_.size() + want);
    } catch (...) {
        return false;
    }
    expected_ = want;
    room_ = std::min({guarded_free_.capacity() - (guarded_free_.size() + guarded_out_ + want),
                      packed_free_.capacity() - (packed_free_.size() + packed_out_ + want),
                      slabs_.capacity() - (slabs_.size() + want)});
    return true;
}

void StackPool::unexpect_one() noexcept {
    if (expected_ > 0) {
        --expected_;
    }
}

Stack StackPool::take(std::size_t size) noexcept {
    Stack s = take_any(size);
    unexpect_one();
    if (s.base != nullptr) {
        ++(s.guarded ? guarded_out_ : packed_out_);
    }
    return s;
}

Stack StackPool::take_any(std::size_t size) noexcept {
    const std::size_t page = page_size();
    if (size == 0) {
        size = default_size();
    }
    const std::size_t usable = (size + page - 1) / page * page;
    const std::size_t total = usable + page;
    // Most recently returned first: its pages are the warmest.
    for (std::size_t i = guarded_free_.size(); i-- > 0;) {
        if (guarded_free_[i].size == total) {
            Stack s = guarded_free_[i];
            guarded_free_[i] = guarded_free_.back();
            guarded_free_.pop_back();
            return s;
        }
    }
    if (may_guard_another(guarded_count.load(std::memory_order_relaxed))) {
        Stack s = map_guarded(total);
        if (s.base != nullptr || errno != ENOMEM) {
            return s;
        }
        // ENOMEM: out of mappings (or memory); a packed stack needs none.
    }
    return take_packed(total);
}

void StackPool::give(Stack s) noexcept {
    if (s.base == nullptr) {
        return;
    }
#if defined(GROVE_ASAN)
    // The fiber that ran here never returned from its frames: clear their
    // poison so the next fiber starts on clean memory.
    __asan_unpoison_memory_region(s.limit(), s.usable());
#endif
    std::vector<Stack>& pool = s.guarded ? guarded_free_ : packed_free_;
    std::size_t& out = s.guarded ? guarded_out_ : packed_out_;
    if (out > 0) {
        --out;
    }
    if (pool.size() < pool.capacity()) {
        pool.push_back(s);  // no allocation: take() made the room
        return;
    }
    if (s.guarded) {
        ::munmap(s.base, s.size);
        guarded_count.fetch_sub(1, std::memory_order_relaxed);
    }
    // A packed stack that cannot be pooled stays in its slab, unused.
}

void StackPool::trim(std::size_t at_most) noexcept {
    // The oldest returned first: the coldest.
    std::size_t n = 0;
    while (n < at_most && guarded_free_.size() > kKeepGuarded) {
        const Stack s = guarded_free_.front();
        guarded_free_.front() = guarded_free_.back();
        guarded_free_.pop_back();
        ::munmap(s.base, s.size);
        guarded_count.fetch_sub(1, std::memory_order_relaxed);
        ++n;
    }
}

StackPool::~StackPool() {
    for (Stack& s : guarded_free_) {
        ::munmap(s.base, s.size);
        guarded_count.fetch_sub(1, std::memory_order_relaxed);
    }
    for (Slab& slab : slabs_) {
        ::munmap(slab.base, slab.bytes);
    }
}

}  // namespace grove::detail

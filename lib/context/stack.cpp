#include "context/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#if defined(GROVE_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace grove::detail {

std::size_t StackPool::page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return page;
}

std::size_t StackPool::default_size() noexcept {
    static const std::size_t size = [] {
#if defined(GROVE_ASAN)
        std::size_t s = 1024 * 1024;  // ASan frames are several times larger
#else
        std::size_t s = 256 * 1024;
#endif
        if (const char* env = std::getenv("GROVE_STACK_SIZE")) {
            char* end = nullptr;
            unsigned long long v = std::strtoull(env, &end, 10);
            if (end != env) {
                if (*end == 'k' || *end == 'K') {
                    v *= 1024;
                } else if (*end == 'm' || *end == 'M') {
                    v *= 1024 * 1024;
                }
                if (v >= 16 * 1024) {
                    s = static_cast<std::size_t>(v);
                }
            }
        }
        return s;
    }();
    return size;
}

void* Stack::limit() const noexcept {
    return static_cast<char*>(base) + StackPool::page_size();
}

std::size_t Stack::usable() const noexcept {
    return size - StackPool::page_size();
}

bool Stack::guard_contains(const void* p) const noexcept {
    return p >= base && p < limit();
}

Stack StackPool::take(std::size_t size) noexcept {
    const std::size_t page = page_size();
    if (size == 0) {
        size = default_size();
    }
    const std::size_t usable = (size + page - 1) / page * page;
    const std::size_t total = usable + page;
    // Most recently returned first: its pages are the warmest.
    for (std::size_t i = free_.size(); i-- > 0;) {
        if (free_[i].size == total) {
            Stack s = free_[i];
            free_[i] = free_.back();
            free_.pop_back();
            return s;
        }
    }
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
    return Stack{p, total};
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
    if (free_.size() < kMaxPooled) {
        free_.push_back(s);
        return;
    }
    ::munmap(s.base, s.size);
}

StackPool::~StackPool() {
    for (Stack& s : free_) {
        ::munmap(s.base, s.size);
    }
}

}  // namespace grove::detail

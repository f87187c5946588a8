// Fiber stacks: mmap'd, committed lazily by the kernel (only touched pages
// cost memory), with one PROT_NONE guard page below each, and recycled
// through a per-hub pool so a warm spawn makes no syscall.
//
// Guard pages cost a VMA each (two per stack, with the stack itself), and
// vm.max_map_count (65530 by default) caps the number of live stacks at
// about 32k. Fibers take their stack when they first run, not at spawn, so
// queued fibers do not count against that cap.
#pragma once

#include <cstddef>
#include <vector>

namespace grove::detail {

struct Stack {
    void* base = nullptr;     // lowest address of the mapping (the guard page)
    std::size_t size = 0;     // whole mapping, guard included
    void* top() const noexcept { return static_cast<char*>(base) + size; }
    void* limit() const noexcept;  // lowest usable address (above the guard)
    std::size_t usable() const noexcept;
    bool contains(const void* p) const noexcept {
        return p >= base && p < top();
    }
    bool guard_contains(const void* p) const noexcept;
};

class StackPool {
public:
    StackPool() = default;
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    // A stack of at least `size` usable bytes (rounded up to pages); a
    // pooled one if its size matches. Returns {nullptr, 0} with errno set
    // when the kernel refuses a new mapping.
    Stack take(std::size_t size) noexcept;
    // Returns a stack to the pool, or unmaps it past the pool's limit.
    void give(Stack s) noexcept;

    static std::size_t default_size() noexcept;  // GROVE_STACK_SIZE, else 256 KiB
    static std::size_t page_size() noexcept;

private:
    std::vector<Stack> free_;
    static constexpr std::size_t kMaxPooled = 1024;
};

}  // namespace grove::detail

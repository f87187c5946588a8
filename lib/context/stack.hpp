// Fiber stacks: mmap'd with MAP_NORESERVE, committed lazily by the kernel
// (only touched pages cost memory), and recycled through a per-hub pool so
// a warm spawn makes no syscall.
//
// Two kinds, because of vm.max_map_count (65530 by default): a stack with
// its own PROT_NONE guard page costs two mappings (VMAs), so guarded stacks
// alone would cap a process near 32k live fibers.
// - Guarded (the default, while the process holds fewer than the guard
//   budget: GROVE_GUARDED_STACKS, else a quarter of what max_map_count leaves
//   after 8192 for the program): an overflow faults on the guard page and
//   is reported with the fiber's name.
// - Packed, past the budget: carved from large shared mappings (one mapping
//   for many stacks), no guard page. The lowest kRedZone bytes of each are a
//   red zone that must stay zero; the hub checks it each time the fiber
//   switches away and aborts with a report if it was written. That detects
//   an overflow before any other fiber can run on the memory it spoiled,
//   but does not prevent it, and a frame that jumps the red zone without
//   writing into it goes unnoticed. The red zone shares a page with the top
//   frames of the stack below (see take_packed), so checking it costs no
//   page fault and no memory.
//
// Fibers take their stack when they first run, not at spawn, so queued
// fibers do not count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace grove::detail {

// A byte count as the GROVE_*_SIZE settings spell it ("65536", "64k",
// "2M"); `fallback` when text is null, not a number, or below `minimum`.
std::size_t parse_byte_size(const char* text, std::size_t fallback, std::size_t minimum) noexcept;

struct Stack {
    void* base = nullptr;     // lowest address (the guard page, or the red zone)
    std::size_t size = 0;     // whole stack, guard or red zone included
    bool guarded = true;

    static constexpr std::size_t kRedZone = 1024;

    void* top() const noexcept { return static_cast<char*>(base) + size; }
    void* limit() const noexcept;  // lowest usable address
    std::size_t usable() const noexcept;
    bool contains(const void* p) const noexcept { return p >= base && p < top(); }
    bool guard_contains(const void* p) const noexcept;
    // A packed stack whose red zone was written: the fiber overflowed.
    bool red_zone_spoiled() const noexcept {
        if (guarded) {
            return false;
        }
        const auto* w = static_cast<const std::uint64_t*>(base);
        std::uint64_t any = 0;
        for (std::size_t i = 0; i < kRedZone / sizeof(std::uint64_t); ++i) {
            any |= w[i];
        }
        return any != 0;
    }
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
    // Returns a stack to the pool.
    void give(Stack s) noexcept;
    // take() and give() run on the switch path, in whatever the fiber that
    // switches was doing (inside malloc, say), so they never allocate: the
    // spawn of a fiber makes room first for the stack it will take
    // (expect_one; false if it cannot), and a fiber that ends unstarted
    // gives that room back (unexpect_one).
    bool expect_one() noexcept {
        if (room_ > 0) [[likely]] {  // what each list needs only grows here
            --room_;
            ++expected_;
            return true;
        }
        return make_room();
    }
    void unexpect_one() noexcept;
    // Guarded stacks pooled beyond kKeepGuarded: the hub unmaps them a few
    // at a time when it has nothing else to do (trim).
    bool has_excess() const noexcept { return guarded_free_.size() > kKeepGuarded; }
    void trim(std::size_t at_most) noexcept;

    static std::size_t default_size() noexcept;  // GROVE_STACK_SIZE, else 256 KiB
    static std::size_t page_size() noexcept;
    // How many guarded stacks the process may hold (mapped, in use or pooled).
    static std::size_t guard_budget() noexcept;
    // Whether a stack beyond `guarded` guarded ones may be guarded too.
    static bool may_guard_another(std::size_t guarded) noexcept;
    static std::size_t guarded_mapped() noexcept;  // process-wide, now

private:
    Stack map_guarded(std::size_t total) noexcept;
    Stack take_packed(std::size_t total) noexcept;
    Stack take_any(std::size_t size) noexcept;
    bool make_room() noexcept;

    struct Slab {
        void* base;
        std::size_t bytes;
    };
    std::vector<Stack> guarded_free_;
    std::vector<Stack> packed_free_;
    std::size_t guarded_out_ = 0;  // taken and not given back
    std::size_t packed_out_ = 0;
    std::size_t expected_ = 0;     // fibers spawned, their stacks not taken yet
    std::size_t room_ = 0;         // expect_one calls the lists have room for
    std::vector<Slab> slabs_;
    // Carving state of the newest slab.
    char* carve_next_ = nullptr;
    char* carve_end_ = nullptr;
    std::size_t carve_total_ = 0;
    std::size_t slab_stacks_ = 16;  // stacks in the next slab; doubles up to kMaxSlabStacks

    static constexpr std::size_t kKeepGuarded = 1024;
    static constexpr std::size_t kMaxSlabStacks = 1024;
};

}  // namespace grove::detail

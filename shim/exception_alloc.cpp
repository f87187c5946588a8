// Exception objects for the preload library's private C++ runtime: only in
// libgrove_shim_preload.so.
//
// libstdc++'s own allocator comes with an emergency pool that it mallocs
// when the library is loaded (some 70 KiB): in a program that never throws
// through the shim, three page faults and a heap break at start-up for
// nothing. Defining the four C++ ABI entries here keeps that part of
// libstdc++ out of the link. An exception is thrown from the shim only when
// a green thread exits; if malloc fails then, the process ends as it would
// have with the pool exhausted.
//
// The ABI puts the runtime's bookkeeping in front of the thrown object: on
// LP64 a reference count padded to 16 bytes, then the 112-byte
// __cxa_exception (its unwind header ends 16-aligned, where the object
// begins). A dependent exception (std::rethrow_exception) is a header of
// the same 112 bytes alone. tests/shim/run/exception_alloc.cpp checks both
// against the runtime's own view of a caught exception.

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace {

constexpr std::size_t kHeader = 128;
constexpr std::size_t kDependent = 112;

[[noreturn, gnu::cold]] void out_of_memory() noexcept {
    static const char msg[] = "grove: no memory for an exception object\n";
    (void)!::write(2, msg, sizeof msg - 1);
    std::abort();
}

}  // namespace

#define GROVE_ABI extern "C" [[gnu::visibility("hidden")]]

GROVE_ABI void* __cxa_allocate_exception(std::size_t size) noexcept {
    void* p = std::malloc(size + kHeader);
    if (p == nullptr) {
        out_of_memory();
    }
    std::memset(p, 0, kHeader);
    return static_cast<char*>(p) + kHeader;
}

GROVE_ABI void __cxa_free_exception(void* object) noexcept {
    std::free(static_cast<char*>(object) - kHeader);
}

GROVE_ABI void* __cxa_allocate_dependent_exception() noexcept {
    void* p = std::calloc(1, kDependent);
    if (p == nullptr) {
        out_of_memory();
    }
    return p;
}

GROVE_ABI void __cxa_free_dependent_exception(void* p) noexcept {
    std::free(p);
}

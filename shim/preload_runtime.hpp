// The preload library's private C++ runtime (lazy_unwinder.cpp,
// exception_alloc.cpp): only libgrove_shim_preload.so links them.
#pragma once

namespace grove::shim {

// Loads the unwinder that the preload library defers until first needed,
// where glibc loads its own: in pthread_cancel's caller and at
// pthread_exit, so that the unwind of a cancel acted on later (perhaps at a
// cancellation point inside a signal handler) never runs the loader. Only
// that library defines it: elsewhere libgcc_s is loaded with the program
// and the address is null.
[[gnu::weak]] void load_unwinder() noexcept;

}  // namespace grove::shim

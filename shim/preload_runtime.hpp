// The preload library's private C++ runtime (lazy_unwinder.cpp,
// exception_alloc.cpp): only libgrove_shim_preload.so links them.
#pragma once

namespace grove::shim {

// Loads the unwinder that the preload library defers until first needed.
// Only that library defines it: elsewhere libgcc_s is loaded with the
// program and the address is null.
[[gnu::weak]] void load_unwinder() noexcept;

}  // namespace grove::shim

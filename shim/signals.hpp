// What the shim knows of the user's signal handlers (signal_calls.cpp).
#pragma once

#include <cstdint>

namespace grove::shim {

// Whether calls interrupted by `signals` (a bit per signal number) restart:
// true only if each of them has a handler installed with SA_RESTART.
bool restart_after(std::uint64_t signals) noexcept;

}  // namespace grove::shim

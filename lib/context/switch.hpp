// The context switch: Boost.Context's fcontext jump, wrapped with the
// AddressSanitizer fiber annotations. noexcept: nothing may unwind across a
// switch.
//
// Protocol: a fiber that switches away passes itself as `data`; the side
// that resumes receives {its predecessor's context, predecessor}, and stores
// the context into the predecessor's record (unless the predecessor has
// finished, whose stack is then recycled). See Hub::after_switch.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>

#if defined(GROVE_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace grove::detail {

using Context = boost::context::detail::fcontext_t;
using Transfer = boost::context::detail::transfer_t;
using EntryFn = void (*)(Transfer);

inline Context make_context(void* top, std::size_t size, EntryFn fn) noexcept {
    return boost::context::detail::make_fcontext(top, size, fn);
}

inline Transfer jump(Context to, void* data) noexcept {
    return boost::context::detail::jump_fcontext(to, data);
}

// ASan must be told which stack is about to run (start) and, once there,
// which one was left (finish). A no-op without -fsanitize=address.
struct SanitizerState {
    void* fake_stack = nullptr;
    const void* bottom = nullptr;  // lowest address of the stack
    std::size_t size = 0;
};

inline void sanitizer_start_switch(SanitizerState* from, const SanitizerState& to, bool from_dying) noexcept {
#if defined(GROVE_ASAN)
    __sanitizer_start_switch_fiber(from_dying ? nullptr : &from->fake_stack, to.bottom, to.size);
#else
    (void)from;
    (void)to;
    (void)from_dying;
#endif
}

inline void sanitizer_finish_switch(SanitizerState& self, SanitizerState* prev) noexcept {
#if defined(GROVE_ASAN)
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(self.fake_stack, &bottom, &size);
    if (prev != nullptr && prev->bottom == nullptr) {
        // First switch away from the thread's own stack: learn its bounds.
        prev->bottom = bottom;
        prev->size = size;
    }
#else
    (void)self;
    (void)prev;
#endif
}

}  // namespace grove::detail

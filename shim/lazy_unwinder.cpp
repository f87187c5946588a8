// The unwinder, loaded when first needed: only in libgrove_shim_preload.so.
//
// The self-contained preload library must share libgcc_s's unwinder with
// the program (a green thread's exit unwinds through the program's frames,
// and two unwinders cannot share one unwind), but loading libgcc_s at start-
// up costs a program that never unwinds a tenth of its start (an open, four
// mappings, half a dozen page faults). So the library is linked with
// --wrap for every unwinder entry it uses: each call lands here, and the
// first one loads libgcc_s.so.1 (or finds the copy the program already has)
// and looks the entry up, as glibc itself does for pthread_cancel. The hot
// path is a load and a tail call. A program whose green threads never exit
// by unwinding never loads it: green threads load it when glibc loads its
// own, in pthread_cancel's caller and at pthread_exit (load_unwinder), and
// a C++ exception at its first throw. That loading runs on the caller's
// stack, a green thread's too: it takes some 2.5 KiB more than a later
// throw (measured with glibc 2.36).

#include <dlfcn.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "preload_runtime.hpp"


namespace grove::shim {

namespace {

std::atomic<void*> unwinder_lib{nullptr};

[[noreturn, gnu::cold]] void no_unwinder(const char* what) noexcept {
    static const char head[] = "grove: the unwinder is needed and cannot be loaded: ";
    (void)!::write(2, head, sizeof head - 1);
    (void)!::write(2, what, std::strlen(what));
    (void)!::write(2, "\n", 1);
    std::abort();
}

[[gnu::cold, gnu::noinline]] void* lookup(const char* name) noexcept {
    void* lib = unwinder_lib.load(std::memory_order_acquire);
    if (lib == nullptr) {
        lib = ::dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr) {
            const char* why = ::dlerror();
            no_unwinder(why != nullptr ? why : "libgcc_s.so.1");
        }
        unwinder_lib.store(lib, std::memory_order_release);
    }
    void* f = ::dlsym(lib, name);
    if (f == nullptr) {
        no_unwinder(name);
    }
    return f;
}

template <class F>
inline F entry(std::atomic<F>& slot, const char* name) noexcept {
    F f = slot.load(std::memory_order_acquire);
    if (f == nullptr) [[unlikely]] {
        f = reinterpret_cast<F>(lookup(name));
        slot.store(f, std::memory_order_release);
    }
    return f;
}

}  // namespace

void load_unwinder() noexcept {
    if (unwinder_lib.load(std::memory_order_acquire) == nullptr) {
        lookup("_Unwind_RaiseException");
    }
}

}  // namespace grove::shim

// Each wrapper forwards its arguments to libgcc_s's entry of the same name.
#define GROVE_UNWIND_WRAP(ret, name, params, args)                               \
    extern "C" [[gnu::visibility("hidden")]] ret __wrap_##name params {                                        \
        static std::atomic<ret(*) params> slot{nullptr};                         \
        return ::grove::shim::entry(slot, #name) args;                           \
    }

GROVE_UNWIND_WRAP(_Unwind_Reason_Code, _Unwind_RaiseException, (_Unwind_Exception * e), (e))
GROVE_UNWIND_WRAP(_Unwind_Reason_Code, _Unwind_ForcedUnwind, (_Unwind_Exception * e, _Unwind_Stop_Fn stop, void* arg),
                  (e, stop, arg))
GROVE_UNWIND_WRAP(void, _Unwind_Resume, (_Unwind_Exception * e), (e))
GROVE_UNWIND_WRAP(_Unwind_Reason_Code, _Unwind_Resume_or_Rethrow, (_Unwind_Exception * e), (e))
GROVE_UNWIND_WRAP(void, _Unwind_DeleteException, (_Unwind_Exception * e), (e))
GROVE_UNWIND_WRAP(_Unwind_Reason_Code, _Unwind_Backtrace, (_Unwind_Trace_Fn fn, void* arg), (fn, arg))
GROVE_UNWIND_WRAP(_Unwind_Word, _Unwind_GetCFA, (_Unwind_Context * c), (c))
GROVE_UNWIND_WRAP(_Unwind_Ptr, _Unwind_GetDataRelBase, (_Unwind_Context * c), (c))
GROVE_UNWIND_WRAP(_Unwind_Ptr, _Unwind_GetTextRelBase, (_Unwind_Context * c), (c))
GROVE_UNWIND_WRAP(_Unwind_Ptr, _Unwind_GetRegionStart, (_Unwind_Context * c), (c))
GROVE_UNWIND_WRAP(_Unwind_Ptr, _Unwind_GetIPInfo, (_Unwind_Context * c, int* before), (c, before))
GROVE_UNWIND_WRAP(void*, _Unwind_GetLanguageSpecificData, (_Unwind_Context * c), (c))
GROVE_UNWIND_WRAP(void, _Unwind_SetGR, (_Unwind_Context * c, int reg, _Unwind_Word value), (c, reg, value))
GROVE_UNWIND_WRAP(void, _Unwind_SetIP, (_Unwind_Context * c, _Unwind_Ptr ip), (c, ip))

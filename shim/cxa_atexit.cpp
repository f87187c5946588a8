// Registrations of static destructors in the preload library's private C++
// runtime: only in libgrove_shim_preload.so (linked with
// --wrap=__cxa_atexit).
//
// libstdc++'s error categories register their destructors while the
// library loads, through a lazily bound call: in a program that never calls
// the shim, the process's only lazy binding (~10 us here, where programs
// bind everything at their own start). Wrapped, the call goes through a GOT
// entry the loader fills with the library's other data references.

#include "sys/sys.hpp"  // GROVE_LOAD_TEXT

extern "C" int __real___cxa_atexit(void (*fn)(void*), void* arg, void* dso) noexcept __attribute__((noplt));

extern "C" [[gnu::visibility("hidden")]] GROVE_LOAD_TEXT int __wrap___cxa_atexit(void (*fn)(void*), void* arg, void* dso) noexcept {
    return __real___cxa_atexit(fn, arg, dso);
}

// std::terminate's message for the preload library's private C++ runtime:
// only in libgrove_shim_preload.so.
//
// libstdc++'s default handler demangles the name of the exception's type,
// and its demangler brings 3.4 KiB of tables of pointers: 220 relocations
// at every load and a second page of relocated read-only data for the
// loader to write, in every program the shim is preloaded into, for a
// message that is printed, if ever, on the way to abort(). Defining the
// handler here keeps the demangler out of the link; the message is
// libstdc++'s. The type's name is demangled by the program's own libstdc++
// when it has one (a C++ exception that escapes a green thread reaches
// this handler: the message is then what the program prints without the
// shim), else printed as the compiler spells it (c++filt reads it).

#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <typeinfo>

#include <unistd.h>

namespace {

void say(const char* s) noexcept {
    (void)!::write(2, s, std::strlen(s));
}

bool terminating = false;

}  // namespace

namespace __gnu_cxx {

[[gnu::cold]] void __verbose_terminate_handler() {
    if (terminating) {
        say("terminate called recursively\n");
        std::abort();
    }
    terminating = true;
    const std::type_info* type = abi::__cxa_current_exception_type();
    if (type == nullptr) {
        say("terminate called without an active exception\n");
        std::abort();
    }
    const char* name = type->name();
    if (name[0] == '*') {
        ++name;
    }
    // Not this library's demangler (left out): the program's, found in the
    // global scope, where this library exports none.
    using demangle_fn = char* (*)(const char*, char*, std::size_t*, int*);
    auto demangle = reinterpret_cast<demangle_fn>(::dlsym(RTLD_DEFAULT, "__cxa_demangle"));
    int status = -1;
    char* readable = demangle != nullptr ? demangle(name, nullptr, nullptr, &status) : nullptr;
    say("terminate called after throwing an instance of '");
    say(status == 0 && readable != nullptr ? readable : name);
    say("'\n");
    std::free(readable);
    try {
        throw;
    } catch (const std::exception& e) {
        say("  what():  ");
        say(e.what());
        say("\n");
    } catch (...) {
    }
    std::abort();
}

}  // namespace __gnu_cxx

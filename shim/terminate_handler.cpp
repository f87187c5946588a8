// std::terminate's message for the preload library's private C++ runtime:
// only in libgrove_shim_preload.so.
//
// libstdc++'s default handler demangles the name of the exception's type,
// and its demangler brings 3.4 KiB of tables of pointers: 220 relocations
// at every load and a second page of relocated read-only data for the
// loader to write, in every program the shim is preloaded into, for a
// message that is printed, if ever, on the way to abort(). Defining the
// handler here keeps the demangler out of the link; the message is
// libstdc++'s, with the type's name as the compiler spells it (c++filt
// reads it).

#include <cxxabi.h>

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
    say("terminate called after throwing an instance of '");
    say(name[0] == '*' ? name + 1 : name);
    say("'\n");
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

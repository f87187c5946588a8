// The preload library's private C++ runtime, built the same way into this
// program: libstdc++ linked statically, exception objects from
// shim/exception_alloc.cpp, every unwinder entry wrapped by
// shim/lazy_unwinder.cpp so that libgcc_s loads at the first throw.
//
// Checks, with plain assertions rather than Boost.Test (whose own
// exceptions would load the unwinder before the first check):
//   - libgcc_s is not loaded before the first throw, and is after it;
//   - the header exception_alloc.cpp puts in front of a thrown object is
//     where the runtime keeps its bookkeeping: the reference count 128
//     bytes before the object, the __cxa_exception 112 bytes before it;
//   - throw, catch, rethrow, std::exception_ptr (dependent exceptions),
//     nested exceptions and exceptions thrown during an unwind work, and
//     a hundred thousand of each free what they allocate;
//   - a forced unwind (what a green thread's exit is) runs destructors;
//   - std::terminate (shim/terminate_handler.cpp, in place of libstdc++'s
//     demangling handler) says what was thrown and aborts.
#include <link.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

extern "C" void* __cxa_get_globals() noexcept;  // the caught-exception stack, first field

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) {
        ++failures;
    }
}

int note_unwinder(struct dl_phdr_info* info, std::size_t, void* found) {
    if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libgcc_s.so") != nullptr) {
        *static_cast<bool*>(found) = true;
    }
    return 0;
}

bool unwinder_loaded() {
    bool found = false;
    dl_iterate_phdr(note_unwinder, &found);
    return found;
}

// The newest caught exception's __cxa_exception.
const char* caught_header() {
    return *static_cast<const char* const*>(__cxa_get_globals());
}

int refcount_of(const void* object) {
    int n;
    std::memcpy(&n, static_cast<const char*>(object) - 128, sizeof n);
    return n;
}

struct Payload {
    long value;
    char bytes[40];
};

std::size_t heap_in_use() {
    return mallinfo2().uordblks;
}

int destroyed = 0;
struct Counted {
    ~Counted() { ++destroyed; }
};

struct ThrowsInDtor {
    ~ThrowsInDtor() noexcept(false) {
        try {
            throw std::runtime_error("inner");
        } catch (const std::runtime_error&) {
        }
    }
};

void round_trip_all_kinds() {
    try {
        throw Payload{7, {}};
    } catch (const Payload& p) {
        if (p.value != 7) {
            std::abort();
        }
    }
    std::exception_ptr e;
    try {
        throw std::runtime_error("kept");
    } catch (...) {
        e = std::current_exception();
    }
    try {
        std::rethrow_exception(e);
    } catch (const std::runtime_error&) {
    }
    try {
        try {
            throw std::logic_error("inner");
        } catch (...) {
            std::throw_with_nested(std::runtime_error("outer"));
        }
    } catch (const std::runtime_error& outer) {
        try {
            std::rethrow_if_nested(outer);
        } catch (const std::logic_error&) {
        }
    }
    try {
        ThrowsInDtor t;
        throw 1;
    } catch (int) {
    }
}

// Stops the forced unwind once it has passed the frame that holds the
// jump buffer (as the shim's green-thread exit does with a cleanup buffer).
_Unwind_Reason_Code stop_at_buffer(int, _Unwind_Action actions, _Unwind_Exception_Class, _Unwind_Exception*,
                                   struct _Unwind_Context* ctx, void* param) {
    if ((actions & _UA_END_OF_STACK) != 0 || _Unwind_GetCFA(ctx) > reinterpret_cast<std::uintptr_t>(param)) {
        std::longjmp(*static_cast<std::jmp_buf*>(param), 1);
    }
    return _URC_NO_REASON;
}

_Unwind_Exception forced{};

[[gnu::noinline]] void forced_unwind_through(std::jmp_buf* back) {
    Counted c;
    forced.exception_class = 0x4752544553540000ULL;
    _Unwind_ForcedUnwind(&forced, stop_at_buffer, back);
}

// What a child that runs `body` prints on stderr before it dies, and how it
// dies.
std::string stderr_of_child(void (*body)(), int* status) {
    int p[2];
    if (::pipe(p) != 0) {
        return "(no pipe)";
    }
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(p[1], 2);
        ::close(p[0]);
        ::close(p[1]);
        body();
        ::_exit(0);
    }
    ::close(p[1]);
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(p[0]);
    ::waitpid(pid, status, 0);
    return out;
}

[[gnu::noinline]] void throw_boom() {
    throw std::runtime_error("boom");
}

void throw_through_noexcept() noexcept {
    throw_boom();  // out of a noexcept function: std::terminate
}

void terminate_with_nothing() {
    std::terminate();
}

}  // namespace

int main() {
    check(!unwinder_loaded(), "libgcc_s not loaded before the first throw");

    try {
        throw Payload{42, {}};
    } catch (const Payload& p) {
        check(unwinder_loaded(), "libgcc_s loaded by the first throw");
        const char* object = reinterpret_cast<const char*>(&p);
        check(caught_header() == object - 112, "__cxa_exception ends where the object begins (112 bytes)");
        check(refcount_of(&p) == 1, "reference count 128 bytes before the object");
        std::exception_ptr held = std::current_exception();
        check(refcount_of(&p) == 2, "an exception_ptr takes a reference there");
        check(p.value == 42, "the object intact");
    }

    try {
        throw std::runtime_error("primary");
    } catch (const std::runtime_error& first) {
        std::exception_ptr e = std::current_exception();
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error& again) {
            check(&again == &first, "rethrow_exception shares the primary object");
            check(caught_header() != reinterpret_cast<const char*>(&again) - 112,
                  "rethrown through a dependent exception of its own");
            check(std::strcmp(again.what(), "primary") == 0, "what() intact");
        }
    }

    // A leak of one byte a round would show as 100 KB; what the allocator
    // keeps for reuse (its bins settle in the first rounds) is far less.
    for (int i = 0; i < 1000; ++i) {
        round_trip_all_kinds();
    }
    const std::size_t before = heap_in_use();
    for (int i = 0; i < 100000; ++i) {
        round_trip_all_kinds();
    }
    const std::size_t after = heap_in_use();
    std::printf("heap in use before %zu bytes, after %zu\n", before, after);
    check(after <= before + 4096, "100,000 rounds of every kind free what they allocate");

    std::jmp_buf back;
    if (setjmp(back) == 0) {
        forced_unwind_through(&back);
        check(false, "forced unwind returned");
    }
    check(destroyed == 1, "a forced unwind runs the destructors on its way");

    int status = 0;
    std::string said = stderr_of_child(throw_through_noexcept, &status);
    std::printf("terminate said: %s", said.c_str());
    check(said == "terminate called after throwing an instance of 'St13runtime_error'\n  what():  boom\n",
          "terminate names the exception's type and its what()");
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "and aborts");
    said = stderr_of_child(terminate_with_nothing, &status);
    std::printf("terminate said: %s", said.c_str());
    check(said == "terminate called without an active exception\n", "terminate with nothing thrown says so");
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "and aborts");

    std::printf("%s\n", failures == 0 ? "all passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}

// A library the tls test (tls.cpp) loads with dlopen: its thread-local
// variables live in blocks glibc makes per thread on first use.
#include <string>

namespace {

__thread long value = 11;

void (*destroyed)(int) = nullptr;

struct Object {
    int id = -1;
    std::string text = "module object";
    ~Object() {
        if (destroyed != nullptr && id >= 0) {
            destroyed(id);
        }
    }
};
thread_local Object object;

}  // namespace

extern "C" {

long* tls_module_value() {
    return &value;
}

void tls_module_on_destroy(void (*fn)(int)) {
    destroyed = fn;
}

// The caller's object: fresh (id -1) the first time in each thread.
int tls_module_touch(int id) {
    const int was = object.id;
    object.id = id;
    return was;
}

}

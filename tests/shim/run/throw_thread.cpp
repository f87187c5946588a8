// A C++ exception that escapes a thread: std::terminate's message, the
// same with and without grove-run (where the thread is a green thread and
// the preload library's own terminate handler speaks).
#include <pthread.h>

#include <stdexcept>

namespace {
void* body(void*) {
    throw std::runtime_error("boom");
}
}  // namespace

int main() {
    pthread_t t;
    pthread_create(&t, nullptr, body, nullptr);
    pthread_join(t, nullptr);
    return 0;
}

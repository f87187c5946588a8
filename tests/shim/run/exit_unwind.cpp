// A C++ program that knows nothing of grove: a std::thread leaves through
// pthread_exit from deep inside C++ frames, one of which catches everything
// and rethrows. Destructors must run on the way out and the program's own
// exceptions must keep working, whether the threads are the kernel's or
// green ones (then the exit unwind comes from grove's runtime, not the
// program's: the two must agree).
#include <pthread.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

struct Note {
    const char* what;
    ~Note() { std::printf("destroyed %s\n", what); }
};

[[noreturn]] void leave(int depth) {
    Note n{depth == 0 ? "innermost" : "outer"};
    if (depth == 0) {
        pthread_exit(nullptr);
    }
    try {
        leave(depth - 1);
    } catch (...) {
        std::printf("caught the exit at depth %d, rethrowing\n", depth);
        throw;
    }
}

int own_exceptions() {
    int caught = 0;
    for (int i = 0; i < 3; ++i) {
        try {
            throw std::runtime_error("round " + std::to_string(i));
        } catch (const std::exception& e) {
            std::printf("caught %s\n", e.what());
            ++caught;
        }
    }
    return caught;
}

}  // namespace

int main() {
    std::thread t([] {
        Note top{"thread top"};
        leave(2);
    });
    t.join();
    std::printf("joined\n");
    int n = 0;
    std::thread u([&n] { n = own_exceptions(); });
    u.join();
    std::printf("%d exceptions in a thread, %d in main\n", n, own_exceptions());
    return 0;
}

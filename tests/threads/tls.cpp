// Thread-local storage: each thread has its own `__thread` variables and
// C++ `thread_local` objects, starting from their initial values, whatever
// the others (and the thread that made it) wrote; a thread_local's
// destructor runs when its thread ends (before pthread_join returns, and
// before the thread's pthread key destructors), on that thread's object;
// the exception state of one thread (an exception being caught, or
// unwinding through a destructor) is not another's. Every case makes the
// threads take turns while their values differ, so a shared variable shows.
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

#include "threads_test.h"

namespace {

__thread int counter = 7;
__thread char label[32] = "initial";
__thread long zeroed[16];  // .tbss: starts zero in every thread

constexpr int kThreads = 4;
pthread_barrier_t barrier;
int plain_result[kThreads][2];

void* plain_tls(void* arg) {
    const int id = static_cast<int>(reinterpret_cast<long>(arg));
    bool fresh = counter == 7 && std::strcmp(label, "initial") == 0;
    for (long z : zeroed) {
        fresh = fresh && z == 0;
    }
    counter = 100 * (id + 1);
    std::snprintf(label, sizeof label, "thread %d", id);
    zeroed[id] = id + 1;
    pthread_barrier_wait(&barrier);  // every thread has written its own
    usleep(1000 * (kThreads - id));  // and the others run meanwhile
    char want[32];
    std::snprintf(want, sizeof want, "thread %d", id);
    bool kept = counter == 100 * (id + 1) && std::strcmp(label, want) == 0;
    for (int i = 0; i < 16; ++i) {
        kept = kept && zeroed[i] == (i == id ? id + 1 : 0);
    }
    plain_result[id][0] = fresh ? 1 : 0;
    plain_result[id][1] = kept ? 1 : 0;
    return nullptr;
}

void case_plain() {
    counter = 1;  // main's own
    std::strcpy(label, "main");
    zeroed[15] = 99;
    pthread_barrier_init(&barrier, nullptr, kThreads);
    pthread_t t[kThreads];
    for (int i = 0; i < kThreads; ++i) {
        pthread_create(&t[i], nullptr, plain_tls, reinterpret_cast<void*>(static_cast<long>(i)));
    }
    for (pthread_t& x : t) {
        pthread_join(x, nullptr);
    }
    for (int i = 0; i < kThreads; ++i) {
        std::printf("plain %d: fresh %d kept %d\n", i, plain_result[i][0], plain_result[i][1]);
    }
    pthread_barrier_destroy(&barrier);
    std::printf("plain main: kept %d\n", counter == 1 && std::strcmp(label, "main") == 0 && zeroed[15] == 99);
}

// A thread made by a thread starts from the initial values too.
void* grandchild(void*) {
    std::printf("nested child: counter %d label %s\n", counter, label);
    counter = 5;
    return nullptr;
}

void* child(void*) {
    counter = 42;
    std::strcpy(label, "child");
    pthread_t g;
    pthread_create(&g, nullptr, grandchild, nullptr);
    pthread_join(g, nullptr);
    std::printf("nested parent: counter %d label %s\n", counter, label);
    return nullptr;
}

void case_nested() {
    pthread_t t;
    pthread_create(&t, nullptr, child, nullptr);
    pthread_join(t, nullptr);
}

// ---- thread_local objects with constructors and destructors ------------------
char events[kThreads][64];  // per thread: what happened, in order
std::atomic<int> constructed{0};  // native threads construct at once

struct Tracked {
    int owner = -1;
    std::string text;
    Tracked() { ++constructed; }
    ~Tracked() {
        if (owner >= 0) {
            std::strncat(events[owner], ("~" + text + " ").c_str(), sizeof events[owner] - 1 - std::strlen(events[owner]));
        }
    }
};
thread_local Tracked tracked;
pthread_key_t key;

void key_destructor(void* p) {
    const int id = static_cast<int>(reinterpret_cast<long>(p)) - 1;
    std::strncat(events[id], "key ", sizeof events[id] - 1 - std::strlen(events[id]));
}

sem_t turn[kThreads];

void* with_object(void* arg) {
    const int id = static_cast<int>(reinterpret_cast<long>(arg));
    std::snprintf(events[id], sizeof events[id], "%s ", tracked.owner == -1 && tracked.text.empty() ? "fresh" : "stale");
    tracked.owner = id;
    tracked.text = "obj" + std::to_string(id);
    pthread_setspecific(key, reinterpret_cast<void*>(static_cast<long>(id) + 1));
    // Wait for our turn to end; the ones before us ended meanwhile.
    sem_wait(&turn[id]);
    std::strncat(events[id], (tracked.text + " ").c_str(), sizeof events[id] - 1 - std::strlen(events[id]));
    return nullptr;
}

void case_objects() {
    pthread_key_create(&key, key_destructor);
    pthread_t t[kThreads];
    for (int i = 0; i < kThreads; ++i) {
        sem_init(&turn[i], 0, 0);
        pthread_create(&t[i], nullptr, with_object, reinterpret_cast<void*>(static_cast<long>(i)));
    }
    usleep(20000);  // every thread has its object and waits
    for (int i = kThreads - 1; i >= 0; --i) {
        sem_post(&turn[i]);
        pthread_join(t[i], nullptr);
        // Joined: its destructors have run, the thread_local's first.
        std::printf("objects %d: %s\n", i, events[i]);
    }
    std::printf("objects: constructed %d\n", constructed.load());
    pthread_key_delete(key);
}

// ---- exception state -----------------------------------------------------------
// Runs a and b in two threads, both started before either is joined.
void run_pair(void* (*a)(void*), void* (*b)(void*)) {
    pthread_t ta, tb;
    pthread_create(&ta, nullptr, a, nullptr);
    pthread_create(&tb, nullptr, b, nullptr);
    pthread_join(ta, nullptr);
    pthread_join(tb, nullptr);
}

sem_t a_parked, b_done;
int b_uncaught = -1;
bool b_current_null = false;
std::string b_caught;

struct ParkWhileUnwinding {
    ~ParkWhileUnwinding() {
        sem_post(&a_parked);
        sem_wait(&b_done);  // thread a is unwinding an exception here
    }
};

void* thread_a_unwinds(void*) {
    std::string got;
    try {
        ParkWhileUnwinding p;
        throw std::runtime_error("from a");
    } catch (const std::exception& e) {
        got = e.what();
    }
    std::printf("unwind a: caught %s, uncaught now %d\n", got.c_str(), std::uncaught_exceptions());
    return nullptr;
}

void* thread_b_looks(void*) {
    sem_wait(&a_parked);
    b_uncaught = std::uncaught_exceptions();
    b_current_null = std::current_exception() == nullptr;
    sem_post(&b_done);
    return nullptr;
}

void case_unwinding() {
    sem_init(&a_parked, 0, 0);
    sem_init(&b_done, 0, 0);
    run_pair(thread_a_unwinds, thread_b_looks);
    std::printf("unwind b: uncaught %d, no current exception %d\n", b_uncaught, b_current_null ? 1 : 0);
}

sem_t a_in_catch, b_threw;

void* thread_a_rethrows(void*) {
    std::string outer;
    try {
        try {
            throw std::runtime_error("a's error");
        } catch (...) {
            sem_post(&a_in_catch);
            sem_wait(&b_threw);  // b throws and catches its own meanwhile
            throw;               // rethrows a's, the one a is handling
        }
    } catch (const std::exception& e) {
        outer = e.what();
    }
    std::printf("rethrow a: %s\n", outer.c_str());
    return nullptr;
}

void* thread_b_throws(void*) {
    sem_wait(&a_in_catch);
    b_current_null = std::current_exception() == nullptr;
    try {
        throw std::logic_error("b's error");
    } catch (const std::exception& e) {
        b_caught = e.what();
    }
    sem_post(&b_threw);
    return nullptr;
}

void case_rethrow() {
    sem_init(&a_in_catch, 0, 0);
    sem_init(&b_threw, 0, 0);
    run_pair(thread_a_rethrows, thread_b_throws);
    std::printf("rethrow b: caught %s, no current exception before %d\n", b_caught.c_str(), b_current_null ? 1 : 0);
}

// errno is a thread's own too.
sem_t e_set[2];
int errno_seen[2];
void* errno_thread(void* arg) {
    const int id = static_cast<int>(reinterpret_cast<long>(arg));
    errno = id == 0 ? EDOM : ERANGE;
    sem_post(&e_set[id]);
    sem_wait(&e_set[1 - id]);
    usleep(1000);
    errno_seen[id] = errno;
    return nullptr;
}

void case_errno() {
    sem_init(&e_set[0], 0, 0);
    sem_init(&e_set[1], 0, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; ++i) {
        pthread_create(&t[i], nullptr, errno_thread, reinterpret_cast<void*>(static_cast<long>(i)));
    }
    for (pthread_t& x : t) {
        pthread_join(x, nullptr);
    }
    std::printf("errno: %s %s\n", tt_err(errno_seen[0]), tt_err(errno_seen[1]));
}

// ---- a library loaded with dlopen (its variables in blocks glibc makes per
// thread): one thread uses it before the load, the others after.
long* (*module_value)() = nullptr;
int (*module_touch)(int) = nullptr;
int module_destroyed[3];
sem_t module_loaded;
int module_result[3][3];  // fresh, kept, object fresh

void module_object_destroyed(int id) {
    ++module_destroyed[id];
}

void* use_module(void* arg) {
    const int id = static_cast<int>(reinterpret_cast<long>(arg));
    if (id == 0) {
        sem_wait(&module_loaded);  // made before the library was loaded
    }
    long* v = module_value();
    module_result[id][0] = *v == 11;
    *v = 100 + id;
    module_result[id][2] = module_touch(id) == -1;
    usleep(2000);
    module_result[id][1] = *module_value() == 100 + id && module_touch(id) == id;
    return nullptr;
}

void* use_after_close(void*) {
    module_destroyed[1] = 0;
    module_touch(1);
    sem_wait(&module_loaded);  // main closes the library meanwhile
    return nullptr;
}

void case_dlopen() {
    char exe[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    std::string path(exe);
    path = path.substr(0, path.rfind('/')) + "/libthreads_tls_module.so";
    sem_init(&module_loaded, 0, 0);
    pthread_t t[3];
    pthread_create(&t[0], nullptr, use_module, reinterpret_cast<void*>(0L));
    usleep(2000);
    void* lib = dlopen(path.c_str(), RTLD_NOW);
    CHECK(lib != nullptr);
    module_value = reinterpret_cast<long* (*)()>(dlsym(lib, "tls_module_value"));
    module_touch = reinterpret_cast<int (*)(int)>(dlsym(lib, "tls_module_touch"));
    auto on_destroy = reinterpret_cast<void (*)(void (*)(int))>(dlsym(lib, "tls_module_on_destroy"));
    CHECK(module_value != nullptr && module_touch != nullptr && on_destroy != nullptr);
    on_destroy(module_object_destroyed);
    *module_value() = -1;  // main's own
    sem_post(&module_loaded);
    for (long i = 1; i < 3; ++i) {
        pthread_create(&t[i], nullptr, use_module, reinterpret_cast<void*>(i));
    }
    for (pthread_t& x : t) {
        pthread_join(x, nullptr);
    }
    for (int i = 0; i < 3; ++i) {
        std::printf("dlopen %d: fresh %d kept %d object fresh %d destroyed %d\n", i, module_result[i][0],
                    module_result[i][1], module_result[i][2], module_destroyed[i]);
    }
    std::printf("dlopen main: %ld\n", *module_value());
    // Closed while a thread's object of the library is alive: the library
    // stays until that thread's destructor has run.
    pthread_t late;
    sem_init(&module_loaded, 0, 0);
    pthread_create(&late, nullptr, use_after_close, nullptr);
    usleep(2000);
    CHECK(dlclose(lib) == 0);
    sem_post(&module_loaded);
    pthread_join(late, nullptr);
    std::printf("dlclose: destroyed after the close %d\n", module_destroyed[1]);
}

// Many short threads in turn: each one's object is built and destroyed.
void* short_lived(void* arg) {
    const int id = static_cast<int>(reinterpret_cast<long>(arg));
    counter += id;
    tracked.owner = -1;  // no event
    return reinterpret_cast<void*>(static_cast<long>(counter));
}

void case_many() {
    constexpr int kMany = 200;
    const int before = constructed.load();
    long sum = 0;
    for (int round = 0; round < kMany / 20; ++round) {
        pthread_t t[20];
        for (int i = 0; i < 20; ++i) {
            pthread_create(&t[i], nullptr, short_lived, reinterpret_cast<void*>(static_cast<long>(i)));
        }
        for (pthread_t& x : t) {
            void* r = nullptr;
            pthread_join(x, &r);
            sum += reinterpret_cast<long>(r);
        }
    }
    // Each thread saw 7 + its own id: 10 rounds of sum(7..26).
    std::printf("many: sum %ld constructed %d\n", sum, constructed.load() - before);
}

// exit() from a thread runs that thread's thread_local destructors, and
// never main's on that thread's variables (function-local objects: each is
// made only in the thread that calls its function).
std::ostringstream& main_text() {
    thread_local std::ostringstream text;
    return text;
}

struct SaysBye {
    ~SaysBye() { std::printf("exit: the exiting thread's object destroyed\n"); }
};
SaysBye& bye() {
    thread_local SaysBye b;
    return b;
}

void* exits(void*) {
    (void)bye();
    std::printf("end\n");
    std::exit(0);
}

}  // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    case_plain();
    case_nested();
    case_objects();
    case_unwinding();
    case_rethrow();
    case_errno();
    case_dlopen();
    case_many();
    std::printf("main: counter %d label %s\n", counter, label);
    main_text() << "main's own text, destroyed on main's variables only";
    tt_report_threads();
    pthread_t t;
    pthread_create(&t, nullptr, exits, nullptr);
    pthread_join(t, nullptr);
    return 1;  // not reached: the thread exits the process
}

/* Identity (pthread_self, pthread_equal), names, return values through
 * join, cancellation at cancellation points, spin locks, pthread_kill 0,
 * and what pthread_getattr_np says of a thread's own stack. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <unistd.h>

enum { n = 8 };
static pthread_t seen[n];
static pthread_spinlock_t spin;
static long spin_counter;

static void* who(void* arg) {
    long i = (long)arg;
    seen[i] = pthread_self();
    for (int k = 0; k < 1000; ++k) {
        pthread_spin_lock(&spin);
        long v = spin_counter;
        if (k % 100 == 0) {
            sched_yield();
        }
        spin_counter = v + 1;
        pthread_spin_unlock(&spin);
    }
    return (void*)(i * 10);
}

static sem_t named_ready;

static void* named(void* arg) {
    (void)arg;
    char buf[16];
    pthread_setname_np(pthread_self(), "worker-7");
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("own name: %s\n", buf);
    sem_post(&named_ready);
    usleep(50000);
    return NULL;
}

/* Runtimes check their threads' stacks this way (Rust's aborts a thread
 * whose attributes report no guard page). */
static void* own_attributes(void* arg) {
    (void)arg;
    pthread_attr_t attr;
    size_t guard = 0;
    size_t size = 0;
    void* addr = NULL;
    int detach = -1;
    int local = 0;
    CHECK(pthread_getattr_np(pthread_self(), &attr) == 0);
    CHECK(pthread_attr_getguardsize(&attr, &guard) == 0);
    CHECK(pthread_attr_getstack(&attr, &addr, &size) == 0);
    CHECK(pthread_attr_getdetachstate(&attr, &detach) == 0);
    pthread_attr_destroy(&attr);
    const char* p = (const char*)&local;
    printf("own attributes: guard size %s the page size, stack holds a local: %s, joinable: %s\n",
           guard == (size_t)sysconf(_SC_PAGESIZE) ? "is" : "is not",
           p >= (const char*)addr && p < (const char*)addr + size ? "yes" : "no", detach == PTHREAD_CREATE_JOINABLE ? "yes" : "no");
    return NULL;
}

static sem_t never;
static int cleanup_ran;

static void cleanup(void* arg) {
    (void)arg;
    cleanup_ran = 1;
}

static void* cancel_in_sem(void* arg) {
    (void)arg;
    sem_wait(&never);
    return (void*)1;
}

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;

static void unlock_cm(void* arg) {
    (void)arg;
    pthread_mutex_unlock(&cm);
}

static void* cancel_in_cond(void* arg) {
    (void)arg;
    pthread_mutex_lock(&cm);
    pthread_cleanup_push(unlock_cm, NULL);
    for (;;) {
        pthread_cond_wait(&cc, &cm);
    }
    pthread_cleanup_pop(1);
    return NULL;
}

static void* cancel_testcancel(void* arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, NULL);
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    usleep(30000); /* cancelled meanwhile, but disabled */
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_testcancel();
    pthread_cleanup_pop(0);
    return (void*)1;
}

int main(void) {
    const int alone_before = __libc_single_threaded;
    pthread_t attrs;
    CHECK(pthread_create(&attrs, NULL, own_attributes, NULL) == 0);
    CHECK(pthread_join(attrs, NULL) == 0);
    printf("__libc_single_threaded: %d before the first thread, %d after it\n", alone_before, __libc_single_threaded);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t th[n];
    for (long i = 0; i < n; ++i) {
        pthread_create(&th[i], NULL, who, (void*)i);
    }
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        void* r;
        pthread_join(th[i], &r);
        sum += (long)r;
    }
    int equal_to_handle = 0, distinct = 1, differs_from_main = 1;
    for (int i = 0; i < n; ++i) {
        equal_to_handle += pthread_equal(seen[i], th[i]) != 0;
        if (pthread_equal(seen[i], pthread_self())) {
            differs_from_main = 0;
        }
        for (int j = 0; j < i; ++j) {
            if (pthread_equal(seen[i], seen[j])) {
                distinct = 0;
            }
        }
    }
    printf("results sum %ld; self equals handle %d/%d; distinct %d; differ from main %d\n", sum, equal_to_handle, n,
           distinct, differs_from_main);
    printf("spin counter %ld\n", spin_counter);
    printf("main equals itself: %d\n", pthread_equal(pthread_self(), pthread_self()) != 0);

    pthread_t t;
    sem_init(&named_ready, 0, 0);
    pthread_create(&t, NULL, named, NULL);
    sem_wait(&named_ready); /* it has named itself */
    char buf[16] = "";
    printf("getname from main: %s %s\n", tt_err(pthread_getname_np(t, buf, sizeof buf)), buf);
    printf("getname small buffer: %s\n", tt_err(pthread_getname_np(t, buf, 4)));
    printf("setname too long: %s\n", tt_err(pthread_setname_np(t, "a-name-longer-than-15")));
    printf("kill 0: %s\n", tt_err(pthread_kill(t, 0)));
    pthread_join(t, NULL);

    sem_init(&never, 0, 0);
    void* r = NULL;
    pthread_create(&t, NULL, cancel_in_sem, NULL);
    usleep(10000);
    printf("cancel (sem_wait): %s", tt_err(pthread_cancel(t)));
    pthread_join(t, &r);
    printf(" -> %s\n", r == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled");

    pthread_create(&t, NULL, cancel_in_cond, NULL);
    usleep(10000);
    printf("cancel (cond_wait): %s", tt_err(pthread_cancel(t)));
    pthread_join(t, &r);
    printf(" -> %s; mutex free again: %s\n", r == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled",
           tt_err(pthread_mutex_trylock(&cm)));
    pthread_mutex_unlock(&cm);

    pthread_create(&t, NULL, cancel_testcancel, NULL);
    usleep(10000);
    printf("cancel (disabled, then testcancel): %s", tt_err(pthread_cancel(t)));
    pthread_join(t, &r);
    printf(" -> %s\n", r == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled");
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

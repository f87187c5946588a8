/* A program with its own malloc, as programs linked with jemalloc or
 * tcmalloc have. Like jemalloc's, its set-up runs in the first allocation:
 * it keeps per-thread state under a pthread key and registers fork
 * handlers that take its lock. glibc's pthread_setspecific takes no memory
 * for the first 32 keys, so nothing enters the allocator from inside its
 * own set-up or its per-thread bookkeeping. This one counts such entries;
 * jemalloc runs its set-up again, registers its fork handlers twice, and
 * the next fork takes its locks twice (redis-server's BGSAVE hung so).
 *
 * Like jemalloc's, it allocates under a lock of its own and tries other
 * locks meanwhile (pthread_mutex_trylock): under green threads another
 * thread may get a turn in there, and whatever runs at that switch must
 * not allocate (it would take the allocator's lock again); threads that
 * come and go while others allocate make the switches recycle their
 * stacks.
 *
 * The transcript reports how often the allocator was entered from inside
 * itself, how many times each fork ran the prepare handler, whether that
 * handler found its lock already held, values kept under keys past the
 * first 32 (those do allocate, outside the allocator's own set-up), and
 * what the threads that came and went allocated. */
#include "threads_test.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);

static int g_inited, g_initing, g_reentered;
static pthread_key_t g_state_key;
static int g_state_slots[64];
static int g_next_slot;  /* under g_alloc_mu */
static pthread_mutex_t g_alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int t_in_alloc;

static int g_prepare_runs, g_prepare_found_held, g_held;

static void fork_prepare(void) {
    ++g_prepare_runs;
    if (pthread_mutex_trylock(&g_alloc_mu) == 0) {
        ++g_held;
    } else {
        ++g_prepare_found_held;
    }
}

static void fork_release(void) {
    while (g_held > 0) {
        --g_held;
        pthread_mutex_unlock(&g_alloc_mu);
    }
}

/* The allocator's per-thread state: a slot, kept under g_state_key. */
static void thread_state(void) {
    if (pthread_getspecific(g_state_key) != NULL) {
        return;
    }
    pthread_mutex_lock(&g_alloc_mu);
    int* slot = &g_state_slots[g_next_slot++ % 64];
    pthread_mutex_unlock(&g_alloc_mu);
    pthread_setspecific(g_state_key, slot);
}

static void enter(void) {
    if (t_in_alloc) {
        ++g_reentered;
        return;
    }
    t_in_alloc = 1;
    if (!g_inited && !g_initing) {
        g_initing = 1;
        pthread_key_create(&g_state_key, NULL);
        thread_state();
        g_inited = 1;
        g_initing = 0;
        t_in_alloc = 0;
        /* glibc's pthread_atfork allocates: outside the guarded part. */
        pthread_atfork(fork_prepare, fork_release, fork_release);
        t_in_alloc = 1;
    }
    if (g_inited) {
        thread_state();
    }
    t_in_alloc = 0;
}

static pthread_mutex_t g_heap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_other_mu = PTHREAD_MUTEX_INITIALIZER;

void* malloc(size_t n) {
    enter();
    if (!g_inited || t_in_alloc) {
        return __libc_malloc(n);
    }
    t_in_alloc = 1;
    pthread_mutex_lock(&g_heap_mu);
    for (int i = 0; i < 4; ++i) { /* as jemalloc tries its other locks */
        if (pthread_mutex_trylock(&g_other_mu) == 0) {
            pthread_mutex_unlock(&g_other_mu);
        }
    }
    void* p = __libc_malloc(n);
    pthread_mutex_unlock(&g_heap_mu);
    t_in_alloc = 0;
    return p;
}
void* calloc(size_t k, size_t n) {
    enter();
    return __libc_calloc(k, n);
}
void* realloc(void* p, size_t n) {
    enter();
    return __libc_realloc(p, n);
}
void free(void* p) {
    __libc_free(p);
}

/* Keys past the first 32: each thread keeps its own values. */
enum { kMany = 48 };
static pthread_key_t g_many[kMany];

static void* worker(void* arg) {
    const intptr_t id = (intptr_t)arg;
    free(malloc(100));
    int bad = 0;
    for (int i = 0; i < kMany; ++i) {
        if (pthread_getspecific(g_many[i]) != NULL) {
            ++bad;
        }
        pthread_setspecific(g_many[i], (void*)(id * 1000 + i + 1));
    }
    usleep(2000); /* the others set theirs meanwhile */
    for (int i = 0; i < kMany; ++i) {
        if (pthread_getspecific(g_many[i]) != (void*)(id * 1000 + i + 1)) {
            ++bad;
        }
    }
    return (void*)(intptr_t)bad;
}

/* Threads that come and go while the others allocate. */
static long g_churned;

static void* churn(void* arg) {
    long sum = 0;
    for (int i = 0; i < 50; ++i) {
        char* p = malloc(16 + (size_t)i);
        p[0] = (char)i;
        sum += p[0];
        free(p);
    }
    __atomic_add_fetch(&g_churned, sum, __ATOMIC_RELAXED);
    (void)arg;
    return NULL;
}

static void threads_come_and_go(void) {
    for (int round = 0; round < 20; ++round) {
        pthread_t t[10];
        for (int i = 0; i < 10; ++i) {
            CHECK(pthread_create(&t[i], NULL, churn, NULL) == 0);
        }
        for (int i = 0; i < 10; ++i) {
            CHECK(pthread_join(t[i], NULL) == 0);
        }
    }
    printf("200 threads came and went, allocating: sum %ld\n", g_churned);
}

int main(void) {
    free(malloc(10)); /* set up, if nothing allocated earlier */
    printf("allocator set up: %s, its state kept: %s\n", g_inited ? "yes" : "no",
           pthread_getspecific(g_state_key) != NULL ? "yes" : "no");

    for (int i = 0; i < kMany; ++i) {
        CHECK(pthread_key_create(&g_many[i], NULL) == 0);
    }
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; ++i) {
        CHECK(pthread_create(&t[i], NULL, worker, (void*)(i + 1)) == 0);
    }
    long bad = 0;
    for (int i = 0; i < 4; ++i) {
        void* r;
        CHECK(pthread_join(t[i], &r) == 0);
        bad += (long)(intptr_t)r;
    }
    printf("threads: values under %d keys wrong: %ld\n", kMany, bad);
    threads_come_and_go();
    printf("allocator entered from inside itself: %d\n", g_reentered);

    for (int round = 1; round <= 2; ++round) {
        const int before = g_prepare_runs;
        fflush(stdout);
        const pid_t pid = fork();
        if (pid == 0) {
            free(malloc(32));
            _exit(g_held == 0 && pthread_mutex_trylock(&g_alloc_mu) == 0 ? 0 : 3);
        }
        CHECK(pid > 0);
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        printf("fork %d: prepare ran %d time(s), found the lock held %d time(s), child status %d\n", round,
               g_prepare_runs - before, g_prepare_found_held, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        g_prepare_found_held = 0;
    }
    puts("end");
    tt_report_threads();
    return 0;
}

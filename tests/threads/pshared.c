/* Process-shared mutexes and condition variables (PTHREAD_PROCESS_SHARED,
 * in shared memory, as fio's semaphores are) used by the threads of one
 * process, and by a forked child: a thread that waits for a lock another
 * holds across a sleep, a "semaphore" of mutex and condition passed back
 * and forth between two threads, a condition signalled by a child process,
 * the timed forms expiring, a fork while a thread waits, error-checking
 * and robust mutexes' answers. Under green threads the waits must let the
 * other threads run (a ticker counts meanwhile). */
#include "threads_test.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int value;
    int stop;
};

static struct shared* g_sh;
static volatile int g_ticks, g_stop_ticking;

static void* ticker(void* arg) {
    (void)arg;
    while (!g_stop_ticking) {
        ++g_ticks;
        usleep(2000);
    }
    return NULL;
}

static void sem_down(struct shared* s) {
    pthread_mutex_lock(&s->lock);
    while (s->value == 0) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    --s->value;
    pthread_mutex_unlock(&s->lock);
}

static void sem_up(struct shared* s) {
    pthread_mutex_lock(&s->lock);
    ++s->value;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void* holds_a_while(void* arg) {
    struct shared* s = arg;
    pthread_mutex_lock(&s->lock);
    s->stop = 1; /* taken */
    usleep(50000);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void* ping(void* arg) {
    struct shared* pair = arg; /* pair[0]: to us, pair[1]: from us */
    for (int i = 0; i < 100; ++i) {
        sem_down(&pair[0]);
        sem_up(&pair[1]);
    }
    return NULL;
}

static void init(struct shared* s) {
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    CHECK(pthread_mutex_init(&s->lock, &ma) == 0);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    CHECK(pthread_cond_init(&s->cond, &ca) == 0);
    pthread_condattr_destroy(&ca);
    s->value = 0;
    s->stop = 0;
}

/* A thread waits on the condition while another forks: the child's signal
 * of it must not wake (a copy of) the waiter, which stayed in the parent. */
static void* waits_for_flag(void* arg) {
    struct shared* s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return (void*)(long)getpid();
}

static void fork_while_one_waits(void) {
    struct shared* s = &g_sh[1];
    s->stop = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, waits_for_flag, s) == 0);
    usleep(30000);
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        _exit(0);
    }
    int st = -1;
    CHECK(waitpid(child, &st, 0) == child);
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    void* where;
    pthread_join(t, &where);
    printf("a child signals while a thread waits: child exit %s, the waiter ended in the parent %s\n",
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "0" : "abnormal", (long)where == getpid() ? "yes" : "no");
}

/* Error-checking: a relock by the owner says EDEADLK, an unlock by
 * another thread EPERM. Robust: the owner process died, the next lock
 * says EOWNERDEAD. */
static void* unlock_other(void* arg) {
    return (void*)(long)pthread_mutex_unlock(arg);
}

static void error_checks_and_robust(void) {
    pthread_mutex_t* m = (pthread_mutex_t*)&g_sh[2].lock;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    CHECK(pthread_mutex_init(m, &ma) == 0);
    CHECK(pthread_mutex_lock(m) == 0);
    const int relock = pthread_mutex_lock(m);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, unlock_other, m) == 0);
    void* other;
    pthread_join(t, &other);
    printf("error-checking: relock %s, unlock by another thread %s, by the owner %s\n", tt_err(relock),
           tt_err((int)(long)other), tt_err(pthread_mutex_unlock(m)));
    pthread_mutex_destroy(m);

    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    CHECK(pthread_mutex_init(m, &ma) == 0);
    pthread_mutexattr_destroy(&ma);
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        pthread_mutex_lock(m);
        _exit(0); /* dies holding it */
    }
    CHECK(waitpid(child, NULL, 0) == child);
    const int r = pthread_mutex_lock(m);
    const int made = r == EOWNERDEAD ? pthread_mutex_consistent(m) : -1;
    printf("robust, its owner process died: lock %s, consistent %s, unlock %s\n", tt_err(r), tt_err(made),
           tt_err(pthread_mutex_unlock(m)));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_sh = mmap(NULL, 3 * sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(g_sh != MAP_FAILED);
    for (int i = 0; i < 3; ++i) {
        init(&g_sh[i]);
    }
    pthread_t tick;
    CHECK(pthread_create(&tick, NULL, ticker, NULL) == 0);

    /* A lock held across a sleep by another thread. */
    pthread_t holder;
    CHECK(pthread_create(&holder, NULL, holds_a_while, &g_sh[0]) == 0);
    while (!g_sh[0].stop) {
        usleep(1000);
    }
    int before = g_ticks;
    const int r = pthread_mutex_lock(&g_sh[0].lock);
    printf("lock held by another thread: %s, others ran meanwhile: %s\n", tt_err(r), g_ticks > before ? "yes" : "NO");
    pthread_mutex_unlock(&g_sh[0].lock);
    pthread_join(holder, NULL);

    /* Timed forms expiring. */
    pthread_mutex_lock(&g_sh[0].lock);
    struct timespec soon = tt_after(CLOCK_REALTIME, 30);
    int tr = 0;
    while (g_sh[0].value == 0 && tr == 0) { /* a wake-up may be spurious */
        tr = pthread_cond_timedwait(&g_sh[0].cond, &g_sh[0].lock, &soon);
    }
    printf("timed condition wait with no signal: %s\n", tt_err(tr));
    pthread_mutex_unlock(&g_sh[0].lock);
    CHECK(pthread_create(&holder, NULL, holds_a_while, &g_sh[2]) == 0);
    while (!g_sh[2].stop) {
        usleep(1000);
    }
    soon = tt_after(CLOCK_REALTIME, 10);
    printf("timed lock of a held mutex: %s\n", tt_err(pthread_mutex_timedlock(&g_sh[2].lock, &soon)));
    pthread_join(holder, NULL);

    /* A semaphore of mutex and condition, passed back and forth. */
    pthread_t other;
    CHECK(pthread_create(&other, NULL, ping, &g_sh[0]) == 0);
    for (int i = 0; i < 100; ++i) {
        sem_up(&g_sh[0]);
        sem_down(&g_sh[1]);
    }
    pthread_join(other, NULL);
    printf("100 hand-offs between two threads: done, values %d %d\n", g_sh[0].value, g_sh[1].value);

    /* A child process signals the condition. */
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        usleep(50000);
        sem_up(&g_sh[2]);
        _exit(0);
    }
    before = g_ticks;
    sem_down(&g_sh[2]);
    printf("signalled by a child process: taken, others ran meanwhile: %s\n", g_ticks > before ? "yes" : "NO");
    CHECK(waitpid(child, NULL, 0) == child);

    fork_while_one_waits();
    error_checks_and_robust();

    g_stop_ticking = 1;
    pthread_join(tick, NULL);
    printf("end\n");
    tt_report_threads();
    return 0;
}

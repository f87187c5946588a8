/* A signal handler runs while the main thread waits in a blocking pthread
 * or semaphore call, with and without SA_RESTART. Another thread sends the
 * signal to the main thread (pthread_kill) 100 ms into the wait and frees
 * the object 200 ms later. What each call returns is libc's: sem_wait
 * restarts under SA_RESTART and fails with EINTR without it; sem_timedwait
 * fails with EINTR either way; the mutex, rwlock, condition variable (in
 * its predicate loop), barrier and join waits never fail with EINTR. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t g_handled;
static pthread_t g_main;

static void on_usr1(int sig) {
    (void)sig;
    ++g_handled;
}

static void install(int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    g_handled = 0;
}

/* What the other thread frees at 300 ms. */
static sem_t g_sem;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t g_rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t g_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_flag;
static pthread_barrier_t g_barrier;

enum what { SEM, MUTEX, RWLOCK, COND, BARRIER, JOIN };

/* Holds what `what` names from the start, signals the main thread at
 * 100 ms, frees it at 300 ms. */
static void* other(void* arg) {
    const enum what w = (enum what)(long)arg;
    if (w == MUTEX) {
        pthread_mutex_lock(&g_mutex);
    } else if (w == RWLOCK) {
        pthread_rwlock_rdlock(&g_rwlock);
    }
    usleep(100000);
    pthread_kill(g_main, SIGUSR1);
    usleep(200000);
    switch (w) {
        case SEM:
            sem_post(&g_sem);
            break;
        case MUTEX:
            pthread_mutex_unlock(&g_mutex);
            break;
        case RWLOCK:
            pthread_rwlock_unlock(&g_rwlock);
            break;
        case COND:
            pthread_mutex_lock(&g_cond_mutex);
            g_flag = 1;
            pthread_cond_signal(&g_cond);
            pthread_mutex_unlock(&g_cond_mutex);
            break;
        case BARRIER: {
            const int r = pthread_barrier_wait(&g_barrier);
            CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
            break;
        }
        case JOIN:
            break;
    }
    return NULL;
}

static pthread_t start(enum what w) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other, (void*)(long)w) == 0);
    usleep(20000); /* it holds what it holds before the main thread waits */
    return t;
}

static void report(const char* name, int restart, int r, int err, double t0) {
    const double took = tt_now() - t0;
    printf("%s (%s): ret=%d errno=%s handler ran %d time(s), %s\n", name, restart ? "SA_RESTART" : "no SA_RESTART",
           r, tt_err(err), (int)g_handled,
           took < 0.2 ? "ended when the signal came" : "ended when the object was freed");
}

static void run(int restart) {
    install(restart);
    sem_init(&g_sem, 0, 0);
    pthread_t t = start(SEM);
    double t0 = tt_now();
    errno = 0;
    int r = sem_wait(&g_sem);
    report("sem_wait", restart, r, r != 0 ? errno : 0, t0);
    pthread_join(t, NULL);
    if (r != 0) {
        sem_wait(&g_sem); /* the post that came after */
    }

    install(restart);
    t = start(SEM);
    struct timespec abs = tt_after(CLOCK_REALTIME, 5000);
    t0 = tt_now();
    errno = 0;
    r = sem_timedwait(&g_sem, &abs);
    report("sem_timedwait", restart, r, r != 0 ? errno : 0, t0);
    pthread_join(t, NULL);
    sem_destroy(&g_sem);

    install(restart);
    t = start(MUTEX);
    t0 = tt_now();
    r = pthread_mutex_lock(&g_mutex);
    report("pthread_mutex_lock", restart, r, r, t0);
    pthread_mutex_unlock(&g_mutex);
    pthread_join(t, NULL);

    install(restart);
    t = start(MUTEX);
    abs = tt_after(CLOCK_REALTIME, 5000);
    t0 = tt_now();
    r = pthread_mutex_timedlock(&g_mutex, &abs);
    report("pthread_mutex_timedlock", restart, r, r, t0);
    pthread_mutex_unlock(&g_mutex);
    pthread_join(t, NULL);

    install(restart);
    t = start(RWLOCK);
    t0 = tt_now();
    r = pthread_rwlock_wrlock(&g_rwlock);
    report("pthread_rwlock_wrlock", restart, r, r, t0);
    pthread_rwlock_unlock(&g_rwlock);
    pthread_join(t, NULL);

    install(restart);
    g_flag = 0;
    t = start(COND);
    t0 = tt_now();
    pthread_mutex_lock(&g_cond_mutex);
    r = 0;
    while (!g_flag && r == 0) {
        r = pthread_cond_wait(&g_cond, &g_cond_mutex);
    }
    pthread_mutex_unlock(&g_cond_mutex);
    report("pthread_cond_wait (until its predicate)", restart, r, r, t0);
    pthread_join(t, NULL);

    install(restart);
    g_flag = 0;
    t = start(COND);
    abs = tt_after(CLOCK_REALTIME, 5000);
    t0 = tt_now();
    pthread_mutex_lock(&g_cond_mutex);
    r = 0;
    while (!g_flag && r == 0) {
        r = pthread_cond_timedwait(&g_cond, &g_cond_mutex, &abs);
    }
    pthread_mutex_unlock(&g_cond_mutex);
    report("pthread_cond_timedwait (until its predicate)", restart, r, r, t0);
    pthread_join(t, NULL);

    install(restart);
    pthread_barrier_init(&g_barrier, NULL, 2);
    t = start(BARRIER);
    t0 = tt_now();
    r = pthread_barrier_wait(&g_barrier);
    report("pthread_barrier_wait", restart, r == PTHREAD_BARRIER_SERIAL_THREAD ? 0 : r, 0, t0);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&g_barrier);

    install(restart);
    t = start(JOIN);
    t0 = tt_now();
    r = pthread_join(t, NULL);
    report("pthread_join", restart, r, r, t0);
}

int main(void) {
    g_main = pthread_self();
    run(0);
    run(1);
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* Timed waits that expire: mutex, cond (realtime and monotonic condattr,
 * clockwait), semaphore, rwlock, join. And a timed wait that succeeds. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static sem_t hold_sem;

static void* holder(void* arg) {
    (void)arg;
    pthread_mutex_lock(&held);
    sem_wait(&hold_sem); /* until main says */
    pthread_mutex_unlock(&held);
    return NULL;
}

static void* sleeper(void* arg) {
    usleep((useconds_t)(long)arg * 1000);
    return (void*)42;
}

static const char* within(double t0, double lo, double hi) {
    double d = tt_now() - t0;
    return d >= lo && d < hi ? "in time" : "OUT OF BOUNDS";
}

int main(void) {
    sem_init(&hold_sem, 0, 0);
    pthread_t h;
    pthread_create(&h, NULL, holder, NULL);
    usleep(20000);

    double t0 = tt_now();
    struct timespec t = tt_after(CLOCK_REALTIME, 50);
    int r = pthread_mutex_timedlock(&held, &t);
    printf("mutex_timedlock while held: %s (%s)\n", tt_err(r), within(t0, 0.045, 2));
    t0 = tt_now();
    t = tt_after(CLOCK_MONOTONIC, 50);
    r = pthread_mutex_clocklock(&held, CLOCK_MONOTONIC, &t);
    printf("mutex_clocklock while held: %s (%s)\n", tt_err(r), within(t0, 0.045, 2));
    t = tt_after(CLOCK_MONOTONIC, 50);
    printf("mutex_clocklock bad clock: %s\n", tt_err(pthread_mutex_clocklock(&held, CLOCK_PROCESS_CPUTIME_ID, &t)));
    struct timespec past = {0, 0};
    printf("mutex_timedlock past: %s\n", tt_err(pthread_mutex_timedlock(&held, &past)));
    printf("mutex_trylock while held: %s\n", tt_err(pthread_mutex_trylock(&held)));
    sem_post(&hold_sem);
    pthread_join(h, NULL);
    t = tt_after(CLOCK_REALTIME, 50);
    r = pthread_mutex_timedlock(&held, &t);
    printf("mutex_timedlock free: %s\n", tt_err(r));
    pthread_mutex_unlock(&held);

    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    t0 = tt_now();
    t = tt_after(CLOCK_REALTIME, 50);
    r = pthread_cond_timedwait(&c, &m, &t);
    printf("cond_timedwait (realtime): %s (%s)\n", tt_err(r), within(t0, 0.045, 2));

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t cm;
    pthread_cond_init(&cm, &ca);
    t0 = tt_now();
    t = tt_after(CLOCK_MONOTONIC, 50);
    r = pthread_cond_timedwait(&cm, &m, &t);
    printf("cond_timedwait (monotonic condattr): %s (%s)\n", tt_err(r), within(t0, 0.045, 2));
    t0 = tt_now();
    t = tt_after(CLOCK_MONOTONIC, 50);
    r = pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &t);
    printf("cond_clockwait: %s (%s)\n", tt_err(r), within(t0, 0.045, 2));
    struct timespec bad = {0, 1000000000L};
    printf("cond_timedwait bad nsec: %s\n", tt_err(pthread_cond_timedwait(&c, &m, &bad)));
    printf("cond_clockwait bad clock: %s\n", tt_err(pthread_cond_clockwait(&c, &m, CLOCK_THREAD_CPUTIME_ID, &t)));
    pthread_mutex_unlock(&m);
    printf("cond_wait with the mutex unlocked (errorcheck): ");
    pthread_mutex_t em = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    printf("%s\n", tt_err(pthread_cond_wait(&c, &em)));
    pthread_cond_destroy(&cm);
    pthread_condattr_destroy(&ca);

    sem_t s;
    sem_init(&s, 0, 0);
    t0 = tt_now();
    t = tt_after(CLOCK_REALTIME, 50);
    errno = 0;
    r = sem_timedwait(&s, &t);
    printf("sem_timedwait: %d %s (%s)\n", r, tt_err(errno), within(t0, 0.045, 2));
    t0 = tt_now();
    t = tt_after(CLOCK_MONOTONIC, 50);
    errno = 0;
    r = sem_clockwait(&s, CLOCK_MONOTONIC, &t);
    printf("sem_clockwait: %d %s (%s)\n", r, tt_err(errno), within(t0, 0.045, 2));
    errno = 0;
    r = sem_trywait(&s);
    printf("sem_trywait empty: %d %s\n", r, tt_err(errno));
    errno = 0;
    r = sem_timedwait(&s, &bad);
    printf("sem_timedwait bad nsec: %d %s\n", r, tt_err(errno));
    sem_post(&s);
    sem_post(&s);
    int v = -1;
    sem_getvalue(&s, &v);
    printf("sem value after 2 posts: %d\n", v);
    t = tt_after(CLOCK_REALTIME, 50);
    printf("sem_timedwait available: %d\n", sem_timedwait(&s, &t));
    sem_destroy(&s);

    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_wrlock(&rw);
    pthread_t other;
    pthread_create(&other, NULL, sleeper, (void*)1L);
    pthread_join(other, NULL);
    pthread_rwlock_unlock(&rw);

    pthread_create(&other, NULL, sleeper, (void*)300L);
    t0 = tt_now();
    t = tt_after(CLOCK_REALTIME, 50);
    void* ret = NULL;
    r = pthread_timedjoin_np(other, &ret, &t);
    printf("timedjoin before the end: %s (%s)\n", tt_err(r), within(t0, 0.045, 0.29));
    printf("tryjoin before the end: %s\n", tt_err(pthread_tryjoin_np(other, &ret)));
    t = tt_after(CLOCK_REALTIME, 5000);
    r = pthread_timedjoin_np(other, &ret, &t);
    printf("timedjoin after: %s ret=%ld\n", tt_err(r), (long)ret);

    /* clockjoin as glibc's: an unsupported clock is refused, a deadline
     * with invalid nanoseconds is waited past until the thread ends, and an
     * ended thread is joined whatever the deadline says. */
    pthread_create(&other, NULL, sleeper, (void*)60L);
    t = tt_after(CLOCK_MONOTONIC, 10);
    printf("clockjoin on CLOCK_THREAD_CPUTIME_ID: %s\n",
           tt_err(pthread_clockjoin_np(other, &ret, CLOCK_THREAD_CPUTIME_ID, &t)));
    t.tv_nsec = -5;
    ret = NULL;
    r = pthread_clockjoin_np(other, &ret, CLOCK_MONOTONIC, &t);
    printf("clockjoin with nanoseconds -5: %s ret=%ld\n", tt_err(r), (long)ret);
    pthread_create(&other, NULL, sleeper, (void*)1L);
    usleep(30000);
    t.tv_sec = 0;
    t.tv_nsec = 0;
    printf("clockjoin of an ended thread on CLOCK_PROCESS_CPUTIME_ID: %s\n",
           tt_err(pthread_clockjoin_np(other, &ret, CLOCK_PROCESS_CPUTIME_ID, &t)));
    ret = NULL;
    r = pthread_clockjoin_np(other, &ret, CLOCK_MONOTONIC, &t);
    printf("clockjoin of an ended thread, deadline long past: %s ret=%ld\n", tt_err(r), (long)ret);

    /* A waiter woken before its deadline. */
    pthread_create(&other, NULL, sleeper, (void*)20L);
    pthread_mutex_lock(&m);
    t = tt_after(CLOCK_REALTIME, 20);
    r = pthread_cond_timedwait(&c, &m, &t); /* nobody signals: times out */
    pthread_mutex_unlock(&m);
    pthread_join(other, NULL);
    printf("second cond_timedwait: %s\n", tt_err(r));
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* Sync objects shared by green threads and OS threads outside them: an
 * OS thread is started with libc's own pthread_create (looked up in
 * libc.so.6, as a library that calls it behind the program's back would),
 * so under green threads it stays a real OS thread while the program's
 * other threads are green. Mutex, condition variable, semaphore, rwlock
 * and barrier pass work both ways; timed waits on either side expire while
 * the other side holds the object; a deadline that races with a hand-off
 * leaves the object consistent; a cancel ends the OS thread's condition
 * wait with the mutex held again; futex waits and pthread_once work across
 * the two kinds of threads; a signal handler's sem_post wakes the main
 * thread's wait, and one on an OS thread posts the semaphore that thread
 * is using; a green thread joins an OS thread that needs another green
 * thread before it can end; values kept under keys on an OS thread get
 * their destructors when it ends; an OS thread asks about a green thread
 * by its id and signals it. Natively every thread is an OS thread,
 * and the transcript must be the same. */
#include "threads_test.h"

#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

typedef int (*create_fn)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
static create_fn libc_create;

/* An OS thread under green threads too. */
static void os_thread(pthread_t* t, void* (*fn)(void*), void* arg) {
    CHECK(libc_create(t, NULL, fn, arg) == 0);
}

/* Joins an OS thread by trying and napping: the cases below that share
 * objects do not depend on pthread_join itself, which joins_of_os_threads()
 * tests. */
static void* os_join(pthread_t t) {
    void* ret = NULL;
    int r;
    while ((r = pthread_tryjoin_np(t, &ret)) == EBUSY) {
        usleep(1000);
    }
    CHECK(r == 0);
    return ret;
}

/* ---- mutex: counters incremented under one lock from both sides ---- */

enum { kRounds = 20000, kGreen = 3 };
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void* count_up(void* arg) {
    (void)arg;
    for (int i = 0; i < kRounds; ++i) {
        CHECK(pthread_mutex_lock(&counter_lock) == 0);
        long v = counter;
        if (i % 64 == 0) {
            sched_yield(); /* hold it across a switch now and then */
        }
        counter = v + 1;
        CHECK(pthread_mutex_unlock(&counter_lock) == 0);
    }
    return NULL;
}

static void mutex_both_ways(void) {
    pthread_t os1, os2, g[kGreen];
    os_thread(&os1, count_up, NULL);
    os_thread(&os2, count_up, NULL);
    for (int i = 0; i < kGreen; ++i) {
        CHECK(pthread_create(&g[i], NULL, count_up, NULL) == 0);
    }
    count_up(NULL);
    for (int i = 0; i < kGreen; ++i) {
        CHECK(pthread_join(g[i], NULL) == 0);
    }
    os_join(os1);
    os_join(os2);
    printf("mutex: counter %ld of %d\n", counter, (kGreen + 3) * kRounds);
}

/* ---- condition variable: a ping-pong of turns ---- */

enum { kTurns = 5000 };
static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static int turn;  /* even: the green side's, odd: the OS thread's */

static void play(int parity) {
    for (int i = 0; i < kTurns; ++i) {
        CHECK(pthread_mutex_lock(&turn_lock) == 0);
        while (turn % 2 != parity) {
            CHECK(pthread_cond_wait(&turn_cond, &turn_lock) == 0);
        }
        ++turn;
        CHECK(pthread_cond_signal(&turn_cond) == 0);
        CHECK(pthread_mutex_unlock(&turn_lock) == 0);
    }
}

static void* play_odd(void* arg) {
    (void)arg;
    play(1);
    return NULL;
}

static void* play_even(void* arg) {
    (void)arg;
    play(0);
    return NULL;
}

static void cond_both_ways(void) {
    pthread_t os, g;
    os_thread(&os, play_odd, NULL);
    CHECK(pthread_create(&g, NULL, play_even, NULL) == 0);
    CHECK(pthread_join(g, NULL) == 0);
    os_join(os);
    printf("cond: %d turns\n", turn);
}

/* Broadcast from an OS thread to several green waiters and back. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_passed;

static void* pass_gate(void* arg) {
    (void)arg;
    CHECK(pthread_mutex_lock(&gate_lock) == 0);
    while (!gate_open) {
        CHECK(pthread_cond_wait(&gate_cond, &gate_lock) == 0);
    }
    ++gate_passed;
    CHECK(pthread_mutex_unlock(&gate_lock) == 0);
    return NULL;
}

static void* open_gate(void* arg) {
    (void)arg;
    usleep(30000);
    CHECK(pthread_mutex_lock(&gate_lock) == 0);
    gate_open = 1;
    CHECK(pthread_cond_broadcast(&gate_cond) == 0);
    CHECK(pthread_mutex_unlock(&gate_lock) == 0);
    return NULL;
}

static void broadcast_from_os(void) {
    pthread_t g[4], os;
    for (int i = 0; i < 4; ++i) {
        CHECK(pthread_create(&g[i], NULL, pass_gate, NULL) == 0);
    }
    os_thread(&os, open_gate, NULL);
    for (int i = 0; i < 4; ++i) {
        CHECK(pthread_join(g[i], NULL) == 0);
    }
    os_join(os);
    printf("broadcast from an OS thread: %d green waiters passed\n", gate_passed);
    /* And the other way: OS waiters, a green broadcast. */
    gate_open = 0;
    gate_passed = 0;
    pthread_t w[2];
    for (int i = 0; i < 2; ++i) {
        os_thread(&w[i], pass_gate, NULL);
    }
    open_gate(NULL);
    for (int i = 0; i < 2; ++i) {
        os_join(w[i]);
    }
    printf("broadcast to OS threads: %d passed\n", gate_passed);
}

/* ---- semaphore: items through two semaphores, each way ---- */

enum { kItems = 5000 };
static sem_t to_os, to_green;

static void* echo_items(void* arg) {
    (void)arg;
    for (int i = 0; i < kItems; ++i) {
        while (sem_wait(&to_os) != 0) {
            CHECK(errno == EINTR);
        }
        CHECK(sem_post(&to_green) == 0);
    }
    return NULL;
}

static void sem_both_ways(void) {
    CHECK(sem_init(&to_os, 0, 0) == 0);
    CHECK(sem_init(&to_green, 0, 0) == 0);
    pthread_t os;
    os_thread(&os, echo_items, NULL);
    int got = 0;
    for (int i = 0; i < kItems; ++i) {
        CHECK(sem_post(&to_os) == 0);
        while (sem_wait(&to_green) != 0) {
            CHECK(errno == EINTR);
        }
        ++got;
    }
    os_join(os);
    int v = -1;
    CHECK(sem_getvalue(&to_green, &v) == 0);
    printf("sem: %d items echoed, value left %d\n", got, v);
}

/* ---- rwlock: an OS writer keeps two fields equal; green readers check ---- */

static pthread_rwlock_t pair_lock = PTHREAD_RWLOCK_INITIALIZER;
static long pair_a, pair_b;
static int writing_done;

static void* write_pairs(void* arg) {
    (void)arg;
    for (int i = 0; i < 3000; ++i) {
        CHECK(pthread_rwlock_wrlock(&pair_lock) == 0);
        ++pair_a;
        ++pair_b;
        CHECK(pthread_rwlock_unlock(&pair_lock) == 0);
    }
    __atomic_store_n(&writing_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void* read_pairs(void* arg) {
    long* bad = arg;
    while (!__atomic_load_n(&writing_done, __ATOMIC_ACQUIRE)) {
        CHECK(pthread_rwlock_rdlock(&pair_lock) == 0);
        if (pair_a != pair_b) {
            ++*bad;
        }
        CHECK(pthread_rwlock_unlock(&pair_lock) == 0);
        sched_yield();
    }
    return NULL;
}

static void rwlock_both_ways(void) {
    pthread_t os, g[2];
    long bad[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
        CHECK(pthread_create(&g[i], NULL, read_pairs, &bad[i]) == 0);
    }
    os_thread(&os, write_pairs, NULL);
    os_join(os);
    for (int i = 0; i < 2; ++i) {
        CHECK(pthread_join(g[i], NULL) == 0);
    }
    printf("rwlock: %ld writes, %ld torn reads\n", pair_a, bad[0] + bad[1]);
}

/* ---- barrier: two OS threads and two green ones, several rounds ---- */

static pthread_barrier_t bar;
static int serial_count;

static void* cross_barrier(void* arg) {
    (void)arg;
    for (int i = 0; i < 50; ++i) {
        int r = pthread_barrier_wait(&bar);
        CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
            __atomic_fetch_add(&serial_count, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void barrier_both_ways(void) {
    CHECK(pthread_barrier_init(&bar, NULL, 4) == 0);
    pthread_t t[4];
    os_thread(&t[0], cross_barrier, NULL);
    os_thread(&t[1], cross_barrier, NULL);
    CHECK(pthread_create(&t[2], NULL, cross_barrier, NULL) == 0);
    CHECK(pthread_create(&t[3], NULL, cross_barrier, NULL) == 0);
    os_join(t[0]);
    os_join(t[1]);
    CHECK(pthread_join(t[2], NULL) == 0);
    CHECK(pthread_join(t[3], NULL) == 0);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    printf("barrier: 50 rounds, %d serial threads\n", serial_count);
}

/* ---- timeouts on each side ---- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static sem_t empty;

static void* os_timeouts(void* arg) {
    (void)arg;
    struct timespec t = tt_after(CLOCK_REALTIME, 50);
    double t0 = tt_now();
    int r = pthread_mutex_timedlock(&held, &t);
    printf("os thread: timedlock on a mutex a green thread holds: %s (%s)\n", tt_err(r),
           tt_now() - t0 >= 0.04 ? "waited" : "TOO SOON");
    t = tt_after(CLOCK_REALTIME, 30);
    r = sem_timedwait(&empty, &t);
    printf("os thread: sem_timedwait: %d %s\n", r, tt_err(r == 0 ? 0 : errno));
    pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER;
    CHECK(pthread_mutex_lock(&own) == 0);
    t = tt_after(CLOCK_REALTIME, 30);
    r = pthread_cond_timedwait(&never, &own, &t);
    printf("os thread: cond_timedwait: %s, mutex held after: %s\n", tt_err(r),
           pthread_mutex_trylock(&own) == EBUSY ? "yes" : "NO");
    CHECK(pthread_mutex_unlock(&own) == 0);
    return NULL;
}

static sem_t hold_taken, hold_release;

/* Holds `held` until told to let go. */
static void* os_hold(void* arg) {
    (void)arg;
    CHECK(pthread_mutex_lock(&held) == 0);
    CHECK(sem_post(&hold_taken) == 0);
    while (sem_wait(&hold_release) != 0) {
        CHECK(errno == EINTR);
    }
    usleep(10000); /* the green side is waiting in its lock by now, or soon */
    CHECK(pthread_mutex_unlock(&held) == 0);
    return NULL;
}

static void timeouts(void) {
    CHECK(sem_init(&empty, 0, 0) == 0);
    CHECK(pthread_mutex_lock(&held) == 0);
    pthread_t os;
    os_thread(&os, os_timeouts, NULL);
    os_join(os);
    CHECK(pthread_mutex_unlock(&held) == 0);

    /* A green thread times out on a mutex an OS thread holds, then gets it. */
    CHECK(sem_init(&hold_taken, 0, 0) == 0);
    CHECK(sem_init(&hold_release, 0, 0) == 0);
    os_thread(&os, os_hold, NULL);
    CHECK(sem_wait(&hold_taken) == 0);
    struct timespec t = tt_after(CLOCK_REALTIME, 20);
    int r = pthread_mutex_timedlock(&held, &t);
    printf("green: timedlock on a mutex an OS thread holds: %s\n", tt_err(r));
    CHECK(sem_post(&hold_release) == 0);
    r = pthread_mutex_lock(&held);
    printf("green: lock after the OS thread lets go: %s\n", tt_err(r));
    CHECK(pthread_mutex_unlock(&held) == 0);
    os_join(os);
}

/* ---- deadlines racing hand-offs ---- */

static pthread_mutex_t churn = PTHREAD_MUTEX_INITIALIZER;
static int churn_stop;

static void* churn_lock(void* arg) {
    (void)arg;
    while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
        CHECK(pthread_mutex_lock(&churn) == 0);
        for (volatile int i = 0; i < 2000; ++i) {
        }
        CHECK(pthread_mutex_unlock(&churn) == 0);
    }
    return NULL;
}

static void* green_timed_churn(void* arg) {
    long* outcomes = arg;
    for (int i = 0; i < 2000; ++i) {
        struct timespec t = tt_after(CLOCK_MONOTONIC, 0);
        t.tv_nsec += 20000; /* 20 us */
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec += 1;
            t.tv_nsec -= 1000000000L;
        }
        int r = pthread_mutex_clocklock(&churn, CLOCK_MONOTONIC, &t);
        CHECK(r == 0 || r == ETIMEDOUT);
        if (r == 0) {
            ++outcomes[0];
            CHECK(pthread_mutex_unlock(&churn) == 0);
        } else {
            ++outcomes[1];
        }
    }
    return NULL;
}

static void deadline_races(void) {
    pthread_t os[2], g[2];
    long outcomes[2][2] = {{0, 0}, {0, 0}};
    os_thread(&os[0], churn_lock, NULL);
    os_thread(&os[1], churn_lock, NULL);
    for (int i = 0; i < 2; ++i) {
        CHECK(pthread_create(&g[i], NULL, green_timed_churn, outcomes[i]) == 0);
    }
    for (int i = 0; i < 2; ++i) {
        CHECK(pthread_join(g[i], NULL) == 0);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    os_join(os[0]);
    os_join(os[1]);
    long total = outcomes[0][0] + outcomes[0][1] + outcomes[1][0] + outcomes[1][1];
    /* Nothing left held or queued: the mutex is free for everyone. */
    int r = pthread_mutex_trylock(&churn);
    printf("deadline races: %ld attempts, each locked or timed out; free after: %s\n", total,
           r == 0 ? "yes" : tt_err(r));
    if (r == 0) {
        CHECK(pthread_mutex_unlock(&churn) == 0);
    }
}

/* ---- cancel of an OS thread in a condition wait ---- */

static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_cond = PTHREAD_COND_INITIALIZER;
static int cleanup_held;
static int waiting_os;

static void note_cleanup(void* arg) {
    (void)arg;
    cleanup_held = pthread_mutex_trylock(&cancel_lock) == EBUSY;
    pthread_mutex_unlock(&cancel_lock);
}

static void* wait_forever(void* arg) {
    (void)arg;
    CHECK(pthread_mutex_lock(&cancel_lock) == 0);
    pthread_cleanup_push(note_cleanup, NULL);
    __atomic_store_n(&waiting_os, 1, __ATOMIC_RELEASE);
    for (;;) {
        pthread_cond_wait(&cancel_cond, &cancel_lock);
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void cancel_os_waiter(void) {
    pthread_t os;
    os_thread(&os, wait_forever, NULL);
    while (!__atomic_load_n(&waiting_os, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
    usleep(20000);
    CHECK(pthread_cancel(os) == 0);
    void* ret = os_join(os);
    printf("cancel: OS waiter ended %s, mutex held in its cleanup: %s\n",
           ret == PTHREAD_CANCELED ? "cancelled" : "otherwise", cleanup_held ? "yes" : "no");
    /* Its place in the wait list is gone: a signal now wakes nobody, and
     * the mutex is free. */
    CHECK(pthread_cond_signal(&cancel_cond) == 0);
    CHECK(pthread_mutex_trylock(&cancel_lock) == 0);
    CHECK(pthread_mutex_unlock(&cancel_lock) == 0);
}

/* ---- futex through syscall(), as std::atomic::wait uses it ---- */

static unsigned futex_word;
enum { kFutexRounds = 2000 };

static void futex_wait_for(unsigned want) {
    unsigned v;
    while ((v = __atomic_load_n(&futex_word, __ATOMIC_ACQUIRE)) != want) {
        long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
        CHECK(r == 0 || errno == EAGAIN || errno == EINTR);
    }
}

static void futex_set(unsigned v) {
    __atomic_store_n(&futex_word, v, __ATOMIC_RELEASE);
    CHECK(syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) >= 0);
}

/* Odd values are the OS thread's to move on from, even ones the green
 * side's. */
static void* futex_odd(void* arg) {
    (void)arg;
    for (unsigned i = 1; i < 2 * kFutexRounds; i += 2) {
        futex_wait_for(i);
        futex_set(i + 1);
    }
    return NULL;
}

static void futex_both_ways(void) {
    pthread_t os;
    os_thread(&os, futex_odd, NULL);
    for (unsigned i = 0; i < 2 * kFutexRounds; i += 2) {
        futex_wait_for(i);
        futex_set(i + 1);
    }
    futex_wait_for(2 * kFutexRounds);
    os_join(os);
    printf("futex: %u hand-offs\n", futex_word);
}

/* ---- pthread_once run by one side while the other calls it ---- */

static pthread_once_t once_green = PTHREAD_ONCE_INIT, once_os = PTHREAD_ONCE_INIT;
static int once_runs;
static int once_seen_by_os, once_seen_by_green;

static void slow_init(void) {
    usleep(50000);
    __atomic_fetch_add(&once_runs, 1, __ATOMIC_RELEASE);
}

static void* os_once_caller(void* arg) {
    (void)arg;
    usleep(10000); /* the green side is inside the routine */
    CHECK(pthread_once(&once_green, slow_init) == 0);
    once_seen_by_os = __atomic_load_n(&once_runs, __ATOMIC_ACQUIRE);
    return NULL;
}

static void* os_once_runner(void* arg) {
    (void)arg;
    CHECK(pthread_once(&once_os, slow_init) == 0);
    return NULL;
}

static void once_both_ways(void) {
    pthread_t os;
    os_thread(&os, os_once_caller, NULL);
    CHECK(pthread_once(&once_green, slow_init) == 0);
    os_join(os);
    os_thread(&os, os_once_runner, NULL);
    usleep(10000); /* the OS thread is inside the routine */
    CHECK(pthread_once(&once_os, slow_init) == 0);
    once_seen_by_green = __atomic_load_n(&once_runs, __ATOMIC_ACQUIRE);
    os_join(os);
    printf("once: %d runs; the OS caller saw %d done, the green caller %d\n", once_runs, once_seen_by_os,
           once_seen_by_green);
}

/* ---- a signal handler posts what the main thread waits for ---- */

static sem_t from_handler;
static volatile sig_atomic_t posted_in_handler;

static void post_in_handler(int sig) {
    (void)sig;
    sem_post(&from_handler); /* async-signal-safe */
    posted_in_handler = posted_in_handler + 1;
}

static void handler_posts(void) {
    CHECK(sem_init(&from_handler, 0, 0) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = post_in_handler;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 50}, {0, 50}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    int waited = 0;
    while (waited < 3000) {
        if (sem_wait(&from_handler) == 0) {
            ++waited;
        } else {
            CHECK(errno == EINTR);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
    usleep(10000); /* a signal in flight lands */
    int left = -1;
    CHECK(sem_getvalue(&from_handler, &left) == 0);
    printf("handler posts: 3000 waits woken; posts %s waits plus what is left\n",
           posted_in_handler == waited + left ? "equal" : "DIFFER FROM");
}

/* ---- a handler on an OS thread posts the semaphore that thread is in ---- */

static sem_t os_sem;
static volatile sig_atomic_t os_handler_posts;
static int os_loop_done;
static long os_taken;

static void post_on_os_thread(int sig) {
    (void)sig;
    sem_post(&os_sem);
    os_handler_posts = os_handler_posts + 1;
}

static void* post_and_take(void* arg) {
    (void)arg;
    for (int i = 0; i < 200000; ++i) {
        CHECK(sem_post(&os_sem) == 0);
        if (sem_trywait(&os_sem) == 0) {
            ++os_taken;
        }
    }
    __atomic_store_n(&os_loop_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void os_thread_handler(void) {
    CHECK(sem_init(&os_sem, 0, 0) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = post_on_os_thread;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t os;
    os_thread(&os, post_and_take, NULL);
    int sent = 0;
    while (!__atomic_load_n(&os_loop_done, __ATOMIC_ACQUIRE)) {
        CHECK(pthread_kill(os, SIGUSR1) == 0);
        ++sent;
        usleep(20);
    }
    os_join(os);
    int left = -1;
    CHECK(sem_getvalue(&os_sem, &left) == 0);
    printf("handler on an OS thread: the count %s\n",
           200000 + os_handler_posts - os_taken == left ? "adds up" : "DOES NOT ADD UP");
}


static void* wait_sem(void* arg) {
    while (sem_wait(arg) != 0) {
        CHECK(errno == EINTR);
    }
    return NULL;
}

/* ---- pthread_join of an OS thread, from a green thread ---- */

static pthread_mutex_t join_lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t join_go;
static volatile int ticks;

/* Needs join_lock, which a green thread holds while the main thread joins. */
static void* take_join_lock(void* arg) {
    CHECK(pthread_mutex_lock(&join_lock) == 0);
    CHECK(pthread_mutex_unlock(&join_lock) == 0);
    return arg;
}

static void* hold_join_lock_a_while(void* arg) {
    (void)arg;
    usleep(50000);
    CHECK(pthread_mutex_unlock(&join_lock) == 0);
    return NULL;
}

static void* tick_until_posted(void* arg) {
    (void)arg;
    while (sem_trywait(&join_go) != 0) {
        ++ticks;
        usleep(2000);
    }
    return NULL;
}

static void* join_it(void* arg) {
    void* ret = NULL;
    int r = pthread_join(*(pthread_t*)arg, &ret);
    return (void*)(long)(r == 0 ? 1000 : r);
}

static void joins_of_os_threads(void) {
    CHECK(sem_init(&join_go, 0, 0) == 0);

    /* The OS thread needs a lock a green thread holds: the join must let
     * that thread run (else neither ever goes on). */
    CHECK(pthread_mutex_lock(&join_lock) == 0);
    pthread_t os, holder;
    os_thread(&os, take_join_lock, (void*)42L);
    CHECK(pthread_create(&holder, NULL, hold_join_lock_a_while, NULL) == 0);
    void* ret = NULL;
    int r = pthread_join(os, &ret);
    printf("join of an OS thread that needs a green thread first: %s, value %ld\n", tt_err(r), (long)ret);
    CHECK(pthread_join(holder, NULL) == 0);

    /* Timed and try forms on a thread still running, while a green
     * thread ticks. */
    pthread_t ticker;
    CHECK(pthread_create(&ticker, NULL, tick_until_posted, NULL) == 0);
    os_thread(&os, wait_sem, &join_go);
    printf("tryjoin of a running OS thread: %s\n", tt_err(pthread_tryjoin_np(os, NULL)));
    struct timespec t = tt_after(CLOCK_REALTIME, 60);
    const int ticks_before = ticks;
    double t0 = tt_now();
    r = pthread_timedjoin_np(os, NULL, &t);
    printf("timedjoin: %s (%s), green thread ran meanwhile: %s\n", tt_err(r),
           tt_now() - t0 >= 0.05 ? "waited" : "TOO SOON", ticks > ticks_before ? "yes" : "NO");
    t = tt_after(CLOCK_MONOTONIC, 20);
    printf("clockjoin on CLOCK_MONOTONIC: %s\n", tt_err(pthread_clockjoin_np(os, NULL, CLOCK_MONOTONIC, &t)));
    t.tv_sec = -1;
    printf("timedjoin with a deadline before 1970: %s\n", tt_err(pthread_timedjoin_np(os, NULL, &t)));
    printf("clockjoin on CLOCK_PROCESS_CPUTIME_ID: %s\n",
           tt_err(pthread_clockjoin_np(os, NULL, CLOCK_PROCESS_CPUTIME_ID, &t)));

    /* A green thread cancelled in its join; the OS thread stays joinable. */
    pthread_t joiner;
    CHECK(pthread_create(&joiner, NULL, join_it, &os) == 0);
    usleep(20000);
    CHECK(pthread_cancel(joiner) == 0);
    ret = NULL;
    CHECK(pthread_join(joiner, &ret) == 0);
    printf("joiner cancelled in its join: %s\n", ret == PTHREAD_CANCELED ? "yes" : "NO");

    /* glibc waits on past a deadline with invalid nanoseconds, until the
     * thread ends. */
    CHECK(sem_post(&join_go) == 0); /* the OS thread */
    CHECK(sem_post(&join_go) == 0); /* the ticker */
    t = tt_after(CLOCK_REALTIME, 0);
    t.tv_nsec = 1000000000L;
    r = pthread_clockjoin_np(os, &ret, CLOCK_REALTIME, &t);
    printf("clockjoin with a bad deadline, the thread ending: %s\n", tt_err(r));
    CHECK(pthread_join(ticker, NULL) == 0);

    /* A detached OS thread, still running: libc's EINVAL, at once. */
    pthread_attr_t detached;
    CHECK(pthread_attr_init(&detached) == 0);
    CHECK(pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED) == 0);
    sem_t hold;
    CHECK(sem_init(&hold, 0, 0) == 0);
    CHECK(libc_create(&os, &detached, wait_sem, &hold) == 0);
    printf("join of a detached OS thread: %s\n", tt_err(pthread_join(os, NULL)));
    CHECK(sem_post(&hold) == 0);
    usleep(20000);
    pthread_attr_destroy(&detached);

    /* On an ended thread: an unsupported clock is still refused, a past
     * deadline is never looked at. */
    os_thread(&os, take_join_lock, (void*)7L);
    usleep(20000);
    t.tv_sec = -1;
    printf("clockjoin of an ended thread on CLOCK_PROCESS_CPUTIME_ID: %s\n",
           tt_err(pthread_clockjoin_np(os, NULL, CLOCK_PROCESS_CPUTIME_ID, &t)));
    ret = NULL;
    r = pthread_timedjoin_np(os, &ret, &t);
    printf("timedjoin of an ended thread, deadline before 1970: %s, value %ld\n", tt_err(r), (long)ret);
}

/* ---- thread-specific data on an OS thread ---- */

static pthread_key_t os_key, os_key_again;
static long os_dtor_sum;
static int os_again_rounds;

static void os_dtor(void* v) {
    os_dtor_sum += (long)v;
}

static void os_dtor_again(void* v) {
    ++os_again_rounds;
    if ((long)v < 2) {
        pthread_setspecific(os_key_again, (void*)((long)v + 1)); /* another round */
    }
}

static void* keep_values(void* arg) {
    CHECK(pthread_getspecific(os_key) == NULL);
    CHECK(pthread_setspecific(os_key, arg) == 0);
    CHECK(pthread_setspecific(os_key_again, (void*)1L) == 0);
    return pthread_getspecific(os_key);
}

static void tsd_on_os_threads(void) {
    CHECK(pthread_key_create(&os_key, os_dtor) == 0);
    CHECK(pthread_key_create(&os_key_again, os_dtor_again) == 0);
    pthread_t os[2];
    os_thread(&os[0], keep_values, (void*)5L);
    os_thread(&os[1], keep_values, (void*)37L);
    long seen = (long)os_join(os[0]) + (long)os_join(os[1]);
    printf("tsd on OS threads: values read back %ld, destructors got %ld, %d rounds of the one that sets again\n",
           seen, os_dtor_sum, os_again_rounds);
    printf("tsd: the main thread's value stays its own: %s\n", pthread_getspecific(os_key) == NULL ? "yes" : "NO");
}

/* An OS thread handed a (green) thread's id asks about it and signals it:
 * under green threads the id is no glibc thread record, and must not be
 * read as one. The target waits for SIGUSR2 with sigwait (blocked in every
 * thread, so the OS thread's send cannot run a handler anywhere). */
struct named {
    pthread_t target;
    int kill0;
    int killed;
    int name_err;
    char name[16];
};

static void* ask_about(void* arg) {
    struct named* n = arg;
    n->kill0 = pthread_kill(n->target, 0);
    n->name_err = pthread_getname_np(n->target, n->name, sizeof n->name);
    n->killed = pthread_kill(n->target, SIGUSR2);
    return NULL;
}

static void* await_usr2(void* arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    int sig = 0;
    const int r = sigwait(&set, &sig);
    return (void*)(long)(r == 0 ? sig : -r);
}

static void ids_across_kinds(void) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, &old) == 0);
    struct named n;
    memset(&n, 0, sizeof n);
    CHECK(pthread_create(&n.target, NULL, await_usr2, NULL) == 0);
    CHECK(pthread_setname_np(n.target, "asked-about") == 0);
    pthread_t os;
    os_thread(&os, ask_about, &n);
    os_join(os);
    void* got;
    CHECK(pthread_join(n.target, &got) == 0);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    printf("ids across kinds: kill 0 says %s, name %s (%s), SIGUSR2 says %s and is taken by its sigwait: %s\n",
           tt_err(n.kill0), n.name, tt_err(n.name_err), tt_err(n.killed), (long)got == SIGUSR2 ? "yes" : "no");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc != NULL);
    libc_create = (create_fn)dlsym(libc, "pthread_create");
    CHECK(libc_create != NULL);

    mutex_both_ways();
    cond_both_ways();
    broadcast_from_os();
    sem_both_ways();
    rwlock_both_ways();
    barrier_both_ways();
    timeouts();
    deadline_races();
    cancel_os_waiter();
    futex_both_ways();
    once_both_ways();
    handler_posts();
    os_thread_handler();
    joins_of_os_threads();
    tsd_on_os_threads();
    ids_across_kinds();

    /* The runner wants to see an OS thread kept: one waits while the
     * count is taken. */
    sem_t last;
    CHECK(sem_init(&last, 0, 0) == 0);
    pthread_t os;
    os_thread(&os, wait_sem, &last);
    usleep(20000);
    tt_report_threads();
    CHECK(sem_post(&last) == 0);
    os_join(os);
    printf("end\n");
    return 0;
}

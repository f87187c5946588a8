/* A signal sent to one thread runs its handler in that thread: there
 * pthread_self() is the target, its __thread variables are the target's,
 * and the handler runs on the target's stack, whatever the target is doing.
 * - a reader blocked on a pipe, and a thread blocked on a mutex (which
 *   runs the handler and goes on waiting for the mutex);
 * - a "stop the world" as a conservative collector does it (Boehm GC, so
 *   Guile, ...): each worker's handler acknowledges and waits in
 *   sigsuspend until a "resume" signal; while all wait, none runs;
 * - a signal the target blocks waits for it: sigpending shows it, sigwait
 *   takes it (with the si_code libc's sigwaitinfo gives), or it runs when unblocked,
 *   before pthread_sigmask returns; queued real-time signals keep order
 *   and values;
 * - the main thread as the target of a worker: its read fails with EINTR
 *   and the handler sees the main thread;
 * - raise() signals the raising thread alone: a reader elsewhere reads on,
 *   and a blocked signal waits for that thread's unblock. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#define SIG_SUSPEND SIGUSR2
#define SIG_RESUME SIGXCPU

static __thread int t_id; /* each thread's own number */

static volatile sig_atomic_t g_seen_id = -1;
static pthread_t g_seen_self;
static sem_t g_handled;

static void on_usr1(int sig) {
    (void)sig;
    g_seen_id = t_id;
    g_seen_self = pthread_self();
    sem_post(&g_handled);
}

static void install(int sig, void (*fn)(int), int flags, const sigset_t* mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    if (mask != NULL) {
        sa.sa_mask = *mask;
    } else {
        sigemptyset(&sa.sa_mask);
    }
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

/* Waits up to 5 s for the handler: 0 when it ran. */
static int wait_handled(void) {
    struct timespec t = tt_after(CLOCK_REALTIME, 5000);
    int r;
    while ((r = sem_timedwait(&g_handled, &t)) != 0 && errno == EINTR) {
    }
    return r;
}

/* ---- 1. a reader blocked on a pipe -------------------------------------------- */

struct reader {
    int fds[2];
    sem_t ready;
    long got;
};

static void* reader_main(void* arg) {
    struct reader* r = arg;
    t_id = 1;
    sem_post(&r->ready);
    char c;
    ssize_t n;
    while ((n = read(r->fds[0], &c, 1)) < 0 && errno == EINTR) {
    }
    r->got = n;
    return NULL;
}

static void case_reader(void) {
    struct reader r = {.got = -2};
    CHECK(pipe(r.fds) == 0);
    sem_init(&r.ready, 0, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, reader_main, &r) == 0);
    sem_wait(&r.ready);
    usleep(20000);
    g_seen_id = -1;
    CHECK(pthread_kill(th, SIGUSR1) == 0);
    const int w = wait_handled();
    printf("reader: handler ran %s, its __thread %d, pthread_self is the reader %s\n", w == 0 ? "yes" : "no",
           (int)g_seen_id, pthread_equal(g_seen_self, th) ? "yes" : "no");
    CHECK(write(r.fds[1], "x", 1) == 1);
    pthread_join(th, NULL);
    printf("reader: then read %ld byte\n", r.got);
    close(r.fds[0]);
    close(r.fds[1]);
}

/* ---- 2. a thread blocked on a mutex ------------------------------------------- */

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;

static void* locker_main(void* arg) {
    t_id = 2;
    sem_post(arg);
    const int r = pthread_mutex_lock(&g_mutex);
    pthread_mutex_unlock(&g_mutex);
    return (void*)(intptr_t)r;
}

static void case_mutex(void) {
    sem_t ready;
    sem_init(&ready, 0, 0);
    pthread_mutex_lock(&g_mutex);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, locker_main, &ready) == 0);
    sem_wait(&ready);
    usleep(20000);
    g_seen_id = -1;
    CHECK(pthread_kill(th, SIGUSR1) == 0);
    const int w = wait_handled();
    printf("mutex waiter: handler ran while it waits %s, its __thread %d, pthread_self is it %s\n",
           w == 0 ? "yes" : "no", (int)g_seen_id, pthread_equal(g_seen_self, th) ? "yes" : "no");
    pthread_mutex_unlock(&g_mutex);
    void* res;
    pthread_join(th, &res);
    printf("mutex waiter: then its lock said %s\n", tt_err((int)(intptr_t)res));
}

/* ---- 3. stop the world --------------------------------------------------------- */

#define WORKERS 4

struct worker {
    pthread_t th;
    int n;
    char* stack_lo;
    char* stack_hi;
    volatile int stopped_on_own_stack;
    volatile sig_atomic_t resumed;
};

static struct worker g_workers[WORKERS];
static sem_t g_ack;
static volatile long g_progress;
static volatile int g_stop;
static sigset_t g_suspend_wait; /* everything but SIG_RESUME */

static struct worker* me(void) {
    for (int i = 0; i < WORKERS; ++i) {
        if (pthread_equal(g_workers[i].th, pthread_self())) {
            return &g_workers[i];
        }
    }
    return NULL;
}

static void on_resume(int sig) {
    (void)sig;
}

static void on_suspend(int sig) {
    (void)sig;
    struct worker* w = me();
    char here;
    if (w != NULL) {
        w->stopped_on_own_stack = t_id == w->n && &here > w->stack_lo && &here < w->stack_hi;
    }
    sem_post(&g_ack);
    while (w != NULL && !w->resumed) {
        sigsuspend(&g_suspend_wait);
    }
}

static void* worker_main(void* arg) {
    struct worker* w = arg;
    t_id = w->n;
    pthread_attr_t attr;
    void* base;
    size_t size;
    CHECK(pthread_getattr_np(pthread_self(), &attr) == 0);
    CHECK(pthread_attr_getstack(&attr, &base, &size) == 0);
    pthread_attr_destroy(&attr);
    w->stack_lo = base;
    w->stack_hi = (char*)base + size;
    sem_post(&g_ack);
    while (!g_stop) {
        __atomic_add_fetch(&g_progress, 1, __ATOMIC_RELAXED);
        usleep(500);
    }
    return NULL;
}

static void case_stop_world(void) {
    sigset_t during;
    sigfillset(&during);
    sigdelset(&during, SIG_RESUME);
    sigdelset(&during, SIGINT);
    sigdelset(&during, SIGTERM);
    g_suspend_wait = during;
    install(SIG_SUSPEND, on_suspend, SA_RESTART, &during);
    install(SIG_RESUME, on_resume, SA_RESTART, NULL);
    sem_init(&g_ack, 0, 0);
    for (int i = 0; i < WORKERS; ++i) {
        g_workers[i].n = 10 + i;
        CHECK(pthread_create(&g_workers[i].th, NULL, worker_main, &g_workers[i]) == 0);
    }
    for (int i = 0; i < WORKERS; ++i) {
        sem_wait(&g_ack);
    }
    usleep(20000);
    for (int i = 0; i < WORKERS; ++i) {
        CHECK(pthread_kill(g_workers[i].th, SIG_SUSPEND) == 0);
    }
    int acks = 0;
    struct timespec t = tt_after(CLOCK_REALTIME, 5000);
    while (acks < WORKERS && (sem_timedwait(&g_ack, &t) == 0 || errno == EINTR)) {
        ++acks;
    }
    const long before = g_progress;
    usleep(50000);
    const long after = g_progress;
    int own = 0;
    for (int i = 0; i < WORKERS; ++i) {
        own += g_workers[i].stopped_on_own_stack;
    }
    printf("stop the world: %d of %d stopped, each on its own stack and __thread: %d, none ran meanwhile: %s\n", acks,
           WORKERS, own, before == after ? "yes" : "no");
    for (int i = 0; i < WORKERS; ++i) {
        g_workers[i].resumed = 1;
        CHECK(pthread_kill(g_workers[i].th, SIG_RESUME) == 0);
    }
    usleep(50000);
    printf("stop the world: running again after the resume: %s\n", g_progress > after ? "yes" : "no");
    g_stop = 1;
    for (int i = 0; i < WORKERS; ++i) {
        pthread_join(g_workers[i].th, NULL);
    }
    signal(SIG_SUSPEND, SIG_DFL);
    signal(SIG_RESUME, SIG_DFL);
}

/* ---- 4. a signal the target blocks --------------------------------------------- */

struct blocker {
    sem_t sent;
    sem_t ready;
    int pending_seen;
    int waited;
    int code;
    int ran_at_unblock;
    int values[3];
};

static volatile sig_atomic_t g_usr1_count;

static void count_usr1(int sig) {
    (void)sig;
    if (t_id == 4) {
        ++g_usr1_count;
    }
}

static void* blocker_main(void* arg) {
    struct blocker* b = arg;
    t_id = 4;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN + 1);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    sem_post(&b->ready);
    sem_wait(&b->sent); /* one SIGUSR1 sent */
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    b->pending_seen = sigismember(&pending, SIGUSR1);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    siginfo_t info;
    b->waited = sigwaitinfo(&one, &info);
    b->code = info.si_code;
    sem_post(&b->ready);
    sem_wait(&b->sent); /* another */
    const int before = g_usr1_count;
    CHECK(pthread_sigmask(SIG_UNBLOCK, &one, NULL) == 0);
    b->ran_at_unblock = g_usr1_count - before;
    sem_post(&b->ready);
    sem_wait(&b->sent); /* three queued real-time signals */
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN + 1);
    for (int i = 0; i < 3; ++i) {
        b->values[i] = sigwaitinfo(&rt, &info) == SIGRTMIN + 1 ? info.si_value.sival_int : -1;
    }
    return NULL;
}

static void case_blocked(void) {
    install(SIGUSR1, count_usr1, 0, NULL);
    struct blocker b;
    memset(&b, 0, sizeof b);
    sem_init(&b.sent, 0, 0);
    sem_init(&b.ready, 0, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, blocker_main, &b) == 0);
    sem_wait(&b.ready);
    CHECK(pthread_kill(th, SIGUSR1) == 0);
    sem_post(&b.sent);
    sem_wait(&b.ready);
    printf("blocked: sigpending shows it %s, sigwaitinfo took %s with code %s, handler ran %d\n",
           b.pending_seen ? "yes" : "no", b.waited == SIGUSR1 ? "SIGUSR1" : "something else",
           b.code == SI_TKILL ? "SI_TKILL" : b.code == SI_USER ? "SI_USER" : "other", (int)g_usr1_count);
    CHECK(pthread_kill(th, SIGUSR1) == 0);
    sem_post(&b.sent);
    sem_wait(&b.ready);
    printf("blocked: unblocking ran its handler %d time before pthread_sigmask returned\n", b.ran_at_unblock);
    for (int i = 1; i <= 3; ++i) {
        CHECK(pthread_sigqueue(th, SIGRTMIN + 1, (union sigval){.sival_int = i}) == 0);
    }
    sem_post(&b.sent);
    pthread_join(th, NULL);
    printf("blocked: queued values in order %d %d %d\n", b.values[0], b.values[1], b.values[2]);
}

/* ---- 5. the main thread as the target ---------------------------------------- */

static pthread_t g_main;
static volatile int g_main_reported;

static void* to_main(void* arg) {
    (void)arg;
    t_id = 5;
    while (!g_main_reported) {
        pthread_kill(g_main, SIGUSR1);
        usleep(200000);
    }
    return NULL;
}

static void case_main(void) {
    install(SIGUSR1, on_usr1, 0, NULL);
    int fds[2];
    CHECK(pipe(fds) == 0);
    g_main = pthread_self();
    g_seen_id = -1;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, to_main, NULL) == 0);
    char c;
    const ssize_t n = read(fds[0], &c, 1);
    const int e = errno;
    g_main_reported = 1;
    pthread_join(th, NULL);
    while (sem_trywait(&g_handled) == 0) {
    }
    printf("main: read %zd %s, handler saw __thread %d and the main thread %s\n", n, n < 0 ? tt_err(e) : "",
           (int)g_seen_id, pthread_equal(g_seen_self, g_main) ? "yes" : "no");
    close(fds[0]);
    close(fds[1]);
}

/* ---- 6. raise: the raising thread alone ----------------------------------------- */

struct raiser {
    int fds[2];
    long first; /* the bystander's first read */
    int first_err;
    int handler_id;
    int pending_while_blocked;
    int ran_while_blocked;
    int ran_at_unblock;
};

static volatile sig_atomic_t g_raise_count;
static volatile sig_atomic_t g_raise_id = -1;

static void on_raise(int sig) {
    (void)sig;
    ++g_raise_count;
    g_raise_id = t_id;
}

static void* bystander(void* arg) {
    struct raiser* r = arg;
    t_id = 6;
    char c;
    r->first = read(r->fds[0], &c, 1);
    r->first_err = r->first < 0 ? errno : 0;
    return NULL;
}

static void* raising(void* arg) {
    struct raiser* r = arg;
    t_id = 7;
    CHECK(raise(SIGUSR1) == 0);
    r->handler_id = g_raise_id;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &one, NULL) == 0);
    const int before = g_raise_count;
    CHECK(raise(SIGUSR1) == 0);
    r->ran_while_blocked = g_raise_count - before;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    r->pending_while_blocked = sigismember(&pending, SIGUSR1);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &one, NULL) == 0);
    r->ran_at_unblock = g_raise_count - before;
    return NULL;
}

static void case_raise(void) {
    install(SIGUSR1, on_raise, 0, NULL); /* no SA_RESTART: an interrupted read would fail */
    struct raiser r;
    memset(&r, 0, sizeof r);
    CHECK(pipe(r.fds) == 0);
    pthread_t b, t;
    CHECK(pthread_create(&b, NULL, bystander, &r) == 0);
    usleep(20000);
    CHECK(pthread_create(&t, NULL, raising, &r) == 0);
    pthread_join(t, NULL);
    usleep(20000);
    CHECK(write(r.fds[1], "x", 1) == 1);
    pthread_join(b, NULL);
    printf("raise: handler ran in the raiser %s; a reader elsewhere read %ld %s\n", r.handler_id == 7 ? "yes" : "no",
           r.first, tt_err(r.first_err));
    printf("raise: blocked, it waits (ran %d, pending %s), and runs at the unblock (ran %d)\n", r.ran_while_blocked,
           r.pending_while_blocked ? "yes" : "no", r.ran_at_unblock);
    close(r.fds[0]);
    close(r.fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_id = 0;
    sem_init(&g_handled, 0, 0);
    install(SIGUSR1, on_usr1, SA_RESTART, NULL);
    case_reader();
    case_mutex();
    case_stop_world();
    case_blocked();
    case_main();
    case_raise();
    printf("end\n");
    tt_report_threads();
    return 0;
}

/* Signals sent to one thread, and the masks that hold them back, as the
 * kernel keeps them per thread:
 * - in sigsuspend, every queued signal its mask lets in runs, and one sent
 *   again while its handler waits does not nest: it waits for the
 *   thread's own mask once the call returns;
 * - the sigwait family takes a sent signal in its set even when the
 *   thread leaves it unblocked (no handler runs), and a zero timeout takes
 *   forty queued real-time signals, values in order;
 * - ppoll and pselect with a mask that lets a queued signal in run its
 *   handler and fail with EINTR at once;
 * - while a sent signal's handler waits, the other threads keep their own
 *   masks: a process-wide signal the main thread leaves unblocked is
 *   handled at once, and one another thread unblocked meanwhile still
 *   comes after the handler returned;
 * - a handler's own mask changes are undone when it returns;
 * - the main thread's pthread_kill of itself, blocked, waits for it. */
#include "threads_test.h"

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

static __thread int t_id;

static void ms(long m) {
    struct timespec t = {m / 1000, (m % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static void install(int sig, void (*fn)(int), const sigset_t* mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    if (mask != NULL) {
        sa.sa_mask = *mask;
    } else {
        sigemptyset(&sa.sa_mask);
    }
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static sigset_t just(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

/* ---- 1. sigsuspend ----------------------------------------------------------- */

static volatile sig_atomic_t g_calls, g_depth, g_max_depth, g_in_handler;

static void slow_handler(int sig) {
    (void)sig;
    ++g_calls;
    if (++g_depth > g_max_depth) {
        g_max_depth = g_depth;
    }
    g_in_handler = 1;
    ms(100);
    --g_depth;
}

static void* suspender(void* arg) {
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    const int r = sigsuspend(&none);
    return (void*)(long)(r == -1 && errno == EINTR);
}

static void case_suspend_no_nesting(void) {
    install(SIGUSR1, slow_handler, NULL);
    sigset_t usr1 = just(SIGUSR1), old;
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
    g_calls = g_depth = g_max_depth = g_in_handler = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, suspender, NULL) == 0);
    ms(30);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    while (!g_in_handler) {
        ms(1);
    }
    ms(10);
    CHECK(pthread_kill(t, SIGUSR1) == 0); /* while its handler waits */
    void* eintr;
    pthread_join(t, &eintr);
    printf("sigsuspend: EINTR %s, handler ran %d time(s), nested %s\n", eintr ? "yes" : "no", (int)g_calls,
           g_max_depth > 1 ? "yes" : "no");
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
}

static volatile sig_atomic_t g_usr1, g_usr2;
static void count1(int sig) {
    (void)sig;
    ++g_usr1;
}
static void count2(int sig) {
    (void)sig;
    ++g_usr2;
}

static void* suspend_with_two(void* arg) {
    sem_t* sent = arg;
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    CHECK(pthread_sigmask(SIG_BLOCK, &both, NULL) == 0);
    sem_post(sent);
    sem_wait(sent + 1);
    sigset_t none;
    sigemptyset(&none);
    sigsuspend(&none);
    return (void*)(long)(g_usr1 * 10 + g_usr2);
}

static void case_suspend_takes_all(void) {
    install(SIGUSR1, count1, NULL);
    install(SIGUSR2, count2, NULL);
    g_usr1 = g_usr2 = 0;
    sem_t sync[2];
    sem_init(&sync[0], 0, 0);
    sem_init(&sync[1], 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, suspend_with_two, sync) == 0);
    sem_wait(&sync[0]);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    CHECK(pthread_kill(t, SIGUSR2) == 0);
    sem_post(&sync[1]);
    void* seen;
    pthread_join(t, &seen);
    printf("sigsuspend with two queued: SIGUSR1 %ld, SIGUSR2 %ld\n", (long)seen / 10, (long)seen % 10);
}

/* ---- 2. the sigwait family --------------------------------------------------- */

static void* wait_unblocked(void* arg) {
    (void)arg;
    sigset_t usr1 = just(SIGUSR1);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    siginfo_t si;
    struct timespec ts = {5, 0};
    const int r = sigtimedwait(&usr1, &si, &ts);
    printf("sigtimedwait, unblocked: took %s, code %s, handler ran %d\n", r == SIGUSR1 ? "SIGUSR1" : tt_err(errno),
           r > 0 && si.si_code == SI_USER ? "SI_USER" : "other", (int)g_usr1);
    return NULL;
}

static void case_sigwait_unblocked(void) {
    install(SIGUSR1, count1, NULL);
    g_usr1 = 0;
    sigset_t usr1 = just(SIGUSR1), old;
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_unblocked, NULL) == 0);
    ms(50);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    pthread_join(t, NULL);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
}

static void* take_queued(void* arg) {
    sem_t* sync = arg;
    sigset_t rt = just(SIGRTMIN);
    CHECK(pthread_sigmask(SIG_BLOCK, &rt, NULL) == 0);
    sem_post(&sync[0]);
    sem_wait(&sync[1]);
    int got = 0, in_order = 1;
    siginfo_t si;
    struct timespec zero = {0, 0};
    while (sigtimedwait(&rt, &si, &zero) == SIGRTMIN) {
        in_order &= si.si_value.sival_int == got;
        ++got;
    }
    printf("zero-timeout sigtimedwait: took %d, values in order %s\n", got, in_order ? "yes" : "no");
    return NULL;
}

static void case_rt_queue(void) {
    install(SIGRTMIN, count1, NULL);
    sem_t sync[2];
    sem_init(&sync[0], 0, 0);
    sem_init(&sync[1], 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, take_queued, sync) == 0);
    sem_wait(&sync[0]);
    int failed = 0;
    for (int i = 0; i < 40; ++i) {
        failed += pthread_sigqueue(t, SIGRTMIN, (union sigval){.sival_int = i}) != 0;
    }
    printf("forty queued: %d refused\n", failed);
    sem_post(&sync[1]);
    pthread_join(t, NULL);
}

/* ---- 3. ppoll and pselect ------------------------------------------------------- */

static void* poll_with_mask(void* arg) {
    sem_t* sync = arg;
    sigset_t usr1 = just(SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
    sem_post(&sync[0]);
    sem_wait(&sync[1]);
    sigset_t none;
    sigemptyset(&none);
    struct timespec ts = {2, 0};
    const double t0 = tt_now();
    int r = ppoll(NULL, 0, &ts, &none);
    printf("ppoll letting it in: %d %s, handler ran %d, at once %s\n", r, r < 0 ? tt_err(errno) : "", (int)g_usr1,
           tt_now() - t0 < 1.0 ? "yes" : "no");
    CHECK(raise(SIGUSR1) == 0);
    const double t1 = tt_now();
    r = pselect(0, NULL, NULL, NULL, &ts, &none);
    printf("pselect letting it in: %d %s, handler ran %d, at once %s\n", r, r < 0 ? tt_err(errno) : "", (int)g_usr1,
           tt_now() - t1 < 1.0 ? "yes" : "no");
    return NULL;
}

static void case_poll_masks(void) {
    install(SIGUSR1, count1, NULL);
    g_usr1 = 0;
    sem_t sync[2];
    sem_init(&sync[0], 0, 0);
    sem_init(&sync[1], 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, poll_with_mask, sync) == 0);
    sem_wait(&sync[0]);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    sem_post(&sync[1]);
    pthread_join(t, NULL);
}

/* ---- 4. other threads' masks while a handler waits ------------------------------ */

static volatile sig_atomic_t g_waiting_in, g_waiting_done, g_alarm, g_stop, g_late;

static void waits_a_while(int sig) {
    (void)sig;
    g_waiting_in = 1;
    ms(200);
    g_waiting_done = 1;
}
static void on_alarm(int sig) {
    (void)sig;
    g_alarm = 1;
}
static void on_late(int sig) {
    (void)sig;
    g_late = 1;
}

static void* idles(void* arg) {
    (void)arg;
    while (!g_stop) {
        ms(5);
    }
    return NULL;
}

static void* unblocks_usr2(void* arg) {
    (void)arg;
    ms(50);
    sigset_t usr2 = just(SIGUSR2);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL) == 0);
    while (!g_waiting_done) {
        ms(5);
    }
    ms(30);
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 100 && !g_late; ++i) {
        ms(10);
    }
    return NULL;
}

static void case_others_masks(void) {
    sigset_t alrm = just(SIGALRM);
    install(SIGUSR1, waits_a_while, &alrm); /* blocks SIGALRM while it runs */
    install(SIGALRM, on_alarm, NULL);
    install(SIGUSR2, on_late, NULL);
    sigset_t usr2 = just(SIGUSR2), old;
    CHECK(pthread_sigmask(SIG_BLOCK, &usr2, &old) == 0);
    g_waiting_in = g_waiting_done = g_alarm = g_stop = g_late = 0;
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, idles, NULL) == 0);
    CHECK(pthread_create(&b, NULL, unblocks_usr2, NULL) == 0);
    ms(20);
    CHECK(pthread_kill(a, SIGUSR1) == 0);
    while (!g_waiting_in) {
        ms(1);
    }
    kill(getpid(), SIGALRM);
    printf("while a handler waits: the main thread's SIGALRM handled at once %s\n", g_alarm ? "yes" : "no");
    pthread_join(b, NULL);
    printf("after it: SIGUSR2, unblocked by another thread meanwhile, came %s\n", g_late ? "yes" : "no");
    g_stop = 1;
    pthread_join(a, NULL);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    signal(SIGALRM, SIG_DFL);
}

/* ---- 5. a handler's own mask changes ------------------------------------------- */

static void blocks_usr2(int sig) {
    (void)sig;
    sigset_t usr2 = just(SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
}

static int usr2_blocked(void) {
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, SIGUSR2);
}

static void* raise_and_look(void* arg) {
    (void)arg;
    CHECK(raise(SIGUSR1) == 0);
    return (void*)(long)usr2_blocked();
}

static void case_handler_mask_undone(void) {
    install(SIGUSR1, blocks_usr2, NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, raise_and_look, NULL) == 0);
    void* blocked;
    pthread_join(t, &blocked);
    CHECK(raise(SIGUSR1) == 0);
    printf("a handler blocked SIGUSR2: still blocked after it, in a thread %ld, in main %d\n", (long)blocked,
           usr2_blocked());
}

/* ---- 6. the main thread signals itself ----------------------------------------- */

static volatile sig_atomic_t g_seen_id = -1;
static void note_id(int sig) {
    (void)sig;
    ++g_usr1;
    g_seen_id = t_id;
}

static void* leaves_usr1_unblocked(void* arg) {
    (void)arg;
    t_id = 1;
    sigset_t usr1 = just(SIGUSR1);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    while (!g_stop) {
        ms(5);
    }
    return NULL;
}

static void case_main_self(void) {
    install(SIGUSR1, note_id, NULL);
    g_usr1 = 0;
    g_stop = 0;
    sigset_t usr1 = just(SIGUSR1), old;
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, leaves_usr1_unblocked, NULL) == 0);
    ms(20);
    CHECK(pthread_kill(pthread_self(), SIGUSR1) == 0);
    ms(20);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    const int ran_blocked = g_usr1;
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    printf("main's own, blocked: ran %d, pending %d; at its unblock ran %d, in thread %d\n", ran_blocked,
           sigismember(&pending, SIGUSR1), (int)g_usr1, (int)g_seen_id);
    g_stop = 1;
    pthread_join(t, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_id = 0;
    case_suspend_no_nesting();
    case_suspend_takes_all();
    case_sigwait_unblocked();
    case_rt_queue();
    case_poll_masks();
    case_others_masks();
    case_handler_mask_undone();
    case_main_self();
    printf("end\n");
    tt_report_threads();
    return 0;
}

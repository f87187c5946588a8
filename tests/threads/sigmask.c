/* Signal masks are per thread: a worker that blocks every signal leaves
 * the main thread its own mask, its queries, its signals (a process-wide
 * kill reaches the thread that does not block it) and its children's mask
 * at fork. Natively each pthread has its own mask; green threads share one
 * OS thread, whose mask must not be the last caller's. And a process-wide
 * signal interrupts one thread's wait (the kernel's pick, the main thread
 * first), not every thread's; a wait with a mask of its own keeps it while
 * another thread changes its mask. */
#include "threads_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int g_stage;
static volatile sig_atomic_t g_usr1;
static volatile sig_atomic_t g_usr2;

static void on_usr1(int s) {
    (void)s;
    ++g_usr1;
}

static void on_usr2(int s) {
    (void)s;
    ++g_usr2;
}

static int blocked(int sig) {
    sigset_t cur;
    CHECK(pthread_sigmask(SIG_SETMASK, NULL, &cur) == 0);
    return sigismember(&cur, sig);
}

static void wait_stage(int s) {
    while (atomic_load(&g_stage) < s) {
        usleep(1000);
    }
}

/* The SigBlk line of an exec'd child of this thread. */
static void child_mask(const char* who) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/grep", "grep", "SigBlk", "/proc/self/status", (char*)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[128] = {0};
    ssize_t n = 0, r;
    while ((r = read(p[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0) {
        n += r;
    }
    close(p[0]);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s: exec'd child %s", who, buf);
}

static void* grandchild(void* arg) {
    (void)arg;
    printf("thread made by the blocking worker: USR2 blocked=%d TERM blocked=%d\n", blocked(SIGUSR2),
           blocked(SIGTERM));
    return NULL;
}

/* Blocks everything, then works while main waits for its signals. */
static void* worker(void* arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    CHECK(pthread_sigmask(SIG_SETMASK, &all, NULL) == 0);
    printf("worker: TERM blocked=%d KILL blocked=%d\n", blocked(SIGTERM), blocked(SIGKILL));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, grandchild, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    child_mask("worker");
    atomic_store(&g_stage, 1);
    wait_stage(2);
    /* Main waits in sigsuspend: the signal can only go to main. */
    CHECK(kill(getpid(), SIGUSR1) == 0);
    wait_stage(3);
    return NULL;
}

/* Leaves SIGUSR2 unblocked while main blocks it. */
static void* usr2_taker(void* arg) {
    (void)arg;
    printf("taker: USR2 blocked=%d\n", blocked(SIGUSR2));
    atomic_store(&g_stage, 5);
    while (g_usr2 == 0) {
        usleep(1000);
    }
    return NULL;
}

static int g_pipe[3][2];
static volatile sig_atomic_t g_chld;

static void on_chld(int s) {
    (void)s;
    ++g_chld;
}

static void* reader(void* arg) {
    char c;
    const ssize_t r = read(g_pipe[(long)arg][0], &c, 1);
    const int e = errno;
    printf("reader %ld: read=%ld %s\n", (long)arg, (long)r, r < 0 ? tt_err(e) : "");
    return NULL;
}

/* Three threads wait in read, main in usleep, when a child's exit sends
 * SIGCHLD, whose handler has no SA_RESTART: the main thread takes it. */
static void one_interrupted(void) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_chld;
    sigemptyset(&act.sa_mask);
    CHECK(sigaction(SIGCHLD, &act, NULL) == 0);
    pthread_t t[3];
    for (long i = 0; i < 3; ++i) {
        CHECK(pipe(g_pipe[i]) == 0);
        CHECK(pthread_create(&t[i], NULL, reader, (void*)i) == 0);
    }
    usleep(50000);
    fflush(stdout);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep(200000);  /* exits once main surely waits in usleep */
        _exit(0);
    }
    const int r = usleep(2000000);
    const int e = errno;
    printf("main usleep: ret=%d %s chld handled=%d\n", r, r < 0 ? tt_err(e) : "", (int)g_chld);
    for (long i = 0; i < 3; ++i) {
        CHECK(write(g_pipe[i][1], "x", 1) == 1);
        CHECK(pthread_join(t[i], NULL) == 0);
        close(g_pipe[i][0]);
        close(g_pipe[i][1]);
    }
    CHECK(waitpid(pid, NULL, 0) == pid);
    signal(SIGCHLD, SIG_DFL);
}

/* A wait with a mask of its own (the "block; test; pselect with the old
 * mask" idiom, rsyslogd's main loop) keeps that mask while another thread
 * changes its own: a process-wide SIGTERM it lets in, sent by a child,
 * ends the wait at once. */
static volatile sig_atomic_t g_term;
static void on_term(int s) {
    (void)s;
    ++g_term;
}

static void* blocks_all_later(void* arg) {
    (void)arg;
    usleep(100000); /* the main thread waits by now */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    return NULL;
}

static void wait_masks_kept(void) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_term;
    sigemptyset(&act.sa_mask);
    CHECK(sigaction(SIGTERM, &act, NULL) == 0);
    const char* calls[] = {"pselect", "ppoll", "epoll_pwait", "sigsuspend"};
    for (int i = 0; i < 4; ++i) {
        g_term = 0;
        /* Made first, it leaves SIGTERM unblocked until it blocks all. */
        pthread_t t;
        CHECK(pthread_create(&t, NULL, blocks_all_later, NULL) == 0);
        sigset_t term, orig;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        CHECK(pthread_sigmask(SIG_BLOCK, &term, &orig) == 0);
        const pid_t child = fork();
        if (child == 0) {
            usleep(300000);
            kill(getppid(), SIGTERM);
            _exit(0);
        }
        const double t0 = tt_now();
        struct timespec ts = {5, 0};
        int r;
        if (i == 0) {
            r = pselect(0, NULL, NULL, NULL, &ts, &orig);
        } else if (i == 1) {
            r = ppoll(NULL, 0, &ts, &orig);
        } else if (i == 2) {
            const int ep = epoll_create1(EPOLL_CLOEXEC);
            struct epoll_event ev;
            r = epoll_pwait(ep, &ev, 1, 5000, &orig);
            close(ep);
        } else {
            r = sigsuspend(&orig);
        }
        const int e = errno;
        printf("%s with its own mask while another thread blocks all: %d %s, handler ran %d, within 2 s %s\n",
               calls[i], r, r < 0 ? tt_err(e) : "", (int)g_term, tt_now() - t0 < 2.0 ? "yes" : "no");
        CHECK(waitpid(child, NULL, 0) == child);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(pthread_sigmask(SIG_SETMASK, &orig, NULL) == 0);
    }
    signal(SIGTERM, SIG_DFL);
    /* An unreadable mask: EFAULT, as the kernel's. */
    const sigset_t* bad = (const sigset_t*)8;
    struct timespec ts = {0, 1000000};
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    errno = 0;
    int a = ppoll(NULL, 0, &ts, bad);
    const int ea = errno;
    int b = pselect(0, NULL, NULL, NULL, &ts, bad);
    const int eb = errno;
    int c = epoll_pwait(ep, &ev, 1, 1, bad);
    const int ec = errno;
    close(ep);
    printf("bad masks: ppoll %d %s, pselect %d %s, epoll_pwait %d %s\n", a, tt_err(ea), b, tt_err(eb), c, tt_err(ec));
}

int main(void) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_usr1;
    sigemptyset(&act.sa_mask);
    CHECK(sigaction(SIGUSR1, &act, NULL) == 0);
    act.sa_handler = on_usr2;
    act.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR2, &act, NULL) == 0);

    pthread_t w;
    CHECK(pthread_create(&w, NULL, worker, NULL) == 0);
    wait_stage(1);
    printf("main after the worker blocked everything: TERM blocked=%d USR1 blocked=%d\n", blocked(SIGTERM),
           blocked(SIGUSR1));
    child_mask("main");
    /* Blocked until sigsuspend takes it: it cannot come too early. */
    sigset_t usr1, wait_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &wait_mask) == 0);
    atomic_store(&g_stage, 2);
    const int r = sigsuspend(&wait_mask);
    printf("main sigsuspend: ret=%d %s usr1 handled=%d\n", r, tt_err(errno), (int)g_usr1);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
    atomic_store(&g_stage, 3);
    CHECK(pthread_join(w, NULL) == 0);

    /* Errors and what cannot be blocked, through both calls. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGKILL);
    sigaddset(&set, SIGSTOP);
    sigaddset(&set, SIGHUP);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    printf("main: HUP blocked=%d KILL blocked=%d STOP blocked=%d\n", blocked(SIGHUP), blocked(SIGKILL),
           blocked(SIGSTOP));
    errno = 0;
    const int bad = sigprocmask(99, &set, NULL);
    printf("sigprocmask(99): ret=%d %s\n", bad, tt_err(errno));
    printf("pthread_sigmask(99): %s\n", tt_err(pthread_sigmask(99, &set, NULL)));
    sigset_t old;
    printf("pthread_sigmask(99, NULL): %s\n", tt_err(pthread_sigmask(99, NULL, &old)));
    CHECK(sigprocmask(SIG_UNBLOCK, &set, &old) == 0);
    printf("main: HUP was blocked=%d, now=%d\n", sigismember(&old, SIGHUP), blocked(SIGHUP));

    /* Main blocks SIGUSR2; a thread made before that still takes it. */
    atomic_store(&g_stage, 4);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, usr2_taker, NULL) == 0);
    wait_stage(5);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("main: USR2 blocked=%d, handled by the thread that takes it=%d\n", blocked(SIGUSR2), (int)g_usr2);
    child_mask("main with USR2 blocked");
    one_interrupted();
    wait_masks_kept();
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* pthread_kill interrupts the blocking call of the thread it is sent to,
 * and no other's: a reader blocked on a pipe fails with EINTR (or, under
 * SA_RESTART, reads what comes later), while another reader and the
 * sender's own sleep go on; a thread not blocked when the signal comes
 * later blocks as usual; three readers each sent one get EINTR each; a
 * signal sent to a thread and ignored leaves nothing behind for a later
 * one; a signal in a fork child wakes none of the parent's threads there;
 * pthread_sigqueue carries its value to a waiting thread's handler; an
 * ended thread not joined yet gets no signal (pthread_kill says 0,
 * pthread_sigqueue ESRCH); libc's own signals are refused.
 * The signal is sent again every 200 ms until the
 * target reports, so a target not yet in its read when the first one
 * comes cannot make the transcript differ. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t g_handled;

static void on_usr1(int sig) {
    (void)sig;
    ++g_handled;
}

static volatile int g_queued_value = -1, g_queued_code;

static void on_queued(int sig, siginfo_t* si, void* ctx) {
    (void)sig;
    (void)ctx;
    g_queued_value = si->si_value.sival_int;
    g_queued_code = si->si_code;
}

static void* return_at_once(void* arg) {
    return arg;
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

struct reader {
    int fds[2];
    sem_t started, done;
    ssize_t r;
    int err;
    char got[8];
    volatile int go; /* for the reader that is not blocked yet */
};

static void* read_one(void* arg) {
    struct reader* rd = arg;
    while (!__atomic_load_n(&rd->go, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
    sem_post(&rd->started);
    rd->r = read(rd->fds[0], rd->got, sizeof rd->got);
    rd->err = rd->r < 0 ? errno : 0;
    sem_post(&rd->done);
    return NULL;
}

static void reader_init(struct reader* rd, int go) {
    memset(rd, 0, sizeof *rd);
    CHECK(pipe(rd->fds) == 0);
    CHECK(sem_init(&rd->started, 0, 0) == 0);
    CHECK(sem_init(&rd->done, 0, 0) == 0);
    rd->go = go;
}

static const char* outcome(const struct reader* rd) {
    static char buf[64];
    if (rd->r < 0) {
        snprintf(buf, sizeof buf, "-1 %s", tt_err(rd->err));
    } else {
        snprintf(buf, sizeof buf, "%zd '%.*s'", rd->r, (int)rd->r, rd->got);
    }
    return buf;
}

/* Sends SIGUSR1 to t until `done` is posted. */
static void kill_until(pthread_t t, sem_t* done) {
    for (;;) {
        CHECK(pthread_kill(t, SIGUSR1) == 0);
        struct timespec deadline = tt_after(CLOCK_REALTIME, 200);
        if (sem_timedwait(done, &deadline) == 0) {
            return;
        }
        CHECK(errno == ETIMEDOUT || errno == EINTR);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct reader a, b;
    pthread_t ta, tb;

    /* Without SA_RESTART: the target's read fails, the other's goes on. */
    install(0);
    reader_init(&a, 1);
    reader_init(&b, 1);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    CHECK(pthread_create(&tb, NULL, read_one, &b) == 0);
    CHECK(sem_wait(&a.started) == 0);
    CHECK(sem_wait(&b.started) == 0);
    kill_until(ta, &a.done);
    printf("target, no SA_RESTART: %s, handler ran: %s\n", outcome(&a), g_handled >= 1 ? "yes" : "NO");
    int slept = usleep(100000);
    printf("the sender's own sleep after the kill: %s\n", slept == 0 ? "slept through" : tt_err(errno));
    int sem_v = -1;
    sem_getvalue(&b.done, &sem_v);
    printf("the other reader still waiting: %s\n", sem_v == 0 ? "yes" : "NO");
    CHECK(write(b.fds[1], "bee", 3) == 3);
    CHECK(sem_wait(&b.done) == 0);
    printf("the other reader: %s\n", outcome(&b));
    CHECK(pthread_join(ta, NULL) == 0);
    CHECK(pthread_join(tb, NULL) == 0);

    /* With SA_RESTART: the target's read goes on after the handler. */
    install(1);
    reader_init(&a, 1);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    CHECK(sem_wait(&a.started) == 0);
    usleep(50000);
    CHECK(pthread_kill(ta, SIGUSR1) == 0);
    usleep(50000);
    CHECK(write(a.fds[1], "later", 5) == 5);
    CHECK(sem_wait(&a.done) == 0);
    printf("target, SA_RESTART: %s, handler ran: %s\n", outcome(&a), g_handled >= 1 ? "yes" : "NO");
    CHECK(pthread_join(ta, NULL) == 0);

    /* A thread not blocked when the signal comes: it blocks afterwards. */
    install(0);
    reader_init(&a, 0);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    usleep(20000);
    CHECK(pthread_kill(ta, SIGUSR1) == 0);
    usleep(20000);
    __atomic_store_n(&a.go, 1, __ATOMIC_RELEASE);
    CHECK(sem_wait(&a.started) == 0);
    usleep(50000);
    sem_v = -1;
    sem_getvalue(&a.done, &sem_v);
    printf("a thread signalled before its read: still reading: %s, handler ran: %s\n", sem_v == 0 ? "yes" : "NO",
           g_handled >= 1 ? "yes" : "NO");
    CHECK(write(a.fds[1], "data", 4) == 4);
    CHECK(sem_wait(&a.done) == 0);
    printf("then: %s\n", outcome(&a));
    CHECK(pthread_join(ta, NULL) == 0);

    /* Three readers, one signal each. */
    install(0);
    struct reader r3[3];
    pthread_t t3[3];
    for (int i = 0; i < 3; ++i) {
        reader_init(&r3[i], 1);
        CHECK(pthread_create(&t3[i], NULL, read_one, &r3[i]) == 0);
        CHECK(sem_wait(&r3[i].started) == 0);
    }
    usleep(50000);
    for (int i = 0; i < 3; ++i) {
        CHECK(pthread_kill(t3[i], SIGUSR1) == 0);
    }
    int first_round = 0;
    for (int i = 0; i < 3; ++i) {
        struct timespec deadline = tt_after(CLOCK_REALTIME, 2000);
        while (sem_timedwait(&r3[i].done, &deadline) != 0) {
            CHECK(errno == EINTR || errno == ETIMEDOUT);
            if (errno == ETIMEDOUT) {
                kill_until(t3[i], &r3[i].done);
                --first_round;
                break;
            }
        }
        ++first_round;
        printf("reader %d of 3: %s\n", i, outcome(&r3[i]));
        CHECK(pthread_join(t3[i], NULL) == 0);
    }
    printf("readers interrupted by the one signal each was sent: %d of 3\n", first_round);

    /* An ignored signal sent to a waiting thread: a later SIGALRM still
     * interrupts the main thread's read. */
    reader_init(&a, 1);
    reader_init(&b, 1);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    CHECK(sem_wait(&a.started) == 0);
    usleep(50000);
    CHECK(pthread_kill(ta, SIGURG) == 0); /* default action: ignore */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    alarm(1);
    char c;
    ssize_t r = read(b.fds[0], &c, 1);
    printf("main's read after an ignored signal to another thread: %zd %s\n", r, r < 0 ? tt_err(errno) : "");
    CHECK(write(a.fds[1], "a", 1) == 1);
    CHECK(sem_wait(&a.done) == 0);
    printf("the thread sent the ignored signal: %s\n", outcome(&a));
    CHECK(pthread_join(ta, NULL) == 0);

    /* A signal in a fork child: the parent's waiting thread stays in the
     * parent. */
    install(0);
    reader_init(&a, 1);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    CHECK(sem_wait(&a.started) == 0);
    usleep(50000);
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        raise(SIGUSR1);
        usleep(100000);
        _exit(sem_trywait(&a.done) == 0 ? 1 : 0); /* 1: the reader ran here */
    }
    int st = -1;
    CHECK(waitpid(child, &st, 0) == child);
    CHECK(write(a.fds[1], "p", 1) == 1);
    CHECK(sem_wait(&a.done) == 0);
    printf("fork child's signal: the parent's reader ran in the child: %s; in the parent: %s\n",
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "no" : "YES", outcome(&a));
    CHECK(pthread_join(ta, NULL) == 0);

    /* pthread_sigqueue to a waiting reader. */
    struct sigaction qa;
    memset(&qa, 0, sizeof qa);
    qa.sa_sigaction = on_queued;
    qa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGUSR2, &qa, NULL) == 0);
    reader_init(&a, 1);
    CHECK(pthread_create(&ta, NULL, read_one, &a) == 0);
    CHECK(sem_wait(&a.started) == 0);
    usleep(50000);
    const union sigval v = {.sival_int = 77};
    CHECK(pthread_sigqueue(ta, SIGUSR2, v) == 0);
    struct timespec dl = tt_after(CLOCK_REALTIME, 2000);
    int sr;
    while ((sr = sem_timedwait(&a.done, &dl)) != 0 && errno == EINTR) {
    }
    if (sr != 0) { /* not in its read yet when it came: once more, then data */
        CHECK(write(a.fds[1], "q", 1) == 1);
        CHECK(sem_wait(&a.done) == 0);
    }
    printf("sigqueue to a waiting thread: %s, value %d, SI_QUEUE %s\n", outcome(&a), g_queued_value,
           g_queued_code == SI_QUEUE ? "yes" : "NO");
    CHECK(pthread_join(ta, NULL) == 0);

    /* An ended thread, not joined yet; libc's own signals. */
    install(0);
    CHECK(pthread_create(&ta, NULL, return_at_once, NULL) == 0);
    usleep(50000);
    printf("kill of an ended thread: %s, handler ran: %s\n", tt_err(pthread_kill(ta, SIGUSR1)),
           g_handled ? "YES" : "no");
    printf("sigqueue to an ended thread: %s\n", tt_err(pthread_sigqueue(ta, SIGUSR1, v)));
    printf("kill with signal 0 of an ended thread: %s\n", tt_err(pthread_kill(ta, 0)));
    printf("kill with libc's signal 32: %s\n", tt_err(pthread_kill(ta, 32)));
    CHECK(pthread_join(ta, NULL) == 0);

    printf("end\n");
    tt_report_threads();
    return 0;
}

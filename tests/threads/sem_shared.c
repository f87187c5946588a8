/* Process-shared (sem_init with pshared 1) and named (sem_open) semaphores:
 * libc's objects, which another process may post. A wait on one is woken
 * by a post from another thread and by one from a forked child; timed
 * waits expire (and keep libc's EINVAL); a signal ends a wait with EINTR,
 * but for sem_wait under SA_RESTART, which goes on; pthread_cancel ends a
 * sem_wait, running the cleanup handler. Under green threads each of these waits would hang the
 * one OS thread if it blocked there. Built without -fexceptions. */
#include "threads_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char* within(double t0, double lo, double hi) {
    double d = tt_now() - t0;
    return d >= lo && d < hi ? "in time" : "OUT OF BOUNDS";
}

static void* post_later(void* arg) {
    usleep(50000);
    sem_post(arg);
    return NULL;
}

/* Waits on s in a thread of its own: the forked child's post must reach a
 * waiter other than the forking thread. */
static void* wait_in_thread(void* arg) {
    int r = sem_wait(arg);
    printf("thread: sem_wait returned %d\n", r);
    return NULL;
}

/* A child process posts s after a delay, then lingers a little: a waiter
 * of the parent must not run in it. */
static void post_from_child(sem_t* s, const char* what) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_in_thread, s) == 0);
    usleep(20000); /* the thread is waiting */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep(50000);
        sem_post(s);
        usleep(50000);
        fflush(stdout);
        _exit(0);
    }
    double t0 = tt_now();
    CHECK(pthread_join(t, NULL) == 0);
    printf("%s: posted by a child process (%s)\n", what, within(t0, 0.02, 5));
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    printf("%s: child exit status %d\n", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void waits(sem_t* s, const char* what) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, post_later, s) == 0);
    double t0 = tt_now();
    int r = sem_wait(s);
    printf("%s: sem_wait posted by a thread: %d (%s)\n", what, r, within(t0, 0.02, 5));
    CHECK(pthread_join(t, NULL) == 0);

    CHECK(pthread_create(&t, NULL, post_later, s) == 0);
    struct timespec ts = tt_after(CLOCK_REALTIME, 5000);
    r = sem_timedwait(s, &ts);
    printf("%s: sem_timedwait posted by a thread: %d\n", what, r);
    CHECK(pthread_join(t, NULL) == 0);

    CHECK(pthread_create(&t, NULL, post_later, s) == 0);
    ts = tt_after(CLOCK_MONOTONIC, 5000);
    r = sem_clockwait(s, CLOCK_MONOTONIC, &ts);
    printf("%s: sem_clockwait posted by a thread: %d\n", what, r);
    CHECK(pthread_join(t, NULL) == 0);

    post_from_child(s, what);

    t0 = tt_now();
    ts = tt_after(CLOCK_REALTIME, 50);
    errno = 0;
    r = sem_timedwait(s, &ts);
    printf("%s: sem_timedwait: %d %s (%s)\n", what, r, tt_err(errno), within(t0, 0.045, 2));
    t0 = tt_now();
    ts = tt_after(CLOCK_MONOTONIC, 50);
    errno = 0;
    r = sem_clockwait(s, CLOCK_MONOTONIC, &ts);
    printf("%s: sem_clockwait: %d %s (%s)\n", what, r, tt_err(errno), within(t0, 0.045, 2));
    struct timespec past = {0, 0};
    errno = 0;
    r = sem_timedwait(s, &past);
    printf("%s: sem_timedwait past: %d %s\n", what, r, tt_err(errno));
    struct timespec bad = {0, 1000000000L};
    errno = 0;
    r = sem_timedwait(s, &bad);
    printf("%s: sem_timedwait bad nsec: %d %s\n", what, r, tt_err(errno));
    errno = 0;
    r = sem_clockwait(s, CLOCK_PROCESS_CPUTIME_ID, &ts);
    printf("%s: sem_clockwait bad clock: %d %s\n", what, r, tt_err(errno));
    errno = 0;
    r = sem_trywait(s);
    printf("%s: sem_trywait empty: %d %s\n", what, r, tt_err(errno));

    sem_post(s);
    sem_post(s);
    int v = -1;
    sem_getvalue(s, &v);
    printf("%s: value after 2 posts: %d\n", what, v);
    errno = 0;
    r = sem_timedwait(s, &past);
    printf("%s: sem_timedwait past, available: %d %s\n", what, r, tt_err(errno));
    r = sem_wait(s);
    sem_getvalue(s, &v);
    printf("%s: sem_wait available: %d, value %d\n", what, r, v);
}

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
    (void)sig;
    got_signal = 1;
}

struct signal_then_post {
    pthread_t target;
    sem_t* s;
};

static void* signal_then_post(void* arg) {
    struct signal_then_post* a = arg;
    usleep(50000);
    pthread_kill(a->target, SIGUSR1);
    usleep(50000);
    sem_post(a->s);
    return NULL;
}

/* A signal handler runs while sem_wait (or sem_timedwait) waits; a post
 * follows. The kernel restarts the untimed wait under SA_RESTART, which
 * then takes the post; every other case is EINTR. */
static void interrupted(sem_t* s, int flags, int timed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    got_signal = 0;
    struct signal_then_post a = {pthread_self(), s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, signal_then_post, &a) == 0);
    errno = 0;
    int r;
    if (timed) {
        struct timespec ts = tt_after(CLOCK_REALTIME, 5000);
        r = sem_timedwait(s, &ts);
    } else {
        r = sem_wait(s);
    }
    printf("%s with a signal (%s): %d %s, handler ran: %d\n", timed ? "sem_timedwait" : "sem_wait",
           flags == SA_RESTART ? "SA_RESTART" : "no SA_RESTART", r, tt_err(errno), (int)got_signal);
    CHECK(pthread_join(t, NULL) == 0);
    if (r != 0) {
        CHECK(sem_trywait(s) == 0); /* the post that came after */
    }
}

/* ---- cancellation ----------------------------------------------------------- */

static char log_buf[128];

static void cleanup(void* arg) {
    strncat(log_buf, (const char*)arg, sizeof log_buf - strlen(log_buf) - 1);
}

static void* cancelled_waiter(void* arg) {
    pthread_cleanup_push(cleanup, "cleanup(sem_wait)");
    int r = sem_wait(arg);
    printf("sem_wait returned %d\n", r); /* never: cancelled */
    pthread_cleanup_pop(0);
    return NULL;
}

int main(void) {
    sem_t* shared = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared != MAP_FAILED);
    CHECK(sem_init(shared, 1, 0) == 0);
    waits(shared, "pshared");

    char name[64];
    snprintf(name, sizeof name, "/grove-sem-shared-%d", (int)getpid());
    sem_t* named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    CHECK(named != SEM_FAILED);
    CHECK(sem_unlink(name) == 0);
    waits(named, "named");

    interrupted(shared, 0, 0);
    interrupted(shared, SA_RESTART, 0);
    interrupted(shared, 0, 1);
    interrupted(named, SA_RESTART, 1);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, cancelled_waiter, shared) == 0);
    usleep(50000);
    double t0 = tt_now();
    CHECK(pthread_cancel(t) == 0);
    void* ret = NULL;
    CHECK(pthread_join(t, &ret) == 0);
    printf("cancelled in sem_wait: %s, %s (%s)\n", ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled",
           log_buf, within(t0, 0, 1));
    int v = -1;
    sem_getvalue(shared, &v);
    printf("value after the cancel: %d\n", v);

    CHECK(sem_close(named) == 0);
    CHECK(sem_destroy(shared) == 0);
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* A thread that busy-polls with zero timeouts (poll, ppoll, select, pselect,
 * the epoll waits, waitpid/wait4/waitid with WNOHANG) until another thread
 * has done its part: natively the kernel preempts the spinner, so the other
 * thread runs; green threads share one OS thread, so each such call that
 * finds nothing must give the others a turn, also to those parked on an fd
 * (a pipe fed by a child process). So must loops whose calls never wait
 * because their fd is always ready or their lock always free (an event
 * loop that keeps waking itself through an eventfd, a flag polled under a
 * mutex). A spinner that starves the others gives up after a bound and
 * fails the transcript. */
#include "threads_test.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int flag;

/* Set from the spin loops: every look said "nothing" until the end. */
static int all_empty;

static void spin_check(double t0, const char* what) {
    if (tt_now() - t0 > 10) {
        printf("%s: STARVED (the other thread never ran)\n", what);
        fflush(stdout);
        exit(1);
    }
}

static void* set_after(void* arg) {
    usleep((useconds_t)(long)arg * 1000);
    atomic_store(&flag, 1);
    return NULL;
}

static void* write_after(void* arg) {
    usleep(30000);
    CHECK(write((int)(long)arg, "x", 1) == 1);
    return NULL;
}

/* Parks on a pipe that a child process writes after a while, then sets the
 * flag: the spinner must let the hub notice the pipe's readiness. */
static void* relay(void* arg) {
    char c;
    CHECK(read((int)(long)arg, &c, 1) == 1);
    atomic_store(&flag, 1);
    return NULL;
}

static pid_t child_writes_after(int fd, long ms) {
    fflush(stdout);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        usleep((useconds_t)ms * 1000);
        _exit(write(fd, "c", 1) == 1 ? 0 : 1);
    }
    return pid;
}

/* The other thread: a sleeper (kind 0) or a relay fed by a child (kind 1). */
struct helper {
    pthread_t t;
    pid_t child;
    int p[2];
};

static void helper_start(struct helper* h, int kind) {
    atomic_store(&flag, 0);
    all_empty = 1;
    h->child = -1;
    if (kind == 0) {
        CHECK(pthread_create(&h->t, NULL, set_after, (void*)30L) == 0);
        return;
    }
    CHECK(pipe(h->p) == 0);
    CHECK(pthread_create(&h->t, NULL, relay, (void*)(long)h->p[0]) == 0);
    h->child = child_writes_after(h->p[1], 30);
}

static void helper_end(struct helper* h, const char* what) {
    CHECK(pthread_join(h->t, NULL) == 0);
    if (h->child > 0) {
        int st;
        CHECK(waitpid(h->child, &st, 0) == h->child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(h->p[0]);
        close(h->p[1]);
    }
    printf("%s: flag seen, every look empty until then: %s\n", what, all_empty ? "yes" : "no");
}

static void note(int r) {
    if (r != 0) {
        all_empty = 0;
    }
}

static void* spin_poll_null(void* arg) {
    (void)arg;
    const double t0 = tt_now();
    while (!atomic_load(&flag)) {
        note(poll(NULL, 0, 0));
        spin_check(t0, "poll(NULL, 0, 0) in a thread");
    }
    return NULL;
}

static void flag_spins(void) {
    struct helper h;
    const double t0 = tt_now();

    /* The spinner is a created thread; main sleeps and sets the flag. */
    helper_start(&h, 0);
    pthread_t s;
    CHECK(pthread_create(&s, NULL, spin_poll_null, NULL) == 0);
    CHECK(pthread_join(s, NULL) == 0);
    helper_end(&h, "poll(NULL, 0, 0) in a thread, sleeper");

    helper_start(&h, 1);
    while (!atomic_load(&flag)) {
        note(poll(NULL, 0, 0));
        spin_check(t0, "poll(NULL, 0, 0)");
    }
    helper_end(&h, "poll(NULL, 0, 0), relay");

    helper_start(&h, 1);
    const struct timespec zero = {0, 0};
    while (!atomic_load(&flag)) {
        note(ppoll(NULL, 0, &zero, NULL));
        spin_check(t0, "ppoll");
    }
    helper_end(&h, "ppoll zero, relay");

    for (int kind = 0; kind <= 1; ++kind) {
        helper_start(&h, kind);
        while (!atomic_load(&flag)) {
            struct timeval tv = {0, 0};
            note(select(0, NULL, NULL, NULL, &tv));
            spin_check(t0, "select");
        }
        helper_end(&h, kind == 0 ? "select zero, sleeper" : "select zero, relay");
    }

    helper_start(&h, 0);
    sigset_t none;
    sigemptyset(&none);
    while (!atomic_load(&flag)) {
        note(pselect(0, NULL, NULL, NULL, &zero, &none));
        spin_check(t0, "pselect");
    }
    helper_end(&h, "pselect zero, sleeper");

    /* An epoll set with an fd that never gets ready. */
    int q[2];
    CHECK(pipe(q) == 0);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev) == 0);
    for (int kind = 0; kind <= 1; ++kind) {
        helper_start(&h, kind);
        while (!atomic_load(&flag)) {
            note(epoll_wait(ep, &ev, 1, 0));
            spin_check(t0, "epoll_wait");
        }
        helper_end(&h, kind == 0 ? "epoll_wait zero, sleeper" : "epoll_wait zero, relay");
    }
    helper_start(&h, 1);
    while (!atomic_load(&flag)) {
        note(epoll_pwait(ep, &ev, 1, 0, &none));
        spin_check(t0, "epoll_pwait");
    }
    helper_end(&h, "epoll_pwait zero, relay");
    helper_start(&h, 0);
    while (!atomic_load(&flag)) {
        note(epoll_pwait2(ep, &ev, 1, &zero, NULL));
        spin_check(t0, "epoll_pwait2");
    }
    helper_end(&h, "epoll_pwait2 zero, sleeper");
    close(ep);
    close(q[0]);
    close(q[1]);
}

/* Polls that end when the other thread writes the polled pipe itself. */
static void fd_spins(void) {
    const double t0 = tt_now();
    int p[2];
    CHECK(pipe(p) == 0);
    pthread_t w;
    CHECK(pthread_create(&w, NULL, write_after, (void*)(long)p[1]) == 0);
    struct pollfd pf = {p[0], POLLIN, 0};
    int r;
    long empty = 0;
    while ((r = poll(&pf, 1, 0)) == 0) {
        ++empty;
        spin_check(t0, "poll(pipe, 1, 0)");
    }
    CHECK(pthread_join(w, NULL) == 0);
    printf("poll(pipe, 1, 0) until written: ret=%d revents=%#x empty looks first=%s\n", r, pf.revents,
           empty > 0 ? "yes" : "no");
    char c;
    CHECK(read(p[0], &c, 1) == 1);

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK(pthread_create(&w, NULL, write_after, (void*)(long)p[1]) == 0);
    empty = 0;
    while ((r = epoll_wait(ep, &ev, 1, 0)) == 0) {
        ++empty;
        spin_check(t0, "epoll_wait(pipe, 0)");
    }
    CHECK(pthread_join(w, NULL) == 0);
    printf("epoll_wait(pipe, 0) until written: ret=%d events=%#x data=%u empty looks first=%s\n", r, ev.events,
           ev.data.u32, empty > 0 ? "yes" : "no");
    close(ep);
    close(p[0]);
    close(p[1]);
}

/* A child process that exits once the other thread writes its pipe. */
static pid_t child_waits_for_write(int p[2], pthread_t* w) {
    CHECK(pipe(p) == 0);
    fflush(stdout);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        char c;
        _exit(read(p[0], &c, 1) == 1 ? 5 : 1);
    }
    close(p[0]);
    CHECK(pthread_create(w, NULL, write_after, (void*)(long)p[1]) == 0);
    return pid;
}

static void child_spins(void) {
    const double t0 = tt_now();
    int p[2];
    pthread_t w;
    int st = 0;
    pid_t pid = child_waits_for_write(p, &w);
    pid_t r;
    long empty = 0;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        ++empty;
        spin_check(t0, "waitpid WNOHANG");
    }
    CHECK(pthread_join(w, NULL) == 0);
    close(p[1]);
    printf("waitpid WNOHANG until the child exits: ours=%s exit=%d empty looks first=%s\n", r == pid ? "yes" : "no",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, empty > 0 ? "yes" : "no");

    pid = child_waits_for_write(p, &w);
    empty = 0;
    while ((r = wait4(-1, &st, WNOHANG, NULL)) == 0) {
        ++empty;
        spin_check(t0, "wait4 WNOHANG");
    }
    CHECK(pthread_join(w, NULL) == 0);
    close(p[1]);
    printf("wait4(-1) WNOHANG until the child exits: ours=%s exit=%d empty looks first=%s\n",
           r == pid ? "yes" : "no", WIFEXITED(st) ? WEXITSTATUS(st) : -1, empty > 0 ? "yes" : "no");

    pid = child_waits_for_write(p, &w);
    empty = 0;
    siginfo_t si;
    for (;;) {
        si.si_pid = 0;
        CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) == 0);
        if (si.si_pid != 0) {
            break;
        }
        ++empty;
        spin_check(t0, "waitid WNOHANG");
    }
    CHECK(pthread_join(w, NULL) == 0);
    close(p[1]);
    printf("waitid WNOHANG until the child exits: ours=%s code=%d status=%d empty looks first=%s\n",
           si.si_pid == pid ? "yes" : "no", si.si_code, si.si_status, empty > 0 ? "yes" : "no");
}

/* Loops whose every call finds its fd ready or its lock free, so that no
 * call ever waits, until the other thread has done its part. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_spinlock_t g_spin;

static void* hold_spin(void* arg) {
    (void)arg;
    CHECK(pthread_spin_lock(&g_spin) == 0);
    atomic_store(&flag, 1);
    usleep(30000);
    CHECK(pthread_spin_unlock(&g_spin) == 0);
    return NULL;
}

static void ready_spins(void) {
    const double t0 = tt_now();
    struct helper h;
    const int efd = eventfd(0, EFD_CLOEXEC);
    CHECK(efd >= 0);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 3};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
    const uint64_t one = 1;
    uint64_t v;
    for (int kind = 0; kind <= 1; ++kind) {
        helper_start(&h, kind);
        while (!atomic_load(&flag)) {
            CHECK(write(efd, &one, sizeof one) == sizeof one);
            note(epoll_wait(ep, &ev, 1, -1) == 1 ? 0 : 1);
            CHECK(read(efd, &v, sizeof v) == sizeof v);
            spin_check(t0, "epoll_wait(-1) on a ready eventfd");
        }
        helper_end(&h, kind == 0 ? "epoll_wait(-1) always ready, sleeper" : "epoll_wait(-1) always ready, relay");
    }
    helper_start(&h, 0);
    while (!atomic_load(&flag)) {
        CHECK(write(efd, &one, sizeof one) == sizeof one);
        struct pollfd pf = {efd, POLLIN, 0};
        note(poll(&pf, 1, 10) == 1 ? 0 : 1);
        CHECK(read(efd, &v, sizeof v) == sizeof v);
        spin_check(t0, "poll(10) on a ready eventfd");
    }
    helper_end(&h, "poll(10) always ready, sleeper");
    close(ep);
    close(efd);

    int p[2];
    CHECK(pipe(p) == 0);
    helper_start(&h, 0);
    while (!atomic_load(&flag)) {
        char c;
        CHECK(write(p[1], "x", 1) == 1);
        note(read(p[0], &c, 1) == 1 ? 0 : 1);
        spin_check(t0, "pipe write+read");
    }
    helper_end(&h, "pipe write+read always ready, sleeper");
    close(p[0]);
    close(p[1]);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    helper_start(&h, 1);
    while (!atomic_load(&flag)) {
        char c;
        CHECK(send(sv[1], "y", 1, 0) == 1);
        note(recv(sv[0], &c, 1, 0) == 1 ? 0 : 1);
        spin_check(t0, "socket send+recv");
    }
    helper_end(&h, "socket send+recv always ready, relay");
    close(sv[0]);
    close(sv[1]);

    helper_start(&h, 0);
    for (;;) {
        CHECK(pthread_mutex_lock(&g_lock) == 0);
        const int seen = atomic_load(&flag);
        CHECK(pthread_mutex_unlock(&g_lock) == 0);
        if (seen) {
            break;
        }
        spin_check(t0, "flag polled under a mutex");
    }
    helper_end(&h, "flag polled under a free mutex, sleeper");
    helper_start(&h, 0);
    for (;;) {
        const int r = pthread_mutex_trylock(&g_lock);
        note(r);
        if (r == 0) {
            CHECK(pthread_mutex_unlock(&g_lock) == 0);
        }
        if (atomic_load(&flag)) {
            break;
        }
        spin_check(t0, "trylock of a free mutex");
    }
    helper_end(&h, "trylock of a free mutex until the flag, sleeper");

    CHECK(pthread_spin_init(&g_spin, PTHREAD_PROCESS_PRIVATE) == 0);
    atomic_store(&flag, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_spin, NULL) == 0);
    while (!atomic_load(&flag)) {
        usleep(1000);
    }
    long busy = 0;
    while (pthread_spin_trylock(&g_spin) != 0) {
        ++busy;
        spin_check(t0, "spin_trylock of a held spinlock");
    }
    CHECK(pthread_spin_unlock(&g_spin) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    printf("spin_trylock until the holder unlocks: busy first=%s\n", busy > 0 ? "yes" : "no");
    CHECK(pthread_spin_destroy(&g_spin) == 0);
}

static void* spin_forever(void* arg) {
    (void)arg;
    atomic_store(&flag, 1);
    for (;;) {
        poll(NULL, 0, 0);
    }
    return NULL;
}

/* poll is a cancellation point: a spinner is cancelled at its next call,
 * once the cancelling thread gets to run. */
static void cancel_spinner(void) {
    atomic_store(&flag, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, spin_forever, NULL) == 0);
    while (!atomic_load(&flag)) {
        usleep(1000);
    }
    usleep(20000);
    CHECK(pthread_cancel(t) == 0);
    void* res = NULL;
    CHECK(pthread_join(t, &res) == 0);
    printf("a thread spinning on poll(NULL, 0, 0) cancelled: %s\n", res == PTHREAD_CANCELED ? "yes" : "no");
}

int main(void) {
    flag_spins();
    fd_spins();
    child_spins();
    ready_spins();
    cancel_spinner();
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* Deferred cancellation at the blocking calls POSIX names as cancellation
 * points: a thread blocked in read() on a pipe, write() on a full pipe,
 * recv() on a socket, accept(), connect() to a full backlog... is woken
 * by pthread_cancel and unwinds: its cleanup handler runs, and
 * pthread_join returns PTHREAD_CANCELED at once. With cancellation
 * disabled, the blocking call completes and the cancel is acted on at the
 * next cancellation point after re-enabling. Built without -fexceptions,
 * as most C is. */
#include "threads_test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char log_buf[256];

static void note(const char* s) {
    strncat(log_buf, s, sizeof log_buf - strlen(log_buf) - 1);
}

static void cleanup(void* arg) {
    note("cleanup(");
    note((const char*)arg);
    note(") ");
}

struct fds {
    int a;
    int b;
    pid_t child;
};

static void* in_read(void* arg) {
    struct fds* f = arg;
    char c;
    pthread_cleanup_push(cleanup, "read");
    ssize_t n = read(f->a, &c, 1);
    printf("read returned %zd\n", n); /* never: cancelled */
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_write(void* arg) {
    struct fds* f = arg;
    static char chunk[65536];
    pthread_cleanup_push(cleanup, "write");
    for (;;) {
        ssize_t n = write(f->b, chunk, sizeof chunk); /* fills, then blocks */
        if (n < 0) {
            printf("write failed: %s\n", tt_err(errno));
            break;
        }
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_recv(void* arg) {
    struct fds* f = arg;
    char c;
    pthread_cleanup_push(cleanup, "recv");
    ssize_t n = recv(f->a, &c, 1, 0);
    printf("recv returned %zd\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_accept(void* arg) {
    struct fds* f = arg;
    pthread_cleanup_push(cleanup, "accept");
    int c = accept(f->a, NULL, NULL);
    printf("accept returned %d\n", c);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_poll(void* arg) {
    struct fds* f = arg;
    pthread_cleanup_push(cleanup, "poll");
    struct pollfd p = {f->a, POLLIN, 0};
    int r = poll(&p, 1, -1);
    printf("poll returned %d\n", r);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_select(void* arg) {
    struct fds* f = arg;
    pthread_cleanup_push(cleanup, "select");
    fd_set r;
    FD_ZERO(&r);
    FD_SET(f->a, &r);
    int n = select(f->a + 1, &r, NULL, NULL, NULL);
    printf("select returned %d\n", n);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_sleep(void* arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, "sleep");
    unsigned left = sleep(10);
    printf("sleep returned %u\n", left);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_nanosleep(void* arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, "nanosleep");
    struct timespec t = {10, 0};
    int r = nanosleep(&t, NULL);
    printf("nanosleep returned %d\n", r);
    pthread_cleanup_pop(0);
    return NULL;
}

static void* in_waitpid(void* arg) {
    struct fds* f = arg;
    pthread_cleanup_push(cleanup, "waitpid");
    int status;
    pid_t r = waitpid(f->child, &status, 0);
    printf("waitpid returned %d\n", (int)r);
    pthread_cleanup_pop(0);
    return NULL;
}

/* Blocks in `call`, is cancelled, must join as PTHREAD_CANCELED well within
 * the 10 s the call would otherwise take. */
static void run_case(const char* name, void* (*fn)(void*), struct fds* f) {
    log_buf[0] = '\0';
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, f) == 0);
    usleep(100000); /* it is blocked by now (or cancelled on entry) */
    double t0 = tt_now();
    CHECK(pthread_cancel(t) == 0);
    void* ret = NULL;
    CHECK(pthread_join(t, &ret) == 0);
    double took = tt_now() - t0;
    printf("%s: %s, %s%s\n", name, ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled", log_buf,
           took < 5.0 ? "promptly" : "late");
}

static void pipe_case(const char* name, void* (*fn)(void*)) {
    int p[2];
    CHECK(pipe(p) == 0);
    struct fds f = {p[0], p[1], 0};
    run_case(name, fn, &f);
    close(p[0]);
    close(p[1]);
}

/* Cancellation disabled while blocked: the call completes; re-enabling is
 * no cancellation point; the next cancellation point acts. */
struct disabled_arg {
    int rfd;
    int sleep_instead;
};

static void* disabled(void* arg) {
    struct disabled_arg* d = arg;
    int old = -1;
    CHECK(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) == 0);
    note(old == PTHREAD_CANCEL_ENABLE ? "was-enabled " : "was-disabled ");
    pthread_cleanup_push(cleanup, "disabled");
    struct timespec t = {0, 300000000};
    int r = nanosleep(&t, NULL); /* the cancel arrives meanwhile */
    note(r == 0 ? "slept-fully " : "sleep-cut ");
    CHECK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old) == 0);
    note(old == PTHREAD_CANCEL_DISABLE ? "re-enabled " : "? ");
    if (d->sleep_instead) {
        sleep(10);
    } else {
        char c;
        read(d->rfd, &c, 1);
    }
    note("not-reached ");
    pthread_cleanup_pop(0);
    return NULL;
}

static void disabled_case(const char* name, int sleep_instead) {
    int p[2];
    CHECK(pipe(p) == 0);
    struct disabled_arg d = {p[0], sleep_instead};
    log_buf[0] = '\0';
    pthread_t t;
    CHECK(pthread_create(&t, NULL, disabled, &d) == 0);
    usleep(100000);
    double t0 = tt_now();
    CHECK(pthread_cancel(t) == 0);
    void* ret = NULL;
    CHECK(pthread_join(t, &ret) == 0);
    double took = tt_now() - t0;
    printf("%s: %s, %s%s\n", name, ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled", log_buf,
           took > 0.1 && took < 5.0 ? "after the sleep" : "wrong time");
    close(p[0]);
    close(p[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pipe_case("read on a pipe", in_read);
    pipe_case("write on a full pipe", in_write);
    pipe_case("poll on a pipe", in_poll);
    pipe_case("select on a pipe", in_select);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct fds s = {sv[0], sv[1], 0};
    run_case("recv on a socket", in_recv, &s);
    close(sv[0]);
    close(sv[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, (struct sockaddr*)&a, sizeof a) == 0);
    CHECK(listen(l, 4) == 0);
    struct fds la = {l, -1, 0};
    run_case("accept", in_accept, &la);
    close(l);

    run_case("sleep(10)", in_sleep, NULL);
    run_case("nanosleep(10 s)", in_nanosleep, NULL);

    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        sleep(10);
        _exit(0);
    }
    struct fds c = {-1, -1, child};
    run_case("waitpid", in_waitpid, &c);
    kill(child, SIGKILL);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    printf("child reaped: %s\n", WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? "killed" : "?");

    disabled_case("disabled, then read", 0);
    disabled_case("disabled, then sleep", 1);

    printf("end\n");
    tt_report_threads();
    return 0;
}

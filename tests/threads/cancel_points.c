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
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/uio.h>
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

/* A TCP listener on an ephemeral loopback port, its address in *a. */
static int loopback_listener(int backlog, struct sockaddr_in* a) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l, (struct sockaddr*)a, sizeof *a) == 0);
    CHECK(listen(l, backlog) == 0);
    socklen_t alen = sizeof *a;
    CHECK(getsockname(l, (struct sockaddr*)a, &alen) == 0);
    return l;
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

/* A cancel already pending when a cancellation point is entered is acted
 * on there, even though the call would not have to wait: the data waiting
 * in a pipe is never read, a free lock never taken, a zero sleep never
 * returns. */
enum entry_op {
    OP_READ_PIPE, OP_WRITE_PIPE, OP_READV, OP_WRITEV, OP_RECV, OP_SEND, OP_RECVFROM, OP_SENDTO,
    OP_RECVMSG, OP_SENDMSG, OP_READ_FILE, OP_PREAD, OP_PWRITE, OP_PREADV, OP_PWRITEV, OP_PREADV2, OP_PWRITEV2, OP_CLOSE, OP_ACCEPT, OP_CONNECT,
    OP_NANOSLEEP0, OP_USLEEP0, OP_SLEEP0, OP_CLOCK_NANOSLEEP0, OP_FCNTL_SETLKW, OP_LOCKF, OP_POLL0,
    OP_PPOLL0, OP_SELECT0, OP_PSELECT0, OP_EPOLL_WAIT0, OP_EPOLL_PWAIT2_0, OP_WAITPID_NOHANG, OP_WAITID_NOHANG,
    OP_SIGTIMEDWAIT0, OP_PAUSE, OP_SIGSUSPEND, OP_COUNT
};

static const char* const entry_names[OP_COUNT] = {
    "read with data", "write with room", "readv with data", "writev with room", "recv with data",
    "send with room", "recvfrom with data", "sendto with room", "recvmsg with data", "sendmsg with room",
    "read of a regular file", "pread", "pwrite", "preadv", "pwritev", "preadv2 with data",
    "pwritev2 with room", "close", "accept with a queued connection",
    "connect to a listener", "nanosleep(0)", "usleep(0)", "sleep(0)", "clock_nanosleep(0)",
    "fcntl(F_SETLKW) on a free lock", "lockf(F_LOCK) on a free lock", "poll(0 ms) on a readable pipe",
    "ppoll(0) on a readable pipe", "select(0) on a readable pipe", "pselect(0) on a readable pipe",
    "epoll_wait(0)", "epoll_pwait2(0)", "waitpid(WNOHANG)", "waitid(WNOHANG)", "sigtimedwait(0)", "pause",
    "sigsuspend",
};

struct entry_arg {
    enum entry_op op;
    int pipe_r, pipe_w; /* the read end holds a byte */
    int sock_a;         /* a holds a byte sent from b */
    int file;           /* a regular file */
    int listener;       /* with one queued connection */
    struct sockaddr_in addr;
};

static void close_fd(void* fd) {
    close(*(int*)fd);
}

static void* at_entry(void* arg) {
    struct entry_arg* e = arg;
    int old;
    CHECK(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) == 0);
    pthread_cleanup_push(cleanup, "entry");
    struct timespec t = {0, 200000000};
    nanosleep(&t, NULL); /* the cancel arrives meanwhile and stays pending */
    CHECK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old) == 0);
    char c = 'x';
    struct iovec iov = {&c, 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    struct timespec zero = {0, 0};
    long r = 0;
    switch (e->op) {
        case OP_READ_PIPE: r = read(e->pipe_r, &c, 1); break;
        case OP_WRITE_PIPE: r = write(e->pipe_w, &c, 1); break;
        case OP_READV: r = readv(e->pipe_r, &iov, 1); break;
        case OP_WRITEV: r = writev(e->pipe_w, &iov, 1); break;
        case OP_RECV: r = recv(e->sock_a, &c, 1, 0); break;
        case OP_SEND: r = send(e->sock_a, &c, 1, 0); break;
        case OP_RECVFROM: r = recvfrom(e->sock_a, &c, 1, 0, NULL, NULL); break;
        case OP_SENDTO: r = sendto(e->sock_a, &c, 1, 0, NULL, 0); break;
        case OP_RECVMSG: r = recvmsg(e->sock_a, &m, 0); break;
        case OP_SENDMSG: r = sendmsg(e->sock_a, &m, 0); break;
        case OP_READ_FILE: r = read(e->file, &c, 1); break;
        case OP_PREAD: r = pread(e->file, &c, 1, 0); break;
        case OP_PWRITE: r = pwrite(e->file, &c, 1, 0); break;
        case OP_PREADV: r = preadv(e->file, &iov, 1, 0); break;
        case OP_PWRITEV: r = pwritev(e->file, &iov, 1, 0); break;
        case OP_PREADV2: r = preadv2(e->pipe_r, &iov, 1, -1, 0); break;
        case OP_PWRITEV2: r = pwritev2(e->pipe_w, &iov, 1, -1, 0); break;
        case OP_CLOSE: r = close(e->pipe_w); break;
        case OP_ACCEPT: r = accept(e->listener, NULL, NULL); break;
        case OP_CONNECT: {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            pthread_cleanup_push(close_fd, &s);
            r = connect(s, (struct sockaddr*)&e->addr, sizeof e->addr);
            pthread_cleanup_pop(1);
            break;
        }
        case OP_NANOSLEEP0: r = nanosleep(&zero, NULL); break;
        case OP_USLEEP0: r = usleep(0); break;
        case OP_SLEEP0: r = sleep(0); break;
        case OP_CLOCK_NANOSLEEP0: r = clock_nanosleep(CLOCK_MONOTONIC, 0, &zero, NULL); break;
        case OP_FCNTL_SETLKW: r = fcntl(e->file, F_SETLKW, &fl); break;
        case OP_LOCKF: r = lockf(e->file, F_LOCK, 0); break;
        case OP_POLL0: {
            struct pollfd pf = {e->pipe_r, POLLIN, 0};
            r = poll(&pf, 1, 0);
            break;
        }
        case OP_PPOLL0: {
            struct pollfd pf = {e->pipe_r, POLLIN, 0};
            r = ppoll(&pf, 1, &zero, NULL);
            break;
        }
        case OP_SELECT0:
        case OP_PSELECT0: {
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(e->pipe_r, &rs);
            struct timeval tv = {0, 0};
            r = e->op == OP_SELECT0 ? select(e->pipe_r + 1, &rs, NULL, NULL, &tv)
                                    : pselect(e->pipe_r + 1, &rs, NULL, NULL, &zero, NULL);
            break;
        }
        case OP_EPOLL_WAIT0:
        case OP_EPOLL_PWAIT2_0: {
            int ep = epoll_create1(0);
            struct epoll_event ev = {EPOLLIN, {0}};
            epoll_ctl(ep, EPOLL_CTL_ADD, e->pipe_r, &ev);
            pthread_cleanup_push(close_fd, &ep);
            r = e->op == OP_EPOLL_WAIT0 ? epoll_wait(ep, &ev, 1, 0) : epoll_pwait2(ep, &ev, 1, &zero, NULL);
            pthread_cleanup_pop(1);
            break;
        }
        case OP_WAITPID_NOHANG: r = waitpid(-1, NULL, WNOHANG); break;
        case OP_WAITID_NOHANG: {
            siginfo_t si;
            r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
            break;
        }
        case OP_SIGTIMEDWAIT0: {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGUSR2);
            r = sigtimedwait(&set, NULL, &zero);
            break;
        }
        case OP_PAUSE: r = pause(); break;
        case OP_SIGSUSPEND: {
            sigset_t none;
            sigemptyset(&none);
            r = sigsuspend(&none);
            break;
        }
        case OP_COUNT: break;
    }
    printf("  %s returned %ld (not cancelled)\n", entry_names[e->op], r);
    pthread_cleanup_pop(0);
    return NULL;
}

static void entry_cases(void) {
    char path[] = "/tmp/grove-cancel-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    unlink(path);
    CHECK(write(file, "abc", 3) == 3);

    struct sockaddr_in a;
    int l = loopback_listener(16, &a);

    for (int op = 0; op < OP_COUNT; ++op) {
        int p[2];
        CHECK(pipe(p) == 0);
        CHECK(write(p[1], "p", 1) == 1);
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        CHECK(send(sv[1], "s", 1, 0) == 1);
        int queued = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(queued >= 0 && connect(queued, (struct sockaddr*)&a, sizeof a) == 0);
        struct entry_arg e = {(enum entry_op)op, p[0], p[1], sv[0], file, l, a};

        log_buf[0] = '\0';
        pthread_t t;
        CHECK(pthread_create(&t, NULL, at_entry, &e) == 0);
        usleep(50000);
        CHECK(pthread_cancel(t) == 0);
        void* ret = NULL;
        CHECK(pthread_join(t, &ret) == 0);
        char byte = 0;
        const int pipe_kept = read(p[0], &byte, 1) == 1 && byte == 'p';
        printf("pending at entry, %s: %s, %s; pipe byte %s\n", entry_names[op],
               ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled", log_buf,
               pipe_kept ? "still there" : "gone");
        /* Whoever accepted it, drain the listener's queue. */
        int c;
        struct pollfd pl = {l, POLLIN, 0};
        while (poll(&pl, 1, 0) == 1 && (c = accept(l, NULL, NULL)) >= 0) {
            close(c);
        }
        close(queued);
        close(p[0]);
        if (op != OP_CLOSE) {
            close(p[1]);
        } else {
            /* Cancelled at its entry, close closed nothing. */
            printf("  the write end is %s\n", fcntl(p[1], F_GETFD) >= 0 ? "still open" : "closed");
            close(p[1]);
        }
        close(sv[0]);
        close(sv[1]);
    }
    close(l);
    close(file);
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

    struct sockaddr_in a;
    int l = loopback_listener(4, &a);
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
    entry_cases();

    printf("end\n");
    tt_report_threads();
    return 0;
}

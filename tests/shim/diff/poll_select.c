/* poll, ppoll, select, pselect, epoll_create1/epoll_ctl/epoll_wait/
 * epoll_pwait: readiness, timeouts, errors, signals. */
#include "diff.h"

#include <sys/epoll.h>
#include <sys/select.h>

#define A "poll"

static void mkpipe(int p[2]) {
    if (pipe(p) != 0) {
        exit(3);
    }
}

static void close2(int p[2]) {
    close(p[0]);
    close(p[1]);
}

static const char* rev(short r) {
    static char buf[4][80];
    static int which;
    char* o = buf[which++ & 3];
    o[0] = '\0';
    static const struct {
        short bit;
        const char* name;
    } bits[] = {{POLLIN, "IN"},   {POLLPRI, "PRI"}, {POLLOUT, "OUT"},   {POLLERR, "ERR"},
                {POLLHUP, "HUP"}, {POLLNVAL, "NVAL"}, {POLLRDHUP, "RDHUP"}};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; ++i) {
        if (r & bits[i].bit) {
            strcat(o, o[0] ? "|" : "");
            strcat(o, bits[i].name);
        }
    }
    if (o[0] == '\0') {
        strcpy(o, "0");
    }
    return o;
}

static void polls(void) {
    int p[2], q[2];
    mkpipe(p);
    (void)!write(p[1], "x", 1);
    struct pollfd f[3] = {{p[0], POLLIN, 0}};
    CALL(poll(f, 1, 1000));
    rep(A, "poll_readable", "revents=%s", rev(f[0].revents));
    f[0] = (struct pollfd){p[1], POLLOUT, 0};
    CALL(poll(f, 1, -1));
    rep(A, "poll_writable", "revents=%s", rev(f[0].revents));
    f[0] = (struct pollfd){p[0], POLLIN | POLLOUT, 0};
    f[1] = (struct pollfd){p[1], POLLIN | POLLOUT, 0};
    CALL(poll(f, 2, 100));
    rep(A, "poll_both_ends", "revents=%s,%s", rev(f[0].revents), rev(f[1].revents));
    char c;
    (void)!read(p[0], &c, 1);

    f[0] = (struct pollfd){p[0], POLLIN, 0};
    CALL(poll(f, 1, 0));
    rep(A, "poll_timeout_zero_empty", "revents=%s", rev(f[0].revents));
    long t0 = now_ms();
    CALL(poll(f, 1, 50));
    rep(A, "poll_timeout_50ms", "revents=%s waited>=45ms=%s", rev(f[0].revents), yesno(now_ms() - t0 >= 45));
    t0 = now_ms();
    CALL(poll(NULL, 0, 50));
    rep(A, "poll_nfds_zero_sleeps", "waited>=45ms=%s", yesno(now_ms() - t0 >= 45));
    CALL(poll(NULL, 0, 0));
    rep(A, "poll_nfds_zero_no_timeout", NULL);

    f[0] = (struct pollfd){-1, POLLIN, 77};
    f[1] = (struct pollfd){p[1], POLLOUT, 0};
    CALL(poll(f, 2, 100));
    rep(A, "poll_negative_fd_ignored", "revents=%s,%s", rev(f[0].revents), rev(f[1].revents));
    f[0] = (struct pollfd){-5, POLLIN, 0};
    t0 = now_ms();
    CALL(poll(f, 1, 50));
    rep(A, "poll_only_negative_fd_times_out", "revents=%s waited>=45ms=%s", rev(f[0].revents),
        yesno(now_ms() - t0 >= 45));

    f[0] = (struct pollfd){closed_fd(), POLLIN, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_closed_fd_pollnval", "revents=%s", rev(f[0].revents));
    struct pollfd* volatile bad = (struct pollfd*)1;
    CALL(poll(bad, 1, 10));
    rep(A, "poll_efault", NULL);
    volatile nfds_t huge = 1u << 30;
    CALL(poll(f, huge, 10));
    rep(A, "poll_huge_nfds_einval", NULL);

    f[0] = (struct pollfd){p[0], POLLIN, 0};
    f[1] = (struct pollfd){p[0], POLLIN, 0};
    (void)!write(p[1], "y", 1);
    CALL(poll(f, 2, 100));
    rep(A, "poll_same_fd_twice", "revents=%s,%s", rev(f[0].revents), rev(f[1].revents));
    (void)!read(p[0], &c, 1);

    const int file = temp_file("x");
    f[0] = (struct pollfd){file, POLLIN | POLLOUT, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_regular_file_always_ready", "revents=%s", rev(f[0].revents));
    close(file);

    /* Waits, for one fd and for one of several. */
    t0 = now_ms();
    pid_t pid = delayed_write(p[1], 150, "z");
    f[0] = (struct pollfd){p[0], POLLIN, 0};
    CALL(poll(f, 1, -1));
    rep(A, "poll_waits_for_child", "revents=%s waited>=100ms=%s", rev(f[0].revents), yesno(now_ms() - t0 >= 100));
    reap(pid);
    (void)!read(p[0], &c, 1);
    mkpipe(q);
    pid = delayed_write(q[1], 150, "z");
    f[0] = (struct pollfd){p[0], POLLIN, 0};
    f[1] = (struct pollfd){q[0], POLLIN, 0};
    f[2] = (struct pollfd){-1, POLLIN, 0};
    CALL(poll(f, 3, 3000));
    rep(A, "poll_waits_for_one_of_several", "revents=%s,%s,%s", rev(f[0].revents), rev(f[1].revents),
        rev(f[2].revents));
    reap(pid);

    /* Hang-ups. */
    close(q[1]);
    f[0] = (struct pollfd){q[0], POLLIN, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_pipe_writer_closed_pollhup", "revents=%s", rev(f[0].revents));
    f[0] = (struct pollfd){q[0], 0, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_hup_reported_unasked", "revents=%s", rev(f[0].revents));
    close(q[0]);
    mkpipe(q);
    pid = delayed_exit(150, 0);
    close(q[1]);
    f[0] = (struct pollfd){q[0], POLLIN, 0};
    CALL(poll(f, 1, 3000));
    rep(A, "poll_waits_for_hup", "revents=%s", rev(f[0].revents));
    reap(pid);
    close(q[0]);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    shutdown(sv[1], SHUT_WR);
    f[0] = (struct pollfd){sv[0], POLLIN | POLLRDHUP, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_rdhup_after_peer_shutdown", "revents=%s", rev(f[0].revents));
    close(sv[1]);
    f[0] = (struct pollfd){sv[0], POLLIN | POLLOUT, 0};
    CALL(poll(f, 1, 100));
    rep(A, "poll_socket_peer_closed", "revents=%s", rev(f[0].revents));
    close(sv[0]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    f[0] = (struct pollfd){sv[0], POLLRDHUP, 0};
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        shutdown(sv[1], SHUT_WR);
        _exit(0);
    }
    CALL(poll(f, 1, 3000));
    rep(A, "poll_waits_for_rdhup_only", "revents=%s", rev(f[0].revents));
    reap(pid);
    close2(sv);

    /* Urgent data: POLLPRI. */
    int c1, s1;
    tcp_pair(&c1, &s1);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(send(c1, "!", 1, MSG_OOB) == 1 ? 0 : 1);
    }
    f[0] = (struct pollfd){s1, POLLPRI, 0};
    CALL(poll(f, 1, 3000));
    rep(A, "poll_waits_for_pollpri", "revents=%s", rev(f[0].revents));
    reap(pid);
    close(c1);
    close(s1);
    close2(p);
}

static void ppolls(void) {
    int p[2];
    mkpipe(p);
    struct pollfd f[1] = {{p[0], POLLIN, 0}};
    (void)!write(p[1], "x", 1);
    CALL(ppoll(f, 1, NULL, NULL));
    rep(A, "ppoll_null_timeout_ready", "revents=%s", rev(f[0].revents));
    char c;
    (void)!read(p[0], &c, 1);
    struct timespec ts = {0, 0};
    CALL(ppoll(f, 1, &ts, NULL));
    rep(A, "ppoll_zero_timeout", "revents=%s", rev(f[0].revents));
    ts = (struct timespec){0, 50000000};
    long t0 = now_ms();
    CALL(ppoll(f, 1, &ts, NULL));
    rep(A, "ppoll_timeout_50ms", "waited>=45ms=%s timespec_unchanged=%s", yesno(now_ms() - t0 >= 45),
        yesno(ts.tv_sec == 0 && ts.tv_nsec == 50000000));
    ts = (struct timespec){0, 1000000000};
    CALL(ppoll(f, 1, &ts, NULL));
    rep(A, "ppoll_nsec_1e9", NULL);
    ts = (struct timespec){-1, 0};
    CALL(ppoll(f, 1, &ts, NULL));
    rep(A, "ppoll_negative_sec", NULL);
    ts = (struct timespec){0, 1000000};
    f[0].fd = closed_fd();
    CALL(ppoll(f, 1, &ts, NULL));
    rep(A, "ppoll_closed_fd_pollnval", "revents=%s", rev(f[0].revents));
    f[0].fd = p[0];

    pid_t pid = delayed_write(p[1], 150, "x");
    CALL(ppoll(f, 1, NULL, NULL));
    rep(A, "ppoll_waits_for_child", "revents=%s", rev(f[0].revents));
    reap(pid);
    (void)!read(p[0], &c, 1);

    /* The mask unblocks a pending signal: the handler runs and ppoll
     * returns EINTR at once. */
    catch_signal(SIGUSR1, 1);
    sigset_t block, old, open;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    raise(SIGUSR1);
    sigprocmask(SIG_SETMASK, NULL, &open);
    sigdelset(&open, SIGUSR1);
    ts = (struct timespec){0, 300000000};
    t0 = now_ms();
    CALL(ppoll(f, 1, &ts, &open));
    rep(A, "ppoll_mask_unblocks_pending_signal", "handled=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 250));
    sigprocmask(SIG_SETMASK, &old, NULL);
    default_signal(SIGUSR1);
    close2(p);
}

static int set_bits(const fd_set* s, const int* fds, int n) {
    int bits = 0;
    for (int i = 0; i < n; ++i) {
        if (FD_ISSET(fds[i], s)) {
            bits |= 1 << i;
        }
    }
    return bits;
}

static void selects(void) {
    int p[2], q[2];
    mkpipe(p);
    mkpipe(q);
    const int fds[4] = {p[0], p[1], q[0], q[1]};
    const int maxfd = (p[0] > p[1] ? p[0] : p[1]) > (q[0] > q[1] ? q[0] : q[1]) ? (p[0] > p[1] ? p[0] : p[1])
                                                                                 : (q[0] > q[1] ? q[0] : q[1]);
    fd_set r, w, e;
    char c;

    (void)!write(p[1], "x", 1);
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(q[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {2, 0};
    CALL(select(maxfd + 1, &r, &w, NULL, &tv));
    rep(A, "select_readable_and_writable", "r=%#x w=%#x tv_le_original=%s", set_bits(&r, fds, 4),
        set_bits(&w, fds, 4), yesno(tv.tv_sec < 2 || (tv.tv_sec == 2 && tv.tv_usec == 0)));
    (void)!read(p[0], &c, 1);

    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 0};
    CALL(select(maxfd + 1, &r, NULL, NULL, &tv));
    rep(A, "select_timeout_zero", "r=%#x", set_bits(&r, fds, 4));

    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(q[0], &r);
    tv = (struct timeval){0, 60000};
    long t0 = now_ms();
    CALL(select(maxfd + 1, &r, NULL, NULL, &tv));
    rep(A, "select_timeout_60ms", "r=%#x waited>=55ms=%s tv_le_original=%s", set_bits(&r, fds, 4),
        yesno(now_ms() - t0 >= 55), yesno(tv.tv_sec == 0 && tv.tv_usec <= 60000));

    tv = (struct timeval){0, 50000};
    t0 = now_ms();
    CALL(select(0, NULL, NULL, NULL, &tv));
    rep(A, "select_no_sets_sleeps", "waited>=45ms=%s tv_zeroed=%s", yesno(now_ms() - t0 >= 45),
        yesno(tv.tv_sec == 0 && tv.tv_usec == 0));

    (void)!write(p[1], "x", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 50000};
    CALL(select(p[0], &r, NULL, NULL, &tv));
    rep(A, "select_fd_beyond_nfds_ignored", "r=%#x", set_bits(&r, fds, 4));
    (void)!read(p[0], &c, 1);

    FD_ZERO(&r);
    const int bad = closed_fd();
    FD_SET(bad, &r);
    tv = (struct timeval){0, 50000};
    CALL(select(bad + 1, &r, NULL, NULL, &tv));
    rep(A, "select_closed_fd_ebadf", NULL);
    FD_ZERO(&r);
    tv = (struct timeval){0, 50000};
    CALL(select(-1, &r, NULL, NULL, &tv));
    rep(A, "select_negative_nfds", NULL);
    tv = (struct timeval){-1, 0};
    CALL(select(0, NULL, NULL, NULL, &tv));
    rep(A, "select_negative_tv_sec", NULL);
    tv = (struct timeval){0, -1};
    CALL(select(0, NULL, NULL, NULL, &tv));
    rep(A, "select_negative_tv_usec", NULL);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    (void)!write(p[1], "x", 1);
    tv = (struct timeval){0, 1500000};
    CALL(select(maxfd + 1, &r, NULL, NULL, &tv));
    rep(A, "select_tv_usec_over_1e6_normalised", "r=%#x", set_bits(&r, fds, 4));
    (void)!read(p[0], &c, 1);

    t0 = now_ms();
    pid_t pid = delayed_write(q[1], 150, "x");
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(q[0], &r);
    CALL(select(maxfd + 1, &r, NULL, NULL, NULL));
    rep(A, "select_null_timeout_waits_for_child", "r=%#x waited>=100ms=%s", set_bits(&r, fds, 4),
        yesno(now_ms() - t0 >= 100));
    reap(pid);
    (void)!read(q[0], &c, 1);

    pid = delayed_write(q[1], 150, "x");
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    tv = (struct timeval){5, 0};
    CALL(select(maxfd + 1, &r, NULL, NULL, &tv));
    rep(A, "select_timeout_waits_for_child", "r=%#x tv_decreased=%s tv_above_4s=%s", set_bits(&r, fds, 4),
        yesno(tv.tv_sec < 5), yesno(tv.tv_sec >= 4));
    reap(pid);
    (void)!read(q[0], &c, 1);

    close(q[1]);
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    tv = (struct timeval){1, 0};
    CALL(select(maxfd + 1, &r, NULL, NULL, &tv));
    rep(A, "select_hup_is_readable", "r=%#x", set_bits(&r, fds, 4));
    close(q[0]);

    /* Urgent data shows in the exception set. */
    int c1, s1;
    tcp_pair(&c1, &s1);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(send(c1, "!", 1, MSG_OOB) == 1 ? 0 : 1);
    }
    FD_ZERO(&e);
    FD_SET(s1, &e);
    tv = (struct timeval){3, 0};
    CALL(select(s1 + 1, NULL, NULL, &e, &tv));
    rep(A, "select_exceptfds_oob", "e_set=%s", yesno(FD_ISSET(s1, &e)));
    reap(pid);
    close(c1);
    close(s1);

    /* pselect. */
    (void)!write(p[1], "x", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = {1, 0};
    CALL(pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL));
    rep(A, "pselect_readable", "r_set=%s timespec_unchanged=%s", yesno(FD_ISSET(p[0], &r)),
        yesno(ts.tv_sec == 1 && ts.tv_nsec == 0));
    (void)!read(p[0], &c, 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    ts = (struct timespec){0, 50000000};
    t0 = now_ms();
    CALL(pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL));
    rep(A, "pselect_timeout_50ms", "r_set=%s waited>=45ms=%s timespec_unchanged=%s", yesno(FD_ISSET(p[0], &r)),
        yesno(now_ms() - t0 >= 45), yesno(ts.tv_sec == 0 && ts.tv_nsec == 50000000));
    ts = (struct timespec){0, 1000000000};
    CALL(pselect(0, NULL, NULL, NULL, &ts, NULL));
    rep(A, "pselect_nsec_1e9", NULL);
    ts = (struct timespec){0, 1000};
    CALL(pselect(-3, NULL, NULL, NULL, &ts, NULL));
    rep(A, "pselect_negative_nfds", NULL);
    pid = delayed_write(p[1], 150, "x");
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CALL(pselect(p[0] + 1, &r, NULL, NULL, NULL, NULL));
    rep(A, "pselect_waits_for_child", "r_set=%s", yesno(FD_ISSET(p[0], &r)));
    reap(pid);
    (void)!read(p[0], &c, 1);

    catch_signal(SIGUSR1, 1);
    sigset_t block, old, open;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    raise(SIGUSR1);
    sigprocmask(SIG_SETMASK, NULL, &open);
    sigdelset(&open, SIGUSR1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    ts = (struct timespec){0, 300000000};
    t0 = now_ms();
    CALL(pselect(p[0] + 1, &r, NULL, NULL, &ts, &open));
    rep(A, "pselect_mask_unblocks_pending_signal", "handled=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 250));
    sigprocmask(SIG_SETMASK, &old, NULL);
    default_signal(SIGUSR1);
    close2(p);
}

static const char* evs(uint32_t e) {
    static char buf[4][80];
    static int which;
    char* o = buf[which++ & 3];
    o[0] = '\0';
    static const struct {
        uint32_t bit;
        const char* name;
    } bits[] = {{EPOLLIN, "IN"},   {EPOLLPRI, "PRI"}, {EPOLLOUT, "OUT"},
                {EPOLLERR, "ERR"}, {EPOLLHUP, "HUP"}, {EPOLLRDHUP, "RDHUP"}};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; ++i) {
        if (e & bits[i].bit) {
            strcat(o, o[0] ? "|" : "");
            strcat(o, bits[i].name);
        }
    }
    if (o[0] == '\0') {
        strcpy(o, "0");
    }
    return o;
}

static void epolls(void) {
    int p[2], q[2];
    mkpipe(p);
    mkpipe(q);
    char c;

    CALL_FD(epoll_create1(0));
    int ep = (int)g_ret;
    rep(A, "epoll_create1", "cloexec=%s", yesno(fd_cloexec(ep)));
    CALL_FD(epoll_create1(EPOLL_CLOEXEC));
    rep(A, "epoll_create1_cloexec", "cloexec=%s", yesno(fd_cloexec((int)g_ret)));
    close((int)g_ret);
    CALL_FD(epoll_create1(1));
    rep(A, "epoll_create1_bad_flags", NULL);
    CALL_FD(epoll_create(0));
    rep(A, "epoll_create_size_zero", NULL);

    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
    CALL(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    rep(A, "epoll_ctl_add", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    rep(A, "epoll_ctl_add_again_eexist", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_MOD, q[0], &ev));
    rep(A, "epoll_ctl_mod_missing_enoent", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_DEL, q[0], NULL));
    rep(A, "epoll_ctl_del_missing_enoent", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_ADD, closed_fd(), &ev));
    rep(A, "epoll_ctl_closed_target_ebadf", NULL);
    CALL(epoll_ctl(closed_fd(), EPOLL_CTL_ADD, p[0], &ev));
    rep(A, "epoll_ctl_closed_epfd_ebadf", NULL);
    CALL(epoll_ctl(q[0], EPOLL_CTL_ADD, p[0], &ev));
    rep(A, "epoll_ctl_not_epoll_einval", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
    rep(A, "epoll_ctl_add_self_einval", NULL);
    const int file = temp_file("x");
    CALL(epoll_ctl(ep, EPOLL_CTL_ADD, file, &ev));
    rep(A, "epoll_ctl_regular_file_eperm", NULL);
    close(file);
    CALL(epoll_ctl(ep, 99, p[0], &ev));
    rep(A, "epoll_ctl_bad_op", NULL);

    struct epoll_event out[4];
    memset(out, 0, sizeof out);
    CALL(epoll_wait(ep, out, 4, 0));
    rep(A, "epoll_wait_timeout_zero", NULL);
    long t0 = now_ms();
    CALL(epoll_wait(ep, out, 4, 50));
    rep(A, "epoll_wait_timeout_50ms", "waited>=45ms=%s", yesno(now_ms() - t0 >= 45));
    (void)!write(p[1], "x", 1);
    CALL(epoll_wait(ep, out, 4, 1000));
    rep(A, "epoll_wait_ready", "events=%s data=%#llx", evs(out[0].events), (unsigned long long)out[0].data.u64);
    (void)!read(p[0], &c, 1);

    t0 = now_ms();
    pid_t pid = delayed_write(p[1], 150, "x");
    memset(out, 0, sizeof out);
    CALL(epoll_wait(ep, out, 4, -1));
    rep(A, "epoll_wait_waits_for_child", "events=%s data=%#llx waited>=100ms=%s", evs(out[0].events),
        (unsigned long long)out[0].data.u64, yesno(now_ms() - t0 >= 100));
    reap(pid);
    (void)!read(p[0], &c, 1);

    CALL(epoll_wait(ep, out, 0, 10));
    rep(A, "epoll_wait_maxevents_zero", NULL);
    volatile int negative = -1;
    CALL(epoll_wait(ep, out, negative, 10));
    rep(A, "epoll_wait_maxevents_negative", NULL);
    CALL(epoll_wait(closed_fd(), out, 4, 10));
    rep(A, "epoll_wait_ebadf", NULL);
    CALL(epoll_wait(q[0], out, 4, 10));
    rep(A, "epoll_wait_not_epoll_einval", NULL);
    (void)!write(p[1], "x", 1);
    struct epoll_event* volatile nowhere = NULL;
    CALL(epoll_wait(ep, nowhere, 4, 10));
    rep(A, "epoll_wait_efault", NULL);
    (void)!read(p[0], &c, 1);

    ev = (struct epoll_event){.events = EPOLLIN | EPOLLOUT, .data.u32 = 42};
    CALL(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    rep(A, "epoll_ctl_mod", NULL);
    ev = (struct epoll_event){.events = EPOLLOUT, .data.u32 = 43};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev);
    (void)!write(p[1], "x", 1);
    memset(out, 0, sizeof out);
    CALL(epoll_wait(ep, out, 1, 100));
    rep(A, "epoll_wait_maxevents_one_of_two", "events>0=%s", yesno(out[0].events != 0));
    memset(out, 0, sizeof out);
    CALL(epoll_wait(ep, out, 4, 100));
    const int first_is_p0 = out[0].data.u32 == 42;
    rep(A, "epoll_wait_two_ready", "p0=%s p1=%s", evs(out[first_is_p0 ? 0 : 1].events),
        evs(out[first_is_p0 ? 1 : 0].events));
    (void)!read(p[0], &c, 1);
    CALL(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    rep(A, "epoll_ctl_del", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    rep(A, "epoll_ctl_del_again_enoent", NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);

    /* Edge-triggered and one-shot. */
    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u32 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    (void)!write(q[1], "ab", 2);
    CALL(epoll_wait(ep, out, 4, 100));
    rep(A, "epoll_et_first", "events=%s", evs(out[0].events));
    CALL(epoll_wait(ep, out, 4, 50));
    rep(A, "epoll_et_no_new_edge", NULL);
    pid = delayed_write(q[1], 150, "c");
    CALL(epoll_wait(ep, out, 4, 3000));
    rep(A, "epoll_et_waits_for_new_edge", "events=%s", evs(out[0].events));
    reap(pid);
    while (read(q[0], &c, 1) == 1 && c != 'c') {
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, q[0], NULL);

    ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 8};
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    (void)!write(q[1], "d", 1);
    CALL(epoll_wait(ep, out, 4, 100));
    rep(A, "epoll_oneshot_first", "events=%s", evs(out[0].events));
    CALL(epoll_wait(ep, out, 4, 50));
    rep(A, "epoll_oneshot_disarmed", NULL);
    CALL(epoll_ctl(ep, EPOLL_CTL_MOD, q[0], &ev));
    CALL(epoll_wait(ep, out, 4, 100));
    rep(A, "epoll_oneshot_rearmed", "events=%s", evs(out[0].events));
    (void)!read(q[0], &c, 1);
    epoll_ctl(ep, EPOLL_CTL_DEL, q[0], NULL);

    /* Hang-up on a pipe whose writer goes away. */
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 9};
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    pid = delayed_exit(150, 0);
    close(q[1]);
    CALL(epoll_wait(ep, out, 4, 3000));
    rep(A, "epoll_waits_for_hup", "events=%s", evs(out[0].events));
    reap(pid);
    close(q[0]);

    /* An epoll set inside another. */
    const int inner = epoll_create1(0);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 10};
    epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &ev);
    const int outer = epoll_create1(0);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 11};
    CALL(epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev));
    rep(A, "epoll_nested_add", NULL);
    pid = delayed_write(p[1], 150, "x");
    CALL(epoll_wait(outer, out, 4, 3000));
    rep(A, "epoll_nested_waits", "events=%s data=%u", evs(out[0].events), out[0].data.u32);
    reap(pid);
    CALL(epoll_wait(inner, out, 4, 0));
    rep(A, "epoll_nested_inner_ready", "data=%u", out[0].data.u32);
    (void)!read(p[0], &c, 1);
    close(outer);
    close(inner);

    /* epoll_pwait. */
    ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 12};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    (void)!write(p[1], "x", 1);
    sigset_t none;
    sigemptyset(&none);
    CALL(epoll_pwait(ep, out, 4, 100, &none));
    rep(A, "epoll_pwait_ready", "data=%u", out[0].data.u32);
    (void)!read(p[0], &c, 1);
    t0 = now_ms();
    CALL(epoll_pwait(ep, out, 4, 50, NULL));
    rep(A, "epoll_pwait_timeout", "waited>=45ms=%s", yesno(now_ms() - t0 >= 45));
    catch_signal(SIGUSR1, 1);
    sigset_t block, old, open;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    raise(SIGUSR1);
    sigprocmask(SIG_SETMASK, NULL, &open);
    sigdelset(&open, SIGUSR1);
    t0 = now_ms();
    CALL(epoll_pwait(ep, out, 4, 300, &open));
    rep(A, "epoll_pwait_mask_unblocks_pending_signal", "handled=%d early=%s", (int)g_signals,
        yesno(now_ms() - t0 < 250));
    sigprocmask(SIG_SETMASK, &old, NULL);
    default_signal(SIGUSR1);
    close(ep);
    close2(p);
}

/* SIGALRM during poll/select/epoll_wait: these are never restarted, so
 * EINTR even with SA_RESTART. A writer child ends the wait otherwise. */
static void interrupted(void) {
    for (int restart = 0; restart <= 1; ++restart) {
        int p[2];
        mkpipe(p);
        const char* suffix = restart ? "_sa_restart" : "";
        char name[64];

        catch_signal(SIGALRM, restart);
        pid_t pid = delayed_write(p[1], 400, "x");
        struct pollfd f = {p[0], POLLIN, 0};
        long t0 = now_ms();
        alarm_ms(60);
        CALL(poll(&f, 1, -1));
        snprintf(name, sizeof name, "poll_sigalrm_eintr%s", suffix);
        rep(A, name, "handled=%d before_writer=%s", (int)g_signals, yesno(now_ms() - t0 < 300));
        alarm_ms(0);
        reap(pid);
        char c;
        while (poll(&f, 1, 0) == 1 && read(p[0], &c, 1) == 1) {
        }

        catch_signal(SIGALRM, restart);
        pid = delayed_write(p[1], 400, "x");
        fd_set r;
        FD_ZERO(&r);
        FD_SET(p[0], &r);
        t0 = now_ms();
        alarm_ms(60);
        CALL(select(p[0] + 1, &r, NULL, NULL, NULL));
        snprintf(name, sizeof name, "select_sigalrm_eintr%s", suffix);
        rep(A, name, "handled=%d before_writer=%s", (int)g_signals, yesno(now_ms() - t0 < 300));
        alarm_ms(0);
        reap(pid);
        while (poll(&f, 1, 0) == 1 && read(p[0], &c, 1) == 1) {
        }

        const int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
        catch_signal(SIGALRM, restart);
        pid = delayed_write(p[1], 400, "x");
        t0 = now_ms();
        alarm_ms(60);
        CALL(epoll_wait(ep, &ev, 1, -1));
        snprintf(name, sizeof name, "epoll_wait_sigalrm_eintr%s", suffix);
        rep(A, name, "handled=%d before_writer=%s", (int)g_signals, yesno(now_ms() - t0 < 300));
        alarm_ms(0);
        reap(pid);
        close(ep);
        close2(p);
    }
    default_signal(SIGALRM);
}

int main(void) {
    begin();
    polls();
    ppolls();
    selects();
    epolls();
    interrupted();
    return finish(A);
}

/* close, dup/dup2/dup3, fcntl (O_NONBLOCK as the user sees it, FD_CLOEXEC,
 * F_DUPFD), ioctl FIONBIO/FIONREAD, pipe/pipe2, eventfd, timerfd,
 * sched_yield. */
#include "diff.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <termios.h>

#define A "fdops"

static void mkpipe(int p[2]) {
    if (pipe(p) != 0) {
        exit(3);
    }
}

static void close2(int p[2]) {
    close(p[0]);
    close(p[1]);
}

/* The access mode and the status flags that matter here. */
static const char* flags_str(int fd) {
    static char buf[4][64];
    static int which;
    char* o = buf[which++ & 3];
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        snprintf(o, 64, "getfl-%s", ename(errno));
        return o;
    }
    const int acc = fl & O_ACCMODE;
    snprintf(o, 64, "%s%s%s", acc == O_RDONLY ? "RDONLY" : acc == O_WRONLY ? "WRONLY" : "RDWR",
             (fl & O_NONBLOCK) ? "|NONBLOCK" : "", (fl & O_APPEND) ? "|APPEND" : "");
    return o;
}

/* Makes the shim (if any) wait once on p[0], so it has had every reason to
 * switch the pipe to O_NONBLOCK behind the user's back. */
static void wait_once(int p[2]) {
    const pid_t pid = delayed_write(p[1], 50, "w");
    char c;
    (void)!read(p[0], &c, 1);
    reap(pid);
}

static void closing_and_dup(void) {
    int p[2];
    mkpipe(p);
    char buf[16];

    CALL_FD(dup(p[0]));
    int d = (int)g_ret;
    rep(A, "dup", "fd>=0=%s differs=%s", yesno(d >= 0), yesno(d != p[0]));
    CALL(close(d));
    rep(A, "close", NULL);
    CALL(close(d));
    rep(A, "close_twice_ebadf", NULL);
    CALL(close(-1));
    rep(A, "close_negative_ebadf", NULL);
    CALL_FD(dup(closed_fd()));
    rep(A, "dup_ebadf", NULL);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    CALL_FD(dup(p[0]));
    d = (int)g_ret;
    rep(A, "dup_clears_cloexec", "cloexec=%s original_cloexec=%s", yesno(fd_cloexec(d)), yesno(fd_cloexec(p[0])));
    close(d);
    fcntl(p[0], F_SETFD, 0);

    const int f = temp_file("abcdef");
    d = dup(f);
    (void)!read(d, buf, 2);
    rep_val(A, "dup_shares_offset", (long)lseek(f, 0, SEEK_CUR), 0, NULL);
    close(d);
    close(f);

    const int target = open("/dev/null", O_RDONLY);
    CALL_FD(dup2(p[0], target));
    rep(A, "dup2_over_open_fd", "ret_is_newfd=%s", yesno(g_ret == target));
    (void)!write(p[1], "via-dup2", 8);
    CALL(read(target, buf, sizeof buf));
    rep(A, "dup2_target_reads_pipe", "data=%s", dat(buf, g_ret));
    CALL_FD(dup2(p[0], p[0]));
    rep(A, "dup2_same_fd", "ret_is_fd=%s", yesno(g_ret == p[0]));
    const int bad = closed_fd();
    CALL_FD(dup2(bad, bad));
    rep(A, "dup2_same_closed_fd_ebadf", NULL);
    CALL_FD(dup2(bad, target));
    rep(A, "dup2_closed_source_ebadf", "target_still_open=%s", yesno(fd_open(target)));
    CALL_FD(dup2(p[0], -1));
    rep(A, "dup2_negative_target_ebadf", NULL);
    CALL_FD(dup2(p[0], 1 << 30));
    rep(A, "dup2_target_too_big_ebadf", NULL);
    CALL_FD(dup3(p[0], target, O_CLOEXEC));
    rep(A, "dup3_cloexec", "ret_is_newfd=%s cloexec=%s", yesno(g_ret == target), yesno(fd_cloexec(target)));
    CALL_FD(dup3(p[0], target, 0));
    rep(A, "dup3_no_flags", "cloexec=%s", yesno(fd_cloexec(target)));
    CALL_FD(dup3(p[0], p[0], 0));
    rep(A, "dup3_same_fd_einval", NULL);
    CALL_FD(dup3(p[0], target, O_NONBLOCK));
    rep(A, "dup3_bad_flags_einval", NULL);
    CALL_FD(dup3(bad, target, 0));
    rep(A, "dup3_ebadf", NULL);
    close(target);
    close2(p);
}

static void fcntls(void) {
    int p[2];
    mkpipe(p);
    char c;

    CALL(fcntl(p[0], F_GETFL) & ~O_LARGEFILE);
    rep(A, "getfl_pipe_read_end", "flags=%s", flags_str(p[0]));
    rep_val(A, "getfl_pipe_write_end", 0, 0, "flags=%s", flags_str(p[1]));
    CALL(fcntl(p[0], F_SETFL, O_NONBLOCK));
    rep(A, "setfl_nonblock", "flags=%s", flags_str(p[0]));
    CALL(read(p[0], &c, 1));
    rep(A, "read_after_setfl_nonblock", NULL);
    CALL(fcntl(p[0], F_SETFL, 0));
    rep(A, "setfl_clear_nonblock", "flags=%s", flags_str(p[0]));
    pid_t pid = delayed_write(p[1], 150, "b");
    CALL(read(p[0], &c, 1));
    rep(A, "read_blocks_again_after_clear", "data=%s", dat(&c, g_ret));
    reap(pid);

    /* After a wait: the user still sees only what the user set. */
    wait_once(p);
    rep_val(A, "getfl_after_wait", 0, 0, "flags=%s", flags_str(p[0]));
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    rep_val(A, "getfl_after_wait_then_user_nonblock", 0, 0, "flags=%s", flags_str(p[0]));
    CALL(read(p[0], &c, 1));
    rep(A, "read_after_wait_then_user_nonblock", NULL);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) & ~O_NONBLOCK);
    rep_val(A, "getfl_after_wait_user_cleared", 0, 0, "flags=%s", flags_str(p[0]));
    pid = delayed_write(p[1], 150, "c");
    CALL(read(p[0], &c, 1));
    rep(A, "read_after_wait_user_cleared_blocks", "data=%s", dat(&c, g_ret));
    reap(pid);

    /* O_NONBLOCK belongs to the open file description, shared by dups. */
    int d = dup(p[0]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    rep_val(A, "dup_sees_nonblock_set_on_original", 0, 0, "flags=%s", flags_str(d));
    pid = delayed_write(p[1], 1000, "L");
    long t0 = now_ms();
    CALL(read(d, &c, 1));
    rep(A, "dup_read_after_original_set_nonblock", "quick=%s", yesno(now_ms() - t0 < 800));
    reap(pid);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (read(p[0], &c, 1) == 1) {
    }
    fcntl(d, F_SETFL, 0);
    rep_val(A, "original_sees_nonblock_cleared_on_dup", 0, 0, "flags=%s", flags_str(p[0]));
    pid = delayed_write(p[1], 150, "d");
    CALL(read(p[0], &c, 1));
    rep(A, "original_read_after_dup_cleared_nonblock", "data=%s", dat(&c, g_ret));
    reap(pid);
    close(d);

    CALL(fcntl(closed_fd(), F_GETFL));
    rep(A, "getfl_ebadf", NULL);
    CALL(fcntl(closed_fd(), F_SETFL, O_NONBLOCK));
    rep(A, "setfl_ebadf", NULL);
    CALL(fcntl(p[0], 9999));
    rep(A, "fcntl_bad_cmd", NULL);

    CALL(fcntl(p[0], F_GETFD));
    rep(A, "getfd_default", NULL);
    CALL(fcntl(p[0], F_SETFD, FD_CLOEXEC));
    rep(A, "setfd_cloexec", "getfd=%d", fcntl(p[0], F_GETFD));
    fcntl(p[0], F_SETFD, 0);
    CALL(fcntl(closed_fd(), F_GETFD));
    rep(A, "getfd_ebadf", NULL);
    CALL_FD(fcntl(p[0], F_DUPFD, 100));
    rep(A, "dupfd_min_100", "at_least_100=%s cloexec=%s", yesno(g_ret >= 100), yesno(fd_cloexec((int)g_ret)));
    close((int)g_ret);
    CALL_FD(fcntl(p[0], F_DUPFD_CLOEXEC, 0));
    rep(A, "dupfd_cloexec", "cloexec=%s", yesno(fd_cloexec((int)g_ret)));
    close((int)g_ret);
    CALL_FD(fcntl(p[0], F_DUPFD, -1));
    rep(A, "dupfd_negative_einval", NULL);
    CALL_FD(fcntl(closed_fd(), F_DUPFD, 0));
    rep(A, "dupfd_ebadf", NULL);

    const int f = temp_file("x");
    CALL(fcntl(f, F_SETFL, O_APPEND));
    rep(A, "setfl_append_file", "flags=%s", flags_str(f));
    CALL(fcntl(f, F_SETFL, O_APPEND | O_NONBLOCK));
    rep(A, "setfl_append_nonblock_file", "flags=%s", flags_str(f));
    close(f);

    /* Sockets: fresh, after a wait, user-nonblocking, and back. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    rep_val(A, "getfl_socket_fresh", 0, 0, "flags=%s", flags_str(sv[0]));
    wait_once(sv);
    rep_val(A, "getfl_socket_after_wait", 0, 0, "flags=%s", flags_str(sv[0]));
    CALL(fcntl(sv[0], F_SETFL, O_NONBLOCK));
    rep(A, "setfl_socket_nonblock", "flags=%s", flags_str(sv[0]));
    CALL(recv(sv[0], &c, 1, 0));
    rep(A, "recv_socket_user_nonblock", NULL);
    CALL(fcntl(sv[0], F_SETFL, 0));
    rep(A, "setfl_socket_clear", "flags=%s", flags_str(sv[0]));
    d = dup(sv[0]);
    rep_val(A, "getfl_socket_dup_after_wait", 0, 0, "flags=%s", flags_str(d));
    close(d);
    close2(sv);
    close2(p);
}

static void fionbio_bad_pointer(void) {
    int p[2];
    mkpipe(p);
    int* volatile bad = (int*)1;
    CALL(ioctl(p[0], FIONBIO, bad));
    rep(A, "ioctl_fionbio_bad_pointer", NULL);
}

static void ioctls(void) {
    int p[2];
    mkpipe(p);
    int on = 1;
    CALL(ioctl(p[0], FIONBIO, &on));
    rep(A, "ioctl_fionbio_on", "flags=%s", flags_str(p[0]));
    char c;
    CALL(read(p[0], &c, 1));
    rep(A, "read_after_fionbio_on", NULL);
    on = 0;
    CALL(ioctl(p[0], FIONBIO, &on));
    rep(A, "ioctl_fionbio_off", "flags=%s", flags_str(p[0]));
    wait_once(p);
    on = 1;
    ioctl(p[0], FIONBIO, &on);
    rep_val(A, "fionbio_on_after_wait", 0, 0, "flags=%s", flags_str(p[0]));
    on = 0;
    ioctl(p[0], FIONBIO, &on);
    rep_val(A, "fionbio_off_after_wait", 0, 0, "flags=%s", flags_str(p[0]));
    CALL(ioctl(closed_fd(), FIONBIO, &on));
    rep(A, "ioctl_fionbio_ebadf", NULL);
    isolated(A, "ioctl_fionbio_bad_pointer", fionbio_bad_pointer, 3);

    (void)!write(p[1], "12345", 5);
    int n = -1;
    CALL(ioctl(p[0], FIONREAD, &n));
    rep(A, "ioctl_fionread_pipe", "n=%d", n);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    (void)!write(sv[1], "abc", 3);
    n = -1;
    CALL(ioctl(sv[0], FIONREAD, &n));
    rep(A, "ioctl_fionread_socket", "n=%d", n);
    close2(sv);
    struct termios t;
    CALL(ioctl(p[0], TCGETS, &t));
    rep(A, "ioctl_tcgets_pipe_enotty", NULL);
    CALL(ioctl(closed_fd(), FIONREAD, &n));
    rep(A, "ioctl_fionread_ebadf", NULL);
    close2(p);
}

static void pipes(void) {
    int p[2] = {-1, -1};
    CALL(pipe(p));
    rep(A, "pipe", "flags=%s,%s cloexec=%s", flags_str(p[0]), flags_str(p[1]), yesno(fd_cloexec(p[0])));
    close2(p);
    CALL(pipe2(p, O_NONBLOCK));
    rep(A, "pipe2_nonblock", "flags=%s,%s", flags_str(p[0]), flags_str(p[1]));
    close2(p);
    CALL(pipe2(p, O_CLOEXEC));
    rep(A, "pipe2_cloexec", "cloexec=%s,%s flags=%s", yesno(fd_cloexec(p[0])), yesno(fd_cloexec(p[1])),
        flags_str(p[0]));
    close2(p);
    CALL(pipe2(p, O_APPEND));
    rep(A, "pipe2_bad_flags", NULL);
    int* volatile bad = (int*)1;
    CALL(pipe(bad));
    rep(A, "pipe_bad_pointer", NULL);
    CALL(pipe2(p, O_DIRECT));
    char buf[16];
    (void)!write(p[1], "ab", 2);
    (void)!write(p[1], "cd", 2);
    const ssize_t r1 = read(p[0], buf, sizeof buf);
    rep(A, "pipe2_packet_mode", "first_read=%ld", (long)r1);
    close2(p);
}

static void eventfds(void) {
    uint64_t v = 0;
    CALL_FD(eventfd(5, 0));
    int e = (int)g_ret;
    rep(A, "eventfd", "flags=%s", flags_str(e));
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_read_initial", "value=%llu", (unsigned long long)v);
    fflush(stdout);
    long t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        const uint64_t three = 3;
        _exit(write(e, &three, sizeof three) == 8 ? 0 : 1);
    }
    v = 0;
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_read_waits_for_child", "value=%llu waited>=100ms=%s", (unsigned long long)v,
        yesno(now_ms() - t0 >= 100));
    reap(pid);
    CALL(read(e, &v, 4));
    rep(A, "eventfd_short_read_einval", NULL);
    v = 0xffffffffffffffffULL;
    CALL(write(e, &v, sizeof v));
    rep(A, "eventfd_write_max_einval", NULL);
    CALL(write(e, &v, 4));
    rep(A, "eventfd_short_write_einval", NULL);
    v = 2;
    CALL(write(e, &v, sizeof v));
    rep(A, "eventfd_write", NULL);
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_read_written", "value=%llu", (unsigned long long)v);
    close(e);

    CALL_FD(eventfd(0, EFD_NONBLOCK));
    e = (int)g_ret;
    rep(A, "eventfd_nonblock", "flags=%s", flags_str(e));
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_nonblock_empty_eagain", NULL);
    close(e);

    e = eventfd(3, EFD_SEMAPHORE);
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_semaphore_read", "value=%llu", (unsigned long long)v);
    CALL(read(e, &v, sizeof v));
    rep(A, "eventfd_semaphore_read_again", "value=%llu", (unsigned long long)v);
    close(e);

    CALL_FD(eventfd(0, 0x10));
    rep(A, "eventfd_bad_flags", NULL);
}

static void timerfds(void) {
    CALL_FD(timerfd_create(CLOCK_MONOTONIC, 0));
    int t = (int)g_ret;
    rep(A, "timerfd_create", "flags=%s", flags_str(t));
    struct itimerspec its = {{0, 0}, {0, 50000000}};
    long t0 = now_ms();
    CALL(timerfd_settime(t, 0, &its, NULL));
    rep(A, "timerfd_settime_50ms", NULL);
    uint64_t n = 0;
    CALL(read(t, &n, sizeof n));
    rep(A, "timerfd_read_waits_for_expiry", "expirations>=1=%s waited>=40ms=%s", yesno(n >= 1),
        yesno(now_ms() - t0 >= 40));
    its = (struct itimerspec){{0, 10000000}, {0, 10000000}};
    timerfd_settime(t, 0, &its, NULL);
    sleep_ms(55);
    n = 0;
    CALL(read(t, &n, sizeof n));
    rep(A, "timerfd_interval_read", "expirations>=2=%s", yesno(n >= 2));
    CALL(read(t, &n, 4));
    rep(A, "timerfd_short_read_einval", NULL);
    its = (struct itimerspec){{0, 0}, {0, 1000000000}};
    CALL(timerfd_settime(t, 0, &its, NULL));
    rep(A, "timerfd_settime_bad_nsec", NULL);
    CALL(timerfd_settime(t, 77, &its, NULL));
    rep(A, "timerfd_settime_bad_flags", NULL);
    close(t);

    CALL_FD(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    t = (int)g_ret;
    rep(A, "timerfd_create_nonblock_cloexec", "flags=%s cloexec=%s", flags_str(t), yesno(fd_cloexec(t)));
    CALL(read(t, &n, sizeof n));
    rep(A, "timerfd_unarmed_nonblock_eagain", NULL);
    close(t);
    CALL_FD(timerfd_create(12345, 0));
    rep(A, "timerfd_bad_clock", NULL);
    CALL_FD(timerfd_create(CLOCK_MONOTONIC, 0x1));
    rep(A, "timerfd_bad_flags", NULL);
}

int main(void) {
    begin();
    closing_and_dup();
    fcntls();
    ioctls();
    pipes();
    eventfds();
    timerfds();
    CALL(sched_yield());
    rep(A, "sched_yield", NULL);
    return finish(A);
}

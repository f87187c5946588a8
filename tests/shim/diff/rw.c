/* read, write, readv, writev, pread, pwrite, preadv, pwritev, preadv2,
 * pwritev2 on pipes, socketpairs, TCP loopback and files: data, EOF, and the
 * error paths. */
#include "diff.h"

#include <limits.h>
#include <sys/uio.h>

#define A "rw"

#define BIG (8 << 20)

static unsigned char g_big[BIG];

/* Common checks on a connected stream pair (w writes, r reads). */
static void stream_cases(const char* kind, int w, int r, int is_socket) {
    char name[96];
    char buf[64];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", kind, s), name)

    CALL(write(w, "hello", 5));
    rep(A, NAME("write"), NULL);
    CALL(read(r, buf, 3));
    rep(A, NAME("read_partial"), "data=%s", dat(buf, g_ret));
    CALL(read(r, buf, sizeof buf));
    rep(A, NAME("read_rest"), "data=%s", dat(buf, g_ret));
    CALL(read(r, buf, 0));
    rep(A, NAME("read_zero_len_empty"), NULL);
    CALL(write(w, buf, 0));
    rep(A, NAME("write_zero_len"), NULL);

    struct iovec out[3] = {{"one-", 4}, {"two-", 4}, {"three", 5}};
    CALL(writev(w, out, 3));
    rep(A, NAME("writev_three"), NULL);
    char a[6], b[20];
    struct iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
    CALL(readv(r, in, 2));
    rep(A, NAME("readv_two"), "first=%s second=%s", dat(a, sizeof a), dat(b, g_ret - (long)sizeof a));
    CALL(writev(w, out, 0));
    rep(A, NAME("writev_zero_iov"), NULL);
    volatile int bad_count = -1;
    CALL(readv(r, in, bad_count));
    rep(A, NAME("readv_negative_iovcnt"), NULL);
    bad_count = IOV_MAX + 1;
    CALL(writev(w, out, bad_count));
    rep(A, NAME("writev_too_many_iov"), NULL);
    struct iovec* volatile bad_iov = (struct iovec*)1;
    CALL(writev(w, bad_iov, 1));
    rep(A, NAME("writev_bad_iov_pointer"), NULL);

    /* EFAULT: the other side has data, the buffer is not mapped. */
    (void)!write(w, "data", 4);
    void* volatile bad = (void*)1;
    CALL(read(r, bad, 4));
    rep(A, NAME("read_efault"), NULL);
    CALL(read(r, buf, sizeof buf));
    rep(A, NAME("read_after_efault"), "data=%s", dat(buf, g_ret));
    CALL(write(w, bad, 4));
    rep(A, NAME("write_efault"), NULL);
    struct iovec bad_buf = {bad, 4};
    (void)!write(w, "more", 4);
    CALL(readv(r, &bad_buf, 1));
    rep(A, NAME("readv_efault"), NULL);
    if (is_socket) {
        while (recv(r, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        }
    } else {
        fcntl(r, F_SETFL, O_NONBLOCK);
        while (read(r, buf, sizeof buf) > 0) {
        }
        fcntl(r, F_SETFL, 0);
    }

    /* Lengths no buffer can have (past the user address range): EFAULT at
     * once, whether or not anything could be read. */
    static const size_t huge_lens[] = {(size_t)-1, (size_t)SSIZE_MAX + 1, (size_t)1 << 62, (size_t)1 << 47};
    for (size_t i = 0; i < sizeof huge_lens / sizeof huge_lens[0]; ++i) {
        char what[48];
        const size_t volatile len = huge_lens[i];
        snprintf(what, sizeof what, "read_len_%zx", len);
        CALL(read(r, buf, len));
        rep(A, NAME(what), NULL);
        snprintf(what, sizeof what, "write_len_%zx", len);
        CALL(write(w, buf, len));
        rep(A, NAME(what), NULL);
    }

    /* A read that waits for a writer in another process. */
    long t0 = now_ms();
    pid_t child = delayed_write(w, 150, "late");
    errno = ENOENT;
    const ssize_t got = read(r, buf, sizeof buf);
    const int after = errno;
    rep_val(A, NAME("read_waits_for_child"), got, got < 0 ? after : 0, "waited>=100ms=%s data=%s", yesno(now_ms() - t0 >= 100),
            dat(buf, got));
    rep_val(A, NAME("read_after_wait_keeps_errno"), got, 0, "errno_after=%s", ename(after));
    reap(child);

    child = delayed_write(w, 150, "vec");
    char v1[2], v2[8];
    struct iovec vin[2] = {{v1, sizeof v1}, {v2, sizeof v2}};
    CALL(readv(r, vin, 2));
    rep(A, NAME("readv_waits_for_child"), "first=%s second=%s", dat(v1, 2), dat(v2, g_ret - 2));
    reap(child);

    /* An 8 MiB write in one call, drained by a child: a blocking write
     * returns only when all of it is written. */
    int res[2];
    if (pipe(res) != 0) {
        exit(3);
    }
    child = drain_child(r, w, res[1], 50, 65536, 0);
    close(res[1]);
    CALL(write(w, g_big, BIG));
    const long wrote = g_ret;
    const int werr = g_err;
    /* The drainer holds its own copy of r; our w must close for its EOF. */
    if (is_socket) {
        shutdown(w, SHUT_WR);
    } else {
        close(w);
    }
    const char* line = result_of(res[0]);
    char expect[64];
    snprintf(expect, sizeof expect, "%ld %08lx", wrote, hash_of(g_big, BIG));
    rep_val(A, NAME("write_8mib_one_call"), wrote, werr, "child_got_all=%s", yesno(wrote == BIG && strcmp(line, expect) == 0));
    rep_val(A, NAME("write_8mib_one_call_child"), 0, 0, "%s", reap(child));
    close(res[0]);
#undef NAME
}

/* Fills the pipe p (its write end made non-blocking for that, then
 * blocking again) and starts a child that, after 150 ms, drains it and one
 * more page: a write of a page meanwhile waits for room. */
static pid_t fill_then_drain_later(int p[2]) {
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    long filled = 0;
    ssize_t w;
    while ((w = write(p[1], g_big, 4096)) > 0) {
        filled += w;
    }
    fcntl(p[1], F_SETFL, 0);
    fflush(stdout);
    const pid_t drainer = fork();
    if (drainer == 0) {
        sleep_ms(150);
        long left = filled + 4096;
        while (left > 0) {
            const ssize_t r = read(p[0], g_big, 65536);
            if (r <= 0) {
                _exit(1);
            }
            left -= r;
        }
        _exit(0);
    }
    return drainer;
}

static void pipes(void) {
    int p[2];
    char buf[16];

    CALL(pipe(p));
    rep(A, "pipe_create", NULL);
    stream_cases("pipe", p[1], p[0], 0);
    close(p[0]);

    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(read(p[1], buf, 1));
    rep(A, "pipe_read_write_end", NULL);
    CALL(write(p[0], "x", 1));
    rep(A, "pipe_write_read_end", NULL);
    close(p[1]);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "pipe_eof_after_writer_close", NULL);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "pipe_eof_again", NULL);
    close(p[0]);

    if (pipe(p) != 0) {
        exit(3);
    }
    close(p[0]);
    CALL(write(p[1], "x", 1));
    rep(A, "pipe_epipe", NULL);
    struct iovec v = {"xy", 2};
    CALL(writev(p[1], &v, 1));
    rep(A, "pipe_writev_epipe", NULL);
    close(p[1]);

    const int fd = closed_fd();
    CALL(read(fd, buf, 1));
    rep(A, "read_ebadf", NULL);
    CALL(write(fd, "x", 1));
    rep(A, "write_ebadf", NULL);
    CALL(readv(fd, &v, 1));
    rep(A, "readv_ebadf", NULL);
    CALL(writev(fd, &v, 1));
    rep(A, "writev_ebadf", NULL);
    CALL(read(-1, buf, 1));
    rep(A, "read_negative_fd", NULL);

    /* Non-blocking by the user's choice: EAGAIN, never a wait. */
    pipe2(p, O_NONBLOCK);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "pipe2_nonblock_empty_read", NULL);
    close(p[0]);
    close(p[1]);
    if (pipe(p) != 0) {
        exit(3);
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "pipe_fcntl_nonblock_empty_read", NULL);
    fcntl(p[0], F_SETFL, 0);

    /* EOF when the last writer, in a child, exits. */
    const long t0 = now_ms();
    const pid_t child = delayed_exit(150, 0);
    close(p[1]);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "pipe_eof_when_child_writer_exits", "waited>=100ms=%s", yesno(now_ms() - t0 >= 100));
    reap(child);
    close(p[0]);

    /* A full pipe: the write waits until a child drains it. */
    if (pipe(p) != 0) {
        exit(3);
    }
    const pid_t drainer = fill_then_drain_later(p);
    const long t1 = now_ms();
    CALL(write(p[1], g_big, 4096));
    rep(A, "pipe_write_waits_for_space", "waited>=100ms=%s", yesno(now_ms() - t1 >= 100));
    rep_val(A, "pipe_write_waits_for_space_child", 0, 0, "%s", reap(drainer));
    close(p[0]);
    close(p[1]);
}

static void sockets(void) {
    int sv[2];
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    stream_cases("socketpair", sv[0], sv[1], 1);
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "socketpair_eof_after_peer_close", NULL);
    CALL(write(sv[0], "x", 1));
    rep(A, "socketpair_epipe_after_peer_close", NULL);
    close(sv[0]);

    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    CALL(write(sv[0], "datagram", 8));
    rep(A, "dgram_pair_write", NULL);
    CALL(read(sv[1], buf, 4));
    rep(A, "dgram_pair_read_truncates", "data=%s", dat(buf, g_ret));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    CALL(read(sv[1], buf, sizeof buf));
    rep(A, "dgram_pair_rest_discarded", NULL);
    fcntl(sv[1], F_SETFL, 0);
    CALL(write(sv[0], "", 0));
    rep(A, "dgram_pair_write_empty", NULL);
    CALL(read(sv[1], buf, sizeof buf));
    rep(A, "dgram_pair_read_empty_datagram", NULL);
    close(sv[0]);
    close(sv[1]);

    int c, s;
    tcp_pair(&c, &s);
    stream_cases("tcp", c, s, 1);
    close(c);
    close(s);

    tcp_pair(&c, &s);
    close(s);
    CALL(read(c, buf, sizeof buf));
    rep(A, "tcp_eof_after_peer_close", NULL);
    CALL(write(c, "x", 1));
    rep(A, "tcp_write_after_peer_close", NULL);
    CALL(write(c, "x", 1));
    rep(A, "tcp_write_after_rst", NULL);
    close(c);

    /* The peer closes with unread data: it sends RST. */
    tcp_pair(&c, &s);
    (void)!write(c, "unread", 6);
    sleep_ms(20);
    close(s);
    sleep_ms(20);
    CALL(read(c, buf, sizeof buf));
    rep(A, "tcp_read_after_rst", NULL);
    CALL(read(c, buf, sizeof buf));
    rep(A, "tcp_read_after_rst_again", NULL);
    close(c);
}

static void files(void) {
    char buf[32];
    const int f = temp_file("0123456789");
    CALL(pread(f, buf, 4, 2));
    rep(A, "pread_file", "data=%s offset_unchanged=%s", dat(buf, g_ret), yesno(lseek(f, 0, SEEK_CUR) == 0));
    CALL(pread(f, buf, 4, 8));
    rep(A, "pread_file_short", "data=%s", dat(buf, g_ret));
    CALL(pread(f, buf, 4, 100));
    rep(A, "pread_past_eof", NULL);
    CALL(pread(f, buf, 4, -1));
    rep(A, "pread_negative_offset", NULL);
    CALL(pwrite(f, "AB", 2, 4));
    rep(A, "pwrite_file", NULL);
    CALL(read(f, buf, sizeof buf));
    rep(A, "read_file_after_pwrite", "data=%s", dat(buf, g_ret));
    CALL(read(f, buf, sizeof buf));
    rep(A, "read_file_at_eof", NULL);
    CALL(write(f, "tail", 4));
    rep(A, "write_file", NULL);
    CALL(pwrite(f, "x", 1, -5));
    rep(A, "pwrite_negative_offset", NULL);
    void* volatile bad = (void*)1;
    CALL(pread(f, bad, 4, 0));
    rep(A, "pread_efault", NULL);
    lseek(f, 0, SEEK_SET);
    CALL(read(f, bad, 4));
    rep(A, "read_file_efault", NULL);
    char a[3], b[5];
    struct iovec in[2] = {{a, 3}, {b, 5}};
    lseek(f, 0, SEEK_SET);
    CALL(readv(f, in, 2));
    rep(A, "readv_file", "first=%s second=%s", dat(a, 3), dat(b, g_ret - 3));
    close(f);

    const int ro = open("/dev/null", O_RDONLY);
    CALL(write(ro, "x", 1));
    rep(A, "write_on_rdonly", NULL);
    CALL(pwrite(ro, "x", 1, 0));
    rep(A, "pwrite_on_rdonly_devnull", NULL);
    CALL(read(ro, buf, sizeof buf));
    rep(A, "read_dev_null", NULL);
    close(ro);
    const int wo = open("/dev/null", O_WRONLY);
    CALL(read(wo, buf, 1));
    rep(A, "read_on_wronly", NULL);
    CALL(write(wo, "discard", 7));
    rep(A, "write_dev_null", NULL);
    close(wo);
    const int z = open("/dev/zero", O_RDONLY);
    CALL(read(z, buf, 8));
    rep(A, "read_dev_zero", "data=%s", dat(buf, g_ret));
    close(z);
    const int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    CALL(read(dir, buf, sizeof buf));
    rep(A, "read_directory_eisdir", NULL);
    close(dir);

    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(pread(p[0], buf, 1, 0));
    rep(A, "pread_pipe_espipe", NULL);
    CALL(pwrite(p[1], "x", 1, 0));
    rep(A, "pwrite_pipe_espipe", NULL);
    close(p[0]);
    close(p[1]);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CALL(pread(sv[0], buf, 1, 0));
    rep(A, "pread_socket_espipe", NULL);
    CALL(pwrite(sv[0], "x", 1, 0));
    rep(A, "pwrite_socket_espipe", NULL);
    close(sv[0]);
    close(sv[1]);
    CALL(pread(closed_fd(), buf, 1, 0));
    rep(A, "pread_ebadf", NULL);
    CALL(pwrite(closed_fd(), "x", 1, 0));
    rep(A, "pwrite_ebadf", NULL);
}

/* The vector forms with an offset (preadv, pwritev) and with flags
 * (preadv2, pwritev2): at the current position (-1) without flags they are
 * readv/writev and wait as those do; RWF_NOWAIT, an offset, or a flag the
 * file does not take get the kernel's own answer. */
static void vectored_at(void) {
    char a[4], b[8];
    struct iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
    struct iovec out[2] = {{"abc", 3}, {"defgh", 5}};
    volatile int bad_count = -1;

    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(preadv2(p[0], in, 2, -1, RWF_NOWAIT));
    rep(A, "preadv2_pipe_nowait_empty", NULL);
    pid_t child = delayed_write(p[1], 150, "late-bytes");
    long t0 = now_ms();
    CALL(preadv2(p[0], in, 2, -1, 0));
    rep(A, "preadv2_pipe_waits_for_writer", "waited>=100ms=%s first=%s second=%s", yesno(now_ms() - t0 >= 100),
        dat(a, sizeof a), dat(b, g_ret - (long)sizeof a));
    reap(child);
    CALL(pwritev2(p[1], out, 2, -1, 0));
    rep(A, "pwritev2_pipe", NULL);
    CALL(preadv64v2(p[0], in, 2, -1, 0));
    rep(A, "preadv64v2_pipe", "first=%s second=%s", dat(a, sizeof a), dat(b, g_ret - (long)sizeof a));
    CALL(pwritev64v2(p[1], out, 1, -1, RWF_NOWAIT));
    rep(A, "pwritev64v2_pipe_nowait", NULL);
    CALL(preadv2(p[0], in, 1, -1, RWF_NOWAIT));
    rep(A, "preadv2_pipe_nowait_data", "data=%s", dat(a, g_ret));
    CALL(preadv2(p[0], in, 2, 0, 0));
    rep(A, "preadv2_pipe_offset_espipe", NULL);
    CALL(pwritev2(p[1], out, 2, 0, 0));
    rep(A, "pwritev2_pipe_offset_espipe", NULL);
    CALL(preadv(p[0], in, 2, 0));
    rep(A, "preadv_pipe_espipe", NULL);
    CALL(pwritev(p[1], out, 2, 0));
    rep(A, "pwritev_pipe_espipe", NULL);
    CALL(preadv2(p[0], in, bad_count, -1, 0));
    rep(A, "preadv2_negative_iovcnt", NULL);
    CALL(pwritev2(p[1], out, bad_count, -1, 0));
    rep(A, "pwritev2_negative_iovcnt", NULL);
    CALL(preadv2(p[0], in, 2, -1, 0x40000000));
    rep(A, "preadv2_unknown_flag", NULL);
    CALL(pwritev2(p[0], out, 2, -1, 0));
    rep(A, "pwritev2_read_end_ebadf", NULL);

    /* A full pipe: pwritev2 at the current position waits for a drainer. */
    const pid_t drainer = fill_then_drain_later(p);
    struct iovec page = {g_big, 4096};
    CALL(pwritev2(p[1], &page, 1, -1, RWF_NOWAIT));
    rep(A, "pwritev2_full_pipe_nowait", NULL);
    t0 = now_ms();
    CALL(pwritev2(p[1], &page, 1, -1, 0));
    rep(A, "pwritev2_full_pipe_waits_for_space", "waited>=100ms=%s", yesno(now_ms() - t0 >= 100));
    rep_val(A, "pwritev2_full_pipe_waits_for_space_child", 0, 0, "%s", reap(drainer));
    close(p[0]);
    close(p[1]);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CALL(preadv2(sv[0], in, 2, -1, RWF_NOWAIT));
    rep(A, "preadv2_socket_nowait_empty", NULL);
    child = delayed_write(sv[1], 150, "sock-data");
    t0 = now_ms();
    CALL(preadv2(sv[0], in, 2, -1, 0));
    rep(A, "preadv2_socket_waits_for_writer", "waited>=100ms=%s first=%s second=%s", yesno(now_ms() - t0 >= 100),
        dat(a, sizeof a), dat(b, g_ret - (long)sizeof a));
    reap(child);
    CALL(pwritev2(sv[1], out, 2, -1, 0));
    rep(A, "pwritev2_socket", NULL);
    CALL(preadv2(sv[0], in, 2, -1, 0));
    rep(A, "preadv2_socket_data", "first=%s second=%s", dat(a, sizeof a), dat(b, g_ret - (long)sizeof a));
    CALL(preadv(sv[0], in, 2, 0));
    rep(A, "preadv_socket_espipe", NULL);
    close(sv[1]);
    CALL(preadv2(sv[0], in, 2, -1, 0));
    rep(A, "preadv2_socket_eof", NULL);
    close(sv[0]);

    const int f = temp_file("0123456789");
    CALL(preadv(f, in, 2, 1));
    rep(A, "preadv_file", "first=%s second=%s offset_unchanged=%s", dat(a, sizeof a), dat(b, g_ret - (long)sizeof a),
        yesno(lseek(f, 0, SEEK_CUR) == 0));
    CALL(preadv(f, in, 2, -1));
    rep(A, "preadv_negative_offset", NULL);
    CALL(preadv2(f, in, 2, 6, 0));
    rep(A, "preadv2_file_offset", "first=%s", dat(a, g_ret));
    lseek(f, 2, SEEK_SET);
    CALL(preadv2(f, in, 1, -1, 0));
    rep(A, "preadv2_file_current", "data=%s now_at=%ld", dat(a, g_ret), (long)lseek(f, 0, SEEK_CUR));
    CALL(pwritev(f, out, 2, 3));
    rep(A, "pwritev_file", NULL);
    CALL(pwritev2(f, out, 1, 0, RWF_DSYNC));
    rep(A, "pwritev2_file_dsync", NULL);
    CALL(preadv2(f, in, 2, 0, RWF_HIPRI));
    rep(A, "preadv2_file_hipri", "first=%s second=%s", dat(a, g_ret < 4 ? g_ret : 4),
        dat(b, g_ret - (long)sizeof a));
    CALL(pwritev2(f, out, 1, 0, RWF_APPEND));
    rep(A, "pwritev2_file_append", "size=%ld", (long)lseek(f, 0, SEEK_END));
    close(f);
    CALL(preadv2(closed_fd(), in, 2, -1, 0));
    rep(A, "preadv2_ebadf", NULL);
    CALL(pwritev(closed_fd(), out, 2, 0));
    rep(A, "pwritev_ebadf", NULL);
}

/* SIGALRM during a blocking call. Without SA_RESTART the call fails with
 * EINTR; with it, the call goes on and returns the data. A writer child
 * ends the wait if the signal does not. */
static void interrupted(void) {
    char buf[16];
    for (int restart = 0; restart <= 1; ++restart) {
        int p[2];
        if (pipe(p) != 0) {
            exit(3);
        }
        catch_signal(SIGALRM, restart);
        const pid_t child = delayed_write(p[1], 600, "late");
        const long t0 = now_ms();
        alarm_ms(100);
        CALL(read(p[0], buf, sizeof buf));
        const long took = now_ms() - t0;
        rep(A, restart ? "pipe_read_sigalrm_sa_restart" : "pipe_read_sigalrm_eintr",
            "handled=%d returned_before_writer=%s data=%s", (int)g_signals, yesno(took < 450), dat(buf, g_ret));
        alarm_ms(0);
        reap(child);
        close(p[0]);
        close(p[1]);

        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        catch_signal(SIGALRM, restart);
        const pid_t child2 = delayed_write(sv[1], 600, "late");
        const long t1 = now_ms();
        alarm_ms(100);
        CALL(recv(sv[0], buf, sizeof buf, 0));
        rep(A, restart ? "socket_recv_sigalrm_sa_restart" : "socket_recv_sigalrm_eintr",
            "handled=%d returned_before_writer=%s data=%s", (int)g_signals, yesno(now_ms() - t1 < 450),
            dat(buf, g_ret));
        alarm_ms(0);
        reap(child2);
        close(sv[0]);
        close(sv[1]);
    }

    /* A write into a full pipe, interrupted before anything was written. */
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (write(p[1], g_big, 4096) > 0) {
    }
    fcntl(p[1], F_SETFL, 0);
    catch_signal(SIGALRM, 0);
    fflush(stdout);
    const pid_t drainer = fork();
    if (drainer == 0) {
        close(p[1]);
        sleep_ms(600);
        while (read(p[0], g_big, 65536) > 0) {
        }
        _exit(0);
    }
    const long t0 = now_ms();
    alarm_ms(100);
    CALL(write(p[1], g_big, 100));
    rep(A, "pipe_write_full_sigalrm_eintr", "handled=%d returned_before_drain=%s", (int)g_signals,
        yesno(now_ms() - t0 < 450));
    alarm_ms(0);
    close(p[1]);
    reap(drainer);
    close(p[0]);
    default_signal(SIGALRM);
}

int main(void) {
    begin();
    for (long i = 0; i < BIG; ++i) {
        g_big[i] = (unsigned char)(i * 7 + (i >> 9));
    }
    pipes();
    sockets();
    files();
    vectored_at();
    interrupted();
    return finish(A);
}

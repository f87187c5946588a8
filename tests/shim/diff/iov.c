/* Vectored I/O with many buffers (past 128, up to IOV_MAX and one more)
 * on pipes and sockets, where the call has to wait or send in parts:
 * readv, writev, recvmsg with MSG_WAITALL, sendmsg. */
#include "diff.h"

#include <limits.h>
#include <sys/uio.h>

#define A "iov"

static unsigned char g_src[1 << 20];
static unsigned char g_dst[1 << 20];
static struct iovec g_iov[IOV_MAX + 1];

/* count buffers of `each` bytes over `base`. */
static struct iovec* spread(unsigned char* base, int count, size_t each) {
    for (int i = 0; i < count; ++i) {
        g_iov[i].iov_base = base + (size_t)i * each;
        g_iov[i].iov_len = each;
    }
    return g_iov;
}

/* A child that writes `total` bytes of g_src to fd in `pieces` parts,
 * `gap_ms` apart, after `delay_ms`. */
static pid_t feeder(int fd, int close_me, size_t total, int pieces, long delay_ms, long gap_ms) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (close_me >= 0) {
            close(close_me);
        }
        sleep_ms(delay_ms);
        size_t done = 0;
        for (int i = 0; i < pieces; ++i) {
            const size_t end = i == pieces - 1 ? total : total / (size_t)pieces * (size_t)(i + 1);
            while (done < end) {
                const ssize_t w = write(fd, g_src + done, end - done);
                if (w <= 0) {
                    _exit(1);
                }
                done += (size_t)w;
            }
            sleep_ms(gap_ms);
        }
        _exit(0);
    }
    return pid;
}

/* A blocking writev of many buffers, more than the peer's buffer holds,
 * to a slow reader: all of it, in order. */
static void big_writev(const char* name, int w, int r, int count, size_t each, int is_socket) {
    int res[2];
    if (pipe(res) != 0) {
        exit(3);
    }
    const pid_t child = drain_child(r, w, res[1], 50, 4096, 1);
    close(res[1]);
    const size_t total = (size_t)count * each;
    CALL(writev(w, spread(g_src, count, each), count));
    if (is_socket) {
        shutdown(w, SHUT_WR);
    } else {
        close(w);
    }
    char expect[64];
    snprintf(expect, sizeof expect, "%lu %08lx", (unsigned long)total, hash_of(g_src, total));
    const char* got = result_of(res[0]);
    rep(A, name, "peer_got_all=%s", yesno(strcmp(got, expect) == 0));
    reap(child);
    close(res[0]);
}

static void pipe_cases(void) {
    int p[2];
    char name[64];

    /* Many small buffers totalling at most PIPE_BUF: one atomic write. */
    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(writev(p[1], spread(g_src, IOV_MAX, 4), IOV_MAX));
    rep(A, "pipe_writev_iov_max_of_4_bytes", NULL);
    CALL(readv(p[0], spread(g_dst, 700, 8), 700));
    rep(A, "pipe_readv_700_buffers", "same=%s", yesno(g_ret > 0 && memcmp(g_src, g_dst, (size_t)g_ret) == 0));
    CALL(writev(p[1], spread(g_src, IOV_MAX + 1, 1), IOV_MAX + 1));
    rep(A, "pipe_writev_iov_max_plus_one", NULL);
    CALL(readv(p[0], spread(g_dst, IOV_MAX + 1, 1), IOV_MAX + 1));
    rep(A, "pipe_readv_iov_max_plus_one", NULL);
    CALL(readv(p[0], spread(g_dst, 300, 0), 300));
    rep(A, "pipe_readv_300_empty_buffers", NULL);
    CALL(writev(p[1], spread(g_src, 300, 0), 300));
    rep(A, "pipe_writev_300_empty_buffers", NULL);

    /* A readv that waits for a writer. */
    pid_t child = feeder(p[1], -1, 3000, 3, 100, 300);
    CALL(readv(p[0], spread(g_dst, 500, 10), 500));
    rep(A, "pipe_readv_500_waits_for_data", "positive=%s same=%s", yesno(g_ret > 0),
        yesno(g_ret > 0 && memcmp(g_src, g_dst, (size_t)g_ret) == 0));
    reap(child);
    while (1) {
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, 0) <= 0 || read(p[0], g_dst, sizeof g_dst) <= 0) {
            break;
        }
    }

    /* A bad pointer inside a long array: EFAULT, at once. */
    struct iovec* iov = spread(g_dst, 400, 8);
    iov[250].iov_base = (void*)1;
    (void)!write(p[1], "abcdefgh", 8);
    CALL(readv(p[0], iov, 251));
    rep(A, "pipe_readv_251_first_ok", "data=%s", dat(g_dst, g_ret > 0 ? g_ret : 0));
    (void)!write(p[1], "abcdefgh", 8);
    iov = spread(g_dst, 400, 8);
    iov[0].iov_base = (void*)1;
    CALL(readv(p[0], iov, 400));
    rep(A, "pipe_readv_400_bad_first_buffer", NULL);
    struct iovec* volatile bad_array = (struct iovec*)1;
    CALL(readv(p[0], bad_array, 300));
    rep(A, "pipe_readv_300_bad_array", NULL);
    CALL(writev(p[1], bad_array, 300));
    rep(A, "pipe_writev_300_bad_array", NULL);
    iov = spread(g_src, 200, 1);
    iov[150].iov_len = (size_t)SSIZE_MAX + 1;
    CALL(writev(p[1], iov, 200));
    rep(A, "pipe_writev_200_negative_length", NULL);
    close(p[0]);
    close(p[1]);

    /* More than the pipe holds, in 1000 and in IOV_MAX buffers. */
    const int counts[] = {129, 1000, IOV_MAX};
    const size_t sizes[] = {1000, 100, 300};
    for (int i = 0; i < 3; ++i) {
        if (pipe(p) != 0) {
            exit(3);
        }
        snprintf(name, sizeof name, "pipe_writev_%d_of_%zu_to_slow_reader", counts[i], sizes[i]);
        big_writev(name, p[1], p[0], counts[i], sizes[i], 0);
        close(p[0]);
    }
}

static void socket_cases(void) {
    int sv[2];
    char name[64];
    const int counts[] = {129, 1000, IOV_MAX};
    const size_t sizes[] = {1000, 300, 500};
    for (int i = 0; i < 3; ++i) {
        int c;
        int s;
        tcp_pair(&c, &s);
        const int small = 4096;
        setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        snprintf(name, sizeof name, "tcp_writev_%d_of_%zu_to_slow_reader", counts[i], sizes[i]);
        big_writev(name, c, s, counts[i], sizes[i], 1);
        close(c);
        close(s);
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    big_writev("unix_writev_1000_of_200_to_slow_reader", sv[0], sv[1], 1000, 200, 1);
    close(sv[0]);
    close(sv[1]);

    /* sendmsg with many buffers to a slow reader. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    int res[2];
    if (pipe(res) != 0) {
        exit(3);
    }
    pid_t child = drain_child(sv[1], sv[0], res[1], 50, 4096, 1);
    close(res[1]);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = spread(g_src, 900, 500);
    m.msg_iovlen = 900;
    CALL(sendmsg(sv[0], &m, 0));
    shutdown(sv[0], SHUT_WR);
    char expect[64];
    snprintf(expect, sizeof expect, "%lu %08lx", 900UL * 500, hash_of(g_src, 900 * 500));
    rep(A, "unix_sendmsg_900_of_500_to_slow_reader", "peer_got_all=%s", yesno(strcmp(result_of(res[0]), expect) == 0));
    reap(child);
    close(res[0]);
    close(sv[0]);
    close(sv[1]);

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    m.msg_iov = spread(g_src, IOV_MAX + 1, 1);
    m.msg_iovlen = IOV_MAX + 1;
    CALL(sendmsg(sv[0], &m, 0));
    rep(A, "sendmsg_iov_max_plus_one", NULL);
    m.msg_iov = spread(g_dst, IOV_MAX + 1, 1);
    CALL(recvmsg(sv[1], &m, MSG_WAITALL));
    rep(A, "recvmsg_waitall_iov_max_plus_one", NULL);
    CALL(readv(sv[1], spread(g_dst, IOV_MAX + 1, 1), IOV_MAX + 1));
    rep(A, "socket_readv_iov_max_plus_one", NULL);
    CALL(writev(sv[0], spread(g_src, IOV_MAX + 1, 1), IOV_MAX + 1));
    rep(A, "socket_writev_iov_max_plus_one", NULL);

    /* MSG_WAITALL over many buffers gathers every byte, arriving in parts. */
    child = feeder(sv[1], -1, 6000, 4, 50, 40);
    memset(&m, 0, sizeof m);
    m.msg_iov = spread(g_dst, 600, 10);
    m.msg_iovlen = 600;
    memset(g_dst, 0, 6000);
    CALL(recvmsg(sv[0], &m, MSG_WAITALL));
    rep(A, "recvmsg_waitall_600_buffers_in_parts", "same=%s iov_restored=%s", yesno(memcmp(g_src, g_dst, 6000) == 0),
        yesno(m.msg_iov == g_iov && m.msg_iovlen == 600));
    reap(child);
    /* A readv of many buffers on a socket waits too. */
    child = feeder(sv[1], -1, 2000, 2, 100, 300);
    CALL(readv(sv[0], spread(g_dst, 300, 10), 300));
    rep(A, "socket_readv_300_waits_for_data", "positive=%s same=%s", yesno(g_ret > 0),
        yesno(g_ret > 0 && memcmp(g_src, g_dst, (size_t)g_ret) == 0));
    reap(child);
    close(sv[0]);
    close(sv[1]);

    /* Datagrams go whole: a unix datagram of 200 buffers. */
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) {
        exit(3);
    }
    CALL(writev(sv[0], spread(g_src, 200, 3), 200));
    rep(A, "dgram_writev_200_buffers", NULL);
    CALL(readv(sv[1], spread(g_dst, 300, 2), 300));
    rep(A, "dgram_readv_300_buffers", "same=%s", yesno(g_ret == 600 && memcmp(g_src, g_dst, 600) == 0));
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    begin();
    for (size_t i = 0; i < sizeof g_src; ++i) {
        g_src[i] = (unsigned char)(i * 131 + (i >> 9));
    }
    pipe_cases();
    socket_cases();
    return finish(A);
}

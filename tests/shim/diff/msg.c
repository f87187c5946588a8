/* send/recv, sendto/recvfrom, sendmsg/recvmsg (flags, datagrams with
 * addresses, SCM_RIGHTS), sendmmsg/recvmmsg, sendfile. */
#include "diff.h"

#include <sys/sendfile.h>
#include <sys/uio.h>

#define A "msg"

#define BIG (8 << 20)

static int g_pipe[2];

/* A UDP port nothing listens on a moment ago. */
static unsigned short closed_udp_port(void) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = loopback(0);
    bind(fd, (struct sockaddr*)&a, sizeof a);
    const unsigned short p = local_port(fd);
    close(fd);
    return p;
}

static void flags(void) {
    int sv[2];
    char buf[32];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);

    CALL(send(sv[0], "abc", 3, 0));
    rep(A, "send_stream", NULL);
    CALL(recv(sv[1], buf, sizeof buf, MSG_PEEK));
    rep(A, "recv_peek", "data=%s", dat(buf, g_ret));
    CALL(recv(sv[1], buf, 2, 0));
    rep(A, "recv_after_peek", "data=%s", dat(buf, g_ret));
    CALL(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    rep(A, "recv_dontwait_rest", "data=%s", dat(buf, g_ret));
    CALL(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    rep(A, "recv_dontwait_empty", NULL);
    CALL(recv(sv[1], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT));
    rep(A, "recv_peek_dontwait_empty", NULL);
    CALL(send(sv[0], "nb", 2, MSG_DONTWAIT));
    rep(A, "send_dontwait", NULL);
    CALL(recv(sv[1], buf, sizeof buf, 0));
    rep(A, "recv_plain", "data=%s", dat(buf, g_ret));
    CALL(recv(sv[1], buf, sizeof buf, MSG_OOB));
    rep(A, "recv_oob_on_unix", NULL);
    CALL(send(sv[0], "x", 1, MSG_OOB));
    rep(A, "send_oob_on_unix", NULL);

    /* MSG_WAITALL: the data arrives in two pieces, 150 ms apart. */
    int wa[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, wa);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        (void)!write(wa[0], "12345", 5);
        sleep_ms(150);
        (void)!write(wa[0], "67890", 5);
        _exit(0);
    }
    CALL(recv(wa[1], buf, 10, MSG_WAITALL));
    rep(A, "recv_waitall_two_pieces", "data=%s", dat(buf, g_ret));
    reap(pid);
    close(wa[0]);
    close(wa[1]);

    /* The same over TCP, with recvfrom. */
    int tc, ts;
    tcp_pair(&tc, &ts);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        (void)!write(tc, "abcde", 5);
        sleep_ms(150);
        (void)!write(tc, "fghij", 5);
        _exit(0);
    }
    CALL(recvfrom(ts, buf, 10, MSG_WAITALL, NULL, NULL));
    rep(A, "tcp_recvfrom_waitall_two_pieces", "data=%s", dat(buf, g_ret));
    reap(pid);
    close(tc);
    close(ts);

    /* Peek waits too when nothing is there. */
    pid = delayed_write(sv[0], 150, "peeked");
    CALL(recv(sv[1], buf, sizeof buf, MSG_PEEK));
    rep(A, "recv_peek_waits", "data=%s", dat(buf, g_ret));
    reap(pid);
    CALL(recv(sv[1], buf, sizeof buf, 0));
    rep(A, "recv_after_peek_wait", "data=%s", dat(buf, g_ret));

    /* MSG_WAITALL cut short by EOF. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        (void)!write(sv[0], "short", 5);
        sleep_ms(100);
        shutdown(sv[0], SHUT_WR);
        _exit(0);
    }
    CALL(recv(sv[1], buf, 20, MSG_WAITALL));
    rep(A, "recv_waitall_until_eof", "data=%s", dat(buf, g_ret));
    reap(pid);
    CALL(recv(sv[1], buf, 20, 0));
    rep(A, "recv_after_eof", NULL);
    close(sv[0]);
    CALL(send(sv[1], "x", 1, 0));
    rep(A, "send_peer_closed_epipe", NULL);
    signal(SIGPIPE, SIG_DFL);
    CALL(send(sv[1], "x", 1, MSG_NOSIGNAL));
    rep(A, "send_nosignal_epipe", NULL);
    signal(SIGPIPE, SIG_IGN);
    close(sv[1]);

    /* Truncated datagrams. */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    send(sv[0], "datagram", 8, 0);
    CALL(recv(sv[1], buf, 4, MSG_TRUNC));
    rep(A, "recv_trunc_reports_full_length", "data=%s", dat(buf, 4));
    close(sv[0]);
    close(sv[1]);

    /* Errors. */
    char b;
    CALL(recv(g_pipe[0], &b, 1, 0));
    rep(A, "recv_enotsock", NULL);
    CALL(send(g_pipe[1], "x", 1, 0));
    rep(A, "send_enotsock", NULL);
    CALL(recvfrom(g_pipe[0], &b, 1, 0, NULL, NULL));
    rep(A, "recvfrom_enotsock", NULL);
    struct sockaddr_in lo = loopback(9);
    CALL(sendto(g_pipe[1], "x", 1, 0, (struct sockaddr*)&lo, sizeof lo));
    rep(A, "sendto_enotsock", NULL);
    struct iovec v = {&b, 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    CALL(recvmsg(g_pipe[0], &m, 0));
    rep(A, "recvmsg_enotsock", NULL);
    CALL(sendmsg(g_pipe[1], &m, 0));
    rep(A, "sendmsg_enotsock", NULL);
    CALL(recv(g_pipe[0], &b, 1, MSG_DONTWAIT));
    rep(A, "recv_dontwait_enotsock", NULL);
    const int fd = closed_fd();
    CALL(recv(fd, &b, 1, 0));
    rep(A, "recv_ebadf", NULL);
    CALL(send(fd, "x", 1, 0));
    rep(A, "send_ebadf", NULL);
    CALL(recvmsg(fd, &m, 0));
    rep(A, "recvmsg_ebadf", NULL);
    CALL(sendmsg(fd, &m, 0));
    rep(A, "sendmsg_ebadf", NULL);
    const int t = socket(AF_INET, SOCK_STREAM, 0);
    CALL(recv(t, &b, 1, 0));
    rep(A, "recv_unconnected_tcp", NULL);
    CALL(send(t, "x", 1, 0));
    rep(A, "send_unconnected_tcp", NULL);
    close(t);

    /* TCP urgent data. */
    int c, s;
    tcp_pair(&c, &s);
    CALL(send(c, "!", 1, MSG_OOB));
    rep(A, "send_oob_tcp", NULL);
    sleep_ms(20);
    CALL(recv(s, buf, 1, MSG_OOB));
    rep(A, "recv_oob_tcp", "data=%s", dat(buf, g_ret));
    CALL(recv(s, buf, 1, MSG_OOB));
    rep(A, "recv_oob_tcp_again", NULL);
    close(c);
    close(s);
}

static int g_udp;

/* With nothing to receive: vlen 0 asks for nothing, and gets it at once. */
static void recvmmsg_vlen_zero(void) {
    struct mmsghdr vec[1];
    memset(vec, 0, sizeof vec);
    CALL(recvmmsg(g_udp, vec, 0, 0, NULL));
    rep(A, "udp_recvmmsg_vlen_zero", NULL);
}

static int udp_socket(unsigned short* port) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = loopback(0);
    bind(fd, (struct sockaddr*)&a, sizeof a);
    *port = local_port(fd);
    return fd;
}

static void datagrams(void) {
    unsigned short pa, pb;
    const int a = udp_socket(&pa);
    const int b = udp_socket(&pb);
    struct sockaddr_in to_b = loopback(pb);
    char buf[64];

    CALL(sendto(a, "dgram", 5, 0, (struct sockaddr*)&to_b, sizeof to_b));
    rep(A, "udp_sendto", NULL);
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    memset(&from, 0, sizeof from);
    CALL(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr*)&from, &len));
    rep(A, "udp_recvfrom", "data=%s len=%u from=%s from_port_is_sender=%s", dat(buf, g_ret), (unsigned)len,
        inet_ntoa(from.sin_addr), yesno(ntohs(from.sin_port) == pa));

    sendto(a, "second", 6, 0, (struct sockaddr*)&to_b, sizeof to_b);
    CALL(recvfrom(b, buf, sizeof buf, 0, NULL, NULL));
    rep(A, "udp_recvfrom_null_addr", "data=%s", dat(buf, g_ret));

    sendto(a, "longer datagram", 15, 0, (struct sockaddr*)&to_b, sizeof to_b);
    len = 4;
    CALL(recvfrom(b, buf, 4, 0, (struct sockaddr*)&from, &len));
    rep(A, "udp_recvfrom_truncated_short_addrlen", "data=%s len=%u", dat(buf, g_ret), (unsigned)len);

    /* recvfrom waits for a datagram sent by a child. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(sendto(a, "late", 4, 0, (struct sockaddr*)&to_b, sizeof to_b) == 4 ? 0 : 1);
    }
    len = sizeof from;
    CALL(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr*)&from, &len));
    rep(A, "udp_recvfrom_waits", "data=%s from_port_is_sender=%s", dat(buf, g_ret), yesno(ntohs(from.sin_port) == pa));
    reap(pid);

    CALL(recvfrom(b, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
    rep(A, "udp_recvfrom_dontwait_empty", NULL);
    CALL(send(a, "x", 1, 0));
    rep(A, "udp_send_unconnected", NULL);
    CALL(sendto(a, "x", 1, 0, (struct sockaddr*)&to_b, 3));
    rep(A, "udp_sendto_short_addrlen", NULL);
    static char huge[70000];
    CALL(sendto(a, huge, sizeof huge, 0, (struct sockaddr*)&to_b, sizeof to_b));
    rep(A, "udp_sendto_too_big", NULL);
    CALL(sendto(a, "x", 1, 0, (struct sockaddr*)1, sizeof to_b));
    rep(A, "udp_sendto_bad_addr_pointer", NULL);

    /* Connected UDP to a closed port: the ICMP error comes back on recv.
     * The kernel may drop that ICMP (its global rate limit is shared with
     * whatever else runs), and a port just closed may be taken by another
     * process: until poll shows the error, send again to a fresh port, so
     * the blocking recv below always has its error to return. */
    const int c = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in nobody = loopback(closed_udp_port());
    connect(c, (struct sockaddr*)&nobody, sizeof nobody);
    CALL(send(c, "ping", 4, 0));
    rep(A, "udp_connected_send_closed_port", NULL);
    for (int tries = 0; tries < 20; tries++) {
        struct pollfd pc = {.fd = c, .events = POLLIN};
        if (poll(&pc, 1, 100) == 1 && (pc.revents & POLLERR) != 0)
            break;
        nobody = loopback(closed_udp_port());
        connect(c, (struct sockaddr*)&nobody, sizeof nobody);
        send(c, "ping", 4, 0);
    }
    /* Still nothing after all that: one differing line, not a hang. */
    struct pollfd pc = {.fd = c, .events = POLLIN};
    CALL(recv(c, buf, sizeof buf, poll(&pc, 1, 5000) == 1 ? 0 : MSG_DONTWAIT));
    rep(A, "udp_connected_recv_econnrefused", NULL);
    close(c);

    /* sendmsg/recvmsg with two iovecs and an address. */
    struct iovec out[2] = {{"head-", 5}, {"tail", 4}};
    struct msghdr m = {.msg_name = &to_b, .msg_namelen = sizeof to_b, .msg_iov = out, .msg_iovlen = 2};
    CALL(sendmsg(a, &m, 0));
    rep(A, "udp_sendmsg_two_iov", NULL);
    char h[3], t[16];
    struct iovec in[2] = {{h, sizeof h}, {t, sizeof t}};
    struct msghdr r = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = in, .msg_iovlen = 2};
    CALL(recvmsg(b, &r, MSG_PEEK));
    rep(A, "udp_recvmsg_peek", "first=%s", dat(h, 3));
    r.msg_namelen = sizeof from;
    CALL(recvmsg(b, &r, 0));
    rep(A, "udp_recvmsg_two_iov", "first=%s second=%s namelen=%u from_port_is_sender=%s flags=%#x", dat(h, 3),
        dat(t, g_ret - 3), (unsigned)r.msg_namelen, yesno(ntohs(from.sin_port) == pa), (unsigned)r.msg_flags);

    sendto(a, "0123456789", 10, 0, (struct sockaddr*)&to_b, sizeof to_b);
    struct iovec small = {buf, 4};
    struct msghdr rs = {.msg_iov = &small, .msg_iovlen = 1};
    CALL(recvmsg(b, &rs, 0));
    rep(A, "udp_recvmsg_truncated_flag", "data=%s msg_trunc=%s", dat(buf, g_ret), yesno(rs.msg_flags & MSG_TRUNC));

    /* recvmsg waits. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(sendto(a, "waited", 6, 0, (struct sockaddr*)&to_b, sizeof to_b) == 6 ? 0 : 1);
    }
    struct iovec one = {buf, sizeof buf};
    struct msghdr rw = {.msg_iov = &one, .msg_iovlen = 1};
    CALL(recvmsg(b, &rw, 0));
    rep(A, "udp_recvmsg_waits", "data=%s", dat(buf, g_ret));
    reap(pid);
    CALL(recvmsg(b, &rw, MSG_DONTWAIT));
    rep(A, "udp_recvmsg_dontwait_empty", NULL);

    /* sendmmsg / recvmmsg. */
    struct mmsghdr vec[5];
    struct iovec iov[5];
    char bufs[5][16];
    const char* words[3] = {"alpha", "beta", "gamma"};
    memset(vec, 0, sizeof vec);
    for (int i = 0; i < 3; ++i) {
        iov[i].iov_base = (void*)words[i];
        iov[i].iov_len = strlen(words[i]);
        vec[i].msg_hdr.msg_iov = &iov[i];
        vec[i].msg_hdr.msg_iovlen = 1;
        vec[i].msg_hdr.msg_name = &to_b;
        vec[i].msg_hdr.msg_namelen = sizeof to_b;
    }
    CALL(sendmmsg(a, vec, 3, 0));
    rep(A, "udp_sendmmsg_three", "len0=%u len1=%u len2=%u", vec[0].msg_len, vec[1].msg_len, vec[2].msg_len);

#define PREP_RECV(n)                                               \
    do {                                                           \
        memset(vec, 0, sizeof vec);                                \
        memset(bufs, 0, sizeof bufs);                              \
        for (int i = 0; i < (n); ++i) {                            \
            iov[i].iov_base = bufs[i];                             \
            iov[i].iov_len = sizeof bufs[i];                       \
            vec[i].msg_hdr.msg_iov = &iov[i];                      \
            vec[i].msg_hdr.msg_iovlen = 1;                         \
        }                                                          \
    } while (0)

    PREP_RECV(3);
    CALL(recvmmsg(b, vec, 3, 0, NULL));
    rep(A, "udp_recvmmsg_three", "m0=%s m1=%s m2=%s", dat(bufs[0], vec[0].msg_len), dat(bufs[1], vec[1].msg_len),
        dat(bufs[2], vec[2].msg_len));

    sendto(a, "one", 3, 0, (struct sockaddr*)&to_b, sizeof to_b);
    sendto(a, "two", 3, 0, (struct sockaddr*)&to_b, sizeof to_b);
    sleep_ms(10);
    PREP_RECV(5);
    CALL(recvmmsg(b, vec, 5, MSG_WAITFORONE, NULL));
    rep(A, "udp_recvmmsg_waitforone_takes_available", "m0=%s m1=%s", dat(bufs[0], vec[0].msg_len),
        dat(bufs[1], vec[1].msg_len));

    PREP_RECV(2);
    CALL(recvmmsg(b, vec, 2, MSG_DONTWAIT, NULL));
    rep(A, "udp_recvmmsg_dontwait_empty", NULL);

    /* Blocking recvmmsg: one there now, one 150 ms later; it waits for both. */
    sendto(a, "now", 3, 0, (struct sockaddr*)&to_b, sizeof to_b);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(sendto(a, "later", 5, 0, (struct sockaddr*)&to_b, sizeof to_b) == 5 ? 0 : 1);
    }
    PREP_RECV(2);
    CALL(recvmmsg(b, vec, 2, 0, NULL));
    rep(A, "udp_recvmmsg_blocking_waits_for_all", "m0=%s m1=%s", dat(bufs[0], vec[0].msg_len),
        dat(bufs[1], vec[1].msg_len));
    reap(pid);

    /* MSG_WAITFORONE with nothing there: waits for the first. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(sendto(a, "first", 5, 0, (struct sockaddr*)&to_b, sizeof to_b) == 5 ? 0 : 1);
    }
    PREP_RECV(3);
    CALL(recvmmsg(b, vec, 3, MSG_WAITFORONE, NULL));
    rep(A, "udp_recvmmsg_waitforone_waits", "m0=%s", dat(bufs[0], vec[0].msg_len));
    reap(pid);

    g_udp = b;
    isolated(A, "udp_recvmmsg_vlen_zero", recvmmsg_vlen_zero, 3);
    PREP_RECV(1);
    CALL(recvmmsg(closed_fd(), vec, 1, 0, NULL));
    rep(A, "recvmmsg_ebadf", NULL);
    CALL(recvmmsg(g_pipe[0], vec, 1, 0, NULL));
    rep(A, "recvmmsg_enotsock", NULL);
    CALL(sendmmsg(closed_fd(), vec, 1, 0));
    rep(A, "sendmmsg_ebadf", NULL);
    CALL(sendmmsg(g_pipe[1], vec, 1, 0));
    rep(A, "sendmmsg_enotsock", NULL);
    struct timespec ts = {0, 50000000};
    PREP_RECV(1);
    sendto(a, "timed", 5, 0, (struct sockaddr*)&to_b, sizeof to_b);
    CALL(recvmmsg(b, vec, 1, 0, &ts));
    rep(A, "udp_recvmmsg_with_timeout_available", "m0=%s", dat(bufs[0], vec[0].msg_len));

    close(a);
    close(b);
#undef PREP_RECV
}

/* Sends `fd` over the unix socket s with SCM_RIGHTS. */
static long send_fd(int s, int fd) {
    char byte = 'F';
    struct iovec v = {&byte, 1};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof ctl.space};
    struct cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(s, &m, 0);
}

/* Receives one fd; -1 if none. Describes the message in `desc`. */
static int recv_fd(int s, int flags, size_t ctl_len, char* desc, size_t desc_len) {
    char byte = 0;
    struct iovec v = {&byte, 1};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int)) * 2];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = ctl_len};
    CALL(recvmsg(s, &m, flags));
    int fd = -1;
    int level = -1, type = -1;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        level = c->cmsg_level;
        type = c->cmsg_type;
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
        }
    }
    snprintf(desc, desc_len, "byte=%s cmsg_socket=%s cmsg_rights=%s ctrunc=%s", dat(&byte, g_ret),
             yesno(level == SOL_SOCKET), yesno(type == SCM_RIGHTS), yesno((m.msg_flags & MSG_CTRUNC) != 0));
    return fd;
}

static void rights(void) {
    int sv[2];
    char desc[160];
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);

    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(send_fd(sv[0], p[1]));
    rep(A, "scm_rights_send_pipe", NULL);
    int got = recv_fd(sv[1], 0, CMSG_SPACE(sizeof(int)), desc, sizeof desc);
    rep(A, "scm_rights_recv_pipe", "%s fd>=0=%s cloexec=%s", desc, yesno(got >= 0), yesno(fd_cloexec(got)));
    CALL(write(got, "via-passed-fd", 13));
    rep(A, "scm_rights_write_through_passed_fd", NULL);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "scm_rights_read_what_passed_fd_wrote", "data=%s", dat(buf, g_ret));
    close(got);

    send_fd(sv[0], p[1]);
    got = recv_fd(sv[1], MSG_CMSG_CLOEXEC, CMSG_SPACE(sizeof(int)), desc, sizeof desc);
    rep(A, "scm_rights_recv_cmsg_cloexec", "%s cloexec=%s", desc, yesno(fd_cloexec(got)));
    close(got);

    send_fd(sv[0], p[1]);
    got = recv_fd(sv[1], 0, 0, desc, sizeof desc);
    rep(A, "scm_rights_recv_no_control_buffer", "%s fd>=0=%s", desc, yesno(got >= 0));

    /* A passed socket, one the receiver has already waited on: the copy
     * must look and behave as the blocking socket it is. */
    int x[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, x);
    pid_t pid = delayed_write(x[1], 100, "w1");
    read(x[0], buf, sizeof buf);
    reap(pid);
    send_fd(sv[0], x[0]);
    got = recv_fd(sv[1], 0, CMSG_SPACE(sizeof(int)), desc, sizeof desc);
    rep(A, "scm_rights_recv_waited_socket", "%s nonblock=%s", desc, yesno(fl_nonblock(got)));
    pid = delayed_write(x[1], 150, "w2");
    CALL(read(got, buf, sizeof buf));
    rep(A, "scm_rights_passed_socket_read_waits", "data=%s", dat(buf, g_ret));
    reap(pid);
    close(got);
    close(x[0]);
    close(x[1]);

    /* recvmsg that waits for the fd. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        _exit(send_fd(sv[0], p[0]) == 1 ? 0 : 1);
    }
    got = recv_fd(sv[1], 0, CMSG_SPACE(sizeof(int)), desc, sizeof desc);
    rep(A, "scm_rights_recvmsg_waits", "%s fd>=0=%s", desc, yesno(got >= 0));
    reap(pid);
    close(got);

    CALL(send_fd(sv[0], closed_fd()));
    rep(A, "scm_rights_send_closed_fd", NULL);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void sendfiles(void) {
    int sv[2];
    char buf[64];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    const int f = temp_file("sendfile-content");

    off_t off = 0;
    CALL(sendfile(sv[0], f, &off, 100));
    rep(A, "sendfile_file_to_socket", "offset=%ld file_pos=%ld", (long)off, (long)lseek(f, 0, SEEK_CUR));
    CALL(read(sv[1], buf, sizeof buf));
    rep(A, "sendfile_peer_reads", "data=%s", dat(buf, g_ret));
    off = 9;
    CALL(sendfile(sv[0], f, &off, 4));
    rep(A, "sendfile_with_offset", "offset=%ld", (long)off);
    CALL(read(sv[1], buf, sizeof buf));
    rep(A, "sendfile_with_offset_peer_reads", "data=%s", dat(buf, g_ret));
    CALL(sendfile(sv[0], f, NULL, 8));
    rep(A, "sendfile_null_offset", "file_pos=%ld", (long)lseek(f, 0, SEEK_CUR));
    CALL(read(sv[1], buf, sizeof buf));
    rep(A, "sendfile_null_offset_peer_reads", "data=%s", dat(buf, g_ret));
    off = 1000;
    CALL(sendfile(sv[0], f, &off, 8));
    rep(A, "sendfile_past_eof", NULL);
    CALL(sendfile(closed_fd(), f, NULL, 8));
    rep(A, "sendfile_out_ebadf", NULL);
    CALL(sendfile(sv[0], closed_fd(), NULL, 8));
    rep(A, "sendfile_in_ebadf", NULL);
    CALL(sendfile(sv[0], g_pipe[0], NULL, 8));
    rep(A, "sendfile_in_pipe", NULL);
    const int wo = open("/dev/null", O_WRONLY);
    CALL(sendfile(sv[0], wo, NULL, 8));
    rep(A, "sendfile_in_wronly", NULL);
    close(wo);
    off = -1;
    CALL(sendfile(sv[0], f, &off, 8));
    rep(A, "sendfile_negative_offset", NULL);
    close(sv[1]);
    off = 0;
    CALL(sendfile(sv[0], f, &off, 8));
    rep(A, "sendfile_peer_closed_epipe", NULL);
    close(sv[0]);
    close(f);

    /* An 8 MiB file in one blocking sendfile, drained by a child. */
    const int big = temp_file(NULL);
    static char chunk[65536];
    for (size_t i = 0; i < sizeof chunk; ++i) {
        chunk[i] = (char)(i * 13);
    }
    for (int i = 0; i < BIG / (int)sizeof chunk; ++i) {
        if (write(big, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
            exit(3);
        }
    }
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        sleep_ms(50);
        long total = 0;
        ssize_t r;
        while ((r = read(sv[1], chunk, sizeof chunk)) > 0) {
            total += r;
        }
        _exit(total == BIG ? 0 : 1);
    }
    close(sv[1]);
    off = 0;
    CALL(sendfile(sv[0], big, &off, BIG));
    close(sv[0]);
    rep(A, "sendfile_8mib_one_call", "offset=%ld child=%s", (long)off, reap(pid));
    close(big);
}

int main(void) {
    begin();
    if (pipe(g_pipe) != 0) {
        return 3;
    }
    flags();
    datagrams();
    rights();
    sendfiles();
    close(g_pipe[0]);
    close(g_pipe[1]);
    return finish(A);
}

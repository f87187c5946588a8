/* socket, socketpair, bind, listen, accept/accept4, connect, shutdown,
 * setsockopt/getsockopt (SO_RCVTIMEO/SO_SNDTIMEO and the waits they bound). */
#include "diff.h"

#include <sys/un.h>

#define A "sockets"

static int g_pipe[2];

static void show_new_fd(const char* name, int fd) {
    rep(A, name, "fd>=0=%s nonblock=%s cloexec=%s", yesno(fd >= 0), yesno(fl_nonblock(fd)), yesno(fd_cloexec(fd)));
    if (fd >= 0) {
        close(fd);
    }
}

static void creation(void) {
    static const struct {
        int domain, type, protocol;
        const char* name;
    } ok[] = {
        {AF_INET, SOCK_STREAM, 0, "socket_inet_stream"},
        {AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, "socket_inet_stream_nonblock"},
        {AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, "socket_inet_stream_cloexec"},
        {AF_INET, SOCK_DGRAM, 0, "socket_inet_dgram"},
        {AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP, "socket_inet_dgram_both_flags"},
        {AF_UNIX, SOCK_STREAM, 0, "socket_unix_stream"},
        {AF_UNIX, SOCK_SEQPACKET, 0, "socket_unix_seqpacket"},
        {AF_INET, 9999, 0, "socket_bad_type"},
        {9999, SOCK_STREAM, 0, "socket_bad_domain"},
        {AF_INET, SOCK_STREAM | 0x40000000, 0, "socket_bad_type_flag"},
        {AF_INET, SOCK_STREAM, IPPROTO_UDP, "socket_bad_protocol"},
        {AF_UNIX, SOCK_STREAM, 5, "socket_unix_bad_protocol"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; ++i) {
        CALL_FD(socket(ok[i].domain, ok[i].type, ok[i].protocol));
        const int fd = (int)g_ret;
        if (fd < 0) {
            rep(A, ok[i].name, NULL);
        } else {
            show_new_fd(ok[i].name, fd);
        }
    }

    int sv[2] = {-1, -1};
    CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[8] = {0};
    const ssize_t w = write(sv[0], "pair", 4);
    const ssize_t r = read(sv[1], buf, sizeof buf);
    rep(A, "socketpair_unix_stream", "fds>=0=%s nonblock=%s/%s roundtrip=%ld/%ld data=%s",
        yesno(sv[0] >= 0 && sv[1] >= 0), yesno(fl_nonblock(sv[0])), yesno(fl_nonblock(sv[1])), (long)w, (long)r,
        dat(buf, r));
    close(sv[0]);
    close(sv[1]);

    CALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    rep(A, "socketpair_nonblock_cloexec", "nonblock=%s/%s cloexec=%s/%s", yesno(fl_nonblock(sv[0])),
        yesno(fl_nonblock(sv[1])), yesno(fd_cloexec(sv[0])), yesno(fd_cloexec(sv[1])));
    close(sv[0]);
    close(sv[1]);

    CALL(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    rep(A, "socketpair_unix_dgram", NULL);
    close(sv[0]);
    close(sv[1]);

    CALL(socketpair(AF_INET, SOCK_STREAM, 0, sv));
    rep(A, "socketpair_inet", NULL);
    CALL(socketpair(AF_UNIX, 9999, 0, sv));
    rep(A, "socketpair_bad_type", NULL);
    int* volatile bad = (int*)1;
    CALL(socketpair(AF_UNIX, SOCK_STREAM, 0, bad));
    rep(A, "socketpair_bad_pointer", NULL);
}

static void bind_listen(void) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    CALL(bind(fd, (struct sockaddr*)&a, sizeof a));
    const unsigned short port = local_port(fd);
    rep(A, "bind_loopback_port0", "port!=0=%s", yesno(port != 0));
    CALL(bind(fd, (struct sockaddr*)&a, sizeof a));
    rep(A, "bind_twice", NULL);
    CALL(listen(fd, 4));
    rep(A, "listen_bound", NULL);
    CALL(listen(fd, 8));
    rep(A, "listen_again", NULL);

    const int other = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in same = loopback(port);
    CALL(bind(other, (struct sockaddr*)&same, sizeof same));
    rep(A, "bind_in_use", NULL);
    CALL(bind(other, (struct sockaddr*)&a, 4));
    rep(A, "bind_short_len", NULL);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    CALL(bind(other, (struct sockaddr*)&un, sizeof(struct sockaddr_in)));
    rep(A, "bind_wrong_family", NULL);
    CALL(bind(other, (struct sockaddr*)1, sizeof a));
    rep(A, "bind_bad_pointer", NULL);
    CALL(listen(other, 1));
    rep(A, "listen_unbound_autobinds", "port!=0=%s", yesno(local_port(other) != 0));
    close(other);
    close(fd);

    CALL(bind(closed_fd(), (struct sockaddr*)&a, sizeof a));
    rep(A, "bind_ebadf", NULL);
    CALL(bind(g_pipe[0], (struct sockaddr*)&a, sizeof a));
    rep(A, "bind_enotsock", NULL);
    CALL(listen(closed_fd(), 1));
    rep(A, "listen_ebadf", NULL);
    CALL(listen(g_pipe[0], 1));
    rep(A, "listen_enotsock", NULL);
    const int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CALL(listen(udp, 1));
    rep(A, "listen_udp", NULL);
    close(udp);
}

static pid_t delayed_connect(unsigned short port, long delay_ms, const char* payload) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(delay_ms);
        const int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = loopback(port);
        if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
            _exit(1);
        }
        if (payload != NULL && write(c, payload, strlen(payload)) != (ssize_t)strlen(payload)) {
            _exit(2);
        }
        char b;
        (void)!read(c, &b, 1);  /* until the parent closes */
        _exit(0);
    }
    return pid;
}

static void connect_to(int c, unsigned short port) {
    struct sockaddr_in a = loopback(port);
    if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
        fprintf(stderr, "connect_to: %s\n", strerror(errno));
        exit(3);
    }
}

static void accepting(void) {
    unsigned short port;
    const int l = tcp_listener(&port, 0);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect_to(c, port);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    CALL_FD(accept(l, (struct sockaddr*)&peer, &len));
    int s = (int)g_ret;
    rep(A, "accept_pending_client", "fd>=0=%s len=%u family_inet=%s peer=%s port_matches=%s nonblock=%s cloexec=%s",
        yesno(s >= 0), (unsigned)len, yesno(peer.sin_family == AF_INET), inet_ntoa(peer.sin_addr),
        yesno(ntohs(peer.sin_port) == local_port(c)), yesno(fl_nonblock(s)), yesno(fd_cloexec(s)));
    char buf[16];
    (void)!write(c, "hello", 5);
    CALL(read(s, buf, sizeof buf));
    rep(A, "accepted_socket_reads", "data=%s", dat(buf, g_ret));
    close(s);
    close(c);

    static const struct {
        int flags;
        const char* name;
    } variants[] = {
        {0, "accept4_no_flags"},
        {SOCK_NONBLOCK, "accept4_nonblock"},
        {SOCK_CLOEXEC, "accept4_cloexec"},
        {SOCK_NONBLOCK | SOCK_CLOEXEC, "accept4_nonblock_cloexec"},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; ++i) {
        c = socket(AF_INET, SOCK_STREAM, 0);
        connect_to(c, port);
        CALL_FD(accept4(l, NULL, NULL, variants[i].flags));
        s = (int)g_ret;
        rep(A, variants[i].name, "fd>=0=%s nonblock=%s cloexec=%s", yesno(s >= 0), yesno(fl_nonblock(s)),
            yesno(fd_cloexec(s)));
        close(s);
        close(c);
    }

    c = socket(AF_INET, SOCK_STREAM, 0);
    connect_to(c, port);
    CALL_FD(accept4(l, NULL, NULL, 0x8));
    rep(A, "accept4_bad_flags", NULL);
    len = 3;
    CALL_FD(accept(l, (struct sockaddr*)&peer, &len));
    rep(A, "accept_short_addrlen", "len=%u fd>=0=%s", (unsigned)len, yesno(g_ret >= 0));
    if (g_ret >= 0) {
        close((int)g_ret);
    }
    close(c);

    c = socket(AF_INET, SOCK_STREAM, 0);
    connect_to(c, port);
    len = (socklen_t)-1;
    CALL_FD(accept(l, (struct sockaddr*)&peer, &len));
    rep(A, "accept_negative_addrlen", NULL);
    if (g_ret >= 0) {
        close((int)g_ret);
    }
    close(c);
    c = socket(AF_INET, SOCK_STREAM, 0);
    connect_to(c, port);
    len = sizeof peer;
    CALL_FD(accept(l, (struct sockaddr*)1, &len));
    rep(A, "accept_bad_addr_pointer", NULL);
    if (g_ret >= 0) {
        close((int)g_ret);
    }
    close(c);

    CALL_FD(accept(closed_fd(), NULL, NULL));
    rep(A, "accept_ebadf", NULL);
    CALL_FD(accept(g_pipe[0], NULL, NULL));
    rep(A, "accept_enotsock_pipe", NULL);
    CALL_FD(accept4(g_pipe[0], NULL, NULL, SOCK_NONBLOCK));
    rep(A, "accept4_enotsock_pipe", NULL);
    const int unlistened = socket(AF_INET, SOCK_STREAM, 0);
    CALL_FD(accept(unlistened, NULL, NULL));
    rep(A, "accept_not_listening", NULL);
    close(unlistened);
    const int udp = socket(AF_INET, SOCK_DGRAM, 0);
    CALL_FD(accept(udp, NULL, NULL));
    rep(A, "accept_udp", NULL);
    close(udp);

    unsigned short nb_port;
    const int nbl = tcp_listener(&nb_port, SOCK_NONBLOCK);
    CALL_FD(accept(nbl, NULL, NULL));
    rep(A, "accept_nonblocking_listener_empty", NULL);
    close(nbl);
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK);
    CALL_FD(accept4(l, NULL, NULL, SOCK_CLOEXEC));
    rep(A, "accept4_fcntl_nonblocking_listener_empty", NULL);
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) & ~O_NONBLOCK);

    /* A blocking accept that must wait for a client arriving later. */
    long t0 = now_ms();
    pid_t child = delayed_connect(port, 150, "late");
    CALL_FD(accept(l, NULL, NULL));
    s = (int)g_ret;
    const long waited = now_ms() - t0;
    CALL(read(s, buf, 4));
    rep(A, "accept_waits_for_late_client", "waited>=100ms=%s data=%s nonblock=%s", yesno(waited >= 100),
        dat(buf, g_ret), yesno(fl_nonblock(s)));
    close(s);
    rep_val(A, "accept_waits_for_late_client_child", 0, 0, "%s", reap(child));

    struct timeval tv = {0, 100000};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    t0 = now_ms();
    CALL_FD(accept(l, NULL, NULL));
    rep(A, "accept_so_rcvtimeo_expires", "waited>=90ms=%s", yesno(now_ms() - t0 >= 90));
    close(l);
}

static void connecting(void) {
    unsigned short port;
    const int l = tcp_listener(&port, 0);
    struct sockaddr_in a = loopback(port);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    CALL(connect(c, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_loopback", "nonblock=%s", yesno(fl_nonblock(c)));
    CALL(connect(c, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_again_eisconn", NULL);
    int s = accept(l, NULL, NULL);
    close(s);
    close(c);

    int refuser;
    struct sockaddr_in refused = loopback(refusing_port(&refuser));
    c = socket(AF_INET, SOCK_STREAM, 0);
    CALL(connect(c, (struct sockaddr*)&refused, sizeof refused));
    rep(A, "connect_refused", NULL);
    int err = -1;
    socklen_t elen = sizeof err;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen);
    rep_val(A, "connect_refused_so_error_after", err, 0, "so_error=%s", ename(err));
    CALL(connect(c, (struct sockaddr*)&refused, sizeof refused));
    rep(A, "connect_refused_retry", NULL);
    close(c);

    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CALL(connect(c, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_nonblocking_einprogress", NULL);
    struct pollfd p = {c, POLLOUT, 0};
    poll(&p, 1, 2000);
    err = -1;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen);
    CALL(connect(c, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_nonblocking_completed_eisconn", "so_error=%s", ename(err));
    s = accept(l, NULL, NULL);
    close(s);
    close(c);

    c = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    CALL(connect(c, (struct sockaddr*)&refused, sizeof refused));
    const long first = g_ret;
    const int first_err = g_err;
    p = (struct pollfd){c, POLLOUT, 0};
    poll(&p, 1, 2000);
    err = -1;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen);
    rep_val(A, "connect_nonblocking_refused", first, first_err, "so_error=%s", ename(err));
    close(c);
    close(refuser);

    c = socket(AF_INET, SOCK_STREAM, 0);
    CALL(connect(c, (struct sockaddr*)&a, 4));
    rep(A, "connect_short_len", NULL);
    struct sockaddr_in6 six;
    memset(&six, 0, sizeof six);
    six.sin6_family = AF_INET6;
    CALL(connect(c, (struct sockaddr*)&six, sizeof six));
    rep(A, "connect_wrong_family", NULL);
    CALL(connect(c, (struct sockaddr*)1, sizeof a));
    rep(A, "connect_bad_pointer", NULL);
    close(c);
    CALL(connect(closed_fd(), (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_ebadf", NULL);
    CALL(connect(g_pipe[1], (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_enotsock_pipe", NULL);

    const int u = socket(AF_INET, SOCK_DGRAM, 0);
    CALL(connect(u, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_udp", NULL);
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    CALL(connect(u, &unspec, sizeof unspec));
    rep(A, "connect_udp_unspec_dissolves", NULL);
    close(u);

    const int x = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "/nonexistent/grove-diff-socket");
    CALL(connect(x, (struct sockaddr*)&un, sizeof un));
    rep(A, "connect_unix_enoent", NULL);
    close(x);

    /* Abstract unix sockets: bound but not listening, then listening. */
    const int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un abs = {.sun_family = AF_UNIX};
    const int n = snprintf(abs.sun_path + 1, sizeof abs.sun_path - 1, "grove-diff-%d", (int)getpid());
    const socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    bind(srv, (struct sockaddr*)&abs, alen);
    const int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    CALL(connect(cl, (struct sockaddr*)&abs, alen));
    rep(A, "connect_unix_not_listening", NULL);
    close(cl);
    listen(srv, 4);
    const int cl2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CALL(connect(cl2, (struct sockaddr*)&abs, alen));
    rep(A, "connect_unix_listening", NULL);
    s = accept(srv, NULL, NULL);
    char buf[8];
    (void)!write(cl2, "unix", 4);
    CALL(read(s, buf, sizeof buf));
    rep(A, "connect_unix_data", "data=%s", dat(buf, g_ret));
    close(s);
    close(cl2);
    close(srv);

    CALL(connect(l, (struct sockaddr*)&a, sizeof a));
    rep(A, "connect_on_listener", NULL);
    close(l);
}

static void print_tv(const char* name, int fd, int opt) {
    struct timeval tv = {-7, -7};
    socklen_t len = sizeof tv;
    CALL(getsockopt(fd, SOL_SOCKET, opt, &tv, &len));
    rep(A, name, "tv=%ld.%06ld len=%u", (long)tv.tv_sec, (long)tv.tv_usec, (unsigned)len);
}

static void timeouts(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char buf[16];

    struct timeval tv = {0, 100000};
    CALL(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    rep(A, "set_so_rcvtimeo_100ms", NULL);
    print_tv("get_so_rcvtimeo_100ms", sv[0], SO_RCVTIMEO);
    tv = (struct timeval){1, 500000};
    CALL(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    rep(A, "set_so_sndtimeo_1500ms", NULL);
    print_tv("get_so_sndtimeo_1500ms", sv[0], SO_SNDTIMEO);
    tv = (struct timeval){0, 1000000};
    CALL(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    rep(A, "set_so_rcvtimeo_usec_1e6", NULL);
    CALL(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 4));
    rep(A, "set_so_rcvtimeo_short_len", NULL);
    print_tv("get_so_rcvtimeo_unchanged", sv[0], SO_RCVTIMEO);
    struct timeval small = {0, 0};
    socklen_t len = 4;
    CALL(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &small, &len));
    rep(A, "get_so_rcvtimeo_short_len", "len=%u", (unsigned)len);
    CALL(setsockopt(g_pipe[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    rep(A, "set_so_rcvtimeo_enotsock", NULL);
    CALL(getsockopt(closed_fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    rep(A, "get_so_rcvtimeo_ebadf", NULL);
    int v = 0;
    len = sizeof v;
    CALL(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &len));
    rep(A, "getsockopt_bad_option", NULL);
    len = sizeof v;
    CALL(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &len));
    rep(A, "getsockopt_so_type", "type_stream=%s", yesno(v == SOCK_STREAM));

    /* A read with SO_RCVTIMEO and no data: -1/EAGAIN after the timeout. */
    tv = (struct timeval){0, 100000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long t0 = now_ms();
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_so_rcvtimeo_expires", "waited>=90ms=%s", yesno(now_ms() - t0 >= 90));
    t0 = now_ms();
    CALL(recv(sv[0], buf, sizeof buf, 0));
    rep(A, "recv_so_rcvtimeo_expires", "waited>=90ms=%s", yesno(now_ms() - t0 >= 90));
    t0 = now_ms();
    pid_t child = delayed_write(sv[1], 30, "in-time");
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_so_rcvtimeo_data_in_time", "data=%s", dat(buf, g_ret));
    reap(child);

    /* The timeout belongs to the socket: set through a dup, it bounds a
     * read through the original. A writer ends the wait if it is missed. */
    const int d = dup(sv[0]);
    tv = (struct timeval){0, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    tv = (struct timeval){0, 100000};
    setsockopt(d, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    child = delayed_write(sv[1], 1000, "late");
    t0 = now_ms();
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_so_rcvtimeo_set_through_dup", "quick=%s", yesno(now_ms() - t0 < 800));
    reap(child);
    close(d);
    while (recv(sv[0], buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }

    /* A negative timeout is the kernel's "time out at once". */
    tv = (struct timeval){-1, 0};
    CALL(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    rep(A, "set_so_rcvtimeo_negative", NULL);
    print_tv("get_so_rcvtimeo_after_negative", sv[0], SO_RCVTIMEO);
    child = delayed_write(sv[1], 1000, "late");
    t0 = now_ms();
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_so_rcvtimeo_negative", "quick=%s", yesno(now_ms() - t0 < 800));
    reap(child);
    while (recv(sv[0], buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }

    /* Back to zero (no timeout): the read waits for the late writer. */
    tv = (struct timeval){0, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    child = delayed_write(sv[1], 150, "zero");
    t0 = now_ms();
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_so_rcvtimeo_zero_waits", "waited>=100ms=%s data=%s", yesno(now_ms() - t0 >= 100), dat(buf, g_ret));
    reap(child);

    /* SO_SNDTIMEO on a full socket: -1/EAGAIN after the timeout. */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    static char chunk[4096];
    long filled = 0;
    ssize_t w;
    while ((w = write(sv[0], chunk, sizeof chunk)) > 0) {
        filled += w;
    }
    fcntl(sv[0], F_SETFL, 0);
    tv = (struct timeval){0, 100000};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    t0 = now_ms();
    CALL(write(sv[0], chunk, 1));
    rep(A, "write_so_sndtimeo_full_socket", "filled>0=%s waited>=90ms=%s", yesno(filled > 0),
        yesno(now_ms() - t0 >= 90));
    t0 = now_ms();
    CALL(send(sv[0], chunk, 1, 0));
    rep(A, "send_so_sndtimeo_full_socket", "waited>=90ms=%s", yesno(now_ms() - t0 >= 90));
    close(sv[0]);
    close(sv[1]);
}

static void shutting_down(void) {
    const int u = socket(AF_INET, SOCK_STREAM, 0);
    CALL(shutdown(u, SHUT_RDWR));
    rep(A, "shutdown_unconnected", NULL);
    close(u);
    CALL(shutdown(closed_fd(), SHUT_RD));
    rep(A, "shutdown_ebadf", NULL);
    CALL(shutdown(g_pipe[0], SHUT_RD));
    rep(A, "shutdown_enotsock", NULL);

    int c, s;
    tcp_pair(&c, &s);
    CALL(shutdown(c, 7));
    rep(A, "shutdown_bad_how", NULL);
    CALL(shutdown(c, SHUT_WR));
    rep(A, "shutdown_wr", NULL);
    char buf[8];
    CALL(read(s, buf, sizeof buf));
    rep(A, "read_after_peer_shutdown_wr", NULL);
    CALL(write(c, "x", 1));
    rep(A, "write_after_own_shutdown_wr", NULL);
    CALL(write(s, "back", 4));
    rep(A, "write_to_half_closed_peer", NULL);
    CALL(read(c, buf, sizeof buf));
    rep(A, "read_on_half_closed", "data=%s", dat(buf, g_ret));
    CALL(shutdown(s, SHUT_RD));
    rep(A, "shutdown_rd", NULL);
    CALL(read(s, buf, sizeof buf));
    rep(A, "read_after_own_shutdown_rd", NULL);
    close(c);
    close(s);

    /* A blocked read ended by a shutdown made in another process (the
     * socket is shared across fork). */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(150);
        shutdown(sv[0], SHUT_RD);
        _exit(0);
    }
    const long t0 = now_ms();
    CALL(read(sv[0], buf, sizeof buf));
    rep(A, "read_ended_by_shutdown_elsewhere", "waited>=100ms=%s", yesno(now_ms() - t0 >= 100));
    reap(pid);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    begin();
    if (pipe(g_pipe) != 0) {
        return 3;
    }
    creation();
    bind_listen();
    accepting();
    connecting();
    timeouts();
    shutting_down();
    close(g_pipe[0]);
    close(g_pipe[1]);
    return finish(A);
}

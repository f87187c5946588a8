/* fork, vfork, waitpid/wait/wait4, signals around waits, pipes shared with child
 * processes (also across exec), and whole-program exchanges: a TCP echo
 * server in a child and a unix-socket ping-pong. */
#include "diff.h"

#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>

#define A "process"

static char** g_argv;

static void mkpipe(int p[2]) {
    if (pipe(p) != 0) {
        exit(3);
    }
}

static pid_t child_exit(long delay_ms, int code) {
    return delayed_exit(delay_ms, code);
}

static void waits(void) {
    int p[2];
    mkpipe(p);
    char buf[32];
    int st = 0;

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(write(p[1], "from-child", 10) == 10 ? 7 : 1);
    }
    close(p[1]);
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "fork_child_writes_parent_reads", "data=%s", dat(buf, g_ret));
    CALL(read(p[0], buf, sizeof buf));
    rep(A, "fork_pipe_eof_after_child_exit", NULL);
    close(p[0]);
    CALL(waitpid(pid, &st, 0));
    rep_val(A, "waitpid_child_exit_status", g_ret == pid, g_err, "%s", status_str(st));

    const pid_t first = child_exit(200, 1);
    const pid_t second = child_exit(0, 2);
    CALL(waitpid(second, &st, 0));
    rep_val(A, "waitpid_specific_pid_first", g_ret == second, g_err, "%s", status_str(st));
    CALL(waitpid(first, &st, WNOHANG));
    rep(A, "waitpid_wnohang_running_child", NULL);
    const long t0 = now_ms();
    CALL(waitpid(first, &st, 0));
    rep_val(A, "waitpid_waits_for_child", g_ret == first, g_err, "%s waited>=100ms=%s", status_str(st),
            yesno(now_ms() - t0 >= 100));

    pid = child_exit(50, 3);
    CALL(wait(&st));
    rep_val(A, "wait_any_child", g_ret == pid, g_err, "%s", status_str(st));
    pid = child_exit(50, 4);
    struct rusage ru;
    CALL(wait4(pid, &st, WNOHANG, &ru));
    rep(A, "wait4_wnohang_running", NULL);
    CALL(wait4(pid, &st, 0, &ru));
    rep_val(A, "wait4_with_rusage", g_ret == pid, g_err, "%s", status_str(st));
    pid = child_exit(50, 5);
    CALL(wait4(-1, &st, 0, NULL));
    rep_val(A, "wait4_any", g_ret == pid, g_err, "%s", status_str(st));
    pid = child_exit(0, 8);
    sleep_ms(100);
    CALL(waitpid(pid, &st, WNOHANG));
    rep_val(A, "waitpid_wnohang_exited_child", g_ret == pid, g_err, "%s", status_str(st));
    pid = child_exit(50, 6);
    CALL(waitpid(0, NULL, 0));
    rep_val(A, "waitpid_process_group_null_status", g_ret == pid, g_err, NULL);

    CALL(waitpid(-1, &st, 0));
    rep(A, "waitpid_no_children_echild", NULL);
    CALL(wait(&st));
    rep(A, "wait_no_children_echild", NULL);
    CALL(wait4(-1, &st, 0, NULL));
    rep(A, "wait4_no_children_echild", NULL);
    CALL(waitpid(-1, &st, WNOHANG));
    rep(A, "waitpid_wnohang_no_children_echild", NULL);
    CALL(waitpid(1, &st, 0));
    rep(A, "waitpid_not_our_child_echild", NULL);
    CALL(waitpid(-1, &st, 0x1000));
    rep(A, "waitpid_bad_options_einval", NULL);

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    kill(pid, SIGTERM);
    CALL(waitpid(pid, &st, 0));
    rep_val(A, "waitpid_child_killed_by_sigterm", g_ret == pid, g_err, "%s", status_str(st));

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(9);
    }
    CALL(waitpid(pid, &st, WUNTRACED));
    rep_val(A, "waitpid_wuntraced_stopped", g_ret == pid, g_err, "%s", status_str(st));
    kill(pid, SIGCONT);
    CALL(waitpid(pid, &st, WCONTINUED));
    rep_val(A, "waitpid_wcontinued", g_ret == pid, g_err, "%s", status_str(st));
    CALL(waitpid(pid, &st, 0));
    rep_val(A, "waitpid_after_continue_exit", g_ret == pid, g_err, "%s", status_str(st));

    /* A child sleeping 100 ms between writes; the parent reads to EOF. */
    mkpipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        for (const char* s = "abc"; *s != '\0'; ++s) {
            sleep_ms(100);
            if (write(p[1], s, 1) != 1) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(p[1]);
    char got[8];
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], got + n, sizeof got - n)) > 0) {
        n += (size_t)r;
    }
    rep_val(A, "parent_reads_pieces_until_eof", (long)n, r < 0 ? errno : 0, "data=%s child=%s", dat(got, (long)n),
            reap(pid));
    close(p[0]);

    /* The child reads (blocking) what the parent writes later. */
    mkpipe(p);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[1]);
        char b[16];
        const ssize_t k = read(p[0], b, sizeof b);
        _exit(k == 6 && memcmp(b, "parent", 6) == 0 ? 0 : 1);
    }
    close(p[0]);
    sleep_ms(100);
    (void)!write(p[1], "parent", 6);
    close(p[1]);
    rep_val(A, "child_reads_what_parent_writes_later", 0, 0, "child=%s", reap(pid));
}

/* A wait that ends well leaves errno as it was, as libc's does (the
 * program's errno from before the call, here EILSEQ), however long the
 * child took. */
static void errno_kept(void) {
    int st = 0;
    siginfo_t si;
    pid_t pid = child_exit(80, 11);
    errno = EILSEQ;
    const pid_t r1 = waitpid(pid, &st, 0);
    rep_val(A, "waitpid_success_keeps_errno", r1 == pid, 0, "%s errno=%s", status_str(st), ename(errno));
    pid = child_exit(80, 12);
    errno = EILSEQ;
    const pid_t r2 = wait4(pid, &st, 0, NULL);
    rep_val(A, "wait4_success_keeps_errno", r2 == pid, 0, "%s errno=%s", status_str(st), ename(errno));
    pid = child_exit(80, 13);
    errno = EILSEQ;
    const pid_t r3 = wait(&st);
    rep_val(A, "wait_success_keeps_errno", r3 == pid, 0, "%s errno=%s", status_str(st), ename(errno));
    pid = child_exit(80, 14);
    errno = EILSEQ;
    memset(&si, 0, sizeof si);
    const int r4 = waitid(P_PID, (id_t)pid, &si, WEXITED);
    rep_val(A, "waitid_success_keeps_errno", r4, 0, "status=%d errno=%s", si.si_status, ename(errno));
    fflush(stdout);
    errno = EILSEQ;
    const int r5 = system("sleep 0.08; exit 4");
    rep_val(A, "system_success_keeps_errno", WIFEXITED(r5) ? WEXITSTATUS(r5) : -1, 0, "errno=%s", ename(errno));
    /* A failing wait still says why. */
    errno = EILSEQ;
    const pid_t r6 = waitpid(pid, &st, 0);
    rep_val(A, "waitpid_reaped_child_echild", r6, r6 < 0 ? errno : 0, NULL);
}

static void signals(void) {
    int st = 0;
    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        const pid_t pid = child_exit(500, 0);
        const long t0 = now_ms();
        alarm_ms(80);
        CALL(waitpid(pid, &st, 0));
        const long took = now_ms() - t0;
        rep_val(A, restart ? "waitpid_sigalrm_sa_restart" : "waitpid_sigalrm_eintr", g_ret == pid ? 1 : g_ret, g_err,
                "handled=%d before_child_exit=%s", (int)g_signals, yesno(took < 350));
        alarm_ms(0);
        if (g_ret != pid) {
            reap(pid);
        }
    }
    default_signal(SIGALRM);

    catch_signal(SIGCHLD, 1);
    pid_t pid = child_exit(50, 3);
    CALL(waitpid(pid, &st, 0));
    rep_val(A, "waitpid_with_sigchld_handler", g_ret == pid, g_err, "%s handled=%d", status_str(st), (int)g_signals);
    default_signal(SIGCHLD);

    catch_signal(SIGCHLD, 0);
    pid = child_exit(100, 3);
    int p[2];
    mkpipe(p);
    const pid_t w = delayed_write(p[1], 400, "x");
    char c;
    const long t0 = now_ms();
    CALL(read(p[0], &c, 1));
    rep(A, "read_interrupted_by_sigchld", "handled>=1=%s before_writer=%s", yesno(g_signals >= 1),
        yesno(now_ms() - t0 < 300));
    reap(pid);
    reap(w);
    close(p[0]);
    close(p[1]);
    default_signal(SIGCHLD);

    /* SIGCHLD ignored: children are reaped by the kernel; waitpid(-1)
     * waits for them all to go, then reports ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    child_exit(100, 0);
    CALL(waitpid(-1, &st, 0));
    rep(A, "waitpid_sigchld_ignored_echild", NULL);
    default_signal(SIGCHLD);
}

/* A child that asks to be traced, then stops itself after `delay_ms`
 * (0: at once). Its tracer sees the stop without WUNTRACED. It dies with
 * its tracer, so a tracer killed by isolated() leaves no stopped child. */
static pid_t traced_child(long delay_ms) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            _exit(2);
        }
        sleep_ms(delay_ms);
        raise(SIGSTOP);
        _exit(10);
    }
    return pid;
}

/* Each runs isolated: a wait that misses the stop would never end. */
static void traced_waitpid(void) {
    int st = 0;
    const pid_t pid = traced_child(0);
    CALL(waitpid(pid, &st, 0));
    const int stopped = g_ret == pid && WIFSTOPPED(st);
    char stop[64];
    snprintf(stop, sizeof stop, "%s", status_str(st));
    CALL(ptrace(PTRACE_CONT, pid, NULL, NULL));
    rep_val(A, "waitpid_traced_child_stop_then_cont", stopped, g_err, "%s then %s", stop, reap(pid));
}

static void traced_wait4_later(void) {
    int st = 0;
    const pid_t pid = traced_child(100);
    CALL(wait4(pid, &st, 0, NULL));
    const int stopped = g_ret == pid && WIFSTOPPED(st);
    char stop[64];
    snprintf(stop, sizeof stop, "%s", status_str(st));
    kill(pid, SIGKILL);
    rep_val(A, "wait4_traced_child_stops_later_then_kill", stopped, 0, "%s then %s", stop, reap(pid));
}

static void traced_waitid_later(void) {
    const pid_t pid = traced_child(50);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
    const int trapped = g_ret == 0 && si.si_pid == pid && si.si_code == CLD_TRAPPED;
    const int stop_sig = si.si_status;
    ptrace(PTRACE_CONT, pid, NULL, NULL);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
    rep_val(A, "waitid_traced_child_stops_later_then_cont", trapped, g_err, "stop=%s then exited=%s status=%d",
            sig_name(stop_sig), yesno(si.si_pid == pid && si.si_code == CLD_EXITED), si.si_status);
}

static void traced(void) {
    isolated(A, "waitpid_traced_child_stop_then_cont", traced_waitpid, 5);
    isolated(A, "wait4_traced_child_stops_later_then_kill", traced_wait4_later, 5);
    isolated(A, "waitid_traced_child_stops_later_then_cont", traced_waitid_later, 5);
}

/* vfork: the child runs on its parent's memory until it execs or exits.
 * What it closes, duplicates and resets is its own: afterwards the parent
 * waits on the same fds and keeps its own signal action. */
static volatile sig_atomic_t g_usr1;

static void count_usr1(int s) {
    (void)s;
    ++g_usr1;
}

static void vfork_body(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    char c = 0;
    pid_t w = delayed_write(sv[1], 50, "a");
    CALL(read(sv[0], &c, 1));
    rep(A, "vfork_read_before", "data=%c", c);
    reap(w);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = count_usr1;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    sigaction(SIGUSR1, &act, NULL);

    fflush(stdout);
    const pid_t pid = vfork();
    if (pid == 0) {
        /* As a subprocess library's child does before its exec. */
        close(sv[0]);
        dup2(sv[1], 200);
        close_range(3, 199, 0);
        signal(SIGUSR1, SIG_DFL);
        execl("/bin/true", "true", (char*)NULL);
        _exit(127);
    }
    int st = 0;
    CALL(waitpid(pid, &st, 0));
    rep_val(A, "vfork_child_exec", g_ret == pid, g_err, "%s", status_str(st));
    w = delayed_write(sv[1], 100, "b");
    const long t0 = now_ms();
    CALL(read(sv[0], &c, 1));
    rep(A, "vfork_read_after_child_closed_it", "data=%c waited>=50ms=%s", c, yesno(now_ms() - t0 >= 50));
    reap(w);
    struct sigaction old;
    memset(&old, 0x5a, sizeof old);
    CALL(sigaction(SIGUSR1, NULL, &old));
    rep(A, "vfork_parent_action_kept", "handler=%s flags=%#x",
        old.sa_handler == count_usr1 ? "count_usr1" : old.sa_handler == SIG_DFL ? "SIG_DFL" : "other",
        (unsigned)old.sa_flags);
    g_usr1 = 0;
    raise(SIGUSR1);
    rep_val(A, "vfork_parent_handler_runs", g_usr1, 0, NULL);

    fflush(stdout);
    const pid_t p2 = vfork();
    if (p2 == 0) {
        close(sv[0]);
        _exit(7);
    }
    CALL(waitpid(p2, &st, 0));
    rep_val(A, "vfork_child_exit_code", g_ret == p2, g_err, "%s", status_str(st));
    w = delayed_write(sv[1], 50, "c");
    CALL(read(sv[0], &c, 1));
    rep(A, "vfork_read_after_second_child", "data=%c", c);
    reap(w);
    close(sv[0]);
    close(sv[1]);
}

/* Run as the exec'd child: report how stdin looks and what a read gives. */
static int stdin_probe(void) {
    char buf[32];
    const int nb = fl_nonblock(0);
    errno = 0;
    const ssize_t r = read(0, buf, sizeof buf);
    printf("nonblock=%s read=%ld errno=%s data=%s", yesno(nb), (long)r, ename(r < 0 ? errno : 0), dat(buf, r));
    return 0;
}

/* A pipe this process has waited on is handed to an exec'd program as its
 * stdin: it must look and behave as the blocking pipe it is. */
static void exec_probe(const char* name, int drop_preload) {
    int p[2], res[2];
    mkpipe(p);
    mkpipe(res);
    const pid_t w = delayed_write(p[1], 50, "w");
    char c;
    (void)!read(p[0], &c, 1);
    reap(w);

    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0], 0);
        dup2(res[1], 1);
        close(p[0]);
        close(p[1]);
        close(res[0]);
        close(res[1]);
        if (drop_preload) {
            unsetenv("LD_PRELOAD");
            unsetenv("GROVE_MAIN_HUB");
        }
        char* args[] = {g_argv[0], "--stdin-probe", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(res[1]);
    sleep_ms(200);
    (void)!write(p[1], "probe", 5);
    char out[160];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(res[0], out + n, sizeof out - 1 - n)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    rep_val(A, name, 0, 0, "child: %s exit: %s", out, reap(pid));
    close(res[0]);
    close(p[0]);
    close(p[1]);
}

static unsigned long mix(unsigned long h, const unsigned char* b, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h = h * 33 + b[i];
    }
    return h;
}

/* A TCP echo server in a child; the parent sends 1 MiB in 64 KiB chunks
 * and reads each echo back in full. */
static void tcp_echo(void) {
    unsigned short port;
    const int l = tcp_listener(&port, 0);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        const int s = accept(l, NULL, NULL);
        close(l);
        static char b[65536];
        ssize_t r;
        while ((r = read(s, b, sizeof b)) > 0) {
            ssize_t off = 0;
            while (off < r) {
                const ssize_t w = write(s, b + off, (size_t)(r - off));
                if (w <= 0) {
                    _exit(2);
                }
                off += w;
            }
        }
        _exit(r == 0 ? 0 : 1);
    }
    close(l);
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    CALL(connect(c, (struct sockaddr*)&a, sizeof a));
    rep(A, "tcp_echo_connect", NULL);
    static unsigned char out[65536], in[65536];
    unsigned long sent_hash = 5381, got_hash = 5381;
    long sent = 0, got = 0;
    int ok = 1;
    for (int chunk = 0; chunk < 16 && ok; ++chunk) {
        for (size_t i = 0; i < sizeof out; ++i) {
            out[i] = (unsigned char)(i * 31 + (size_t)chunk * 7);
        }
        const ssize_t w = write(c, out, sizeof out);
        if (w != (ssize_t)sizeof out) {
            ok = 0;
            break;
        }
        sent += w;
        sent_hash = mix(sent_hash, out, sizeof out);
        size_t have = 0;
        while (have < sizeof in) {
            const ssize_t r = read(c, in + have, sizeof in - have);
            if (r <= 0) {
                ok = 0;
                break;
            }
            have += (size_t)r;
        }
        got += (long)have;
        got_hash = mix(got_hash, in, have);
    }
    shutdown(c, SHUT_WR);
    char tail;
    CALL(read(c, &tail, 1));
    rep(A, "tcp_echo_eof_after_shutdown", NULL);
    close(c);
    rep_val(A, "tcp_echo_1mib", got, 0, "sent=%ld checksum_match=%s server=%s", sent,
            yesno(ok && sent_hash == got_hash), reap(pid));
}

/* 200 round trips over a unix socketpair with a child. */
static void ping_pong(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        unsigned v;
        while (read(sv[1], &v, sizeof v) == (ssize_t)sizeof v) {
            ++v;
            if (write(sv[1], &v, sizeof v) != (ssize_t)sizeof v) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(sv[1]);
    unsigned v = 0;
    int ok = 1;
    for (int i = 0; i < 200 && ok; ++i) {
        const unsigned sent = v;
        ok = write(sv[0], &v, sizeof v) == (ssize_t)sizeof v && read(sv[0], &v, sizeof v) == (ssize_t)sizeof v &&
             v == sent + 1;
        ++v;
    }
    close(sv[0]);
    rep_val(A, "unix_ping_pong_200", ok, 0, "final=%u child=%s", v, reap(pid));
}

int main(int argc, char** argv) {
    g_argv = argv;
    if (argc > 1 && strcmp(argv[1], "--stdin-probe") == 0) {
        return stdin_probe();
    }
    begin();
    waits();
    errno_kept();
    traced();
    isolated(A, "vfork_section", vfork_body, 10);
    signals();
    exec_probe("exec_child_inherits_waited_pipe", 0);
    exec_probe("exec_child_without_shim_inherits_waited_pipe", 1);
    tcp_echo();
    ping_pong();
    return finish(A);
}

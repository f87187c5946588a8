/* Waiting for signals and children: pause, sigsuspend, sigwait,
 * sigwaitinfo, sigtimedwait, waitid, and epoll_pwait2, on their normal
 * paths (a pending signal, one sent later by a child, a timeout, a handler
 * cutting the wait short) and their error paths. And what sigaction and
 * signal report of the actions installed (the shim installs its own
 * trampoline in the kernel for each handler).
 *
 * Each section runs in a forked child (run_section), bounded by the parent
 * with SIGKILL, since the sections use SIGALRM themselves. */
#include "diff.h"

#include <sys/epoll.h>
#include <sys/syscall.h>

#define A "signals"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static volatile sig_atomic_t g_usr2;

static void on_usr2(int s) {
    (void)s;
    ++g_usr2;
}

static void catch_usr2(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    g_usr2 = 0;
}

static sigset_t set_of(int a, int b) {
    sigset_t s;
    sigemptyset(&s);
    if (a > 0) {
        sigaddset(&s, a);
    }
    if (b > 0) {
        sigaddset(&s, b);
    }
    return s;
}

static void block(int sig) {
    sigset_t s = set_of(sig, 0);
    sigprocmask(SIG_BLOCK, &s, NULL);
}

static void unblock(int sig) {
    sigset_t s = set_of(sig, 0);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static int is_blocked(int sig) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig) == 1;
}

/* Takes whatever of `sig` is still pending, so the next case starts clean. */
static void drain(int sig) {
    sigset_t s = set_of(sig, 0);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) > 0) {
    }
}

/* A child that sleeps delay_ms, then sends sig to this process. */
static pid_t send_later(long delay_ms, int sig) {
    fflush(stdout);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(delay_ms);
        _exit(kill(parent, sig) == 0 ? 0 : 1);
    }
    return pid;
}

static const char* code_name(int code) {
    switch (code) {
        case SI_USER: return "SI_USER";
        case SI_QUEUE: return "SI_QUEUE";
        case SI_TKILL: return "SI_TKILL";
        case SI_KERNEL: return "SI_KERNEL";
        case SI_TIMER: return "SI_TIMER";
        default: return "other";
    }
}

static const char* cld_name(int code) {
    switch (code) {
        case CLD_EXITED: return "CLD_EXITED";
        case CLD_KILLED: return "CLD_KILLED";
        case CLD_DUMPED: return "CLD_DUMPED";
        case CLD_STOPPED: return "CLD_STOPPED";
        case CLD_CONTINUED: return "CLD_CONTINUED";
        case 0: return "0";
        default: return "other";
    }
}

/* ret as a signal name when positive. */
static const char* ret_sig(void) {
    return g_ret > 0 ? sig_name((int)g_ret) : "-";
}

/* ---- sigtimedwait ------------------------------------------------------- */

static void timedwait_cases(void) {
    siginfo_t si;
    struct timespec one_s = {1, 0};
    struct timespec zero = {0, 0};
    sigset_t usr1 = set_of(SIGUSR1, 0);
    block(SIGUSR1);
    block(SIGUSR2);

    raise(SIGUSR1);
    memset(&si, 0, sizeof si);
    CALL(sigtimedwait(&usr1, &si, &one_s));
    rep(A, "sigtimedwait_pending_raise", "sig=%s si_signo=%s code=%s self=%s", ret_sig(), sig_name(si.si_signo),
        code_name(si.si_code), yesno(si.si_pid == getpid()));

    kill(getpid(), SIGUSR1);
    memset(&si, 0, sizeof si);
    CALL(sigtimedwait(&usr1, &si, &one_s));
    rep(A, "sigtimedwait_pending_kill", "sig=%s code=%s self=%s uid=%s", ret_sig(), code_name(si.si_code),
        yesno(si.si_pid == getpid()), yesno(si.si_uid == getuid()));

    union sigval v;
    v.sival_int = 42;
    sigqueue(getpid(), SIGUSR2, v);
    sigset_t both = set_of(SIGUSR1, SIGUSR2);
    memset(&si, 0, sizeof si);
    CALL(sigtimedwait(&both, &si, &one_s));
    rep(A, "sigtimedwait_sigqueue_value", "sig=%s code=%s value=%d", ret_sig(), code_name(si.si_code),
        si.si_value.sival_int);

    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    CALL(sigtimedwait(&both, NULL, &one_s));
    rep(A, "sigtimedwait_lowest_first", "sig=%s", ret_sig());
    CALL(sigtimedwait(&both, NULL, &one_s));
    rep(A, "sigtimedwait_then_the_other", "sig=%s", ret_sig());

    const int rt = SIGRTMIN + 1;
    block(rt);
    sigset_t rts = set_of(rt, 0);
    for (int i = 1; i <= 3; ++i) {
        v.sival_int = i * 10;
        sigqueue(getpid(), rt, v);
    }
    int order[3] = {0, 0, 0};
    int got = 0;
    for (int i = 0; i < 3; ++i) {
        if (sigtimedwait(&rts, &si, &one_s) == rt) {
            order[i] = si.si_value.sival_int;
            ++got;
        }
    }
    rep_val(A, "sigtimedwait_realtime_queued_in_order", got, 0, "values=%d,%d,%d", order[0], order[1], order[2]);

    long t0 = now_ms();
    struct timespec fifty = {0, 50 * 1000000L};
    CALL(sigtimedwait(&usr1, &si, &fifty));
    rep(A, "sigtimedwait_timeout_expires_eagain", "took>=40ms=%s", yesno(now_ms() - t0 >= 40));

    CALL(sigtimedwait(&usr1, &si, &zero));
    rep(A, "sigtimedwait_zero_timeout_nothing_pending", NULL);

    sigset_t none = set_of(0, 0);
    struct timespec thirty = {0, 30 * 1000000L};
    t0 = now_ms();
    CALL(sigtimedwait(&none, NULL, &thirty));
    rep(A, "sigtimedwait_empty_set_times_out", "took>=20ms=%s", yesno(now_ms() - t0 >= 20));

    struct timespec bad = {0, 1000000000L};
    CALL(sigtimedwait(&usr1, &si, &bad));
    rep(A, "sigtimedwait_nsec_too_big_einval", NULL);
    bad.tv_nsec = -1;
    CALL(sigtimedwait(&usr1, &si, &bad));
    rep(A, "sigtimedwait_negative_nsec_einval", NULL);
    bad.tv_sec = -1;
    bad.tv_nsec = 0;
    CALL(sigtimedwait(&usr1, &si, &bad));
    rep(A, "sigtimedwait_negative_sec_einval", NULL);
    raise(SIGUSR1);
    bad.tv_sec = 0;
    bad.tv_nsec = 1000000000L;
    CALL(sigtimedwait(&usr1, &si, &bad));
    rep(A, "sigtimedwait_einval_even_with_pending", "still_pending=%s", yesno(sigtimedwait(&usr1, NULL, &zero) == SIGUSR1));
    CALL(sigtimedwait(&usr1, &si, (const struct timespec*)1));
    rep(A, "sigtimedwait_bad_timeout_pointer_efault", NULL);
    CALL(sigtimedwait((const sigset_t*)1, &si, &one_s));
    rep(A, "sigtimedwait_bad_set_pointer_efault", NULL);

    /* Sent by a child 100 ms later: the wait ends with the child's pid. */
    t0 = now_ms();
    pid_t pid = send_later(100, SIGUSR1);
    memset(&si, 0, sizeof si);
    struct timespec five = {5, 0};
    CALL(sigtimedwait(&usr1, &si, &five));
    rep(A, "sigtimedwait_signal_from_child_later", "sig=%s code=%s from_child=%s took>=50ms=%s child=%s", ret_sig(),
        code_name(si.si_code), yesno(si.si_pid == pid), yesno(now_ms() - t0 >= 50), reap(pid));

    /* A handler outside the set runs: EINTR, with or without SA_RESTART. */
    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        t0 = now_ms();
        alarm_ms(80);
        CALL(sigtimedwait(&usr1, &si, &five));
        rep(A, restart ? "sigtimedwait_sigalrm_sa_restart_eintr" : "sigtimedwait_sigalrm_eintr",
            "handled=%d before_timeout=%s", (int)g_signals, yesno(now_ms() - t0 < 2000));
        alarm_ms(0);
    }
    default_signal(SIGALRM);

    /* A caught signal of the set that the thread leaves unblocked is taken
     * by the wait; its handler does not run. */
    catch_signal(SIGUSR1, 0);
    unblock(SIGUSR1);
    pid = send_later(100, SIGUSR1);
    CALL(sigtimedwait(&usr1, &si, &five));
    rep(A, "sigtimedwait_takes_unblocked_caught_signal", "sig=%s handled=%d blocked_after=%s child=%s", ret_sig(),
        (int)g_signals, yesno(is_blocked(SIGUSR1)), reap(pid));
    default_signal(SIGUSR1);
    block(SIGUSR1);

    /* A bad info pointer: the signal is taken and EFAULT reported. */
    raise(SIGUSR1);
    CALL(sigtimedwait(&usr1, (siginfo_t*)1, &one_s));
    rep(A, "sigtimedwait_bad_info_pointer_efault", "still_pending=%s", yesno(sigtimedwait(&usr1, NULL, &zero) == SIGUSR1));
    drain(SIGUSR1);
    drain(SIGUSR2);
}

/* ---- sigwaitinfo and sigwait --------------------------------------------- */

static void sigwait_cases(void) {
    siginfo_t si;
    sigset_t usr1 = set_of(SIGUSR1, 0);
    sigset_t both = set_of(SIGUSR1, SIGUSR2);
    block(SIGUSR1);
    block(SIGUSR2);

    raise(SIGUSR2);
    memset(&si, 0, sizeof si);
    CALL(sigwaitinfo(&both, &si));
    rep(A, "sigwaitinfo_pending", "sig=%s code=%s", ret_sig(), code_name(si.si_code));

    long t0 = now_ms();
    pid_t pid = send_later(100, SIGUSR1);
    memset(&si, 0, sizeof si);
    CALL(sigwaitinfo(&usr1, &si));
    rep(A, "sigwaitinfo_signal_from_child_later", "sig=%s from_child=%s took>=50ms=%s child=%s", ret_sig(),
        yesno(si.si_pid == pid), yesno(now_ms() - t0 >= 50), reap(pid));

    pid = send_later(100, SIGUSR2);
    CALL(sigwaitinfo(&both, NULL));
    rep(A, "sigwaitinfo_null_info", "sig=%s child=%s", ret_sig(), reap(pid));

    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        pid = send_later(1500, SIGUSR1);
        t0 = now_ms();
        alarm_ms(80);
        CALL(sigwaitinfo(&usr1, &si));
        rep(A, restart ? "sigwaitinfo_sigalrm_sa_restart_eintr" : "sigwaitinfo_sigalrm_eintr",
            "handled=%d before_child=%s", (int)g_signals, yesno(now_ms() - t0 < 1000));
        alarm_ms(0);
        reap(pid);
        drain(SIGUSR1);
    }
    default_signal(SIGALRM);

    CALL(sigwaitinfo((const sigset_t*)1, &si));
    rep(A, "sigwaitinfo_bad_set_pointer_efault", NULL);

    int sig = 0;
    raise(SIGUSR1);
    CALL(sigwait(&usr1, &sig));
    rep(A, "sigwait_pending", "sig=%s", sig_name(sig));

    sig = 0;
    t0 = now_ms();
    pid = send_later(100, SIGUSR2);
    CALL(sigwait(&both, &sig));
    rep(A, "sigwait_signal_from_child_later", "sig=%s took>=50ms=%s child=%s", sig_name(sig),
        yesno(now_ms() - t0 >= 50), reap(pid));

    /* libc's sigwait waits on after a handler ran. */
    catch_signal(SIGALRM, 0);
    sig = 0;
    pid = send_later(300, SIGUSR1);
    t0 = now_ms();
    alarm_ms(80);
    CALL(sigwait(&usr1, &sig));
    rep(A, "sigwait_goes_on_after_a_handler", "sig=%s handled=%d took>=200ms=%s child=%s", sig_name(sig),
        (int)g_signals, yesno(now_ms() - t0 >= 200), reap(pid));
    alarm_ms(0);
    default_signal(SIGALRM);

    /* The error comes back as the result. */
    sig = 0;
    CALL(sigwait((const sigset_t*)1, &sig));
    rep(A, "sigwait_bad_set_pointer_returns_efault", "result=%s", ename((int)g_ret));
    drain(SIGUSR1);
    drain(SIGUSR2);
}

/* ---- pause and sigsuspend -------------------------------------------------- */

static void pause_cases(void) {
    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        const long t0 = now_ms();
        alarm_ms(80);
        CALL(pause());
        rep(A, restart ? "pause_sigalrm_sa_restart_still_eintr" : "pause_sigalrm_eintr",
            "handled=%d took>=40ms=%s", (int)g_signals, yesno(now_ms() - t0 >= 40));
        alarm_ms(0);
    }

    catch_usr2();
    unblock(SIGUSR2);
    pid_t pid = send_later(100, SIGUSR2);
    CALL(pause());
    rep(A, "pause_woken_by_child_signal", "handled=%d child=%s", (int)g_usr2, reap(pid));

    /* A blocked signal and an ignored one do not end it; SIGALRM does. */
    block(SIGUSR1);
    signal(SIGURG, SIG_IGN);
    const pid_t p1 = send_later(30, SIGUSR1);
    const pid_t p2 = send_later(60, SIGURG);
    long t0 = now_ms();
    alarm_ms(250);
    CALL(pause());
    rep(A, "pause_not_ended_by_blocked_or_ignored", "alarm_handled=%d took>=200ms=%s children=%s,%s",
        (int)g_signals, yesno(now_ms() - t0 >= 200), reap(p1), reap(p2));
    alarm_ms(0);
    drain(SIGUSR1);
    default_signal(SIGURG);

    /* sigsuspend: a pending signal the new mask unblocks ends it at once. */
    catch_signal(SIGUSR1, 0);
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t empty = set_of(0, 0);
    CALL(sigsuspend(&empty));
    rep(A, "sigsuspend_runs_pending_unblocked_handler", "handled=%d usr1_blocked_after=%s", (int)g_signals,
        yesno(is_blocked(SIGUSR1)));

    catch_signal(SIGALRM, 1);
    t0 = now_ms();
    alarm_ms(80);
    CALL(sigsuspend(&empty));
    rep(A, "sigsuspend_sigalrm_eintr", "handled=%d took>=40ms=%s", (int)g_signals, yesno(now_ms() - t0 >= 40));
    alarm_ms(0);

    /* The mask holds SIGALRM back until SIGUSR2 ends the wait; the old mask
     * then lets SIGALRM in. */
    catch_usr2();
    sigset_t no_alarm = set_of(SIGALRM, 0);
    g_signals = 0;
    pid = send_later(200, SIGUSR2);
    t0 = now_ms();
    alarm_ms(50);
    CALL(sigsuspend(&no_alarm));
    const int usr2_seen = (int)g_usr2;
    sleep_ms(20);
    rep(A, "sigsuspend_mask_holds_back_sigalrm", "usr2=%d alarm_after_return=%d took>=150ms=%s child=%s", usr2_seen,
        (int)g_signals, yesno(now_ms() - t0 >= 150), reap(pid));
    alarm_ms(0);

    /* The mask is restored exactly. */
    sigset_t before;
    sigset_t after;
    sigprocmask(SIG_BLOCK, NULL, &before);
    alarm_ms(50);
    sigset_t all_but_alarm;
    sigfillset(&all_but_alarm);
    sigdelset(&all_but_alarm, SIGALRM);
    CALL(sigsuspend(&all_but_alarm));
    sigprocmask(SIG_BLOCK, NULL, &after);
    int same = 1;
    for (int s = 1; s < 65; ++s) {
        if (sigismember(&before, s) != sigismember(&after, s)) {
            same = 0;
        }
    }
    rep(A, "sigsuspend_restores_the_mask", "same=%s", yesno(same));
    alarm_ms(0);

    CALL(sigsuspend((const sigset_t*)1));
    rep(A, "sigsuspend_bad_mask_pointer_efault", NULL);
    default_signal(SIGALRM);
    default_signal(SIGUSR1);
    default_signal(SIGUSR2);
    drain(SIGUSR1);
}

/* ---- waitid --------------------------------------------------------------- */

/* The fields waitid fills: an exit code for CLD_EXITED, else a signal. */
static const char* info_str(const siginfo_t* si, pid_t expect) {
    static char buf[128];
    char status[16];
    if (si->si_code == CLD_EXITED || si->si_code == 0) {
        snprintf(status, sizeof status, "%d", si->si_status);
    } else {
        snprintf(status, sizeof status, "%s", sig_name(si->si_status));
    }
    snprintf(buf, sizeof buf, "signo=%s code=%s status=%s pid_ok=%s", si->si_signo ? sig_name(si->si_signo) : "0",
             cld_name(si->si_code), status, yesno(si->si_pid == expect));
    return buf;
}

static void waitid_cases(void) {
    siginfo_t si;
    long t0 = now_ms();
    pid_t pid = delayed_exit(100, 5);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
    rep(A, "waitid_p_pid_exited", "%s took>=50ms=%s", info_str(&si, pid), yesno(now_ms() - t0 >= 50));

    pid = delayed_exit(50, 6);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_ALL, 0, &si, WEXITED));
    rep(A, "waitid_p_all", "%s", info_str(&si, pid));

    pid = delayed_exit(50, 7);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PGID, (id_t)getpgrp(), &si, WEXITED));
    rep(A, "waitid_p_pgid", "%s", info_str(&si, pid));

    pid = delayed_exit(50, 8);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PGID, 0, &si, WEXITED));
    rep(A, "waitid_p_pgid_own_group", "%s", info_str(&si, pid));

    pid = delayed_exit(150, 9);
    memset(&si, 0xff, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG));
    rep(A, "waitid_wnohang_running_child", "signo=%d pid=%d", si.si_signo, (int)si.si_pid);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT));
    rep(A, "waitid_wnowait_leaves_it", "%s", info_str(&si, pid));
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG));
    rep(A, "waitid_then_reaps_it", "%s", info_str(&si, pid));

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sleep_ms(50);
        raise(SIGSTOP);
        sleep_ms(100);  /* the continued state stays visible until exit */
        _exit(3);
    }
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WSTOPPED));
    rep(A, "waitid_wstopped", "%s", info_str(&si, pid));
    kill(pid, SIGCONT);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WCONTINUED));
    rep(A, "waitid_wcontinued", "%s", info_str(&si, pid));
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
    rep(A, "waitid_after_continue_exits", "%s", info_str(&si, pid));

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    sleep_ms(20);
    kill(pid, SIGTERM);
    memset(&si, 0, sizeof si);
    CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
    rep(A, "waitid_child_killed", "%s", info_str(&si, pid));

    pid = delayed_exit(50, 10);
    CALL(waitid(P_PID, (id_t)pid, NULL, WEXITED));
    rep(A, "waitid_null_infop", "reaped=%s", yesno(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD));

    /* A bad infop: the child is reaped, then EFAULT. */
    pid = delayed_exit(50, 11);
    CALL(waitid(P_PID, (id_t)pid, (siginfo_t*)1, WEXITED));
    rep(A, "waitid_bad_infop_efault", "reaped=%s", yesno(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD));

    const long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd >= 0) {
        close((int)pidfd);
        pid = delayed_exit(80, 12);
        const int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        memset(&si, 0, sizeof si);
        t0 = now_ms();
        CALL(waitid(P_PIDFD, (id_t)fd, &si, WEXITED));
        rep(A, "waitid_p_pidfd", "%s took>=40ms=%s", info_str(&si, pid), yesno(now_ms() - t0 >= 40));
        close(fd);
        pid = delayed_exit(80, 13);
        const int nfd = (int)syscall(SYS_pidfd_open, pid, PIDFD_NONBLOCK);
        CALL(waitid(P_PIDFD, (id_t)nfd, &si, WEXITED));
        rep(A, "waitid_nonblocking_pidfd_eagain", NULL);
        close(nfd);
        reap(pid);
        CALL(waitid(P_PIDFD, (id_t)closed_fd(), &si, WEXITED));
        rep(A, "waitid_p_pidfd_bad_fd", NULL);
    } else {
        rep_val(A, "waitid_p_pidfd", 0, 0, "no-pidfd");
        rep_val(A, "waitid_nonblocking_pidfd_eagain", 0, 0, "no-pidfd");
        rep_val(A, "waitid_p_pidfd_bad_fd", 0, 0, "no-pidfd");
    }

    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        pid = delayed_exit(400, 14);
        t0 = now_ms();
        alarm_ms(80);
        memset(&si, 0, sizeof si);
        CALL(waitid(P_PID, (id_t)pid, &si, WEXITED));
        rep(A, restart ? "waitid_sigalrm_sa_restart_goes_on" : "waitid_sigalrm_eintr",
            "handled=%d before_exit=%s %s", (int)g_signals, yesno(now_ms() - t0 < 300),
            g_ret == 0 ? info_str(&si, pid) : "");
        alarm_ms(0);
        if (g_ret != 0) {
            reap(pid);
        }
    }
    default_signal(SIGALRM);

    CALL(waitid((idtype_t)42, 0, &si, WEXITED));
    rep(A, "waitid_bad_idtype_einval", NULL);
    CALL(waitid(P_ALL, 0, &si, 0));
    rep(A, "waitid_no_event_option_einval", NULL);
    CALL(waitid(P_ALL, 0, &si, WEXITED | 0x100000));
    rep(A, "waitid_unknown_option_einval", NULL);
    CALL(waitid(P_PID, 0, &si, WEXITED));
    rep(A, "waitid_p_pid_zero_einval", NULL);
    memset(&si, 0xff, sizeof si);
    CALL(waitid(P_ALL, 0, &si, WEXITED));
    rep(A, "waitid_no_children_echild", "signo=%d pid=%d", si.si_signo, (int)si.si_pid);
    CALL(waitid(P_PID, 1, &si, WEXITED));
    rep(A, "waitid_not_our_child_echild", NULL);
    CALL(waitid(P_ALL, 0, &si, WEXITED | WNOHANG));
    rep(A, "waitid_wnohang_no_children_echild", NULL);
}

/* ---- epoll_pwait2 --------------------------------------------------------- */

static void epoll_cases(void) {
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = 77;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct epoll_event out[4];
    struct timespec zero = {0, 0};
    struct timespec fifty = {0, 50 * 1000000L};
    struct timespec five = {5, 0};

    CALL(epoll_pwait2(ep, out, 4, &zero, NULL));
    rep(A, "epoll_pwait2_zero_timeout_nothing", NULL);

    long t0 = now_ms();
    CALL(epoll_pwait2(ep, out, 4, &fifty, NULL));
    rep(A, "epoll_pwait2_50ms_timeout", "took>=40ms=%s", yesno(now_ms() - t0 >= 40));

    t0 = now_ms();
    pid_t w = delayed_write(p[1], 100, "x");
    memset(out, 0, sizeof out);
    CALL(epoll_pwait2(ep, out, 4, NULL, NULL));
    rep(A, "epoll_pwait2_null_timeout_waits_for_data", "events=%#x data=%u took>=50ms=%s writer=%s",
        out[0].events, out[0].data.u32, yesno(now_ms() - t0 >= 50), reap(w));

    memset(out, 0, sizeof out);
    CALL(epoll_pwait2(ep, out, 4, &five, NULL));
    rep(A, "epoll_pwait2_ready_pipe_at_once", "events=%#x", out[0].events);

    char c;
    (void)!read(p[0], &c, 1);
    w = delayed_write(p[1], 100, "y");
    memset(out, 0, sizeof out);
    CALL(epoll_pwait2(ep, out, 4, &five, NULL));
    rep(A, "epoll_pwait2_timeout_data_first", "events=%#x writer=%s", out[0].events, reap(w));
    (void)!read(p[0], &c, 1);

    CALL(epoll_pwait2(closed_fd(), out, 4, &fifty, NULL));
    rep(A, "epoll_pwait2_bad_epfd_ebadf", NULL);
    CALL(epoll_pwait2(p[0], out, 4, &fifty, NULL));
    rep(A, "epoll_pwait2_not_an_epoll_fd_einval", NULL);
    CALL(epoll_pwait2(ep, out, 0, &fifty, NULL));
    rep(A, "epoll_pwait2_max_zero_einval", NULL);
    volatile int negative = -1;
    CALL(epoll_pwait2(ep, out, negative, NULL, NULL));
    rep(A, "epoll_pwait2_max_negative_einval", NULL);
    struct timespec bad = {0, 1000000000L};
    CALL(epoll_pwait2(ep, out, 4, &bad, NULL));
    rep(A, "epoll_pwait2_nsec_too_big_einval", NULL);
    bad.tv_sec = -1;
    bad.tv_nsec = 0;
    CALL(epoll_pwait2(ep, out, 4, &bad, NULL));
    rep(A, "epoll_pwait2_negative_sec_einval", NULL);
    CALL(epoll_pwait2(ep, out, 4, (const struct timespec*)1, NULL));
    rep(A, "epoll_pwait2_bad_timeout_pointer_efault", NULL);
    CALL(epoll_pwait2(ep, out, 4, &fifty, (const sigset_t*)1));
    rep(A, "epoll_pwait2_bad_sigmask_pointer_efault", NULL);
    (void)!write(p[1], "z", 1);
    struct epoll_event* volatile bad_events = (struct epoll_event*)1;
    CALL(epoll_pwait2(ep, bad_events, 4, &fifty, NULL));
    rep(A, "epoll_pwait2_bad_events_pointer_efault", NULL);
    (void)!read(p[0], &c, 1);

    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        t0 = now_ms();
        alarm_ms(80);
        CALL(epoll_pwait2(ep, out, 4, &five, NULL));
        rep(A, restart ? "epoll_pwait2_sigalrm_sa_restart_eintr" : "epoll_pwait2_sigalrm_eintr",
            "handled=%d before_timeout=%s", (int)g_signals, yesno(now_ms() - t0 < 2000));
        alarm_ms(0);
    }

    /* The sigmask lets a pending signal in: its handler ends the wait. */
    catch_signal(SIGUSR1, 0);
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t empty = set_of(0, 0);
    CALL(epoll_pwait2(ep, out, 4, &five, &empty));
    rep(A, "epoll_pwait2_sigmask_lets_pending_signal_in", "handled=%d usr1_blocked_after=%s", (int)g_signals,
        yesno(is_blocked(SIGUSR1)));

    /* A mask blocking SIGALRM: the alarm does not cut the wait short. */
    sigset_t no_alarm = set_of(SIGALRM, 0);
    catch_signal(SIGALRM, 0);
    w = delayed_write(p[1], 200, "w");
    alarm_ms(50);
    CALL(epoll_pwait2(ep, out, 4, &five, &no_alarm));
    const int during = (int)g_signals;
    sleep_ms(20);
    rep(A, "epoll_pwait2_sigmask_holds_back_sigalrm", "alarm_during=%d alarm_after=%d writer=%s", during,
        (int)g_signals, reap(w));
    alarm_ms(0);
    default_signal(SIGALRM);
    default_signal(SIGUSR1);
    close(ep);
    close(p[0]);
    close(p[1]);
}

/* ---- sigaction: what the old action reports --------------------------------- */

static void on_usr1(int s) {
    (void)s;
}

static void on_usr1_info(int s, siginfo_t* i, void* c) {
    (void)s;
    (void)i;
    (void)c;
}

static const char* handler_name(const struct sigaction* a) {
    if ((a->sa_flags & SA_SIGINFO) != 0) {
        return a->sa_sigaction == on_usr1_info ? "on_usr1_info" : a->sa_sigaction == NULL ? "null" : "other-info";
    }
    if (a->sa_handler == SIG_DFL) {
        return "SIG_DFL";
    }
    if (a->sa_handler == SIG_IGN) {
        return "SIG_IGN";
    }
    return a->sa_handler == on_usr1 ? "on_usr1" : a->sa_handler == on_usr2 ? "on_usr2" : "other";
}

/* The old action as the call reported it: handler, flags (all of them, the
 * restorer flag libc adds included), the first 64 signals of the mask, and
 * whether a restorer is set. */
static void rep_action(const char* name, const struct sigaction* a) {
    unsigned long long mask = 0;
    for (int sig = 1; sig <= 64 && sig < NSIG; ++sig) {
        if (sigismember(&a->sa_mask, sig) == 1) {
            mask |= 1ULL << (sig - 1);
        }
    }
    rep(A, name, "handler=%s flags=%#x mask=%#llx restorer=%s", handler_name(a), (unsigned)a->sa_flags, mask,
        a->sa_restorer != NULL ? "set" : "none");
}

/* Reports the action of sig now in place (over an old action filled with
 * junk, so that every field reported is the call's). */
static void look(int sig, const char* name) {
    struct sigaction old;
    memset(&old, 0x5a, sizeof old);
    CALL(sigaction(sig, NULL, &old));
    rep_action(name, &old);
}

/* Installs act for sig, reports the old action as `installed`, then the
 * action now in place as `looked`. */
static void install_and_look(int sig, const struct sigaction* act, const char* installed, const char* looked) {
    struct sigaction old;
    memset(&old, 0x5a, sizeof old);
    CALL(sigaction(sig, act, &old));
    rep_action(installed, &old);
    look(sig, looked);
}

static void sigaction_cases(void) {
    struct sigaction act;
    struct sigaction old;

    look(SIGUSR1, "sigaction_query_default");

    memset(&act, 0, sizeof act);
    act.sa_handler = on_usr1;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, SIGUSR2);
    sigaddset(&act.sa_mask, SIGTERM);
    sigaddset(&act.sa_mask, SIGKILL);  /* the kernel drops it */
    install_and_look(SIGUSR1, &act, "sigaction_install_handler_old", "sigaction_query_handler");

    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_usr1_info;
    act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&act.sa_mask);
    install_and_look(SIGUSR1, &act, "sigaction_install_siginfo_old", "sigaction_query_siginfo");

    memset(&act, 0, sizeof act);
    act.sa_handler = SIG_IGN;
    install_and_look(SIGUSR1, &act, "sigaction_install_ignore_old", "sigaction_query_ignore");

    memset(&act, 0, sizeof act);
    act.sa_handler = SIG_DFL;
    act.sa_flags = SA_RESTART;
    install_and_look(SIGUSR1, &act, "sigaction_install_default_old", "sigaction_query_default_again");

    /* SA_RESETHAND: the kernel puts SIG_DFL back when the signal comes. */
    memset(&act, 0, sizeof act);
    act.sa_handler = on_usr2;
    act.sa_flags = SA_RESETHAND;
    sigemptyset(&act.sa_mask);
    CALL(sigaction(SIGUSR2, &act, NULL));
    rep(A, "sigaction_resethand_install", NULL);
    g_usr2 = 0;
    raise(SIGUSR2);
    look(SIGUSR2, "sigaction_resethand_after_signal");
    rep_val(A, "sigaction_resethand_handler_ran", g_usr2, 0, NULL);

    /* signal(): BSD semantics; returns the previous handler. */
    CALL((long)(signal(SIGUSR2, on_usr2) == SIG_DFL));
    rep(A, "signal_install_returns_default", NULL);
    CALL((long)(signal(SIGUSR2, SIG_IGN) == on_usr2));
    rep(A, "signal_ignore_returns_handler", NULL);
    look(SIGUSR2, "signal_then_query");
    CALL((long)(signal(SIGUSR2, SIG_DFL) == SIG_IGN));
    rep(A, "signal_default_returns_ignore", NULL);
    CALL((long)(signal(0, on_usr2) == SIG_ERR));
    rep(A, "signal_zero_is_sig_err", NULL);
    CALL((long)(signal(SIGKILL, on_usr2) == SIG_ERR));
    rep(A, "signal_kill_is_sig_err", NULL);

    /* SIG_DFL and SIG_IGN with SA_SIGINFO: the kernel reads the shared
     * handler field as the default or ignore action all the same. A signal
     * then kills (in a child) or is dropped. */
    static const int sigs[] = {SIGTERM, SIGUSR1, SIGPIPE};
    static const char* const names[] = {"term", "usr1", "pipe"};
    for (int i = 0; i < 3; ++i) {
        for (int ignore = 0; ignore <= 1; ++ignore) {
            char name[80];
            fflush(stdout);
            const pid_t child = fork();
            if (child == 0) {
                struct sigaction a;
                memset(&a, 0, sizeof a);
                a.sa_handler = on_usr1;
                sigaction(sigs[i], &a, NULL); /* a handler first, then back */
                memset(&a, 0, sizeof a);
                a.sa_handler = ignore ? SIG_IGN : SIG_DFL;
                a.sa_flags = SA_SIGINFO | SA_RESTART;
                sigemptyset(&a.sa_mask);
                if (sigaction(sigs[i], &a, NULL) != 0) {
                    _exit(2);
                }
                raise(sigs[i]);
                _exit(0);
            }
            int st = 0;
            waitpid(child, &st, 0);
            snprintf(name, sizeof name, "sigaction_siginfo_%s_%s_then_raise", ignore ? "ignore" : "default", names[i]);
            rep_val(A, name, 0, 0, "%s", status_str(st));
        }
    }
    memset(&act, 0, sizeof act);
    act.sa_handler = SIG_IGN;
    act.sa_flags = SA_SIGINFO;
    install_and_look(SIGUSR1, &act, "sigaction_install_siginfo_ignore_old", "sigaction_query_siginfo_ignore");
    memset(&act, 0, sizeof act);
    act.sa_handler = SIG_DFL;
    act.sa_flags = SA_SIGINFO | SA_RESTART;
    install_and_look(SIGUSR1, &act, "sigaction_install_siginfo_default_old", "sigaction_query_siginfo_default");

    /* Errors. */
    memset(&act, 0, sizeof act);
    act.sa_handler = on_usr1;
    CALL(sigaction(0, &act, NULL));
    rep(A, "sigaction_zero", NULL);
    CALL(sigaction(SIGKILL, &act, NULL));
    rep(A, "sigaction_kill_handler", NULL);
    CALL(sigaction(SIGSTOP, &act, NULL));
    rep(A, "sigaction_stop_handler", NULL);
    CALL(sigaction(NSIG, &act, NULL));
    rep(A, "sigaction_nsig", NULL);
    CALL(sigaction(-1, NULL, &old));
    rep(A, "sigaction_negative", NULL);
    look(SIGKILL, "sigaction_query_kill");
    CALL(sigaction(SIGUSR1, NULL, NULL));
    rep(A, "sigaction_null_both", NULL);

    /* A real-time signal and SIGSEGV (which grove keeps for itself). */
    memset(&act, 0, sizeof act);
    act.sa_handler = on_usr1;
    act.sa_flags = SA_RESTART;
    CALL(sigaction(SIGRTMIN + 3, &act, NULL));
    rep(A, "sigaction_rt_install", NULL);
    look(SIGRTMIN + 3, "sigaction_rt_query");
    CALL(sigaction(SIGSEGV, &act, NULL));
    rep(A, "sigaction_segv_install", NULL);
    look(SIGSEGV, "sigaction_segv_query");
}

/* Runs fn in a child, killed after limit_ms; its exit status is its count
 * of cases. */
static void run_section(const char* name, void (*fn)(void), long limit_ms) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        g_cases = 0;
        fn();
        fflush(stdout);
        _exit(g_cases);
    }
    int st = 0;
    const long t0 = now_ms();
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() - t0 < limit_ms) {
        sleep_ms(20);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        rep_val(A, name, -1, 0, "section-timed-out");
    } else if (r == pid && WIFEXITED(st)) {
        g_cases += WEXITSTATUS(st);
    } else {
        rep_val(A, name, -1, 0, "section-died %s", r == pid ? status_str(st) : "lost");
    }
}

int main(void) {
    begin();
    run_section("sigtimedwait", timedwait_cases, 15000);
    run_section("sigwait", sigwait_cases, 15000);
    run_section("pause", pause_cases, 15000);
    run_section("waitid", waitid_cases, 15000);
    run_section("epoll_pwait2", epoll_cases, 15000);
    run_section("sigaction", sigaction_cases, 15000);
    return finish(A);
}

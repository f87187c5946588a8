/* File locks that wait: flock, lockf(F_LOCK), fcntl(F_SETLKW and
 * F_OFD_SETLKW), against a child process that holds the lock for a while,
 * with their error paths and signals. */
#include "diff.h"

#include <sys/file.h>

#define A "locks"

enum holder_kind { by_flock, by_posix, by_ofd };

static char g_path[64];

/* A child that takes the lock on its own open of the file, says so on a
 * pipe, holds it for `hold_ms`, and exits (which releases it). */
static pid_t holder(enum holder_kind kind, long hold_ms) {
    int ready[2];
    if (pipe(ready) != 0) {
        exit(3);
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        const int fd = open(g_path, O_RDWR);
        int r = -1;
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        switch (kind) {
            case by_flock:
                r = flock(fd, LOCK_EX);
                break;
            case by_posix:
                r = fcntl(fd, F_SETLK, &fl);
                break;
            case by_ofd:
                r = fcntl(fd, F_OFD_SETLK, &fl);
                break;
        }
        (void)!write(ready[1], r == 0 ? "1" : "0", 1);
        sleep_ms(hold_ms);
        _exit(r == 0 ? 0 : 1);
    }
    close(ready[1]);
    char c = '0';
    (void)!read(ready[0], &c, 1);
    close(ready[0]);
    if (c != '1') {
        fprintf(stderr, "lock holder failed to lock\n");
        exit(3);
    }
    return pid;
}

static int open_file(int flags) {
    const int fd = open(g_path, flags);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", g_path, strerror(errno));
        exit(3);
    }
    return fd;
}

static struct flock whole(short type) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fl;
}

static void flock_cases(void) {
    int fd = open_file(O_RDWR);
    pid_t child = holder(by_flock, 300);
    CALL(flock(fd, LOCK_EX | LOCK_NB));
    rep(A, "flock_nb_while_held", NULL);
    CALL(flock(fd, LOCK_SH | LOCK_NB));
    rep(A, "flock_sh_nb_while_held", NULL);
    long t0 = now_ms();
    CALL(flock(fd, LOCK_EX));
    rep(A, "flock_ex_waits_for_release", "waited>=200ms=%s", yesno(now_ms() - t0 >= 200));
    rep_val(A, "flock_holder", 0, 0, "%s", reap(child));
    errno = 0;
    CALL(flock(fd, LOCK_EX));
    rep(A, "flock_ex_again_by_owner", NULL);
    CALL(flock(fd, LOCK_UN));
    rep(A, "flock_un", NULL);
    CALL(flock(fd, LOCK_UN));
    rep(A, "flock_un_unlocked", NULL);
    /* A shared lock waits for an exclusive one too. */
    child = holder(by_flock, 200);
    t0 = now_ms();
    CALL(flock(fd, LOCK_SH));
    rep(A, "flock_sh_waits_for_exclusive", "waited>=100ms=%s", yesno(now_ms() - t0 >= 100));
    reap(child);
    flock(fd, LOCK_UN);
    /* errno is left alone on success after a wait. */
    child = holder(by_flock, 150);
    errno = ENOENT;
    const int r = flock(fd, LOCK_EX);
    rep_val(A, "flock_success_keeps_errno", r, 0, "errno_after=%s", ename(errno));
    reap(child);
    flock(fd, LOCK_UN);

    volatile int bad_op = LOCK_SH | LOCK_EX;
    CALL(flock(fd, bad_op));
    rep(A, "flock_sh_and_ex_einval", NULL);
    CALL(flock(fd, 0));
    rep(A, "flock_zero_op", NULL);
    CALL(flock(closed_fd(), LOCK_EX));
    rep(A, "flock_ebadf", NULL);
    CALL(flock(-1, LOCK_EX));
    rep(A, "flock_negative_fd", NULL);
    close(fd);

    /* A pipe can be flock'ed too (a lock on its inode). */
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    CALL(flock(p[0], LOCK_EX));
    rep(A, "flock_pipe", NULL);
    close(p[0]);
    close(p[1]);

    /* Signals: EINTR without SA_RESTART, the wait goes on with it. */
    fd = open_file(O_RDWR);
    catch_signal(SIGALRM, 0);
    child = holder(by_flock, 400);
    alarm_ms(100);
    t0 = now_ms();
    CALL(flock(fd, LOCK_EX));
    rep(A, "flock_eintr_without_sa_restart", "signals=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 300));
    reap(child);
    catch_signal(SIGALRM, 1);
    child = holder(by_flock, 300);
    alarm_ms(100);
    CALL(flock(fd, LOCK_EX));
    rep(A, "flock_restarts_with_sa_restart", "signals=%d", (int)g_signals);
    reap(child);
    flock(fd, LOCK_UN);
    default_signal(SIGALRM);
    close(fd);
}

static void fcntl_cases(void) {
    int fd = open_file(O_RDWR);
    pid_t child = holder(by_posix, 300);
    struct flock fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_SETLK, &fl));
    rep(A, "setlk_while_held", NULL);
    struct flock q = whole(F_WRLCK);
    CALL(fcntl(fd, F_GETLK, &q));
    rep(A, "getlk_while_held", "type=%s", q.l_type == F_WRLCK ? "wr" : q.l_type == F_UNLCK ? "un" : "rd");
    long t0 = now_ms();
    fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_waits_for_release", "waited>=200ms=%s", yesno(now_ms() - t0 >= 200));
    reap(child);
    fl = whole(F_UNLCK);
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_unlock", NULL);
    /* A read lock waits for a write lock. */
    child = holder(by_posix, 200);
    fl = whole(F_RDLCK);
    t0 = now_ms();
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_read_waits_for_write", "waited>=100ms=%s", yesno(now_ms() - t0 >= 100));
    reap(child);
    fl = whole(F_UNLCK);
    fcntl(fd, F_SETLK, &fl);
    /* fcntl64 is the same call. */
    child = holder(by_posix, 150);
    fl = whole(F_WRLCK);
    CALL(fcntl64(fd, F_SETLKW, &fl));
    rep(A, "fcntl64_setlkw_waits", NULL);
    reap(child);
    fl = whole(F_UNLCK);
    fcntl(fd, F_SETLK, &fl);

    /* Error paths. */
    struct flock* volatile bad = (struct flock*)1;
    CALL(fcntl(fd, F_SETLKW, bad));
    rep(A, "setlkw_efault", NULL);
    fl = whole(7);
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_bad_type", NULL);
    fl = whole(F_WRLCK);
    fl.l_whence = 9;
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_bad_whence", NULL);
    fl = whole(F_WRLCK);
    CALL(fcntl(closed_fd(), F_SETLKW, &fl));
    rep(A, "setlkw_ebadf", NULL);
    close(fd);
    const int ro = open_file(O_RDONLY);
    fl = whole(F_WRLCK);
    CALL(fcntl(ro, F_SETLKW, &fl));
    rep(A, "setlkw_write_lock_on_read_only", NULL);
    close(ro);
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    fl = whole(F_RDLCK);
    CALL(fcntl(p[0], F_SETLKW, &fl));
    rep(A, "setlkw_pipe", NULL);
    close(p[0]);
    close(p[1]);

    /* Open file description locks. */
    fd = open_file(O_RDWR);
    child = holder(by_ofd, 300);
    fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_OFD_SETLK, &fl));
    rep(A, "ofd_setlk_while_held", NULL);
    t0 = now_ms();
    fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_OFD_SETLKW, &fl));
    rep(A, "ofd_setlkw_waits_for_release", "waited>=200ms=%s", yesno(now_ms() - t0 >= 200));
    reap(child);
    fl = whole(F_WRLCK);
    fl.l_pid = 1; /* must be 0 for OFD locks */
    CALL(fcntl(fd, F_OFD_SETLKW, &fl));
    rep(A, "ofd_setlkw_nonzero_pid", NULL);
    fl = whole(F_UNLCK);
    fcntl(fd, F_OFD_SETLK, &fl);

    /* Signals. */
    catch_signal(SIGALRM, 0);
    child = holder(by_posix, 400);
    alarm_ms(100);
    t0 = now_ms();
    fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_SETLKW, &fl));
    rep(A, "setlkw_eintr_without_sa_restart", "signals=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 300));
    reap(child);
    catch_signal(SIGALRM, 1);
    child = holder(by_ofd, 300);
    alarm_ms(100);
    fl = whole(F_WRLCK);
    CALL(fcntl(fd, F_OFD_SETLKW, &fl));
    rep(A, "ofd_setlkw_restarts_with_sa_restart", "signals=%d", (int)g_signals);
    reap(child);
    default_signal(SIGALRM);
    close(fd);
}

static void lockf_cases(void) {
    int fd = open_file(O_RDWR);
    pid_t child = holder(by_posix, 300);
    CALL(lockf(fd, F_TLOCK, 0));
    rep(A, "lockf_tlock_while_held", NULL);
    CALL(lockf(fd, F_TEST, 0));
    rep(A, "lockf_test_while_held", NULL);
    long t0 = now_ms();
    CALL(lockf(fd, F_LOCK, 0));
    rep(A, "lockf_lock_waits_for_release", "waited>=200ms=%s", yesno(now_ms() - t0 >= 200));
    reap(child);
    CALL(lockf(fd, F_TEST, 0));
    rep(A, "lockf_test_own_lock", NULL);
    CALL(lockf(fd, F_ULOCK, 0));
    rep(A, "lockf_ulock", NULL);
    CALL(lockf(fd, 42, 0));
    rep(A, "lockf_bad_cmd", NULL);
    CALL(lockf(closed_fd(), F_LOCK, 0));
    rep(A, "lockf_lock_ebadf", NULL);
    close(fd);
    const int ro = open_file(O_RDONLY);
    CALL(lockf(ro, F_LOCK, 0));
    rep(A, "lockf_lock_on_read_only", NULL);
    close(ro);
    fd = open_file(O_RDWR);
    /* From the current offset over 10 bytes: the holder's whole-file lock
     * covers it. */
    lseek(fd, 5, SEEK_SET);
    child = holder(by_posix, 200);
    CALL(lockf64(fd, F_LOCK, 10));
    rep(A, "lockf64_range_waits", NULL);
    reap(child);
    lockf(fd, F_ULOCK, 10);
    close(fd);
}

int main(void) {
    begin();
    snprintf(g_path, sizeof g_path, "/tmp/grove-diff-lock-XXXXXX");
    const int fd = mkstemp(g_path);
    if (fd < 0) {
        fprintf(stderr, "mkstemp: %s\n", strerror(errno));
        return 3;
    }
    (void)!write(fd, "0123456789abcdefghij", 20);
    close(fd);
    flock_cases();
    fcntl_cases();
    lockf_cases();
    unlink(g_path);
    return finish(A);
}

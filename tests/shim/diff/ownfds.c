/* The numbers a program owns: its first open is 3, and dup2 onto low
 * numbers, a close of every fd from 3 up (a loop, close_range, closefrom)
 * leave whatever the process needs for its blocking calls working. Each
 * clobbering case then makes calls that wait (a pipe read from a child
 * process, a socket read, a sleep, a waitpid), which under grove-run go
 * through the hub and its fds. */
#include "diff.h"

#include <sys/resource.h>

#define A "ownfds"

/* Calls that wait: a pipe and a socket each written by a child after a
 * delay, a sleep, the children's exits. `tag` names the lines. */
static void waits(const char* tag) {
    char name[64];
    char buf[32];
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    pid_t pid = delayed_write(p[1], 100, "through-pipe");
    CALL(read(p[0], buf, sizeof buf));
    snprintf(name, sizeof name, "%s_pipe_read", tag);
    rep(A, name, "data=%s", dat(buf, g_ret));
    snprintf(name, sizeof name, "%s_pipe_writer", tag);
    rep_val(A, name, 0, 0, "%s", reap(pid));
    close(p[0]);
    close(p[1]);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    pid = delayed_write(sv[1], 100, "through-socket");
    CALL(recv(sv[0], buf, sizeof buf, 0));
    snprintf(name, sizeof name, "%s_socket_read", tag);
    rep(A, name, "data=%s", dat(buf, g_ret));
    snprintf(name, sizeof name, "%s_socket_writer", tag);
    rep_val(A, name, 0, 0, "%s", reap(pid));
    close(sv[0]);
    close(sv[1]);

    const long t0 = now_ms();
    struct timespec t = {0, 50 * 1000000L};
    CALL(nanosleep(&t, NULL));
    snprintf(name, sizeof name, "%s_sleep", tag);
    rep(A, name, "slept>=40ms=%s", yesno(now_ms() - t0 >= 40));
}

/* The lowest free number, as the next open gets it. */
static void lowest(const char* tag) {
    char name[64];
    const int fd = open("/dev/null", O_RDONLY);
    snprintf(name, sizeof name, "%s_next_open", tag);
    rep_val(A, name, fd, fd < 0 ? errno : 0, NULL);
    close(fd);
}

static void dup2_low(void) {
    waits("dup2_low_before");
    const int src = open("/dev/null", O_RDONLY);
    int same = 0;
    for (int n = 3; n <= 12; ++n) {
        if (n != src && dup2(src, n) == n) {
            ++same;
        }
    }
    rep_val(A, "dup2_onto_3_to_12", same, 0, NULL);
    CALL(fcntl(3, F_GETFD));
    rep(A, "dup2_3_is_the_program_file", NULL);
    waits("dup2_low");
    lowest("dup2_low");
}

static void dup3_onto_3(void) {
    waits("dup3_before");
    const int src = open("/dev/null", O_RDONLY);
    const int target = src == 3 ? 4 : 3;
    CALL(dup3(src, target, O_CLOEXEC));
    rep_val(A, "dup3_onto_low", g_ret == target, g_err, "cloexec=%s", yesno(fd_cloexec(target)));
    CALL(dup2(-1, target == 3 ? 4 : 3));
    rep(A, "dup2_bad_source", NULL);
    waits("dup3");
}

static void close_loop(void) {
    waits("close_loop_before");
    int closed = 0;
    int ebadf = 0;
    for (int fd = 3; fd <= 1023; ++fd) {
        if (close(fd) == 0) {
            ++closed;
        } else if (errno == EBADF) {
            ++ebadf;
        }
    }
    rep_val(A, "close_3_to_1023", closed, 0, "ebadf=%d", ebadf);
    lowest("close_loop");
    waits("close_loop");
}

static void close_range_all(void) {
    waits("close_range_before");
    CALL(close_range(3, ~0U, 0));
    rep(A, "close_range_3_up", NULL);
    CALL(close_range(10, 5, 0));
    rep(A, "close_range_reversed", NULL);
    CALL(close_range(3, ~0U, 0x1000));
    rep(A, "close_range_bad_flags", NULL);
    lowest("close_range");
    waits("close_range");
}

static void closefrom_3(void) {
    waits("closefrom_before");
    closefrom(3);
    rep_val(A, "closefrom_3", 0, 0, NULL);
    lowest("closefrom");
    waits("closefrom");
}

int main(void) {
    begin();
    lowest("first");
    isolated(A, "dup2_low", dup2_low, 20);
    isolated(A, "dup3_onto_3", dup3_onto_3, 20);
    isolated(A, "close_loop", close_loop, 20);
    isolated(A, "close_range_all", close_range_all, 20);
    isolated(A, "closefrom_3", closefrom_3, 20);
    /* The same in the process itself, not a forked child: its first hub. */
    dup2_low();
    close_loop();
    return finish(A);
}

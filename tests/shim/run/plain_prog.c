/* A plain C program that knows nothing of grove: it echoes its arguments
 * and stdin, talks to a child through pipes, waits for it, sleeps a little,
 * looks itself up in a pipe of its own, and exits with status 3. Run with
 * and without the shim preloaded, every byte it prints and its status must
 * be the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        printf("arg %d: %s\n", i, argv[i]);
    }
    char line[256];
    unsigned long sum = 0;
    int lines = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        for (const char* p = line; *p != '\0'; ++p) {
            sum = sum * 31 + (unsigned char)*p;
        }
        ++lines;
        fputs(line, stdout);
    }
    printf("stdin: %d lines, sum %lu\n", lines, sum);
    fflush(stdout);

    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        char buf[64];
        ssize_t n = read(to_child[0], buf, sizeof buf);
        for (ssize_t k = 0; k < n; ++k) {
            buf[k] = (char)(buf[k] >= 'a' && buf[k] <= 'z' ? buf[k] - 32 : buf[k]);
        }
        usleep(20 * 1000);
        if (n > 0 && write(from_child[1], buf, (size_t)n) != n) {
            _exit(9);
        }
        _exit(7);
    }
    close(to_child[0]);
    close(from_child[1]);
    if (write(to_child[1], "ping from parent", 16) != 16) {
        perror("write");
        return 1;
    }
    struct pollfd pfd = {from_child[0], POLLIN, 0};
    int ready = poll(&pfd, 1, 5000);
    char reply[64] = {0};
    ssize_t got = read(from_child[0], reply, sizeof reply - 1);
    int status = 0;
    pid_t waited = waitpid(pid, &status, 0);
    printf("poll %d, reply %zd '%s', child %s, exit %d\n", ready, got, reply,
           waited == pid ? "reaped" : "lost", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* Errors come back as libc reports them. */
    errno = 0;
    ssize_t bad = read(-1, reply, 1);
    printf("read(-1): %zd %s\n", bad, strerror(errno));
    errno = 0;
    int closed = close(12345);
    printf("close(12345): %d %s\n", closed, strerror(errno));

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec nap = {0, 10 * 1000 * 1000};
    int slept = nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
    printf("nanosleep %d, at least 10 ms: %s\n", slept, ms >= 10 ? "yes" : "no");
    fprintf(stderr, "to stderr: done\n");
    return 3;
}

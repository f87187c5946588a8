/* Shared by the green-thread tests: plain C (and C++) programs that know
 * nothing of grove. Each prints a deterministic transcript on stdout; the
 * runner (run_threads.sh) runs it natively and under grove-run with
 * GROVE_THREADS=green and requires the same transcript, and reads the
 * "Threads:" line each prints on stderr at its end (1 under green threads). */
#ifndef GROVE_THREADS_TEST_H
#define GROVE_THREADS_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline const char* tt_err(int e) {
    if (e == 0) {
        return "0";
    }
    const char* n = strerrorname_np(e);
    return n != NULL ? n : "?";
}

/* The Threads: line of /proc/self/status, on stderr only. */
static inline void tt_report_threads(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "Threads:", 8) == 0) {
            fputs(line, stderr);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* An absolute time `ms` from now on `clock`. */
static inline struct timespec tt_after(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec += 1;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static inline double tt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
            fflush(stdout);                                                     \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

#endif

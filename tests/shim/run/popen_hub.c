/* popen streams made before a program's first thread, used after it: under
 * grove-run the main thread's hub starts with that thread, and the streams
 * must still behave as libc's do. Prints what it sees; exits 1 on a
 * difference from libc's behaviour.
 *   - a later popen child must not inherit an earlier stream (POSIX): here
 *     `cat` would otherwise wait for an EOF that the later child, alive for
 *     5 s, holds off, and pclose(a) would take 5 s;
 *   - pclose of a stream made before the first thread must let the other
 *     threads run while it waits for its child (1 s). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void* noop(void* a) { return a; }

static volatile int ticks;
static void* ticker(void* a) {
    for (int i = 0; i < 20; i++) {
        usleep(50000);
        ticks++;
    }
    return a;
}

int main(void) {
    FILE* a = popen("cat >/dev/null", "w");
    FILE* c = popen("sleep 1", "r");
    if (a == NULL || c == NULL) {
        perror("popen");
        return 2;
    }
    pthread_t t;
    pthread_create(&t, NULL, noop, NULL);
    pthread_join(t, NULL);
    FILE* b = popen("sleep 5", "r");
    double s = now();
    int st = pclose(a);
    const double close_a = now() - s;
    printf("pclose of a stream made before the first thread: status %d, %.1f s\n", st, close_a);
    pthread_create(&t, NULL, ticker, NULL);
    usleep(1000);
    s = now();
    const int before = ticks;
    st = pclose(c);
    const int during = ticks - before;
    printf("pclose waiting 1 s for its child: status %d, %.1f s, another thread ran %d times meanwhile\n", st,
           now() - s, during);
    pthread_join(t, NULL);
    pclose(b);
    const int ok = close_a < 2.5 && during >= 5;
    printf("%s\n", ok ? "ok" : "FAIL");
    return ok ? 0 : 1;
}

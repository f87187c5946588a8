/* A hand-off between two threads through a pair of semaphores, timed per
 * switch: the cost a green thread's own thread-local variables add to a
 * switch between green threads (grove-run with GROVE_THREAD_TLS=own
 * against =shared), beside the same program on OS threads.
 *
 *   bench_green_tls [ROUNDS [REPS]]
 *
 * Built twice (meson.build): with TLS_BYTES of __thread data (64 and 4096),
 * which is what an own-TLS switch copies out and in. Prints the median,
 * minimum and maximum over REPS of the time per switch (one sem_post and
 * the other thread's return from sem_wait), in nanoseconds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef TLS_BYTES
#define TLS_BYTES 64
#endif

static __thread unsigned char scratch[TLS_BYTES];
static sem_t ping, pong;
static long rounds = 100000;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void* responder(void* arg) {
    (void)arg;
    for (long i = 0; i < rounds; ++i) {
        sem_wait(&ping);
        scratch[i % TLS_BYTES]++;
        sem_post(&pong);
    }
    return NULL;
}

static int by_value(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    if (argc > 1) {
        rounds = atol(argv[1]);
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (rounds <= 0 || reps <= 0 || reps > 99) {
        fprintf(stderr, "usage: %s [ROUNDS>0 [REPS 1-99]]\n", argv[0]);
        return 2;
    }
    double per[99];
    for (int r = 0; r < reps; ++r) {
        sem_init(&ping, 0, 0);
        sem_init(&pong, 0, 0);
        pthread_t t;
        if (pthread_create(&t, NULL, responder, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
        const double start = now();
        for (long i = 0; i < rounds; ++i) {
            sem_post(&ping);
            sem_wait(&pong);
            scratch[i % TLS_BYTES]++;
        }
        per[r] = (now() - start) / (2.0 * (double)rounds);
        pthread_join(t, NULL);
        sem_destroy(&ping);
        sem_destroy(&pong);
    }
    qsort(per, (size_t)reps, sizeof per[0], by_value);
    printf("%d bytes of __thread: %.1f ns per switch (min %.1f, max %.1f, %d reps of %ld round trips)\n", TLS_BYTES,
           per[reps / 2], per[0], per[reps - 1], reps, rounds);
    return 0;
}

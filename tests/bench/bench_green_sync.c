/* The cost of pthread sync calls as a program makes them, natively or
 * under grove-run (green threads):
 *
 *   mutex_pair   pthread_mutex_lock + unlock, uncontended
 *   sem_pair     sem_post + sem_wait, uncontended
 *   os_pingpong  a hand-off through two semaphores between the main thread
 *                and an OS thread started with libc's own pthread_create
 *                (under green threads: a green thread and an OS thread
 *                sharing the semaphores), per one-way hand-off
 *
 *   bench_green_sync [ROUNDS [REPS]]
 *
 * Prints, per measure, the median, minimum and maximum over REPS in ns. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long rounds = 1000000;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int by_value(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t single, ping, pong;
static long pingpong_rounds;

static double mutex_pair(void) {
    const double t0 = now();
    for (long i = 0; i < rounds; ++i) {
        pthread_mutex_lock(&lock);
        pthread_mutex_unlock(&lock);
    }
    return (now() - t0) / (double)rounds;
}

static double sem_pair(void) {
    const double t0 = now();
    for (long i = 0; i < rounds; ++i) {
        sem_post(&single);
        sem_wait(&single);
    }
    return (now() - t0) / (double)rounds;
}

static void* responder(void* arg) {
    (void)arg;
    for (long i = 0; i < pingpong_rounds; ++i) {
        sem_wait(&ping);
        sem_post(&pong);
    }
    return NULL;
}

typedef int (*create_fn)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
static create_fn libc_create;

static double os_pingpong(void) {
    pingpong_rounds = rounds / 20;
    sem_init(&ping, 0, 0);
    sem_init(&pong, 0, 0);
    pthread_t t;
    if (libc_create(&t, NULL, responder, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    const double t0 = now();
    for (long i = 0; i < pingpong_rounds; ++i) {
        sem_post(&ping);
        sem_wait(&pong);
    }
    const double per = (now() - t0) / (double)pingpong_rounds / 2;
    pthread_join(t, NULL);
    return per;
}

int main(int argc, char** argv) {
    if (argc > 1) {
        rounds = atol(argv[1]);
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (rounds < 20 || reps <= 0 || reps > 99) {
        fprintf(stderr, "usage: %s [ROUNDS>=20 [REPS 1-99]]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);  /* each measure as it is done */
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    libc_create = libc != NULL ? (create_fn)dlsym(libc, "pthread_create") : NULL;
    if (libc_create == NULL) {
        fprintf(stderr, "libc's pthread_create not found\n");
        return 1;
    }
    sem_init(&single, 0, 0);
    static const struct {
        const char* name;
        double (*fn)(void);
    } measures[] = {{"mutex_pair", mutex_pair}, {"sem_pair", sem_pair}, {"os_pingpong", os_pingpong}};
    for (size_t m = 0; m < sizeof measures / sizeof measures[0]; ++m) {
        double per[99];
        for (int r = 0; r < reps; ++r) {
            per[r] = measures[m].fn();
        }
        qsort(per, (size_t)reps, sizeof per[0], by_value);
        printf("%s: %.1f ns median (min %.1f, max %.1f)\n", measures[m].name, per[reps / 2], per[0],
               per[reps - 1]);
    }
    return 0;
}

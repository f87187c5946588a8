/* sleepers: 10,000 pthreads that each sleep 1 s, all joined. Ordinary
 * threaded C, written with no knowledge of grove.
 *
 *   build/demos/sleepers [N]                 N OS threads (needs ulimits)
 *   build/shim/grove-run build/demos/sleepers  the same program, N fibers on
 *                                              one OS thread: about 1 s wall
 *
 * Prints the wall time, the peak RSS and the peak thread count seen. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long woke;

static void* sleeper(void* arg) {
    (void)arg;
    sleep(1);
    pthread_mutex_lock(&mu);
    ++woke;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int os_threads(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "Threads:", 8) == 0) {
            n = atoi(line + 8);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

int main(int argc, char** argv) {
    const long n = argc > 1 ? atol(argv[1]) : 10000;
    pthread_t* th = calloc((size_t)n, sizeof *th);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024); /* what a careful threaded program asks for */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long started = 0;
    for (long i = 0; i < n; ++i) {
        int e = pthread_create(&th[i], &attr, sleeper, NULL);
        if (e != 0) {
            fprintf(stderr, "pthread_create %ld: %s\n", i, strerror(e));
            break;
        }
        ++started;
    }
    const int threads_peak = os_threads();
    for (long i = 0; i < started; ++i) {
        pthread_join(th[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld threads slept 1 s each: %ld woke, %.3f s wall, peak RSS %ld KiB, OS threads after creating them: %d\n",
           started, woke, wall, ru.ru_maxrss, threads_peak);
    free(th);
    return woke == n ? 0 : 1;
}

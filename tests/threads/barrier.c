/* A barrier of 1000 threads, three rounds: each round every thread adds to
 * its slot, waits, and checks that all slots reached the round. Exactly one
 * serial thread per round. */
#include "threads_test.h"

#include <pthread.h>

enum { kThreads = 1000, kRounds = 3 };

static pthread_barrier_t barrier;
static int slots[kThreads];
static int serial_count;
static int bad;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void* body(void* arg) {
    int id = (int)(long)arg;
    for (int round = 1; round <= kRounds; ++round) {
        slots[id] = round;
        int r = pthread_barrier_wait(&barrier);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&mu);
            ++serial_count;
            pthread_mutex_unlock(&mu);
        } else if (r != 0) {
            printf("barrier_wait returned %d\n", r);
        }
        for (int i = 0; i < kThreads; ++i) {
            if (slots[i] < round) {
                pthread_mutex_lock(&mu);
                ++bad;
                pthread_mutex_unlock(&mu);
                break;
            }
        }
        r = pthread_barrier_wait(&barrier); /* nobody starts the next round early */
        if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&mu);
            ++serial_count;
            pthread_mutex_unlock(&mu);
        }
    }
    return NULL;
}

int main(void) {
    printf("init count 0: %s\n", tt_err(pthread_barrier_init(&barrier, NULL, 0)));
    CHECK(pthread_barrier_init(&barrier, NULL, kThreads) == 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static pthread_t th[kThreads];
    for (long i = 0; i < kThreads; ++i) {
        int e = pthread_create(&th[i], &attr, body, (void*)i);
        if (e != 0) {
            printf("pthread_create %ld: %s\n", i, tt_err(e));
            return 1;
        }
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < kThreads; ++i) {
        CHECK(pthread_join(th[i], NULL) == 0);
    }
    printf("threads %d rounds %d serial %d bad %d\n", kThreads, kRounds, serial_count, bad);
    printf("destroy: %s\n", tt_err(pthread_barrier_destroy(&barrier)));
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

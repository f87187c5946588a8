/* Reader-writer stress on pthread_rwlock_t (static initialiser): writers
 * keep two counters equal under the write lock; readers check they are
 * equal under the read lock. Plus try/timed variants' codes. */
#include "threads_test.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static long a, b;
static long bad_reads;
static long reads_done;
static pthread_mutex_t stats = PTHREAD_MUTEX_INITIALIZER;

enum { kReaders = 16, kWriters = 4, kRounds = 2000 };

static void* reader(void* arg) {
    (void)arg;
    long bad = 0;
    for (int i = 0; i < kRounds; ++i) {
        pthread_rwlock_rdlock(&lock);
        long x = a;
        if ((i & 7) == 0) {
            sched_yield(); /* let a writer try while readers hold it */
        }
        if (x != b) {
            ++bad;
        }
        pthread_rwlock_unlock(&lock);
    }
    pthread_mutex_lock(&stats);
    bad_reads += bad;
    reads_done += kRounds;
    pthread_mutex_unlock(&stats);
    return NULL;
}

static void* writer(void* arg) {
    (void)arg;
    for (int i = 0; i < kRounds; ++i) {
        pthread_rwlock_wrlock(&lock);
        ++a;
        if ((i & 15) == 0) {
            sched_yield(); /* readers must not get in now */
        }
        ++b;
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void* try_while_held(void* arg) {
    pthread_rwlock_t* l = arg;
    int r1 = pthread_rwlock_trywrlock(l);
    int r2 = pthread_rwlock_tryrdlock(l);
    if (r2 == 0) {
        pthread_rwlock_unlock(l);
    }
    struct timespec t = tt_after(CLOCK_REALTIME, 30);
    int r3 = pthread_rwlock_timedwrlock(l, &t);
    t = tt_after(CLOCK_MONOTONIC, 30);
    int r4 = pthread_rwlock_clockwrlock(l, CLOCK_MONOTONIC, &t);
    printf("  other thread: trywrlock=%s tryrdlock=%s timedwrlock=%s clockwrlock=%s\n", tt_err(r1), tt_err(r2),
           tt_err(r3), tt_err(r4));
    return NULL;
}

int main(void) {
    pthread_t th[kReaders + kWriters];
    for (int i = 0; i < kReaders + kWriters; ++i) {
        CHECK(pthread_create(&th[i], NULL, i < kReaders ? reader : writer, NULL) == 0);
    }
    for (int i = 0; i < kReaders + kWriters; ++i) {
        CHECK(pthread_join(th[i], NULL) == 0);
    }
    printf("stress: a=%ld b=%ld reads=%ld inconsistent=%ld\n", a, b, reads_done, bad_reads);

    pthread_rwlock_t l;
    CHECK(pthread_rwlock_init(&l, NULL) == 0);
    printf("read-held:\n");
    CHECK(pthread_rwlock_rdlock(&l) == 0);
    pthread_t t;
    pthread_create(&t, NULL, try_while_held, &l);
    pthread_join(t, NULL);
    printf("  owner wrlock while reading: (skipped: deadlock)\n");
    CHECK(pthread_rwlock_unlock(&l) == 0);
    printf("write-held:\n");
    CHECK(pthread_rwlock_wrlock(&l) == 0);
    int w1 = pthread_rwlock_wrlock(&l);
    int w2 = pthread_rwlock_rdlock(&l);
    printf("  owner wrlock again=%s rdlock=%s\n", tt_err(w1), tt_err(w2));
    pthread_create(&t, NULL, try_while_held, &l);
    pthread_join(t, NULL);
    CHECK(pthread_rwlock_unlock(&l) == 0);
    struct timespec badt = {0, 2000000000L};
    printf("bad timespec: timedrdlock=%s\n", tt_err(pthread_rwlock_timedrdlock(&l, &badt)));
    printf("destroy=%s\n", tt_err(pthread_rwlock_destroy(&l)));
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* Thread-specific data: per-thread values, destructors at thread exit
 * (also after pthread_exit), destructor rounds when a destructor sets a
 * value again, key_delete, and pthread_once across threads. */
#include "threads_test.h"

#include <pthread.h>
#include <unistd.h>

static pthread_key_t key_a, key_b, key_again;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long dtor_a_sum, dtor_b_calls, dtor_again_calls;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_calls;

static void dtor_a(void* v) {
    pthread_mutex_lock(&mu);
    dtor_a_sum += (long)v;
    pthread_mutex_unlock(&mu);
}

static void dtor_b(void* v) {
    free(v);
    pthread_mutex_lock(&mu);
    ++dtor_b_calls;
    pthread_mutex_unlock(&mu);
}

static void dtor_again(void* v) {
    long n = (long)v;
    pthread_mutex_lock(&mu);
    ++dtor_again_calls;
    pthread_mutex_unlock(&mu);
    if (n < 3) {
        pthread_setspecific(key_again, (void*)(n + 1)); /* another round */
    }
}

static void init_once(void) {
    usleep(10000); /* others arrive while this runs */
    ++once_calls;
}

static void* body(void* arg) {
    long id = (long)arg;
    pthread_once(&once, init_once);
    CHECK(pthread_getspecific(key_a) == NULL);
    pthread_setspecific(key_a, (void*)id);
    pthread_setspecific(key_b, malloc(16));
    pthread_setspecific(key_again, (void*)1L);
    usleep(1000); /* others set theirs meanwhile */
    if ((long)pthread_getspecific(key_a) != id) {
        printf("thread %ld sees another's value\n", id);
    }
    if (id % 2 == 0) {
        pthread_exit(NULL); /* destructors run after pthread_exit too */
    }
    return NULL;
}

int main(void) {
    CHECK(pthread_key_create(&key_a, dtor_a) == 0);
    CHECK(pthread_key_create(&key_b, dtor_b) == 0);
    CHECK(pthread_key_create(&key_again, dtor_again) == 0);
    pthread_setspecific(key_a, (void*)1000L); /* main's own: no destructor at join */
    enum { n = 20 };
    pthread_t th[n];
    for (long i = 0; i < n; ++i) {
        pthread_create(&th[i], NULL, body, (void*)(i + 1));
    }
    for (int i = 0; i < n; ++i) {
        pthread_join(th[i], NULL);
    }
    printf("once ran %d time(s)\n", once_calls);
    printf("dtor_a sum %ld (expected %d), dtor_b calls %ld, dtor_again calls %ld (3 rounds x %d)\n", dtor_a_sum,
           n * (n + 1) / 2, dtor_b_calls, dtor_again_calls, n);
    printf("main's value kept: %ld\n", (long)pthread_getspecific(key_a));
    int d1 = pthread_key_delete(key_b);
    int d2 = pthread_key_delete(key_b);
    printf("key_delete=%s again=%s\n", tt_err(d1), tt_err(d2));
    printf("setspecific deleted key=%s\n", tt_err(pthread_setspecific(key_b, (void*)1)));
    pthread_key_t k2;
    CHECK(pthread_key_create(&k2, NULL) == 0);
    printf("new key starts empty: %s\n", pthread_getspecific(k2) == NULL ? "yes" : "no");
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* A detached thread outliving its creator, and pthread_exit from main: the
 * process lives until the last thread ends, then exits with status 0. */
#include "threads_test.h"

#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

static sem_t self_detached;
static volatile int main_exiting;

static void* survivor(void* arg) {
    (void)arg;
    while (!__atomic_load_n(&main_exiting, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
    usleep(20000); /* main is in its pthread_exit by now, or soon */
    printf("detached thread: still running after its creator ended\n");
    usleep(50000);
    printf("detached thread: last one out\n");
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return NULL;
}

static void* creator(void* arg) {
    (void)arg;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    CHECK(pthread_create(&t, &a, survivor, NULL) == 0);
    pthread_attr_destroy(&a);
    printf("creator: detach again=%s\n", tt_err(pthread_detach(t)));
    printf("creator: exiting\n");
    fflush(stdout);
    return NULL;
}

static void* detach_self(void* arg) {
    (void)arg;
    int r = pthread_detach(pthread_self());
    printf("detach self: %s\n", tt_err(r));
    fflush(stdout);
    sem_post(&self_detached);
    return NULL;
}

int main(void) {
    pthread_t c;
    pthread_create(&c, NULL, creator, NULL);
    pthread_join(c, NULL);
    printf("main: creator joined\n");
    CHECK(sem_init(&self_detached, 0, 0) == 0);
    pthread_t d;
    pthread_create(&d, NULL, detach_self, NULL);
    while (sem_wait(&self_detached) != 0) {
    }
    printf("main: pthread_exit\n");
    fflush(stdout);
    __atomic_store_n(&main_exiting, 1, __ATOMIC_RELEASE);
    pthread_exit(NULL);
}

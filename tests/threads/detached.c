/* A detached thread outliving its creator, and pthread_exit from main: the
 * process lives until the last thread ends, then exits with status 0. */
#include "threads_test.h"

#include <pthread.h>
#include <unistd.h>

static void* survivor(void* arg) {
    (void)arg;
    usleep(100000); /* its creator has exited by now */
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
    return NULL;
}

int main(void) {
    pthread_t c;
    pthread_create(&c, NULL, creator, NULL);
    pthread_join(c, NULL);
    printf("main: creator joined\n");
    pthread_t d;
    pthread_create(&d, NULL, detach_self, NULL);
    usleep(20000);
    printf("main: pthread_exit\n");
    fflush(stdout);
    pthread_exit(NULL);
}

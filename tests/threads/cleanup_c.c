/* C cleanup handlers in code built without -fexceptions: glibc's
 * pthread_cleanup_push/pop macros then register a sigsetjmp buffer per
 * handler, and an exit (pthread_exit, an acted-on cancel) must run every
 * handler still pushed, newest first, across function frames, then the
 * thread-specific data destructors. Handlers popped with 0 never run; a
 * handler may itself call cancellation points without being cancelled
 * again. */
#include "threads_test.h"

#include <pthread.h>
#include <unistd.h>

static char log_buf[512];
static pthread_key_t key;

static void note(const char* s) {
    strncat(log_buf, s, sizeof log_buf - strlen(log_buf) - 1);
}

static void handler(void* arg) {
    note((const char*)arg);
    note(" ");
}

/* Sleeps inside its handler: cancellation points during the exit do not act. */
static void slow_handler(void* arg) {
    usleep(1000);
    char c;
    int p[2];
    if (pipe(p) == 0) {
        write(p[1], "x", 1);
        read(p[0], &c, 1);
        close(p[0]);
        close(p[1]);
    }
    handler(arg);
}

static void tsd_dtor(void* v) {
    note("tsd(");
    note((const char*)v);
    note(")");
}

enum how { by_exit, by_cancel_read, by_cancel_sleep, by_cancel_cond, by_return };

struct job {
    enum how how;
    int fds[2];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void unlock_mu(void* arg) {
    (void)arg;
    pthread_mutex_unlock(&mu);
    note("unlocked ");
}

static void block(struct job* j) {
    char c;
    switch (j->how) {
        case by_exit:
            pthread_exit((void*)42);
        case by_cancel_read:
            read(j->fds[0], &c, 1);
            break;
        case by_cancel_sleep:
            sleep(10);
            break;
        case by_cancel_cond:
            pthread_mutex_lock(&mu);
            pthread_cleanup_push(unlock_mu, NULL);
            for (;;) {
                pthread_cond_wait(&cv, &mu);
            }
            pthread_cleanup_pop(1);
            break;
        case by_return:
            break;
    }
}

/* Two more handlers one frame down, one of them popped before blocking. */
static void inner(struct job* j) {
    pthread_cleanup_push(handler, "inner-1");
    pthread_cleanup_push(handler, "popped-unrun");
    pthread_cleanup_pop(0);
    pthread_cleanup_push(slow_handler, "inner-2");
    block(j);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
}

static void* worker(void* arg) {
    struct job* j = arg;
    pthread_setspecific(key, "w");
    pthread_cleanup_push(handler, "outer");
    inner(j);
    pthread_cleanup_pop(1); /* only reached by by_return: runs "outer" */
    return (void*)7;
}

static void run(const char* name, enum how how) {
    struct job j;
    j.how = how;
    CHECK(pipe(j.fds) == 0);
    log_buf[0] = '\0';
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, &j) == 0);
    usleep(100000);
    if (how != by_exit && how != by_return) {
        CHECK(pthread_cancel(t) == 0);
    }
    void* ret = NULL;
    double t0 = tt_now();
    CHECK(pthread_join(t, &ret) == 0);
    const char* r = ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : ret == (void*)42 ? "42" : ret == (void*)7 ? "7" : "?";
    printf("%s: joined %s%s; ran: %s\n", name, r, tt_now() - t0 < 5.0 ? "" : " (late)", log_buf);
    close(j.fds[0]);
    close(j.fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(pthread_key_create(&key, tsd_dtor) == 0);
    run("pthread_exit", by_exit);
    run("cancel in read", by_cancel_read);
    run("cancel in sleep", by_cancel_sleep);
    run("cancel in cond_wait", by_cancel_cond);
    run("return", by_return);
    /* The mutex the cancelled cond_wait re-took was released by its handler. */
    printf("mutex free after cancel: %s\n", pthread_mutex_trylock(&mu) == 0 ? "yes" : "no");
    pthread_mutex_unlock(&mu);
    printf("end\n");
    tt_report_threads();
    return 0;
}

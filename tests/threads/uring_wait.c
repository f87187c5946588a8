/* liburing's wait for a completion, in a thread, while other threads
 * submit the I/O it waits for, as InnoDB's I/O threads do: a read of a
 * pipe that another thread fills later, a NOP that another thread submits
 * to wake the waiter, a completion already there, a peek at an empty
 * ring, and a cancel of a waiting thread (liburing's wait is no
 * cancellation point: the thread waits on, then returns); then liburing's
 * other waits: submit-and-wait, timed waits that time out or get their
 * completion, a wait for two, and a timed submit-and-wait that gets none.
 * Under green threads the wait must let the other threads run (they
 * tick meanwhile); natively every thread is an OS thread, and the
 * transcript must be the same. */
#include "threads_test.h"

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

static struct io_uring ring;
static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;
static int pipe_fds[2];
static char buf[16];
static volatile int ticks, stop_ticking;
static sem_t waiting;

static void* ticker(void* arg) {
    (void)arg;
    while (!stop_ticking) {
        ++ticks;
        usleep(2000);
    }
    return NULL;
}

/* Waits for `n` completions, one at a time; reports each. */
static void* waiter(void* arg) {
    const int n = (int)(long)arg;
    for (int i = 0; i < n; ++i) {
        struct io_uring_cqe* cqe = NULL;
        sem_post(&waiting);
        int r = io_uring_wait_cqe(&ring, &cqe);
        if (r != 0 || cqe == NULL) {
            printf("wait: %s\n", tt_err(-r));
            continue;
        }
        const long tag = (long)io_uring_cqe_get_data(cqe);
        if (tag == 1) {
            printf("wait: read completed, res %d, data '%.*s'\n", cqe->res, cqe->res > 0 ? cqe->res : 0, buf);
        } else {
            printf("wait: completion tag %ld, res %d\n", tag, cqe->res);
        }
        io_uring_cqe_seen(&ring, cqe);
    }
    return NULL;
}

static volatile int once_done;
static volatile long once_tag;

/* One wait; no cancellation point after it. */
static void* wait_once(void* arg) {
    (void)arg;
    struct io_uring_cqe* cqe = NULL;
    sem_post(&waiting);
    if (io_uring_wait_cqe(&ring, &cqe) == 0 && cqe != NULL) {
        once_tag = (long)io_uring_cqe_get_data(cqe);
        io_uring_cqe_seen(&ring, cqe);
    }
    once_done = 1;
    return (void*)1L;
}

static void* fill_later(void* arg) {
    (void)arg;
    usleep(50000);
    CHECK(write(pipe_fds[1], "filled", 6) == 6);
    return NULL;
}

static void submit_nop(long tag) {
    pthread_mutex_lock(&submit_lock);
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, (void*)tag);
    CHECK(io_uring_submit(&ring) == 1);
    pthread_mutex_unlock(&submit_lock);
}

/* Submits NOPs tagged 10, 11... after `delay_ms` each, from another thread. */
struct later {
    int count;
    int delay_ms;
};

static void* submit_later(void* arg) {
    const struct later* l = arg;
    for (int i = 0; i < l->count; ++i) {
        usleep(l->delay_ms * 1000);
        submit_nop(10 + i);
    }
    return NULL;
}

static void reap_all(void) {
    struct io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
        io_uring_cqe_seen(&ring, cqe);
    }
}

/* liburing's other waits: submit-and-wait, timed waits, a wait for two. */
static void other_waits(void) {
    /* Submit a read of the empty pipe and wait for it: this thread fills
     * the pipe from a helper 50 ms later, and the ticker runs meanwhile. */
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, pipe_fds[0], buf, sizeof buf, 0);
    io_uring_sqe_set_data(sqe, (void*)5L);
    pthread_t filler;
    CHECK(pthread_create(&filler, NULL, fill_later, NULL) == 0);
    int before = ticks;
    int r = io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* cqe = NULL;
    const int got = io_uring_peek_cqe(&ring, &cqe) == 0 ? cqe->res : -1;
    printf("submit_and_wait: %d, read %d bytes, others ran meanwhile: %s\n", r, got, ticks > before ? "yes" : "NO");
    reap_all();
    CHECK(pthread_join(filler, NULL) == 0);

    /* A timed wait that times out, then one a NOP from another thread ends. */
    struct __kernel_timespec short_wait = {0, 30 * 1000000LL};
    before = ticks;
    r = io_uring_wait_cqe_timeout(&ring, &cqe, &short_wait);
    printf("wait_cqe_timeout with nothing: %s, others ran meanwhile: %s\n", tt_err(-r), ticks > before ? "yes" : "NO");
    struct later one = {1, 20};
    pthread_t later;
    CHECK(pthread_create(&later, NULL, submit_later, &one) == 0);
    struct __kernel_timespec long_wait = {5, 0};
    r = io_uring_wait_cqe_timeout(&ring, &cqe, &long_wait);
    printf("wait_cqe_timeout with a NOP coming: %s, tag %ld\n", tt_err(r < 0 ? -r : 0),
           r == 0 && cqe != NULL ? (long)io_uring_cqe_get_data(cqe) : -1L);
    reap_all();
    CHECK(pthread_join(later, NULL) == 0);

    /* A timed wait submits nothing: a NOP prepared before it is still
     * there for the next submit. */
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, (void*)7L);
    r = io_uring_wait_cqe_timeout(&ring, &cqe, &short_wait);
    printf("wait_cqe_timeout with a NOP not submitted: %s; then submit says %d\n", tt_err(-r), io_uring_submit(&ring));
    /* A timed wait for two that ends with one there: that one, and 0. */
    cqe = NULL;
    r = io_uring_wait_cqes(&ring, &cqe, 2, &short_wait, NULL);
    printf("wait_cqes for 2 with 1 there, timed out: %s, tag %ld\n", tt_err(-r),
           cqe != NULL ? (long)io_uring_cqe_get_data(cqe) : -1L);
    reap_all();

    /* A wait for two completions that come 20 ms apart. */
    struct later two = {2, 20};
    CHECK(pthread_create(&later, NULL, submit_later, &two) == 0);
    r = io_uring_wait_cqe_nr(&ring, &cqe, 2);
    printf("wait_cqe_nr 2: %s, ready %u\n", tt_err(-r), io_uring_cq_ready(&ring));
    reap_all();
    CHECK(pthread_join(later, NULL) == 0);

    /* Submit a read of the empty pipe with a 30 ms wait: liburing answers
     * the count it submitted, with no completion. */
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, pipe_fds[0], buf, sizeof buf, 0);
    io_uring_sqe_set_data(sqe, (void*)6L);
    cqe = (struct io_uring_cqe*)&cqe;
    r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &short_wait, NULL);
    printf("submit_and_wait_timeout, nothing comes: %d, completion %s\n", r, cqe == NULL ? "none" : "some");
    CHECK(write(pipe_fds[1], "late", 4) == 4);
    r = io_uring_wait_cqe(&ring, &cqe);
    printf("then the read: %s, res %d\n", tt_err(-r), r == 0 ? cqe->res : -1);
    reap_all();
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int r = io_uring_queue_init(8, &ring, 0);
    if (r != 0) {
        /* No io_uring here (a kernel without it, or a seccomp filter): the
         * runner compares transcripts, so both runs say the same. */
        printf("io_uring unavailable: %s\nend\n", tt_err(-r));
        tt_report_threads();
        return 0;
    }
    CHECK(pipe(pipe_fds) == 0);
    CHECK(sem_init(&waiting, 0, 0) == 0);

    struct io_uring_cqe* cqe = NULL;
    r = io_uring_peek_cqe(&ring, &cqe);
    printf("peek at an empty ring: %s\n", tt_err(-r));

    pthread_t tick, wait;
    CHECK(pthread_create(&tick, NULL, ticker, NULL) == 0);

    /* A read of an empty pipe, submitted here; the waiter waits for it
     * while this thread fills the pipe 50 ms later. */
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, pipe_fds[0], buf, sizeof buf, 0);
    io_uring_sqe_set_data(sqe, (void*)1L);
    CHECK(io_uring_submit(&ring) == 1);
    CHECK(pthread_create(&wait, NULL, waiter, (void*)2L) == 0);
    CHECK(sem_wait(&waiting) == 0);
    const int before = ticks;
    usleep(50000);
    printf("others ran while the waiter waited: %s\n", ticks > before ? "yes" : "NO");
    CHECK(write(pipe_fds[1], "filled", 6) == 6);

    /* A NOP from this thread wakes the waiter's next wait. */
    CHECK(sem_wait(&waiting) == 0);
    usleep(20000);
    submit_nop(2);
    CHECK(pthread_join(wait, NULL) == 0);

    /* A completion already there when the wait begins. */
    submit_nop(3);
    usleep(10000);
    r = io_uring_wait_cqe(&ring, &cqe);
    printf("wait with a completion there: %s, tag %ld\n", tt_err(-r), r == 0 ? (long)io_uring_cqe_get_data(cqe) : -1L);
    if (r == 0) {
        io_uring_cqe_seen(&ring, cqe);
    }
    /* A cancel while a thread waits: it waits on until a completion comes,
     * then returns normally (it calls no cancellation point after). */
    CHECK(pthread_create(&wait, NULL, wait_once, NULL) == 0);
    CHECK(sem_wait(&waiting) == 0);
    usleep(20000);
    CHECK(pthread_cancel(wait) == 0);
    usleep(20000);
    const int done_before_nop = once_done;
    submit_nop(4);
    void* ret = NULL;
    CHECK(pthread_join(wait, &ret) == 0);
    printf("cancelled waiter: still waiting until the completion: %s, got tag %ld, ended %s\n",
           done_before_nop ? "NO" : "yes", once_tag, ret == PTHREAD_CANCELED ? "cancelled" : "normally");
    other_waits();
    stop_ticking = 1;
    CHECK(pthread_join(tick, NULL) == 0);
    io_uring_queue_exit(&ring);
    printf("end\n");
    tt_report_threads();
    return 0;
}

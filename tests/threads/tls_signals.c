/* A signal handler that counts in a __thread variable while threads switch
 * all the time: every count must land in some thread's variable. Under
 * green threads a switch copies the threads' variables out and in; a
 * handler that ran in the middle of that copy wrote into variables about
 * to be overwritten (a third of the counts were lost with 4 KiB of
 * __thread data), so the shim puts such a signal off until the copy is
 * done. The transcript says whether the counts add up to the handler's
 * runs (the timer stops before any thread reads its count). */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "threads_test.h"

static __thread volatile long counted;
static __thread char payload[4096]; /* makes each copy long */
static atomic_long handled;
static atomic_int stop;
static long per_thread[4];

static void on_alarm(int sig) {
    (void)sig;
    counted++;
    atomic_fetch_add(&handled, 1);
}

static void* run(void* arg) {
    const long i = (long)arg;
    while (!atomic_load(&stop)) {
        payload[i]++;
        sched_yield();
    }
    per_thread[i] = counted;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    pthread_t t[4];
    for (long i = 0; i < 4; ++i) {
        CHECK(pthread_create(&t[i], NULL, run, (void*)i) == 0);
    }
    struct itimerval every = {{0, 20}, {0, 20}};
    CHECK(setitimer(ITIMER_REAL, &every, NULL) == 0);
    const double end = tt_now() + 1.0;
    while (tt_now() < end && atomic_load(&handled) < 20000) {
        sched_yield();
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
    usleep(20000); /* a signal already on its way lands first */
    const long total = atomic_load(&handled);
    const long mine = counted;
    atomic_store(&stop, 1);
    long sum = mine;
    for (int i = 0; i < 4; ++i) {
        CHECK(pthread_join(t[i], NULL) == 0);
        sum += per_thread[i];
    }
    printf("handler ran: %d\n", total > 100);
    printf("every count kept: %d\n", sum == total);
    if (sum != total) {
        fprintf(stderr, "handled %ld, counted %ld\n", total, sum);
    }
    tt_report_threads();
    printf("end\n");
    return 0;
}

/* Fds and signal handlers made before a program's first thread, used after
 * it: under grove-run the main thread's hub starts with that thread. Prints
 * a transcript that must be the same plainly and under grove-run (the
 * caller compares), and exits 1 if a wait did not let the other thread run.
 *   - a blocking read on a pipe made before the first thread, fed by a
 *     thread 100 ms later: the data arrives, and another thread ran during
 *     the wait;
 *   - O_NONBLOCK set by the program before the first thread: still its
 *     choice after (EAGAIN; F_GETFL shows it), and a blocking fd's F_GETFL
 *     never shows the shim's own O_NONBLOCK;
 *   - a SIGALRM handler without SA_RESTART installed before the first
 *     thread interrupts a read parked after it: -1, EINTR. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int feed[2];
static volatile int ticks;

static void* noop(void* a) { return a; }

static void* feeder(void* a) {
    for (int i = 0; i < 4; i++) {
        usleep(25000);
        ticks++;
    }
    (void)!write(feed[1], "late", 4);
    return a;
}

static void on_alarm(int sig) { (void)sig; }

int main(void) {
    int quiet[2], nb[2];
    if (pipe(feed) != 0 || pipe(quiet) != 0 || pipe(nb) != 0) {
        perror("pipe");
        return 2;
    }
    fcntl(nb[0], F_SETFL, fcntl(nb[0], F_GETFL) | O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);  /* no SA_RESTART */

    pthread_t t;
    pthread_create(&t, NULL, noop, NULL);  /* the first thread */
    pthread_join(t, NULL);

    pthread_create(&t, NULL, feeder, NULL);
    char buf[16];
    ssize_t n = read(feed[0], buf, sizeof buf);
    const int ran = ticks;
    pthread_join(t, NULL);
    printf("read from a pipe made before the first thread: %zd '%.*s'\n", n, n > 0 ? (int)n : 0, buf);

    errno = 0;
    n = read(nb[0], buf, sizeof buf);
    printf("read of an fd the program made non-blocking: %zd %s\n", n, strerror(errno));
    printf("F_GETFL O_NONBLOCK: made non-blocking %d, blocking %d\n", (fcntl(nb[0], F_GETFL) & O_NONBLOCK) != 0,
           (fcntl(feed[0], F_GETFL) & O_NONBLOCK) != 0);

    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 100000;
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    n = read(quiet[0], buf, sizeof buf);
    printf("read interrupted by a handler installed before the first thread: %zd %s\n", n, strerror(errno));

    if (ran < 4) {
        fprintf(stderr, "the feeding thread ran %d of 4 times while the main thread waited\n", ran);
        return 1;
    }
    return 0;
}

/* When the unwinder is loaded: a thread that returns needs none; one that
 * leaves through pthread_exit unwinds (its cleanup handlers run), and glibc
 * loads libgcc_s for that, the first time; a cancel unwinds its target, and
 * glibc loads it in pthread_cancel's caller. Under grove-run the threads
 * are green, and the preload library must load it at the same moments, not
 * before: the transcript is the same both ways. The cancel is seen in a
 * child process, which starts with nothing loaded. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int note(struct dl_phdr_info* info, size_t size, void* found) {
    (void)size;
    if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libgcc_s.so") != NULL) {
        *(int*)found = 1;
    }
    return 0;
}

static const char* unwinder(void) {
    int found = 0;
    dl_iterate_phdr(note, &found);
    return found ? "loaded" : "not loaded";
}

static int cleaned = 0;

static void cleanup(void* arg) {
    cleaned = *(int*)arg;
}

static void* returns(void* arg) {
    return arg;
}

static void* exits(void* arg) {
    int mark = 7;
    pthread_cleanup_push(cleanup, &mark);
    pthread_exit(arg);
    pthread_cleanup_pop(0);
    return NULL;
}

static int blocker[2];

static void* blocks(void* arg) {
    char c;
    (void)!read(blocker[0], &c, 1); /* a cancellation point */
    return arg;
}

static int cancel_one(void) {
    pthread_t t;
    void* got = NULL;
    if (pipe(blocker) != 0 || pthread_create(&t, NULL, blocks, NULL) != 0) {
        return 1;
    }
    usleep(20000);
    printf("child, a thread blocked in read: unwinder %s\n", unwinder());
    if (pthread_cancel(t) != 0) {
        return 1;
    }
    printf("child, pthread_cancel returned: unwinder %s\n", unwinder());
    if (pthread_join(t, &got) != 0) {
        return 1;
    }
    printf("child, the thread ended %s\n", got == PTHREAD_CANCELED ? "cancelled" : "otherwise");
    return 0;
}

int main(void) {
    fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        const int rc = cancel_one();
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return 1;
    }
    printf("at start: unwinder %s\n", unwinder());
    int value = 42;
    pthread_t t;
    void* got = NULL;
    if (pthread_create(&t, NULL, returns, &value) != 0 || pthread_join(t, &got) != 0) {
        return 1;
    }
    printf("a thread returned %d: unwinder %s\n", *(int*)got, unwinder());
    if (pthread_create(&t, NULL, exits, &value) != 0 || pthread_join(t, &got) != 0) {
        return 1;
    }
    printf("a thread left by pthread_exit with %d, its cleanup ran with %d: unwinder %s\n", *(int*)got, cleaned,
           unwinder());
    return 0;
}

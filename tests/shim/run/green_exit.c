/* When the unwinder is loaded: a thread that returns needs none; one that
 * leaves through pthread_exit unwinds (its cleanup handlers run), and glibc
 * loads libgcc_s for that, the first time. Under grove-run the threads are
 * green, and the preload library must load it at the same moment, not
 * before: the transcript is the same both ways. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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

int main(void) {
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

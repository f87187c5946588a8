/* Mutex types and their error codes: errorcheck misuse, recursive depth,
 * normal trylock, static initialisers of each type, destroy while locked. */
#include "threads_test.h"

#include <pthread.h>

static pthread_mutex_t ec_static = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t rec_static = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t normal_static = PTHREAD_MUTEX_INITIALIZER;

struct probe {
    pthread_mutex_t* m;
    int trylock;
    int unlock;
};

static void* other_thread(void* arg) {
    struct probe* p = arg;
    p->unlock = pthread_mutex_unlock(p->m);
    p->trylock = pthread_mutex_trylock(p->m);
    return NULL;
}

static void probe_from_other(const char* name, pthread_mutex_t* m) {
    struct probe p = {m, -1, -1};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &p);
    pthread_join(t, NULL);
    printf("  %s from another thread: unlock=%s trylock=%s\n", name, tt_err(p.unlock), tt_err(p.trylock));
}

static void errorcheck(const char* name, pthread_mutex_t* m) {
    printf("%s:\n", name);
    printf("  unlock unlocked=%s\n", tt_err(pthread_mutex_unlock(m)));
    printf("  lock=%s\n", tt_err(pthread_mutex_lock(m)));
    printf("  lock again=%s\n", tt_err(pthread_mutex_lock(m)));
    printf("  trylock by owner=%s\n", tt_err(pthread_mutex_trylock(m)));
    struct timespec t = tt_after(CLOCK_REALTIME, 10);
    printf("  timedlock by owner=%s\n", tt_err(pthread_mutex_timedlock(m, &t)));
    probe_from_other(name, m);
    printf("  destroy while locked=%s\n", tt_err(pthread_mutex_destroy(m)));
    printf("  unlock=%s\n", tt_err(pthread_mutex_unlock(m)));
    printf("  unlock again=%s\n", tt_err(pthread_mutex_unlock(m)));
}

static void recursive(const char* name, pthread_mutex_t* m) {
    printf("%s:\n", name);
    printf("  unlock unlocked=%s\n", tt_err(pthread_mutex_unlock(m)));
    int r1 = pthread_mutex_lock(m);
    int r2 = pthread_mutex_lock(m);
    int r3 = pthread_mutex_trylock(m);
    printf("  lock, lock, trylock=%s %s %s\n", tt_err(r1), tt_err(r2), tt_err(r3));
    probe_from_other(name, m);
    int u1 = pthread_mutex_unlock(m);
    int u2 = pthread_mutex_unlock(m);
    printf("  two unlocks=%s %s; still held: ", tt_err(u1), tt_err(u2));
    probe_from_other(name, m);
    int u3 = pthread_mutex_unlock(m);
    int u4 = pthread_mutex_unlock(m);
    printf("  last unlock=%s, extra unlock=%s\n", tt_err(u3), tt_err(u4));
    probe_from_other(name, m); /* the other thread leaves it locked by itself, then exits */
}

int main(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    pthread_mutex_init(&ec, &a);
    errorcheck("errorcheck (init)", &ec);
    errorcheck("errorcheck (static initialiser)", &ec_static);

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t rec;
    pthread_mutex_init(&rec, &a);
    recursive("recursive (init)", &rec);
    recursive("recursive (static initialiser)", &rec_static);
    pthread_mutexattr_destroy(&a);

    printf("normal (static initialiser):\n");
    int l1 = pthread_mutex_lock(&normal_static);
    int l2 = pthread_mutex_trylock(&normal_static);
    printf("  lock=%s trylock=%s\n", tt_err(l1), tt_err(l2));
    struct timespec t = tt_after(CLOCK_REALTIME, 20);
    printf("  timedlock by owner=%s\n", tt_err(pthread_mutex_timedlock(&normal_static, &t)));
    printf("  destroy while locked=%s\n", tt_err(pthread_mutex_destroy(&normal_static)));
    int u = pthread_mutex_unlock(&normal_static);
    int d = pthread_mutex_destroy(&normal_static);
    printf("  unlock=%s destroy=%s\n", tt_err(u), tt_err(d));

    pthread_t self = pthread_self();
    printf("join self=%s\n", tt_err(pthread_join(self, NULL)));
    printf("end\n");
    fflush(stdout);
    tt_report_threads();
    return 0;
}

/* sleep, usleep, nanosleep, clock_nanosleep: results, errors, rem, and
 * interruption by a signal. */
#include "diff.h"

#include <limits.h>

#define A "sleep"

static const struct timespec kSentinel = {77, 77};

static int rem_untouched(const struct timespec* r) {
    return r->tv_sec == kSentinel.tv_sec && r->tv_nsec == kSentinel.tv_nsec;
}

static long ts_ms(const struct timespec* t) {
    return (long)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

static struct timespec clock_plus(clockid_t c, long ms) {
    struct timespec t;
    clock_gettime(c, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_nsec -= 1000000000;
        ++t.tv_sec;
    }
    return t;
}

static int reached(clockid_t c, const struct timespec* target) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec > target->tv_sec || (t.tv_sec == target->tv_sec && t.tv_nsec >= target->tv_nsec);
}

static void bad_req_pointer(void) {
    CALL(nanosleep((const struct timespec*)1, NULL));
    rep(A, "nanosleep_req_bad_pointer", NULL);
}

static void clock_bad_req_pointer(void) {
    const int r = clock_nanosleep(CLOCK_MONOTONIC, 0, (const struct timespec*)1, NULL);
    rep_val(A, "clock_nanosleep_req_bad_pointer", r, 0, "retname=%s", ename(r));
}

static void relative_ok(void) {
    long t0 = now_ms();
    CALL(sleep(0));
    rep(A, "sleep_zero", NULL);

    t0 = now_ms();
    CALL(sleep(1));
    rep(A, "sleep_one_second", "slept>=1000ms=%s", yesno(now_ms() - t0 >= 1000));

    errno = ENOENT;
    const unsigned s = sleep(0);
    rep_val(A, "sleep_keeps_errno", s, 0, "errno_after=%s", ename(errno));

    CALL(usleep(0));
    rep(A, "usleep_zero", NULL);

    t0 = now_ms();
    CALL(usleep(50000));
    rep(A, "usleep_50ms", "slept>=50ms=%s", yesno(now_ms() - t0 >= 50));

    errno = ENOENT;
    const int u = usleep(2000);
    rep_val(A, "usleep_success_keeps_errno", u, 0, "errno_after=%s", ename(errno));

    struct timespec req = {0, 20000000};
    struct timespec rem = kSentinel;
    t0 = now_ms();
    CALL(nanosleep(&req, &rem));
    rep(A, "nanosleep_20ms", "slept>=20ms=%s rem_untouched=%s", yesno(now_ms() - t0 >= 20), yesno(rem_untouched(&rem)));

    req = (struct timespec){0, 0};
    CALL(nanosleep(&req, NULL));
    rep(A, "nanosleep_zero", NULL);

    req = (struct timespec){0, 1000};
    CALL(nanosleep(&req, NULL));
    rep(A, "nanosleep_1us", NULL);

    req = (struct timespec){0, 1000000};
    errno = EBADF;
    const int n = nanosleep(&req, NULL);
    rep_val(A, "nanosleep_success_keeps_errno", n, 0, "errno_after=%s", ename(errno));

    req = (struct timespec){0, 1000000};
    CALL(nanosleep(&req, (struct timespec*)1));
    rep(A, "nanosleep_rem_bad_pointer_unused", NULL);
}

static void nanosleep_errors(void) {
    struct timespec req = {0, 1000000000};
    struct timespec rem = kSentinel;
    CALL(nanosleep(&req, &rem));
    rep(A, "nanosleep_nsec_1e9", "rem_untouched=%s", yesno(rem_untouched(&rem)));

    req = (struct timespec){0, -1};
    CALL(nanosleep(&req, NULL));
    rep(A, "nanosleep_nsec_negative", NULL);

    req = (struct timespec){-1, 0};
    CALL(nanosleep(&req, NULL));
    rep(A, "nanosleep_sec_negative", NULL);

    req = (struct timespec){-1, -1};
    CALL(nanosleep(&req, NULL));
    rep(A, "nanosleep_both_negative", NULL);

    CALL(nanosleep(NULL, NULL));
    rep(A, "nanosleep_req_null", NULL);

    isolated(A, "nanosleep_req_bad_pointer", bad_req_pointer, 3);
}

static void clock_relative(void) {
    static const struct {
        clockid_t clock;
        const char* name;
    } clocks[] = {
        {CLOCK_MONOTONIC, "clock_nanosleep_monotonic_rel_20ms"},
        {CLOCK_REALTIME, "clock_nanosleep_realtime_rel_20ms"},
        {CLOCK_BOOTTIME, "clock_nanosleep_boottime_rel_20ms"},
        {CLOCK_TAI, "clock_nanosleep_tai_rel_20ms"},
    };
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; ++i) {
        struct timespec req = {0, 20000000};
        struct timespec rem = kSentinel;
        const long t0 = now_ms();
        const int r = clock_nanosleep(clocks[i].clock, 0, &req, &rem);
        rep_val(A, clocks[i].name, r, 0, "retname=%s slept>=20ms=%s rem_untouched=%s", ename(r),
                yesno(now_ms() - t0 >= 20), yesno(rem_untouched(&rem)));
    }

    struct timespec req = {0, 10000000};
    int r = clock_nanosleep(CLOCK_MONOTONIC, 2, &req, NULL);
    rep_val(A, "clock_nanosleep_unknown_flag_bit", r, 0, "retname=%s", ename(r));

    req = (struct timespec){0, 0};
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_rel_zero", r, 0, "retname=%s", ename(r));

    errno = ENOENT;
    req = (struct timespec){0, 1000000};
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_keeps_errno", r, 0, "errno_after=%s", ename(errno));
}

static void clock_absolute(void) {
    struct timespec t = clock_plus(CLOCK_MONOTONIC, 50);
    struct timespec rem = kSentinel;
    int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, &rem);
    rep_val(A, "clock_nanosleep_monotonic_abs_50ms", r, 0, "retname=%s reached=%s rem_untouched=%s", ename(r),
            yesno(reached(CLOCK_MONOTONIC, &t)), yesno(rem_untouched(&rem)));

    t = clock_plus(CLOCK_REALTIME, 50);
    r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_realtime_abs_50ms", r, 0, "retname=%s reached=%s", ename(r),
            yesno(reached(CLOCK_REALTIME, &t)));

    t = clock_plus(CLOCK_BOOTTIME, 30);
    r = clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_boottime_abs_30ms", r, 0, "retname=%s reached=%s", ename(r),
            yesno(reached(CLOCK_BOOTTIME, &t)));

    t = (struct timespec){1, 0};
    long t0 = now_ms();
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_monotonic_abs_past", r, 0, "retname=%s quick=%s", ename(r), yesno(now_ms() - t0 < 500));

    t = (struct timespec){0, 0};
    r = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_realtime_abs_epoch", r, 0, "retname=%s", ename(r));

    t = (struct timespec){-1, 0};
    t0 = now_ms();
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_abs_negative_sec", r, 0, "retname=%s quick=%s", ename(r), yesno(now_ms() - t0 < 500));

    t = (struct timespec){1, 1000000000};
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    rep_val(A, "clock_nanosleep_abs_nsec_1e9", r, 0, "retname=%s", ename(r));
}

static void clock_errors(void) {
    struct timespec req = {0, 1000000};
    errno = 0;
    int r = clock_nanosleep((clockid_t)100, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_invalid_clock", r, 0, "retname=%s errno_after=%s", ename(r), ename(errno));

    r = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_thread_cputime", r, 0, "retname=%s", ename(r));

    r = clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_monotonic_raw", r, 0, "retname=%s", ename(r));

    r = clock_nanosleep(CLOCK_REALTIME_COARSE, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_realtime_coarse", r, 0, "retname=%s", ename(r));

    req = (struct timespec){0, 1000000000};
    struct timespec rem = kSentinel;
    errno = 0;
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    rep_val(A, "clock_nanosleep_nsec_1e9", r, 0, "retname=%s errno_after=%s rem_untouched=%s", ename(r),
            ename(errno), yesno(rem_untouched(&rem)));

    req = (struct timespec){0, -5};
    r = clock_nanosleep(CLOCK_REALTIME, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_nsec_negative", r, 0, "retname=%s", ename(r));

    req = (struct timespec){-1, 0};
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    rep_val(A, "clock_nanosleep_rel_negative_sec", r, 0, "retname=%s", ename(r));

    r = clock_nanosleep(CLOCK_MONOTONIC, 0, NULL, NULL);
    rep_val(A, "clock_nanosleep_req_null", r, 0, "retname=%s", ename(r));

    isolated(A, "clock_nanosleep_req_bad_pointer", clock_bad_req_pointer, 3);
}

/* A 500 ms sleep cut at 50 ms by SIGALRM. The kernel never restarts a
 * sleep, SA_RESTART or not: -1/EINTR (or the error number) and the time
 * left. */
static void interrupted(void) {
    for (int restart = 0; restart <= 1; ++restart) {
        catch_signal(SIGALRM, restart);
        struct timespec req = {0, 500000000};
        struct timespec rem = kSentinel;
        const long t0 = now_ms();
        alarm_ms(50);
        CALL(nanosleep(&req, &rem));
        const long took = now_ms() - t0;
        rep(A, restart ? "nanosleep_interrupted_sa_restart" : "nanosleep_interrupted",
            "handled=%d early=%s rem_in_range=%s", (int)g_signals, yesno(took < 450),
            yesno(!rem_untouched(&rem) && ts_ms(&rem) > 0 && ts_ms(&rem) <= 500));
        alarm_ms(0);
    }

    catch_signal(SIGALRM, 0);
    long t0 = now_ms();
    alarm_ms(50);
    CALL(usleep(500000));
    rep(A, "usleep_interrupted", "handled=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 450));
    alarm_ms(0);

    catch_signal(SIGALRM, 0);
    t0 = now_ms();
    alarm_ms(50);
    CALL(sleep(2));
    rep(A, "sleep_interrupted", "handled=%d early=%s", (int)g_signals, yesno(now_ms() - t0 < 1500));
    alarm_ms(0);

    catch_signal(SIGALRM, 0);
    struct timespec req = {0, 500000000};
    struct timespec rem = kSentinel;
    t0 = now_ms();
    alarm_ms(50);
    int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    rep_val(A, "clock_nanosleep_rel_interrupted", r, 0, "retname=%s handled=%d early=%s rem_in_range=%s", ename(r),
            (int)g_signals, yesno(now_ms() - t0 < 450), yesno(!rem_untouched(&rem) && ts_ms(&rem) > 0 && ts_ms(&rem) <= 500));
    alarm_ms(0);

    catch_signal(SIGALRM, 0);
    struct timespec t = clock_plus(CLOCK_MONOTONIC, 500);
    rem = kSentinel;
    t0 = now_ms();
    alarm_ms(50);
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, &rem);
    rep_val(A, "clock_nanosleep_abs_interrupted", r, 0, "retname=%s handled=%d early=%s rem_untouched=%s", ename(r),
            (int)g_signals, yesno(now_ms() - t0 < 450), yesno(rem_untouched(&rem)));
    alarm_ms(0);
    default_signal(SIGALRM);
}

int main(void) {
    begin();
    relative_ok();
    nanosleep_errors();
    clock_relative();
    clock_absolute();
    clock_errors();
    interrupted();
    return finish(A);
}

/* Shared helpers of the shim's differential battery (run_diff.sh).
 *
 * Each program prints one transcript line per case on stdout:
 *     case <area>.<name>: ret=<value> errno=<NAME or 0> [extra...]
 * and nothing that depends on time, pids, addresses or fd numbers, so that a
 * plain run and a run under grove-run must print the same bytes. On stderr,
 * outside the transcript, it says whether libgrove_shim is mapped; the runner
 * checks that line.
 *
 * The programs are plain C and know nothing of grove. A case that might
 * crash or hang under a broken shim runs in a forked child (isolated()) or
 * has a helper process that ends the wait after a bound, so that one bad
 * case shows up as one differing line instead of a lost transcript. */
#ifndef GROVE_DIFF_H
#define GROVE_DIFF_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long g_ret;     /* the last CALL's result */
static int g_err;      /* errno right after it, if it failed; else 0 */
static int g_raw_err;  /* errno right after it, whatever the result */
static int g_cases;
static int g_ret_is_fd;  /* print a non-negative ret as "fd", not its number */

/* Runs one call with errno cleared before it and captured right after it. */
#define CALL(x) \
    ((void)(g_ret_is_fd = 0, errno = 0, g_ret = (long)(x), g_raw_err = errno, g_err = g_ret < 0 ? g_raw_err : 0))
/* The same for a call that returns a new fd: its number is not printed. */
#define CALL_FD(x) \
    ((void)(errno = 0, g_ret = (long)(x), g_raw_err = errno, g_err = g_ret < 0 ? g_raw_err : 0, g_ret_is_fd = 1))

static inline const char* ename(int e) {
    static char buf[32];
    if (e == 0) {
        return "0";
    }
    const char* n = strerrorname_np(e);
    if (n != NULL) {
        return n;
    }
    snprintf(buf, sizeof buf, "E#%d", e);
    return buf;
}

/* One transcript line: ret and errno from the last CALL, then `fmt`. A
 * call that succeeded yet changed errno (cleared before it) says so: libc's
 * calls leave it alone, and so must the shim's. */
static inline void rep(const char* area, const char* name, const char* fmt, ...) {
    if (g_ret_is_fd && g_ret >= 0) {
        printf("case %s.%s: ret=fd errno=%s", area, name, ename(g_err));
    } else {
        printf("case %s.%s: ret=%ld errno=%s", area, name, g_ret, ename(g_err));
    }
    if (g_ret >= 0 && g_raw_err != 0) {
        printf(" errno-on-success=%s", ename(g_raw_err));
    }
    if (fmt != NULL && fmt[0] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        putchar(' ');
        vprintf(fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
    ++g_cases;
}

/* A line for a case whose result is not one call (ret is given). */
static inline void rep_val(const char* area, const char* name, long ret, int err, const char* fmt, ...) {
    printf("case %s.%s: ret=%ld errno=%s", area, name, ret, ename(err));
    if (fmt != NULL && fmt[0] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        putchar(' ');
        vprintf(fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
    ++g_cases;
}

/* Bytes as text when printable, else hex; a few rotating buffers. */
static inline const char* dat(const void* p, long n) {
    static char bufs[4][256];
    static int which;
    char* out = bufs[which++ & 3];
    const unsigned char* b = p;
    int printable = 1;
    if (n <= 0) {
        return "''";
    }
    for (long i = 0; i < n; ++i) {
        if (b[i] < 0x20 || b[i] > 0x7e) {
            printable = 0;
        }
    }
    if (n > 100) {
        unsigned long sum = 5381;
        for (long i = 0; i < n; ++i) {
            sum = sum * 33 + b[i];
        }
        snprintf(out, 256, "<%ld bytes, hash %08lx>", n, sum & 0xffffffffUL);
    } else if (printable) {
        snprintf(out, 256, "'%.*s'", (int)n, (const char*)b);
    } else {
        char* o = out;
        *o++ = '0';
        *o++ = 'x';
        for (long i = 0; i < n; ++i) {
            o += sprintf(o, "%02x", b[i]);
        }
        *o = '\0';
    }
    return out;
}

static inline long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* djb2 over n bytes, kept to 32 bits: the fingerprint drain_child reports. */
static inline unsigned long hash_of(const unsigned char* p, size_t n) {
    unsigned long h = 5381;
    for (size_t i = 0; i < n; ++i) {
        h = h * 33 + p[i];
    }
    return h & 0xffffffffUL;
}

/* A child that sleeps delay_ms, then reads fd to EOF `chunk` bytes at a
 * time (at most 64 KiB), pausing pause_ms after each read, and writes
 * "<count> <hash>" (hash_of the stream) to `result`. */
static inline pid_t drain_child(int fd, int close_me, int result, long delay_ms, size_t chunk, long pause_ms) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (close_me >= 0) {
            close(close_me);
        }
        sleep_ms(delay_ms);
        static unsigned char buf[65536];
        if (chunk > sizeof buf) {
            chunk = sizeof buf;
        }
        unsigned long count = 0;
        unsigned long hash = 5381;
        ssize_t r;
        while ((r = read(fd, buf, chunk)) > 0) {
            for (ssize_t i = 0; i < r; ++i) {
                hash = hash * 33 + buf[i];
            }
            count += (unsigned long)r;
            if (pause_ms > 0) {
                sleep_ms(pause_ms);
            }
        }
        char line[64];
        const int n = snprintf(line, sizeof line, "%lu %08lx", count, hash & 0xffffffffUL);
        (void)!write(result, line, (size_t)n);
        _exit(r == 0 ? 0 : 1);
    }
    return pid;
}

/* What a drain_child wrote to its result pipe. */
static inline const char* result_of(int fd) {
    static char line[64];
    const ssize_t n = read(fd, line, sizeof line - 1);
    line[n > 0 ? n : 0] = '\0';
    return line;
}

static inline const char* yesno(int b) {
    return b ? "yes" : "no";
}

/* Tells the runner, on stderr, whether the shim is in this process. */
static inline void report_shim(void) {
    FILE* f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "libgrove_shim") != NULL) {
            found = 1;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    fprintf(stderr, "diff-shim-loaded=%d\n", found);
}

static inline void begin(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    report_shim();
}

static inline int finish(const char* area) {
    printf("end %s: %d cases\n", area, g_cases);
    fflush(stdout);
    return 0;
}

static inline const char* sig_name(int s) {
    const char* n = sigabbrev_np(s);
    return n != NULL ? n : "?";
}

/* "exit=N", "signal=NAME", "stopped=NAME" or "continued". */
static inline const char* status_str(int st) {
    static char buf[64];
    if (WIFEXITED(st)) {
        snprintf(buf, sizeof buf, "exit=%d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        snprintf(buf, sizeof buf, "signal=%s", sig_name(WTERMSIG(st)));
    } else if (WIFSTOPPED(st)) {
        snprintf(buf, sizeof buf, "stopped=%s", sig_name(WSTOPSIG(st)));
    } else if (WIFCONTINUED(st)) {
        snprintf(buf, sizeof buf, "continued");
    } else {
        snprintf(buf, sizeof buf, "status=%#x", st);
    }
    return buf;
}

/* Waits for a helper child, retrying EINTR; its status as status_str. */
static inline const char* reap(pid_t pid) {
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    return r == pid ? status_str(st) : "reap-failed";
}

/* Runs fn in a forked child, which prints its own case line(s). A crash
 * or a hang (killed after `limit_s` seconds) becomes one line instead. */
static inline void isolated(const char* area, const char* name, void (*fn)(void), unsigned limit_s) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(limit_s);
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        rep_val(area, name, -1, 0, "isolated-child-died %s", r == pid ? status_str(st) : "lost");
    } else {
        ++g_cases;  /* the child printed it */
    }
}

/* A helper process that sleeps `delay_ms` then writes `s` to fd. */
static inline pid_t delayed_write(int fd, long delay_ms, const char* s) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(delay_ms);
        const ssize_t w = write(fd, s, strlen(s));
        _exit(w == (ssize_t)strlen(s) ? 0 : 1);
    }
    return pid;
}

/* A helper process that sleeps `delay_ms` then closes nothing but exits:
 * with the write ends it inherited, the reader sees EOF when it exits. */
static inline pid_t delayed_exit(long delay_ms, int code) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(delay_ms);
        _exit(code);
    }
    return pid;
}

static volatile sig_atomic_t g_signals;

static inline void on_signal(int s) {
    (void)s;
    ++g_signals;
}

/* Installs on_signal for sig, with or without SA_RESTART. */
static inline void catch_signal(int sig, int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(sig, &sa, NULL);
    g_signals = 0;
}

static inline void default_signal(int sig) {
    signal(sig, SIG_DFL);
}

/* SIGALRM once after ms (ITIMER_REAL). */
static inline void alarm_ms(long ms) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

static inline struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static inline unsigned short local_port(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr*)&a, &len) != 0) {
        return 0;
    }
    return ntohs(a.sin_port);
}

/* A TCP listener on 127.0.0.1, ephemeral port; its port in *port. */
static inline int tcp_listener(unsigned short* port, int flags) {
    const int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(0);
    if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
        fprintf(stderr, "tcp_listener failed: %s\n", strerror(errno));
        exit(3);
    }
    *port = local_port(fd);
    return fd;
}

/* A connected TCP pair over loopback: *c the client, *s the server side. */
static inline void tcp_pair(int* c, int* s) {
    unsigned short port;
    const int l = tcp_listener(&port, 0);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (connect(*c, (struct sockaddr*)&a, sizeof a) != 0) {
        fprintf(stderr, "tcp_pair connect failed: %s\n", strerror(errno));
        exit(3);
    }
    *s = accept(l, NULL, NULL);
    if (*s < 0) {
        fprintf(stderr, "tcp_pair accept failed: %s\n", strerror(errno));
        exit(3);
    }
    close(l);
}

/* A loopback port nobody listens on (bound once, then released). */
/* A TCP port that refuses connections: bound by *holder, never listening,
 * so no other process can take it meanwhile. Close *holder when done. */
static inline unsigned short refusing_port(int* holder) {
    *holder = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    bind(*holder, (struct sockaddr*)&a, sizeof a);
    return local_port(*holder);
}

static inline int fl_nonblock(int fd) {
    const int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static inline int fd_cloexec(int fd) {
    const int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC) != 0;
}

static inline int fd_open(int fd) {
    return fcntl(fd, F_GETFD) >= 0;
}

/* A temporary regular file holding `content`, already unlinked. */
static inline int temp_file(const char* content) {
    char path[] = "/tmp/grove-diff-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "mkstemp failed: %s\n", strerror(errno));
        exit(3);
    }
    unlink(path);
    if (content != NULL) {
        const size_t n = strlen(content);
        if (write(fd, content, n) != (ssize_t)n) {
            exit(3);
        }
        lseek(fd, 0, SEEK_SET);
    }
    return fd;
}

/* An fd number that is certainly closed. */
static inline int closed_fd(void) {
    const int fd = open("/dev/null", O_RDONLY);
    close(fd);
    return fd;
}

#endif

/* stdio output onto pipes and sockets that fill up: fwrite, fputs, fputc,
 * putc, putchar, puts, fflush, their _unlocked forms, the putc_unlocked
 * macro (__overflow), the printf family with its _chk forms, dprintf;
 * full, line and unbuffered FILEs; values, errno and the error flag on
 * EBADF and EPIPE; %n, wide widths, 1 MiB outputs checked by a hash in
 * the reading child; regular files and /dev/null (passed through). */
#include "diff.h"

#include <wchar.h>

#define A "stdio_out"

int __printf_chk(int flag, const char* format, ...);
int __fprintf_chk(FILE* f, int flag, const char* format, ...);
int __vprintf_chk(int flag, const char* format, va_list ap);
int __vfprintf_chk(FILE* f, int flag, const char* format, va_list ap);
int __dprintf_chk(int fd, int flag, const char* format, ...);
int __vdprintf_chk(int fd, int flag, const char* format, va_list ap);

#define MIB (1 << 20)
static unsigned char big[MIB + 1];

static void fill_big(void) {
    for (size_t i = 0; i < MIB; ++i) {
        big[i] = (unsigned char)('a' + (i * 7 + i / 4093) % 26);
        if (i % 61 == 60) {
            big[i] = '\n';
        }
    }
    big[MIB] = '\0';
}

static const char* flags_of(FILE* f) {
    static char buf[32];
    snprintf(buf, sizeof buf, "eof=%d err=%d", feof(f) != 0, ferror(f) != 0);
    return buf;
}

/* A FILE on the writing end of a pipe (or socketpair) whose other end a
 * drain_child reads after delay_ms, `chunk` bytes at a time. */
struct sink {
    FILE* f;
    int result;
    pid_t pid;
};

static struct sink open_sink(int socket, const char* mode, int bufmode, size_t bufsize, long delay_ms, size_t chunk,
                             long pause_ms) {
    int p[2];
    int res[2];
    if ((socket ? socketpair(AF_UNIX, SOCK_STREAM, 0, p) : pipe(p)) != 0 || pipe(res) != 0) {
        exit(3);
    }
    if (socket) {
        const int small = 8192;
        setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(p[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    struct sink s;
    s.pid = drain_child(p[0], p[1], res[1], delay_ms, chunk, pause_ms);
    close(p[0]);
    close(res[1]);
    s.result = res[0];
    s.f = fdopen(p[1], mode);
    if (s.f == NULL) {
        exit(3);
    }
    if (bufmode >= 0) {
        setvbuf(s.f, NULL, bufmode, bufsize);
    }
    return s;
}

/* Closes the FILE (its return and errno in the line) and reports what
 * the reader got. */
static void close_sink(struct sink* s, const char* name) {
    errno = 0;
    const int r = fclose(s->f);
    const int e = r != 0 ? errno : 0;
    const char* got = result_of(s->result);
    rep_val(A, name, r, e, "reader=%s child=%s", got, reap(s->pid));
    close(s->result);
}

/* A pipe whose write end is a FILE and whose read end (*r) is
 * non-blocking: what each call wrote can be read back at once. */
static FILE* probe_pipe(int* r, const char* mode) {
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *r = p[0];
    FILE* f = fdopen(p[1], mode);
    if (f == NULL) {
        exit(3);
    }
    return f;
}

/* Everything the pipe holds now. */
static const char* arrived(int r) {
    static char buf[4][65536];
    static int which;
    char* b = buf[which++ & 3];
    long n = 0;
    ssize_t k;
    while (n < (long)sizeof buf[0] && (k = read(r, b + n, sizeof buf[0] - (size_t)n)) > 0) {
        n += k;
    }
    return dat(b, n);
}

static void big_cases(void) {
    /* 1 MiB in one fwrite through a pipe the reader drains slowly. */
    struct sink s = open_sink(0, "w", -1, 0, 100, 4096, 0);
    CALL(fwrite(big, 1, MIB, s.f));
    rep(A, "fwrite_1mib_pipe", "%s", flags_of(s.f));
    close_sink(&s, "fwrite_1mib_pipe_reader");

    /* The same in 61-byte lines through fputs, the reader late. */
    s = open_sink(0, "w", -1, 0, 150, 1000, 0);
    long ok = 0;
    char line[62];
    for (size_t i = 0; i + 61 <= MIB; i += 61) {
        memcpy(line, big + i, 61);
        line[61] = '\0';
        ok += fputs(line, s.f) >= 0;
    }
    rep_val(A, "fputs_lines_pipe", ok, 0, "%s", flags_of(s.f));
    close_sink(&s, "fputs_lines_pipe_reader");

    /* fprintf of 1 MiB in one call over a socketpair. */
    s = open_sink(1, "w", -1, 0, 100, 8192, 0);
    CALL(fprintf(s.f, "[%s]", (const char*)big));
    rep(A, "fprintf_1mib_socket", "%s", flags_of(s.f));
    close_sink(&s, "fprintf_1mib_socket_reader");

    /* Byte by byte through putc and the putc_unlocked macro. */
    s = open_sink(0, "w", -1, 0, 100, 512, 0);
    ok = 0;
    for (size_t i = 0; i < 200000; ++i) {
        ok += putc(big[i], s.f) == big[i];
    }
    for (size_t i = 200000; i < 400000; ++i) {
        ok += putc_unlocked(big[i], s.f) == big[i];
    }
    rep_val(A, "putc_and_macro_400000_pipe", ok, 0, "%s", flags_of(s.f));
    close_sink(&s, "putc_and_macro_400000_pipe_reader");

    /* Line-buffered: every newline flushes, the reader slow. */
    s = open_sink(0, "w", _IOLBF, 0, 100, 300, 0);
    CALL(fwrite(big, 61, 8000, s.f));
    rep(A, "fwrite_line_buffered_pipe", "%s", flags_of(s.f));
    close_sink(&s, "fwrite_line_buffered_pipe_reader");

    /* Unbuffered: each call writes. */
    s = open_sink(0, "w", _IONBF, 0, 100, 4096, 0);
    ok = 0;
    for (int i = 0; i < 40; ++i) {
        ok += fwrite(big + i * 10000, 1, 10000, s.f);
    }
    ok += fputc('!', s.f) == '!';
    rep_val(A, "fwrite_unbuffered_pipe", ok, 0, "%s", flags_of(s.f));
    close_sink(&s, "fwrite_unbuffered_pipe_reader");

    /* A small user buffer: partial copies, direct writes of what remains. */
    s = open_sink(0, "w", -1, 0, 100, 777, 0);
    static char user_buf[100];
    setvbuf(s.f, user_buf, _IOFBF, sizeof user_buf);
    ok = 0;
    for (size_t i = 0; i < 300000; i += 333) {
        ok += fwrite(big + i, 1, 333, s.f) == 333;
    }
    rep_val(A, "fwrite_user_buffer_100_pipe", ok, 0, "%s", flags_of(s.f));
    close_sink(&s, "fwrite_user_buffer_100_pipe_reader");

    /* dprintf straight to the fd. */
    int p[2];
    int res[2];
    if (pipe(p) != 0 || pipe(res) != 0) {
        exit(3);
    }
    pid_t pid = drain_child(p[0], p[1], res[1], 100, 4096, 0);
    close(p[0]);
    close(res[1]);
    CALL(dprintf(p[1], "%.300000s|%d", (const char*)big, 7));
    rep(A, "dprintf_300000_pipe", NULL);
    CALL(__dprintf_chk(p[1], 1, "%*d|", 200000, 5));
    rep(A, "dprintf_chk_width_200000_pipe", NULL);
    close(p[1]);
    rep_val(A, "dprintf_pipe_reader", 0, 0, "reader=%s child=%s", result_of(res[0]), reap(pid));
    close(res[0]);

    /* A wide width through fprintf, and %n. */
    s = open_sink(0, "w", -1, 0, 50, 4096, 0);
    int n1 = -1;
    int n2 = -1;
    CALL(fprintf(s.f, "abc%n%150000d%-70000s|%n", &n1, 42, "left", &n2));
    rep(A, "fprintf_wide_widths_and_n", "n1=%d n2=%d %s", n1, n2, flags_of(s.f));
    close_sink(&s, "fprintf_wide_widths_reader");
}

/* putchar, puts, printf and the rest that write to stdout, with fd 1 on a
 * pipe for a while. */
static void stdout_cases(void) {
    fflush(stdout);
    int p[2];
    int res[2];
    if (pipe(p) != 0 || pipe(res) != 0) {
        exit(3);
    }
    const pid_t pid = drain_child(p[0], p[1], res[1], 100, 2048, 0);
    close(p[0]);
    close(res[1]);
    const int saved = dup(1);
    dup2(p[1], 1);
    close(p[1]);
    long r[12];
    int n = -1;
    r[0] = putchar('x');
    r[1] = puts((const char*)big + MIB - 200000);
    r[2] = printf("%s%n", (const char*)big + MIB - 300000, &n);
    r[3] = __printf_chk(1, "%d %s\n", 12345, "chk");
    r[4] = putchar_unlocked('y');
    r[5] = fputs_unlocked((const char*)big + MIB - 100000, stdout);
    r[6] = (long)fwrite_unlocked(big, 1000, 100, stdout);
    r[7] = fflush_unlocked(stdout);
    r[8] = fputc_unlocked('z', stdout);
    r[9] = printf("%70000s", "");
    r[10] = fflush(stdout);
    r[11] = n;
    dup2(saved, 1);
    close(saved);
    rep_val(A, "stdout_on_pipe", r[0], 0,
            "puts=%ld printf=%ld n=%ld printf_chk=%ld putchar_unlocked=%ld fputs_unlocked=%ld", r[1], r[2], r[11], r[3],
            r[4], r[5]);
    rep_val(A, "stdout_on_pipe_more", r[6], 0, "fflush_unlocked=%ld fputc_unlocked=%ld printf_pad=%ld fflush=%ld", r[7],
            r[8], r[9], r[10]);
    rep_val(A, "stdout_on_pipe_reader", 0, 0, "reader=%s child=%s", result_of(res[0]), reap(pid));
    close(res[0]);

    /* fflush(NULL) with stdout on a pipe nobody reads any more. */
    if (pipe(p) != 0) {
        exit(3);
    }
    close(p[0]);
    const int saved2 = dup(1);
    dup2(p[1], 1);
    close(p[1]);
    const int pr = printf("no newline");
    errno = 0;
    const int fr = fflush(NULL);
    const int fe = errno;
    const int se = ferror(stdout) != 0;
    dup2(saved2, 1);
    close(saved2);
    clearerr(stdout);
    rep_val(A, "fflush_null_stdout_epipe", fr, fe, "printf=%d stdout_err=%d", pr, se);
}

static int call_vprintf(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = vprintf(format, ap);
    va_end(ap);
    return r;
}

static int call_vprintf_chk(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = __vprintf_chk(1, format, ap);
    va_end(ap);
    return r;
}

static int call_vfprintf(FILE* f, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = vfprintf(f, format, ap);
    va_end(ap);
    return r;
}

static int call_vfprintf_chk(FILE* f, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = __vfprintf_chk(f, 1, format, ap);
    va_end(ap);
    return r;
}

static int call_vdprintf(int fd, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = vdprintf(fd, format, ap);
    va_end(ap);
    return r;
}

static int call_vdprintf_chk(int fd, const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    const int r = __vdprintf_chk(fd, 1, format, ap);
    va_end(ap);
    return r;
}

/* When each call writes, seen from a non-blocking read end. */
static void buffering_cases(void) {
    int r;
    FILE* f = probe_pipe(&r, "w");
    setvbuf(f, NULL, _IOLBF, 0);
    CALL(fputs("abc", f));
    rep(A, "line_buffered_no_newline", "arrived=%s", arrived(r));
    CALL(fputs("d\nef", f));
    rep(A, "line_buffered_newline_inside", "arrived=%s", arrived(r));
    CALL(fputc('\n', f));
    rep(A, "line_buffered_fputc_newline", "arrived=%s", arrived(r));
    CALL(fprintf(f, "%d-%s", 7, "x\ny\nz"));
    rep(A, "line_buffered_fprintf", "arrived=%s", arrived(r));
    CALL(call_vfprintf(f, "[%5s]\n", "v"));
    rep(A, "line_buffered_vfprintf", "arrived=%s", arrived(r));
    CALL(call_vfprintf_chk(f, "[%-5s]", "w"));
    rep(A, "line_buffered_vfprintf_chk", "arrived=%s", arrived(r));
    CALL(fflush(f));
    rep(A, "line_buffered_fflush", "arrived=%s", arrived(r));
    fclose(f);
    close(r);

    f = probe_pipe(&r, "w");
    setvbuf(f, NULL, _IONBF, 0);
    CALL(fputc('u', f));
    rep(A, "unbuffered_fputc", "arrived=%s", arrived(r));
    CALL(__fprintf_chk(f, 1, "%s=%d", "k", 3));
    rep(A, "unbuffered_fprintf_chk", "arrived=%s", arrived(r));
    CALL(fwrite("abcdef", 2, 3, f));
    rep(A, "unbuffered_fwrite_items", "arrived=%s", arrived(r));
    fclose(f);
    close(r);

    /* A 16-byte buffer: the pattern of copies and direct writes. */
    f = probe_pipe(&r, "w");
    static char small[16];
    setvbuf(f, small, _IOFBF, sizeof small);
    CALL(fwrite("0123456789", 1, 10, f));
    rep(A, "small_buffer_first_10", "arrived=%s", arrived(r));
    CALL(fwrite("ABCDEFGHIJ", 1, 10, f));
    rep(A, "small_buffer_next_10", "arrived=%s", arrived(r));
    CALL(fwrite("abcdefghijklmnopqrstuvwxyz0123456789", 1, 36, f));
    rep(A, "small_buffer_36", "arrived=%s", arrived(r));
    CALL(putc('!', f));
    rep(A, "small_buffer_putc", "arrived=%s", arrived(r));
    CALL(__overflow(f, '?'));
    rep(A, "small_buffer_overflow_call", "arrived=%s", arrived(r));
    CALL(fflush(NULL));
    rep(A, "small_buffer_fflush_null", "arrived=%s", arrived(r));
    fclose(f);
    close(r);

    /* Full buffering (the pipe's default): nothing until the flush. */
    f = probe_pipe(&r, "w");
    CALL(fprintf(f, "%s %d", "full", 1));
    rep(A, "full_buffered_fprintf", "arrived=%s", arrived(r));
    CALL(fputs("more\n", f));
    rep(A, "full_buffered_fputs", "arrived=%s", arrived(r));
    flockfile(f);
    CALL(fwrite_unlocked("locked", 1, 6, f));
    funlockfile(f);
    rep(A, "full_buffered_fwrite_unlocked", "arrived=%s", arrived(r));
    CALL(fclose(f));
    rep(A, "full_buffered_fclose_writes", "arrived=%s", arrived(r));
    close(r);

    /* vprintf and __vprintf_chk, with fd 1 on a probe pipe. */
    fflush(stdout);
    f = probe_pipe(&r, "w");
    const int saved = dup(1);
    dup2(fileno(f), 1);
    const int a = call_vprintf("%s-%d;", "vp", 1);
    const int b = call_vprintf_chk("%s-%d;", "vpc", 2);
    const int c = fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rep_val(A, "vprintf_and_chk_on_pipe", a, 0, "chk=%d fflush=%d arrived=%s", b, c, arrived(r));
    fclose(f);
    close(r);

    /* dprintf family on a probe pipe. */
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    CALL(call_vdprintf(p[1], "%s:%x", "vd", 255));
    rep(A, "vdprintf_pipe", "arrived=%s", arrived(p[0]));
    CALL(call_vdprintf_chk(p[1], "%s:%o", "vdc", 8));
    rep(A, "vdprintf_chk_pipe", "arrived=%s", arrived(p[0]));
    CALL(dprintf(p[1], "%s", ""));
    rep(A, "dprintf_empty", "arrived=%s", arrived(p[0]));
    close(p[1]);
    close(p[0]);
}

static void error_cases(void) {
    /* EPIPE with SIGPIPE ignored. */
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    close(p[0]);
    FILE* f = fdopen(p[1], "w");
    CALL(fwrite("abc", 1, 3, f));
    rep(A, "epipe_fwrite_buffered", "%s", flags_of(f));
    CALL(fflush(f));
    rep(A, "epipe_fflush", "%s", flags_of(f));
    clearerr(f);
    rep_val(A, "epipe_clearerr", 0, 0, "%s", flags_of(f));
    CALL(fprintf(f, "%s", "x"));
    rep(A, "epipe_fprintf_buffered", "%s", flags_of(f));
    CALL(fclose(f));
    rep(A, "epipe_fclose_with_pending", NULL);

    if (pipe(p) != 0) {
        exit(3);
    }
    close(p[0]);
    f = fdopen(p[1], "w");
    setvbuf(f, NULL, _IONBF, 0);
    CALL(fputs("abc", f));
    rep(A, "epipe_fputs_unbuffered", "%s", flags_of(f));
    CALL(fprintf(f, "%d", 12));
    rep(A, "epipe_fprintf_unbuffered", "%s", flags_of(f));
    CALL(fputc('a', f));
    rep(A, "epipe_fputc_unbuffered", "%s", flags_of(f));
    CALL(fwrite("abcdef", 3, 2, f));
    rep(A, "epipe_fwrite_items_unbuffered", "%s", flags_of(f));
    CALL(dprintf(p[1], "%s", "gone"));
    rep(A, "epipe_dprintf", NULL);
    fclose(f);

    if (pipe(p) != 0) {
        exit(3);
    }
    close(p[0]);
    f = fdopen(p[1], "w");
    setvbuf(f, NULL, _IOLBF, 0);
    CALL(fputs("line\n", f));
    rep(A, "epipe_fputs_line_buffered", "%s", flags_of(f));
    CALL(fwrite("a\nb", 1, 3, f));
    rep(A, "epipe_fwrite_line_buffered_all_buffered", "%s", flags_of(f));
    fclose(f);

    /* EBADF: the fd closed under the FILE. */
    if (pipe(p) != 0) {
        exit(3);
    }
    f = fdopen(p[1], "w");
    close(p[1]);
    CALL(fputs("abc", f));
    rep(A, "ebadf_fputs_buffered", "%s", flags_of(f));
    CALL(fflush(f));
    rep(A, "ebadf_fflush", "%s", flags_of(f));
    clearerr(f);
    CALL(fprintf(f, "%0500d", 1));
    rep(A, "ebadf_fprintf", "%s", flags_of(f));
    CALL(fflush(f));
    rep(A, "ebadf_fflush_again", "%s", flags_of(f));
    CALL(dprintf(p[1], "x"));
    rep(A, "ebadf_dprintf", NULL);
    CALL(fclose(f));
    rep(A, "ebadf_fclose", NULL);
    close(p[0]);

    /* Writing a read-only FILE: EBADF and the error flag, nothing written. */
    if (pipe(p) != 0) {
        exit(3);
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    f = fdopen(p[0], "r");
    CALL(fputs("abc", f));
    rep(A, "read_only_fputs", "%s", flags_of(f));
    clearerr(f);
    CALL(fputc('a', f));
    rep(A, "read_only_fputc", "%s", flags_of(f));
    clearerr(f);
    CALL(fprintf(f, "%d", 5));
    rep(A, "read_only_fprintf", "%s", flags_of(f));
    clearerr(f);
    CALL(fwrite("ab", 1, 2, f));
    rep(A, "read_only_fwrite", "%s", flags_of(f));
    CALL(fflush(f));
    rep(A, "read_only_fflush", "%s", flags_of(f));
    CALL(dprintf(p[0], "x"));
    rep(A, "dprintf_to_read_end", NULL);
    fclose(f);
    close(p[1]);

    /* A wide-oriented FILE takes no byte output. */
    if (pipe(p) != 0) {
        exit(3);
    }
    f = fdopen(p[1], "w");
    fwide(f, 1);
    CALL(fputs("abc", f));
    rep(A, "wide_fputs", "%s", flags_of(f));
    CALL(fprintf(f, "abc"));
    rep(A, "wide_fprintf", "%s", flags_of(f));
    fclose(f);
    close(p[0]);

    /* The reader leaves half-way through a 1 MiB fwrite. */
    int res[2];
    if (pipe(p) != 0 || pipe(res) != 0) {
        exit(3);
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        static char buf[4096];
        long got = 0;
        while (got < 200000) {
            const ssize_t k = read(p[0], buf, sizeof buf);
            if (k <= 0) {
                break;
            }
            got += k;
        }
        _exit(0);
    }
    close(p[0]);
    close(res[0]);
    close(res[1]);
    f = fdopen(p[1], "w");
    errno = 0;
    const size_t w = fwrite(big, 1, MIB, f);
    const int e = errno;
    rep_val(A, "epipe_mid_fwrite", w < MIB && w >= 200000, e, "%s child=%s", flags_of(f), reap(pid));
    fclose(f);
}

static void file_cases(void) {
    /* A regular file: stdio as it is. */
    const int fd = temp_file(NULL);
    FILE* f = fdopen(fd, "w+");
    CALL(fprintf(f, "%s %d\n", "regular", 1));
    rep(A, "regular_fprintf", "%s", flags_of(f));
    CALL(fwrite(big, 1, 100000, f));
    rep(A, "regular_fwrite", NULL);
    CALL(fputs("tail\n", f));
    rep(A, "regular_fputs", NULL);
    CALL(fflush(f));
    rep(A, "regular_fflush", NULL);
    CALL(ftell(f));
    rep(A, "regular_ftell", NULL);
    rewind(f);
    char line[64];
    const char* g = fgets(line, sizeof line, f);
    rep_val(A, "regular_read_back", g != NULL, 0, "data=%s", dat(line, g != NULL ? (long)strlen(line) : 0));
    fclose(f);

    f = fopen("/dev/null", "w");
    CALL(fprintf(f, "%100000d", 1));
    rep(A, "devnull_fprintf", "%s", flags_of(f));
    CALL(fwrite(big, 1, MIB, f));
    rep(A, "devnull_fwrite", NULL);
    CALL(fputc('a', f));
    rep(A, "devnull_fputc", NULL);
    CALL(fflush(f));
    rep(A, "devnull_fflush", NULL);
    CALL(fclose(f));
    rep(A, "devnull_fclose", NULL);
}

/* A read/write FILE on a socket: a line out, the echo back, again. */
static void rw_socket_case(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char buf[256];
        ssize_t k;
        while ((k = read(sv[1], buf, sizeof buf)) > 0) {
            sleep_ms(30);
            if (write(sv[1], buf, (size_t)k) != k) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(sv[1]);
    FILE* f = fdopen(sv[0], "r+");
    char line[64];
    int r1 = fprintf(f, "ping %d\n", 1);
    int r2 = fflush(f);
    char* g1 = fgets(line, sizeof line, f);
    rep_val(A, "socket_rw_first", r1, 0, "fflush=%d echo=%s", r2, dat(line, g1 != NULL ? (long)strlen(line) : 0));
    r1 = fputs("pong 2\n", f);
    r2 = fflush(f);
    char* g2 = fgets(line, sizeof line, f);
    rep_val(A, "socket_rw_second", r1, 0, "fflush=%d echo=%s %s", r2, dat(line, g2 != NULL ? (long)strlen(line) : 0),
            flags_of(f));
    shutdown(sv[0], SHUT_WR);
    fclose(f);
    rep_val(A, "socket_rw_child", 0, 0, "%s", reap(pid));
}

/* A blocked flush and a signal: with SA_RESTART the write goes on once the
 * reader comes; without it the flush fails with EINTR. */
static void signal_cases(void) {
    for (int restart = 0; restart < 2; ++restart) {
        int p[2];
        int res[2];
        if (pipe(p) != 0 || pipe(res) != 0) {
            exit(3);
        }
        /* Fill the pipe to the brim (64 KiB) before the reader starts. */
        static char fillbuf[65536];
        if (write(p[1], fillbuf, sizeof fillbuf) != (ssize_t)sizeof fillbuf) {
            exit(3);
        }
        const pid_t pid = drain_child(p[0], p[1], res[1], 400, 4096, 0);
        close(p[0]);
        close(res[1]);
        FILE* f = fdopen(p[1], "w");
        catch_signal(SIGALRM, restart);
        alarm_ms(100);
        CALL(fputs("after the signal\n", f));
        const long r1 = g_ret;
        CALL(fflush(f));
        rep(A, restart ? "signal_restart_fflush" : "signal_eintr_fflush", "fputs=%ld signals=%d %s", r1, (int)g_signals,
            flags_of(f));
        fclose(f);
        rep_val(A, restart ? "signal_restart_reader" : "signal_eintr_reader", 0, 0, "reader=%s child=%s",
                result_of(res[0]), reap(pid));
        close(res[0]);
        default_signal(SIGALRM);
    }
}

int main(void) {
    begin();
    (void)g_raw_err;
    fill_big();
    big_cases();
    stdout_cases();
    buffering_cases();
    error_cases();
    file_cases();
    rw_socket_case();
    signal_cases();
    return finish(A);
}

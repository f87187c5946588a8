/* stdio input on pipes and sockets when the data arrives in pieces, so
 * that one call needs several refills: fgets, fread, getline, getdelim,
 * getc, the getc_unlocked macro, scanf, ungetc, unbuffered FILEs, flags, error
 * paths, signals, and the output stdio must flush before it waits. */
#include "diff.h"

#include <sys/uio.h>

#define A "stdio"

/* A child that writes the pieces to fd, `gap_ms` apart, then exits (its
 * copy of fd closes; the reader sees EOF once every writer is gone). */
static pid_t piece_writer(int fd, int close_me, long gap_ms, const char* const* pieces, int n) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (close_me >= 0) {
            close(close_me);
        }
        for (int i = 0; i < n; ++i) {
            if (i > 0) {
                sleep_ms(gap_ms);
            }
            const size_t len = strlen(pieces[i]);
            if (write(fd, pieces[i], len) != (ssize_t)len) {
                _exit(1);
            }
        }
        _exit(0);
    }
    return pid;
}

/* As piece_writer, for `count` copies of a `len`-byte pattern block. */
static pid_t block_writer(int fd, int close_me, long gap_ms, size_t len, int count) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (close_me >= 0) {
            close(close_me);
        }
        static char block[65536];
        for (size_t i = 0; i < len && i < sizeof block; ++i) {
            block[i] = (char)('a' + (i * 7) % 26);
        }
        for (int i = 0; i < count; ++i) {
            if (i > 0) {
                sleep_ms(gap_ms);
            }
            size_t done = 0;
            while (done < len) {
                const ssize_t w = write(fd, block + done, len - done);
                if (w <= 0) {
                    _exit(1);
                }
                done += (size_t)w;
            }
        }
        _exit(0);
    }
    return pid;
}

/* A pipe whose read end is a FILE; *w the write end (for the writer). */
static FILE* piped(int* w, const char* mode) {
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    *w = p[1];
    FILE* f = fdopen(p[0], mode);
    if (f == NULL) {
        exit(3);
    }
    return f;
}

static const char* flags_of(FILE* f) {
    static char buf[32];
    snprintf(buf, sizeof buf, "eof=%d err=%d", feof(f) != 0, ferror(f) != 0);
    return buf;
}

static void fgets_cases(void) {
    int w;
    char buf[64];
    FILE* f = piped(&w, "r");
    const char* line[] = {"hel", "lo wo", "rld\nsecond ", "line\n"};
    pid_t child = piece_writer(w, fileno(f), 60, line, 4);
    close(w);
    errno = 0;
    char* r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_line_in_three_pieces", r == buf ? 1 : 0, r == NULL ? errno : 0, "data=%s %s",
            dat(buf, r != NULL ? (long)strlen(buf) : 0), flags_of(f));
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_second_line_in_two_pieces", r == buf ? 1 : 0, r == NULL ? errno : 0, "data=%s %s",
            dat(buf, r != NULL ? (long)strlen(buf) : 0), flags_of(f));
    errno = 0;
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_at_eof", r == NULL ? 0 : 1, errno, "%s", flags_of(f));
    rep_val(A, "fgets_writer", 0, 0, "%s", reap(child));
    fclose(f);

    /* A short buffer: n-1 bytes of a line that is still arriving. */
    f = piped(&w, "r");
    const char* shortp[] = {"ab", "cd", "efgh\n"};
    child = piece_writer(w, fileno(f), 50, shortp, 3);
    close(w);
    r = fgets(buf, 5, f);
    rep_val(A, "fgets_short_buffer_across_pieces", r == buf ? 1 : 0, 0, "data=%s", dat(buf, r ? (long)strlen(buf) : 0));
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_rest_of_line", r == buf ? 1 : 0, 0, "data=%s", dat(buf, r ? (long)strlen(buf) : 0));
    /* A last line without a newline ends at EOF. */
    reap(child);
    fclose(f);

    f = piped(&w, "r");
    const char* tail[] = {"no new", "line"};
    child = piece_writer(w, fileno(f), 50, tail, 2);
    close(w);
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_last_line_without_newline", r == buf ? 1 : 0, 0, "data=%s %s", dat(buf, r ? (long)strlen(buf) : 0),
            flags_of(f));
    reap(child);
    /* n = 1 and n = 0 never read. */
    errno = 0;
    buf[0] = 'x';
    r = fgets(buf, 1, f);
    rep_val(A, "fgets_n_one", r == buf ? 1 : 0, errno, "buf0=%d", buf[0]);
    r = fgets(buf, 0, f);
    rep_val(A, "fgets_n_zero", r == NULL ? 0 : 1, errno, NULL);
    fclose(f);

    /* An unbuffered FILE reads a byte at a time. */
    f = piped(&w, "r");
    setvbuf(f, NULL, _IONBF, 0);
    const char* unb[] = {"un", "buf", "fered\nrest"};
    child = piece_writer(w, fileno(f), 50, unb, 3);
    close(w);
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_unbuffered_across_pieces", r == buf ? 1 : 0, 0, "data=%s", dat(buf, r ? (long)strlen(buf) : 0));
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_unbuffered_rest", r == buf ? 1 : 0, 0, "data=%s %s", dat(buf, r ? (long)strlen(buf) : 0), flags_of(f));
    reap(child);
    fclose(f);

    /* ungetc before a line that is still arriving. */
    f = piped(&w, "r");
    const char* ung[] = {"bc", "d\n"};
    child = piece_writer(w, fileno(f), 50, ung, 2);
    close(w);
    const int u = ungetc('a', f);
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_after_ungetc", r == buf ? 1 : 0, 0, "ungetc=%d data=%s", u, dat(buf, r ? (long)strlen(buf) : 0));
    reap(child);
    fclose(f);

    /* Reading a write-only FILE: EBADF and the error flag, no wait. */
    int p[2];
    if (pipe(p) != 0) {
        exit(3);
    }
    f = fdopen(p[1], "w");
    errno = 0;
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_write_only_file", r == NULL ? 0 : 1, errno, "%s", flags_of(f));
    fclose(f);
    close(p[0]);
}

static void fread_cases(void) {
    int w;
    static unsigned char big[1 << 20];
    FILE* f = piped(&w, "r");
    /* Smaller than the buffer: through refills. */
    pid_t child = block_writer(w, fileno(f), 40, 700, 4);
    close(w);
    errno = 0;
    size_t got = fread(big, 1, 2000, f);
    rep_val(A, "fread_2000_of_4x700_in_pieces", (long)got, 0, "hash=%08lx %s", hash_of(big, got), flags_of(f));
    got = fread(big, 1, 2000, f);
    rep_val(A, "fread_rest_then_eof", (long)got, 0, "hash=%08lx %s", hash_of(big, got), flags_of(f));
    got = fread(big, 1, 10, f);
    rep_val(A, "fread_after_eof", (long)got, 0, "%s", flags_of(f));
    rep_val(A, "fread_writer", 0, 0, "%s", reap(child));
    fclose(f);

    /* Larger than the buffer: straight into the caller's memory. */
    f = piped(&w, "r");
    child = block_writer(w, fileno(f), 40, 30000, 5);
    close(w);
    got = fread(big, 1, 120000, f);
    rep_val(A, "fread_120000_of_5x30000_in_pieces", (long)got, 0, "hash=%08lx %s", hash_of(big, got), flags_of(f));
    got = fread(big, 1, 100000, f);
    rep_val(A, "fread_large_rest_then_eof", (long)got, 0, "hash=%08lx %s", hash_of(big, got), flags_of(f));
    reap(child);
    fclose(f);

    /* Items: a partial last item is not counted. */
    f = piped(&w, "r");
    child = block_writer(w, fileno(f), 40, 25, 3);
    close(w);
    got = fread(big, 10, 100, f);
    rep_val(A, "fread_items_of_10_from_75_bytes", (long)got, 0, "%s", flags_of(f));
    reap(child);
    fclose(f);

    /* ungetc'd byte, then a read that needs more than the buffer holds. */
    f = piped(&w, "r");
    child = block_writer(w, fileno(f), 40, 3000, 3);
    close(w);
    const int c = fgetc(f);
    ungetc('Z', f);
    got = fread(big, 1, 9000, f);
    rep_val(A, "fread_after_ungetc_of_another_byte", (long)got, 0, "first=%d pushed=%c hash=%08lx %s", c, big[0],
            hash_of(big, got), flags_of(f));
    reap(child);
    fclose(f);

    /* Socket: a FILE on one end of a socketpair. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    f = fdopen(sv[0], "r");
    child = block_writer(sv[1], sv[0], 40, 5000, 4);
    close(sv[1]);
    got = fread(big, 1, 20000, f);
    rep_val(A, "fread_socket_20000_in_pieces", (long)got, 0, "hash=%08lx %s", hash_of(big, got), flags_of(f));
    reap(child);
    fclose(f);

    /* Zero-sized requests return at once. */
    f = piped(&w, "r");
    got = fread(big, 0, 10, f);
    rep_val(A, "fread_size_zero", (long)got, 0, "%s", flags_of(f));
    got = fread(big, 10, 0, f);
    rep_val(A, "fread_count_zero", (long)got, 0, "%s", flags_of(f));
    close(w);
    fclose(f);
}

static void getline_cases(void) {
    int w;
    FILE* f = piped(&w, "r");
    const char* pieces[] = {"a long", " line that", " comes in four", " pieces\nnext\n"};
    pid_t child = piece_writer(w, fileno(f), 50, pieces, 4);
    close(w);
    char* line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    rep_val(A, "getline_in_four_pieces", n, n < 0 ? errno : 0, "data=%s", dat(line, n));
    n = getline(&line, &cap, f);
    rep_val(A, "getline_next", n, n < 0 ? errno : 0, "data=%s", dat(line, n));
    errno = 0;
    n = getline(&line, &cap, f);
    rep_val(A, "getline_at_eof", n, errno, "%s", flags_of(f));
    reap(child);
    fclose(f);

    /* A line longer than the stdio buffer, in pieces. */
    f = piped(&w, "r");
    child = block_writer(w, fileno(f), 40, 9000, 3);
    close(w);
    n = getline(&line, &cap, f);
    rep_val(A, "getline_27000_bytes_without_newline", n, n < 0 ? errno : 0, "hash=%08lx %s",
            hash_of((unsigned char*)line, n > 0 ? (size_t)n : 0), flags_of(f));
    reap(child);
    fclose(f);

    f = piped(&w, "r");
    const char* csv[] = {"one,t", "wo,", "three"};
    child = piece_writer(w, fileno(f), 50, csv, 3);
    close(w);
    for (int i = 0; i < 4; ++i) {
        char name[32];
        snprintf(name, sizeof name, "getdelim_comma_%d", i);
        errno = 0;
        n = getdelim(&line, &cap, ',', f);
        rep_val(A, name, n, n < 0 ? errno : 0, "data=%s %s", dat(line, n > 0 ? n : 0), flags_of(f));
    }
    reap(child);
    fclose(f);

    f = piped(&w, "r");
    errno = 0;
    n = getline(NULL, &cap, f);
    rep_val(A, "getline_null_lineptr", n, errno, NULL);
    errno = 0;
    n = getline(&line, NULL, f);
    rep_val(A, "getline_null_size", n, errno, NULL);
    /* With the error flag set, getline fails at once without reading. */
    (void)!write(w, "x\n", 2);
    const int keep = dup(fileno(f));
    dup2(w, fileno(f)); /* a read of the write end: EBADF, error flag */
    errno = 0;
    const int c = fgetc(f);
    rep_val(A, "fgetc_of_write_end_sets_error", c, errno, "%s", flags_of(f));
    dup2(keep, fileno(f));
    close(keep);
    errno = 0;
    n = getline(&line, &cap, f);
    rep_val(A, "getline_with_error_flag_set", n, errno, "%s", flags_of(f));
    clearerr(f);
    n = getline(&line, &cap, f);
    rep_val(A, "getline_after_clearerr", n, n < 0 ? errno : 0, "data=%s", dat(line, n > 0 ? n : 0));
    close(w);
    fclose(f);
    free(line);
}

static void getc_cases(void) {
    int w;
    FILE* f = piped(&w, "r");
    const char* pieces[] = {"ab", "cde", "f"};
    pid_t child = piece_writer(w, fileno(f), 50, pieces, 3);
    close(w);
    char got[16];
    int n = 0;
    int c;
    while ((c = getc(f)) != EOF && n < 15) {
        got[n++] = (char)c;
    }
    rep_val(A, "getc_loop_across_pieces", n, 0, "data=%s %s", dat(got, n), flags_of(f));
    /* EOF is sticky: no read until clearerr. */
    c = fgetc(f);
    rep_val(A, "fgetc_after_eof", c, 0, "%s", flags_of(f));
    clearerr(f);
    c = fgetc(f);
    rep_val(A, "fgetc_after_clearerr_at_eof", c, 0, "%s", flags_of(f));
    reap(child);
    fclose(f);

    /* The getc_unlocked macro reads the buffer inline and calls into libc
     * only to refill. */
    f = piped(&w, "r");
    const char* more[] = {"xy", "z", "w\n"};
    child = piece_writer(w, fileno(f), 50, more, 3);
    close(w);
    n = 0;
    flockfile(f);
    while ((c = getc_unlocked(f)) != EOF && n < 15) {
        got[n++] = (char)c;
    }
    funlockfile(f);
    rep_val(A, "getc_unlocked_loop_across_pieces", n, 0, "data=%s %s", dat(got, n), flags_of(f));
    reap(child);
    fclose(f);

    /* getchar on a stdin that is a pipe. */
    f = piped(&w, "r");
    const int saved = dup(0);
    dup2(fileno(f), 0);
    clearerr(stdin);
    const char* in[] = {"q", "r"};
    child = piece_writer(w, -1, 50, in, 2);
    close(w);
    n = 0;
    int guard = 0;
    /* our copy of the write end went with w; the child's closes at exit */
    while ((c = getchar()) != EOF && n < 15 && guard++ < 20) {
        got[n++] = (char)c;
    }
    rep_val(A, "getchar_on_pipe_stdin", n, 0, "data=%s eof=%d", dat(got, n), feof(stdin) != 0);
    reap(child);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    fclose(f);
}

static void scanf_cases(void) {
    int w;
    char word[32] = "";
    char buf[64];
    FILE* f = piped(&w, "r");
    const char* pieces[] = {"12", "3 wor", "ds 4", "5 abc\n", "tail\n"};
    pid_t child = piece_writer(w, fileno(f), 50, pieces, 5);
    close(w);
    int a = 0;
    int b = 0;
    int used = 0;
    errno = 0;
    int r = fscanf(f, "%d %31s %d%n", &a, word, &b, &used);
    rep_val(A, "fscanf_fields_arriving_in_pieces", r, r < 0 ? errno : 0, "a=%d word=%s b=%d used=%d", a, word, b, used);
    /* A matching failure leaves the offending byte to the next reader. */
    r = fscanf(f, "%d", &a);
    rep_val(A, "fscanf_matching_failure", r, 0, "next=%c", (char)fgetc(f));
    char* got = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_after_fscanf", got == buf, 0, "data=%s", dat(buf, got ? (long)strlen(buf) : 0));
    r = fscanf(f, "%31s", word);
    rep_val(A, "fscanf_string_then_eof", r, 0, "word=%s %s", word, flags_of(f));
    errno = 0;
    r = fscanf(f, "%d", &a);
    rep_val(A, "fscanf_at_eof", r, errno, "%s", flags_of(f));
    reap(child);
    fclose(f);

    /* scanf on a pipe stdin, a number split across pieces. */
    f = piped(&w, "r");
    const int saved = dup(0);
    dup2(fileno(f), 0);
    clearerr(stdin);
    const char* in[] = {"3.", "25 x", "yz\n"};
    child = piece_writer(w, -1, 50, in, 3);
    close(w);
    double d = 0;
    char tail[8] = "";
    r = scanf("%lf %7s", &d, tail);
    rep_val(A, "scanf_double_and_word_in_pieces", r, 0, "d=%.2f tail=%s", d, tail);
    const int nl = getchar();
    rep_val(A, "getchar_after_scanf", nl, 0, NULL);
    reap(child);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    fclose(f);

    /* Whitespace only, then EOF: an input failure. */
    f = piped(&w, "r");
    const char* blank[] = {"  ", "\n\t "};
    child = piece_writer(w, fileno(f), 50, blank, 2);
    close(w);
    r = fscanf(f, "%d", &a);
    rep_val(A, "fscanf_only_whitespace_then_eof", r, 0, "%s", flags_of(f));
    reap(child);
    fclose(f);
}

/* A signal while fgets waits for the rest of a line. */
static void signal_cases(void) {
    int w;
    char buf[64];
    FILE* f = piped(&w, "r");
    const char* pieces[] = {"part", "ial\n"};
    catch_signal(SIGALRM, 0);
    pid_t child = piece_writer(w, fileno(f), 300, pieces, 2);
    close(w);
    alarm_ms(100);
    errno = 0;
    char* r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_eintr_mid_line", r == NULL ? 0 : 1, r == NULL ? errno : 0, "%s signals=%d", flags_of(f),
            (int)g_signals);
    clearerr(f);
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_after_eintr", r == buf ? 1 : 0, 0, "data=%s", dat(buf, r ? (long)strlen(buf) : 0));
    reap(child);
    fclose(f);

    f = piped(&w, "r");
    catch_signal(SIGALRM, 1);
    child = piece_writer(w, fileno(f), 300, pieces, 2);
    close(w);
    alarm_ms(100);
    r = fgets(buf, sizeof buf, f);
    rep_val(A, "fgets_sa_restart_mid_line", r == buf ? 1 : 0, 0, "data=%s %s signals=%d",
            dat(buf, r ? (long)strlen(buf) : 0), flags_of(f), (int)g_signals);
    reap(child);
    fclose(f);
    default_signal(SIGALRM);
}

/* "r+" FILE on a socket: the request written through stdio must go out
 * before the read of the answer waits (glibc flushes it when switching
 * to reading). */
static void rw_socket_case(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        exit(3);
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char req[64];
        ssize_t n = 0;
        while (n < (ssize_t)sizeof req - 1) {
            const ssize_t r = read(sv[1], req + n, 1);
            if (r <= 0) {
                _exit(1);
            }
            if (req[n++] == '\n') {
                break;
            }
        }
        sleep_ms(50);
        (void)!write(sv[1], "an", 2);
        sleep_ms(50);
        (void)!write(sv[1], "swer\n", 5);
        _exit(0);
    }
    close(sv[1]);
    alarm(10); /* a hang becomes a lost transcript line, not a stuck run */
    FILE* f = fdopen(sv[0], "r+");
    fputs("request\n", f);
    char buf[64];
    char* r = fgets(buf, sizeof buf, f);
    alarm(0);
    rep_val(A, "r_plus_socket_request_then_answer", r == buf ? 1 : 0, r ? 0 : errno, "data=%s",
            dat(buf, r ? (long)strlen(buf) : 0));
    rep_val(A, "r_plus_socket_peer", 0, 0, "%s", reap(pid));
    fclose(f);
}

/* A prompt without a newline on line-buffered stdout must be flushed
 * before reading a line-buffered stdin waits. Run in a child whose stdin
 * and stdout are pipes to us. */
static void prompt_case(void) {
    int to_child[2];
    int from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        exit(3);
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        setvbuf(stdin, NULL, _IOLBF, 0);
        setvbuf(stdout, NULL, _IOLBF, 0);
        fputs("name? ", stdout);
        char buf[64];
        if (fgets(buf, sizeof buf, stdin) == NULL) {
            _exit(1);
        }
        printf("hello %s", buf);
        fflush(stdout);
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    struct pollfd p = {from_child[0], POLLIN, 0};
    const int ready = poll(&p, 1, 3000);
    char buf[64];
    ssize_t n = ready > 0 ? read(from_child[0], buf, sizeof buf) : 0;
    rep_val(A, "prompt_flushed_before_stdin_waits", ready > 0, 0, "prompt=%s", dat(buf, n > 0 ? n : 0));
    (void)!write(to_child[1], "grove\n", 6);
    close(to_child[1]);
    n = 0;
    for (;;) {
        const ssize_t r = read(from_child[0], buf + n, sizeof buf - (size_t)n);
        if (r <= 0) {
            break;
        }
        n += r;
    }
    rep_val(A, "prompt_answer", n, 0, "data=%s", dat(buf, n));
    rep_val(A, "prompt_child", 0, 0, "%s", reap(pid));
    close(from_child[0]);
}

int main(void) {
    begin();
    (void)g_raw_err;
    fgets_cases();
    fread_cases();
    getline_cases();
    getc_cases();
    scanf_cases();
    signal_cases();
    rw_socket_case();
    prompt_case();
    return finish(A);
}

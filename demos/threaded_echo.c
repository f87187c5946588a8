/* threaded_echo: the classic thread-per-connection blocking TCP echo server,
 * written with no knowledge of grove.
 *
 *   build/demos/threaded_echo [PORT]                 one OS thread per client
 *   build/shim/grove-run build/demos/threaded_echo   one OS thread in all:
 *                                                     each client is a fiber
 *
 * Listens on 127.0.0.1:PORT (default 7007). A client line "threads\n" is
 * answered with the Threads: line of /proc/self/status (how many OS threads
 * serve everyone); "stats\n" with the connection counts; anything else is
 * echoed back. SIGINT/SIGTERM end it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static long live_connections, total_connections, peak_connections;

static void status_line(char* out, size_t cap) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    snprintf(out, cap, "Threads: ?\n");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "Threads:", 8) == 0) {
            snprintf(out, cap, "%s", line);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

static int write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void* serve(void* arg) {
    int fd = (int)(long)arg;
    pthread_mutex_lock(&stats_mu);
    ++live_connections;
    ++total_connections;
    if (live_connections > peak_connections) {
        peak_connections = live_connections;
    }
    pthread_mutex_unlock(&stats_mu);
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        if (n == 8 && memcmp(buf, "threads\n", 8) == 0) {
            char line[256];
            status_line(line, sizeof line);
            if (write_all(fd, line, strlen(line)) != 0) {
                break;
            }
            continue;
        }
        if (n == 6 && memcmp(buf, "stats\n", 6) == 0) {
            char line[160];
            pthread_mutex_lock(&stats_mu);
            snprintf(line, sizeof line, "live %ld total %ld peak %ld\n", live_connections, total_connections,
                     peak_connections);
            pthread_mutex_unlock(&stats_mu);
            if (write_all(fd, line, strlen(line)) != 0) {
                break;
            }
            continue;
        }
        if (write_all(fd, buf, (size_t)n) != 0) {
            break;
        }
    }
    close(fd);
    pthread_mutex_lock(&stats_mu);
    --live_connections;
    pthread_mutex_unlock(&stats_mu);
    return NULL;
}

int main(int argc, char** argv) {
    const int port = argc > 1 ? atoi(argv[1]) : 7007;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 10,000 clients need 10,000 fds */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 4096) != 0) {
        perror("threaded_echo: bind/listen");
        return 1;
    }
    printf("threaded_echo: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE) {
                    usleep(10000);
                }
                continue;
            }
            perror("threaded_echo: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        int e = pthread_create(&t, &attr, serve, (void*)(long)fd);
        if (e != 0) {
            fprintf(stderr, "threaded_echo: pthread_create: %s\n", strerror(e));
            close(fd);
        }
    }
}

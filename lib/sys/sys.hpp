// The real libc functions, resolved once from libc itself.
//
// Everything in lib/ and shim/ calls these, never the public names, so an
// interposed symbol (the shim's read, say) can never recurse into itself.
// An entry is what the next object after the caller (RTLD_NEXT) defines when
// that lies in libc.so.6, else what libc.so.6's own handle (dlopen
// RTLD_NOLOAD) gives, so the answer does not depend on where libgrove sits
// in the symbol search order relative to the shim or another interposer.
// Nothing is looked up at load time: each entry on its first use.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <ctime>

// Data written while the library loads, or by the first calls a program
// makes of it, lives together in .data, on the page where .bss begins: the
// loader writes that page anyway (it zeroes the rest of it), so preloading
// the shim costs no page fault for it. Room there is small (what .data
// leaves of the page): only small, early-written variables.
#define GROVE_LOAD_DATA [[gnu::section(".data.grove_load")]]
// Code that runs while the library loads: together with the constructors,
// on the first pages of text, which loading touches anyway.
#define GROVE_LOAD_TEXT [[gnu::section(".text.startup.grove")]]

namespace grove::sys {

// X(name, return type, parameter list, argument list)
#define GROVE_SYS_FUNCTIONS(X)                                                                        \
    X(read, ssize_t, (int fd, void* b, size_t n), (fd, b, n))                                         \
    X(write, ssize_t, (int fd, const void* b, size_t n), (fd, b, n))                                  \
    X(readv, ssize_t, (int fd, const struct iovec* v, int n), (fd, v, n))                             \
    X(writev, ssize_t, (int fd, const struct iovec* v, int n), (fd, v, n))                            \
    X(pread, ssize_t, (int fd, void* b, size_t n, off_t o), (fd, b, n, o))                            \
    X(pwrite, ssize_t, (int fd, const void* b, size_t n, off_t o), (fd, b, n, o))                     \
    X(preadv, ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o))                \
    X(pwritev, ssize_t, (int fd, const struct iovec* v, int n, off_t o), (fd, v, n, o))               \
    X(preadv2, ssize_t, (int fd, const struct iovec* v, int n, off_t o, int f), (fd, v, n, o, f))     \
    X(pwritev2, ssize_t, (int fd, const struct iovec* v, int n, off_t o, int f), (fd, v, n, o, f))    \
    X(recv, ssize_t, (int fd, void* b, size_t n, int f), (fd, b, n, f))                               \
    X(send, ssize_t, (int fd, const void* b, size_t n, int f), (fd, b, n, f))                         \
    X(recvfrom, ssize_t, (int fd, void* b, size_t n, int f, struct sockaddr* a, socklen_t* l),        \
      (fd, b, n, f, a, l))                                                                            \
    X(sendto, ssize_t, (int fd, const void* b, size_t n, int f, const struct sockaddr* a, socklen_t l), \
      (fd, b, n, f, a, l))                                                                            \
    X(recvmsg, ssize_t, (int fd, struct msghdr* m, int f), (fd, m, f))                                \
    X(sendmsg, ssize_t, (int fd, const struct msghdr* m, int f), (fd, m, f))                          \
    X(accept, int, (int fd, struct sockaddr* a, socklen_t* l), (fd, a, l))                            \
    X(accept4, int, (int fd, struct sockaddr* a, socklen_t* l, int f), (fd, a, l, f))                 \
    X(connect, int, (int fd, const struct sockaddr* a, socklen_t l), (fd, a, l))                      \
    X(socket, int, (int d, int t, int p), (d, t, p))                                                  \
    X(socketpair, int, (int d, int t, int p, int* sv), (d, t, p, sv))                                 \
    X(close, int, (int fd), (fd))                                                                     \
    X(shutdown, int, (int fd, int how), (fd, how))                                                    \
    X(pipe2, int, (int* fds, int flags), (fds, flags))                                                \
    X(getsockopt, int, (int fd, int l, int o, void* v, socklen_t* n), (fd, l, o, v, n))               \
    X(setsockopt, int, (int fd, int l, int o, const void* v, socklen_t n), (fd, l, o, v, n))          \
    X(poll, int, (struct pollfd * f, nfds_t n, int t), (f, n, t))                                     \
    X(nanosleep, int, (const struct timespec* r, struct timespec* rem), (r, rem))                     \
    X(epoll_create1, int, (int f), (f))                                                               \
    X(epoll_ctl, int, (int e, int op, int fd, struct epoll_event* ev), (e, op, fd, ev))               \
    X(epoll_wait, int, (int e, struct epoll_event* ev, int n, int t), (e, ev, n, t))                  \
    X(epoll_pwait2, int,                                                                              \
      (int e, struct epoll_event* ev, int n, const struct timespec* t, const sigset_t* s),            \
      (e, ev, n, t, s))                                                                               \
    X(epoll_pwait, int, (int e, struct epoll_event* ev, int n, int t, const sigset_t* s), (e, ev, n, t, s)) \
    X(ppoll, int, (struct pollfd * f, nfds_t n, const struct timespec* t, const sigset_t* s), (f, n, t, s)) \
    X(select, int, (int n, fd_set* r, fd_set* w, fd_set* e, struct timeval* t), (n, r, w, e, t))       \
    X(pselect, int, (int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* t, const sigset_t* s), \
      (n, r, w, e, t, s))                                                                             \
    X(recvmmsg, int, (int fd, struct mmsghdr* v, unsigned int n, int f, struct timespec* t), (fd, v, n, f, t)) \
    X(sendmmsg, int, (int fd, struct mmsghdr* v, unsigned int n, int f), (fd, v, n, f))               \
    X(sendfile, ssize_t, (int o, int i, off_t* off, size_t n), (o, i, off, n))                        \
    X(dup, int, (int fd), (fd))                                                                       \
    X(dup2, int, (int a, int b), (a, b))                                                              \
    X(dup3, int, (int a, int b, int f), (a, b, f))                                                    \
    X(eventfd, int, (unsigned int v, int f), (v, f))                                                  \
    X(timerfd_create, int, (int c, int f), (c, f))                                                    \
    X(clock_nanosleep, int, (clockid_t c, int f, const struct timespec* r, struct timespec* rem), (c, f, r, rem)) \
    X(waitpid, pid_t, (pid_t p, int* s, int o), (p, s, o))                                            \
    X(wait4, pid_t, (pid_t p, int* s, int o, struct rusage* r), (p, s, o, r))                         \
    X(fork, pid_t, (), ())                                                                            \
    X(sched_yield, int, (), ())                                                                       \
    X(sleep, unsigned int, (unsigned int s), (s))                                                     \
    X(usleep, int, (useconds_t u), (u))                                                               \
    X(sigaction, int, (int s, const struct sigaction* a, struct sigaction* o), (s, a, o))             \
    X(pthread_sigmask, int, (int h, const sigset_t* s, sigset_t* o), (h, s, o))                      \
    X(pause, int, (), ())                                                                             \
    X(sigsuspend, int, (const sigset_t* m), (m))                                                      \
    X(sigwait, int, (const sigset_t* s, int* sig), (s, sig))                                          \
    X(sigwaitinfo, int, (const sigset_t* s, siginfo_t* i), (s, i))                                    \
    X(sigtimedwait, int, (const sigset_t* s, siginfo_t* i, const struct timespec* t), (s, i, t))      \
    X(waitid, int, (idtype_t t, id_t id, siginfo_t* i, int o), (t, id, i, o))                         \
    X(fclose, int, (FILE * f), (f))                                                                   \
    X(popen, FILE*, (const char* c, const char* m), (c, m))                                           \
    X(pclose, int, (FILE * f), (f))                                                                   \
    X(system, int, (const char* c), (c))                                                              \
    X(fgets, char*, (char* s, int n, FILE* f), (s, n, f))                                             \
    X(fgetc, int, (FILE * f), (f))                                                                    \
    X(getc, int, (FILE * f), (f))                                                                     \
    X(fread, size_t, (void* p, size_t s, size_t n, FILE* f), (p, s, n, f))                            \
    X(getdelim, ssize_t, (char** l, size_t* n, int d, FILE* f), (l, n, d, f))

// Each pointer starts at a stub that looks up that one function on its first
// call: loading grove costs no lookups, and a program that never calls
// read() through grove never looks read() up. The pointers only ever go
// from the stub to libc's function (every thread finds the same one), so a
// relaxed load (a plain move) is enough.
#define GROVE_SYS_DECLARE(name, ret, params, args)                        \
    using name##_fn = ret(*) params;                                     \
    extern std::atomic<name##_fn> name##_ptr;                            \
    inline ret name params { return name##_ptr.load(std::memory_order_relaxed) args; }
GROVE_SYS_FUNCTIONS(GROVE_SYS_DECLARE)
#undef GROVE_SYS_DECLARE

// fcntl and ioctl are variadic in libc; these take the one argument every
// command we use passes.
int fcntl(int fd, int cmd, long arg = 0);
int ioctl(int fd, unsigned long request, void* arg);

// A libc function by name, from libc.so.6 itself, else from the next object
// after the caller's (RTLD_NEXT); nullptr if neither has it. errno is kept.
// The first lookup of a process takes tens of microseconds less when the
// next object answers from libc (no dlopen).
void* lookup(const char* name) noexcept;

// Fills the whole table now (a hub does so when it starts, so that no lookup
// happens later inside a fiber). Idempotent and optional: an entry not yet
// filled resolves itself on its first call, however early that comes (a
// constructor of another library, before grove's own ran).
[[gnu::cold]] void resolve() noexcept;

}  // namespace grove::sys

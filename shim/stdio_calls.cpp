// stdio and the process helpers built on it. glibc's stdio refills its
// buffers through an internal read that no interposer sees, and pclose and
// system wait through an internal waitpid, so:
// - fgets/fgetc/getc/getchar/fread/getline/getdelim wait cooperatively for
//   the fd to be readable before a refill (when the FILE's buffer is empty),
//   then let stdio read. A refill that needs more than one read (a long
//   line arriving in pieces) can still block the thread until the rest
//   arrives: see README.
// - popen/pclose are reimplemented on posix_spawn, so pclose's wait for the
//   child is cooperative; system likewise.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "shim.hpp"

extern char** environ;

using namespace grove;
using namespace grove::shim;

namespace {

// Parks until `f` has something to read, if its buffer is empty and it is a
// pipe or socket a fiber may wait on. Leaves the reading itself to stdio.
void await_stdio(FILE* f) noexcept {
    if (f == nullptr || f->_IO_read_ptr < f->_IO_read_end) {
        return;
    }
    ErrnoGuard keep;
    const int fd = fileno(f);
    Hub* hub = nullptr;
    const std::uint32_t kind = fd < 0 ? kind_file : fd_bits_for_call(fd, hub) & kKindMask;
    if (kind != kind_socket && kind != kind_stream) {
        return;
    }
    const FdMode m = fd_mode(fd);
    if (m.nonblock || !m.readable) {
        return;
    }
    struct pollfd p{fd, POLLIN, 0};
    if (sys::poll(&p, 1, 0) == 0) {
        wait_fd(hub, fd, POLLIN, kNoDeadline);  // whatever ends the wait, stdio reads next
    }
}

// popen'd streams and their children (a short list, under a spin lock:
// this runs inside arbitrary programs, with no allocator assumptions).
struct Child {
    FILE* stream;
    int fd;
    pid_t pid;
    Child* next;
};
Child* children = nullptr;
std::atomic_flag children_lock = ATOMIC_FLAG_INIT;

struct Locked {
    Locked() noexcept {
        while (children_lock.test_and_set(std::memory_order_acquire)) {
        }
    }
    ~Locked() { children_lock.clear(std::memory_order_release); }
};

// Waits for pid cooperatively (the interposed waitpid), through EINTR.
int wait_status(pid_t pid) noexcept {
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid) {
            return status;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

// SIGINT and SIGQUIT are ignored while any system() runs, as glibc does.
std::atomic<int> system_users{0};
struct sigaction saved_int;
struct sigaction saved_quit;

}  // namespace

extern "C" {

char* fgets(char* s, int n, FILE* f) {
    await_stdio(f);
    return sys::fgets(s, n, f);
}

int fgetc(FILE* f) {
    await_stdio(f);
    return sys::fgetc(f);
}

int getc(FILE* f) {
    await_stdio(f);
    return sys::getc(f);
}

int _IO_getc(FILE* f) {
    await_stdio(f);
    return sys::getc(f);
}

int getchar(void) {
    await_stdio(stdin);
    return sys::getc(stdin);
}

size_t fread(void* p, size_t size, size_t n, FILE* f) {
    await_stdio(f);
    return sys::fread(p, size, n, f);
}

ssize_t getdelim(char** line, size_t* n, int delim, FILE* f) {
    await_stdio(f);
    return sys::getdelim(line, n, delim, f);
}

ssize_t __getdelim(char** line, size_t* n, int delim, FILE* f) {
    return getdelim(line, n, delim, f);
}

ssize_t getline(char** line, size_t* n, FILE* f) {
    return getdelim(line, n, '\n', f);
}

char* __fgets_chk(char* s, size_t size, int n, FILE* f) {
    if (static_cast<size_t>(n) > size) {
        __builtin_trap();
    }
    return fgets(s, n, f);
}

size_t __fread_chk(void* p, size_t ptrlen, size_t size, size_t n, FILE* f) {
    if (size != 0 && n > ptrlen / size) {
        __builtin_trap();
    }
    return fread(p, size, n, f);
}

FILE* popen(const char* command, const char* mode) {
    if (hub_for_call() == nullptr || command == nullptr || mode == nullptr) {
        return sys::popen(command, mode);
    }
    const bool reading = mode[0] == 'r';
    if ((mode[0] != 'r' && mode[0] != 'w') || (mode[1] != '\0' && (mode[1] != 'e' || mode[2] != '\0'))) {
        errno = EINVAL;
        return nullptr;
    }
    const bool cloexec = mode[1] == 'e';
    int fds[2];
    if (sys::pipe2(fds, O_CLOEXEC) != 0) {
        return nullptr;
    }
    const int parent_end = reading ? fds[0] : fds[1];
    const int child_end = reading ? fds[1] : fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_end, reading ? STDOUT_FILENO : STDIN_FILENO);
    {
        // POSIX: streams of earlier popen calls are closed in the child.
        Locked lock;
        for (Child* c = children; c != nullptr; c = c->next) {
            posix_spawn_file_actions_addclose(&fa, c->fd);
        }
    }
    char sh[] = "sh";
    char dash_c[] = "-c";
    char* argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
    pid_t pid = -1;
    const int err = posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    sys::close(child_end);
    if (err != 0) {
        sys::close(parent_end);
        errno = err;
        return nullptr;
    }
    if (!cloexec) {
        sys::fcntl(parent_end, F_SETFD, 0);
    }
    FILE* f = fdopen(parent_end, reading ? "r" : "w");
    auto* c = static_cast<Child*>(std::malloc(sizeof(Child)));
    if (f == nullptr || c == nullptr) {
        const int e = f == nullptr ? errno : ENOMEM;
        if (f != nullptr) {
            sys::fclose(f);
        } else {
            sys::close(parent_end);
        }
        std::free(c);
        wait_status(pid);
        errno = e;
        return nullptr;
    }
    fd_created(parent_end, kind_stream, kFifo);
    if (Hub* h = Hub::current_if_any()) {
        h->fd_forget(parent_end);
    }
    {
        Locked lock;
        *c = Child{f, parent_end, pid, children};
        children = c;
    }
    return f;
}

int pclose(FILE* f) {
    Child* found = nullptr;
    {
        Locked lock;
        for (Child** p = &children; *p != nullptr; p = &(*p)->next) {
            if ((*p)->stream == f) {
                found = *p;
                *p = found->next;
                break;
            }
        }
    }
    if (found == nullptr) {
        return sys::pclose(f);  // opened before the shim was ready, or not popen'd
    }
    const pid_t pid = found->pid;
    std::free(found);
    fclose(f);
    return wait_status(pid);
}

int system(const char* command) {
    if (hub_for_call() == nullptr || command == nullptr) {
        return sys::system(command);
    }
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (system_users.fetch_add(1) == 0) {
        sys::sigaction(SIGINT, &ignore, &saved_int);
        sys::sigaction(SIGQUIT, &ignore, &saved_quit);
    }
    sigset_t chld;
    sigset_t old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old_mask);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    if (saved_int.sa_handler != SIG_IGN) {
        sigaddset(&defaults, SIGINT);
    }
    if (saved_quit.sa_handler != SIG_IGN) {
        sigaddset(&defaults, SIGQUIT);
    }
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &old_mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char sh[] = "sh";
    char dash_c[] = "-c";
    char* argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
    pid_t pid = -1;
    int status;
    if (posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, environ) == 0) {
        status = wait_status(pid);
    } else {
        status = 127 << 8;  // as if the shell could not be run
    }
    posix_spawnattr_destroy(&attr);

    const int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (system_users.fetch_sub(1) == 1) {
        sys::sigaction(SIGINT, &saved_int, nullptr);
        sys::sigaction(SIGQUIT, &saved_quit, nullptr);
    }
    errno = saved;
    return status;
}

}  // extern "C"

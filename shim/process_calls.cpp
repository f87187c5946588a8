// waitpid/wait/wait4/waitid wait for a child without blocking the thread:
// through a pidfd when there is one child to wait for, else by polling with
// a backoff. A WNOHANG wait that finds nothing gives the other fibers a turn
// (give_way). fork gives the child a fresh hub holding only the forking
// fiber. sched_yield is a fiber yield.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.hpp"

using namespace grove;
using namespace grove::shim;

__thread unsigned char grove::shim::vfork_child = 0;

namespace {


// A pidfd for pid, or -1; errno is left alone either way. It lives for one
// wait only, so it stays at the kernel's number, unlike the library's
// long-lived fds (hub/own_fd.hpp).
int open_pidfd(pid_t pid) noexcept {
    ErrnoGuard keep;
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// Parks until `look()` says the wait is over (true): polling with a
// backoff, and when pidfd >= 0 also woken by its readability. 0 then; -1
// with errno EINTR when a signal without SA_RESTART, a kill or a
// grove::Timeout cuts it short.
// A pidfd is readable only once the child has exited, yet a wait without
// WUNTRACED also reports the stops of a child this process traces
// (ptrace; the child may have asked for it itself, PTRACE_TRACEME, unseen
// here). So even an exit-only wait looks again after each backoff: an exit
// still ends the wait at once, a tracee's stop within the backoff (at most
// 50 ms, as the plain polling), and a long wait costs one WNOHANG look per
// backoff, a few dozen cheap system calls a second at most.
// Not noexcept: `look` makes the real calls, cancellation points.
template <class Look>
int wait_until(Hub* hub, int pidfd, Look&& look) {
    const int saved = errno;  // a wait that ends well leaves it as it was
    Nanos backoff = 1'000'000;
    for (;;) {
        int w;
        if (pidfd >= 0) {
            const Nanos until = detail::now_ns() + backoff;
            {
                SignalWindow window(hub);
                w = detail::io_wait(pidfd, POLLIN, until);
            }
            if (w != 0 && errno == ETIMEDOUT && detail::now_ns() >= until) {
                w = 0;  // the backoff passed: look again
            }
        } else {
            w = nap(hub, backoff) ? 0 : -1;
        }
        backoff = std::min<Nanos>(backoff * 2, 50'000'000);
        if (w != 0) {
            if (errno == EINTR && restarts(hub, false)) {
                continue;
            }
            errno = EINTR;
            return -1;
        }
        errno = saved;  // not the backoff's ETIMEDOUT: look() sets its own
        if (look()) {
            return 0;
        }
    }
}

// Not noexcept: waitpid is a cancellation point, and where the call passes
// through (an OS thread without a hub), glibc's cancellation unwinds
// through this frame.
template <class Call>
pid_t wait_child(pid_t pid, int options, Call&& call) {
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return call(options);
    }
    pid_t r = call(options | WNOHANG);
    if (r != 0) {
        return r;
    }
    if ((options & WNOHANG) != 0) {
        give_way(hub);
        return r;
    }
    // One child, exit only: its pidfd becomes readable when it ends.
    int pidfd = -1;
    if (pid > 0 && (options & (WUNTRACED | WCONTINUED)) == 0) {
        pidfd = open_pidfd(pid);
    }
    if (wait_until(hub, pidfd, [&] { return (r = call(options | WNOHANG)) != 0; }) != 0) {
        r = -1;
    }
    if (pidfd >= 0) {
        ErrnoGuard keep;
        detail::io_close(pidfd);
    }
    return r;
}

}  // namespace

extern "C" {

pid_t waitpid(pid_t pid, int* status, int options) {
    GROVE_CANCELLATION_POINT(-1);
    return wait_child(pid, options, [&](int opts) { return sys::waitpid(pid, status, opts); });
}

pid_t wait(int* status) {
    GROVE_CANCELLATION_POINT(-1);
    return waitpid(-1, status, 0);
}

pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) noexcept {
    GROVE_CANCELLATION_POINT(-1);
    return wait_child(pid, options, [&](int opts) { return sys::wait4(pid, status, opts, usage); });
}

// A child is looked for with WNOWAIT into a siginfo of the shim's own; once
// one is there (or the look fails: ECHILD, EINVAL), the real call with the
// caller's arguments answers at once, so infop (even a bad one: EFAULT) is
// filled exactly as the kernel fills it. A pidfd (P_PID, or P_PIDFD's own)
// also wakes an exit-only wait; anything else is polled with a backoff.
int waitid(idtype_t idtype, id_t id, siginfo_t* infop, int options) {
    GROVE_CANCELLATION_POINT(-1);
    Hub* hub = hub_for_call();
    if (hub == nullptr) {
        return sys::waitid(idtype, id, infop, options);
    }
    if ((options & WNOHANG) != 0) {
        const int r = sys::waitid(idtype, id, infop, options);
        // Nothing found: 0 with si_pid 0 (Linux writes it). A null infop
        // cannot tell; giving way then costs a yield, no more.
        if (r == 0 && (infop == nullptr || infop->si_pid == 0)) {
            give_way(hub);
        }
        return r;
    }
    auto waitable = [&] {
        siginfo_t peek;
        peek.si_pid = 0;
        return sys::waitid(idtype, id, &peek, options | WNOHANG | WNOWAIT) != 0 || peek.si_pid != 0;
    };
    if (!waitable()) {
        const bool exit_only = (options & (WSTOPPED | WCONTINUED)) == 0;
        int pidfd = -1;
        bool own = false;
        if (exit_only && idtype == P_PID && static_cast<pid_t>(id) > 0) {
            pidfd = open_pidfd(static_cast<pid_t>(id));
            own = pidfd >= 0;
        } else if (idtype == P_PIDFD) {
            // The kernel never waits on a pidfd opened PIDFD_NONBLOCK
            // (EAGAIN), nor on a bad fd: the real call answers at once.
            const int fl = sys::fcntl(static_cast<int>(id), F_GETFL);
            if (fl < 0 || (fl & O_NONBLOCK) != 0) {
                return sys::waitid(idtype, id, infop, options);
            }
            if (exit_only) {
                pidfd = static_cast<int>(id);
            }
        }
        const int w = wait_until(hub, pidfd, waitable);
        if (own) {
            ErrnoGuard keep;
            detail::io_close(pidfd);
        }
        if (w != 0) {
            return -1;
        }
    }
    return sys::waitid(idtype, id, infop, options);
}

int sched_yield(void) noexcept {
    if (Hub* hub = hub_for_call()) {
        hub->yield_now();
        return 0;
    }
    return sys::sched_yield();
}

pid_t fork(void) noexcept {
    masks_fork_prepare();
    const pid_t pid = sys::fork();
    if (pid != 0) {
        masks_fork_parent();
    } else {
        masks_fork_child();
        note_fork_child();
        sync_fork_child();
        if (Hub* hub = Hub::current_if_any()) {
            hub->after_fork_child();
        }
    }
    return pid;
}

}  // extern "C"

#if defined(__x86_64__)
// vfork: glibc's, plus the flag (shim.hpp: vfork_child). The child runs on
// the caller's stack, so the return address is held in a register across
// the system call, as glibc does, and put back before each return. The
// flag is 1 in the child and goes back to 0 when the parent resumes (the
// child ran on the same memory and set it).
__asm__(R"(
    .text
    .p2align 4
    .globl vfork
    .type vfork, @function
    .globl __vfork
    .type __vfork, @function
vfork:
__vfork:
    .cfi_startproc
    popq %rdi
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rdi
    movl $58, %eax  # __NR_vfork
    syscall
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rip, 0
    cmpq $-4095, %rax
    jae 1f
    movq grove_shim_vfork_child@gottpoff(%rip), %rcx
    testq %rax, %rax
    setz %fs:(%rcx)
    ret
1:
    negl %eax
    pushq %rax
    .cfi_adjust_cfa_offset 8
    call __errno_location@PLT
    popq %rcx
    .cfi_adjust_cfa_offset -8
    movl %ecx, (%rax)
    movq $-1, %rax
    ret
    .cfi_endproc
    .size vfork, .-vfork
    .size __vfork, .-__vfork
)");
#endif

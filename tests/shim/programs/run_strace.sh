#!/bin/bash
# strace under grove-run: a tracer waits for its child's stops with plain
# waitpid(pid, &st, 0), which the kernel answers with a stop although the
# call asked for no WUNTRACED. The traced program's output must be the
# same as without grove-run, and the trace must have been written.
set -u
. "$(dirname "$0")/common.sh"

need strace strace
check_preload
# ptrace may be refused here (a container's seccomp or Yama policy).
strace -o /dev/null /bin/true 2>/dev/null || skip "strace cannot trace here"

# A hang is the failure to look for: bound each run well inside meson's limit.
timeout -k 5 30 "$GROVE_RUN" -- strace -o /dev/null /bin/true ||
    fail "grove-run strace -o /dev/null /bin/true exited with $? (124: timed out)"
echo "ok: strace -o /dev/null /bin/true"

script='echo one; sh -c "echo two; exit 3"; echo "exit $?"'
strace -f -o "$WORK/trace.plain" /bin/sh -c "$script" >"$WORK/strace.plain" 2>&1
timeout -k 5 30 "$GROVE_RUN" -- strace -f -o "$WORK/trace.grove" /bin/sh -c "$script" >"$WORK/strace.grove" 2>&1 ||
    fail "grove-run strace -f exited with $? (124: timed out)"
grep -q 'execve("/bin/sh"' "$WORK/trace.grove" || fail "the trace under grove-run has no execve of /bin/sh"
grep -q 'exit_group(3)' "$WORK/trace.grove" || fail "the trace under grove-run misses the child's exit_group(3)"
compare strace
exit 0

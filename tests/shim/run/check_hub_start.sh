#!/bin/sh
# Under grove-run the main thread's hub starts with the first green thread:
# what a program made before it must behave as libc's after it, and what a
# green thread's end prints must be what the program prints plainly, and
# the unwinder loads when glibc's would (a thread's pthread_exit).
#
#   check_hub_start.sh GROVE_RUN POPEN_PROG THROW_PROG FDS_PROG EXIT_PROG
set -u
grove_run=$1
popen_prog=$2
throw_prog=$3
fds_prog=$4
exit_prog=$5
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-hub-start.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0

for how in plain grove-run; do
    if [ "$how" = plain ]; then
        env -u LD_PRELOAD "$popen_prog" >"$tmp/popen.$how" 2>&1
    else
        env -u GROVE_MAIN_HUB "$grove_run" "$popen_prog" >"$tmp/popen.$how" 2>&1
    fi
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "ok   popen ($how): $(head -2 "$tmp/popen.$how" | tr '\n' ' ')"
    else
        echo "FAIL popen ($how): exit $rc"; cat "$tmp/popen.$how"; fail=1
    fi
done

# same_both NAME WANT_STATUS PROG: PROG's output (stdout and stderr) and
# status the same plainly and under grove-run; WANT_STATUS "-" takes any.
same_both() {
    name=$1 want=$2 prog=$3
    env -u LD_PRELOAD "$prog" >"$tmp/plain" 2>&1
    plain_rc=$?
    env -u GROVE_MAIN_HUB "$grove_run" "$prog" >"$tmp/shim" 2>&1
    shim_rc=$?
    if [ "$plain_rc" -eq "$shim_rc" ] && { [ "$want" = - ] || [ "$plain_rc" -eq "$want" ]; } &&
        cmp -s "$tmp/plain" "$tmp/shim"; then
        echo "ok   $name: status $plain_rc"; sed 's/^/       /' "$tmp/plain"
    else
        echo "FAIL $name: status plain $plain_rc, grove-run $shim_rc (wanted $want)"
        echo "--- plain"; cat "$tmp/plain"; echo "--- grove-run"; cat "$tmp/shim"
        fail=1
    fi
}

same_both "fds and handlers made before the first thread" 0 "$fds_prog"
same_both "terminate from a thread" - "$throw_prog"
same_both "the unwinder loaded by a thread's pthread_exit, not before" 0 "$exit_prog"
exit $fail

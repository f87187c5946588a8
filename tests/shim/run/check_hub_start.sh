#!/bin/sh
# Under grove-run the main thread's hub starts with the first green thread:
# what a program made before it must behave as libc's after it, and what a
# green thread's end prints must be what the program prints plainly.
#
#   check_hub_start.sh GROVE_RUN POPEN_PROG THROW_PROG FDS_PROG
set -u
grove_run=$1
popen_prog=$2
throw_prog=$3
fds_prog=$4
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

env -u LD_PRELOAD "$fds_prog" >"$tmp/fds.plain" 2>&1
plain_rc=$?
env -u GROVE_MAIN_HUB "$grove_run" "$fds_prog" >"$tmp/fds.shim" 2>&1
shim_rc=$?
if [ "$plain_rc" -eq 0 ] && [ "$shim_rc" -eq 0 ] && cmp -s "$tmp/fds.plain" "$tmp/fds.shim"; then
    echo "ok   fds and handlers made before the first thread:"; sed 's/^/       /' "$tmp/fds.plain"
else
    echo "FAIL fds and handlers made before the first thread: status plain $plain_rc, grove-run $shim_rc"
    echo "--- plain"; cat "$tmp/fds.plain"; echo "--- grove-run"; cat "$tmp/fds.shim"
    fail=1
fi

env -u LD_PRELOAD "$throw_prog" >/dev/null 2>"$tmp/throw.plain"
plain_rc=$?
env -u GROVE_MAIN_HUB "$grove_run" "$throw_prog" >/dev/null 2>"$tmp/throw.shim"
shim_rc=$?
if [ "$plain_rc" -eq "$shim_rc" ] && cmp -s "$tmp/throw.plain" "$tmp/throw.shim"; then
    echo "ok   terminate from a thread: status $plain_rc, $(head -1 "$tmp/throw.plain")"
else
    echo "FAIL terminate from a thread: status plain $plain_rc, grove-run $shim_rc"
    echo "--- plain"; cat "$tmp/throw.plain"; echo "--- grove-run"; cat "$tmp/throw.shim"
    fail=1
fi
exit $fail

#!/bin/sh
# GROVE_THREAD_TLS: the tls program (tls.cpp) under grove-run with green
# threads keeps each thread's variables by default and with =own, shares
# them with =shared (the switch copies nothing: the program sees the other
# threads' values), and names a bad value on stderr, then keeps them apart.
#
#   tls_setting.sh GROVE_RUN TLS_PROGRAM
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 GROVE_RUN TLS_PROGRAM" >&2
    exit 2
fi
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "SKIP: sanitized build (its runtime interposes pthreads itself)"
    exit 77
fi
grove_run=$1
prog=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-tls.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
run() {  # run NAME VALUE-OR-EMPTY
    if [ -n "$2" ]; then
        env -u LD_PRELOAD GROVE_THREADS=green GROVE_THREAD_TLS="$2" timeout -k 5 60 "$grove_run" "$prog" \
            >"$tmp/$1.out" 2>"$tmp/$1.err" </dev/null
    else
        env -u LD_PRELOAD -u GROVE_THREAD_TLS GROVE_THREADS=green timeout -k 5 60 "$grove_run" "$prog" \
            >"$tmp/$1.out" 2>"$tmp/$1.err" </dev/null
    fi
}
own_lines='plain 0: fresh 1 kept 1
objects 0: fresh obj0 ~obj0 key 
unwind b: uncaught 0, no current exception 1'
for case in default: own:own bad:sideways; do
    name=${case%%:*}
    value=${case#*:}
    run "$name" "$value" || { echo "FAIL: $name: exit status $?" >&2; fail=1; }
    echo "$own_lines" | while IFS= read -r line; do
        grep -qxF "$line" "$tmp/$name.out" || { echo "FAIL: $name: no line '$line'" >&2; exit 1; }
    done || fail=1
done
grep -q 'GROVE_THREAD_TLS=sideways: expected own or shared' "$tmp/bad.err" \
    || { echo "FAIL: bad value not named on stderr:" >&2; cat "$tmp/bad.err" >&2; fail=1; }
if grep -q 'GROVE_THREAD_TLS' "$tmp/default.err" "$tmp/own.err"; then
    echo "FAIL: a warning for a good setting" >&2
    fail=1
fi
run shared shared
# Shared: the threads see each other's writes (and one object for all).
grep -qx 'plain 0: fresh 0 kept 0' "$tmp/shared.out" \
    || { echo "FAIL: shared: the threads did not share their variables:" >&2; cat "$tmp/shared.out" >&2; fail=1; }
grep -qx 'objects: constructed 1' "$tmp/shared.out" \
    || { echo "FAIL: shared: not one thread_local object for all" >&2; fail=1; }
[ "$fail" -eq 0 ] && echo "GROVE_THREAD_TLS: default and own keep threads apart, shared shares, a bad value is named"
exit "$fail"

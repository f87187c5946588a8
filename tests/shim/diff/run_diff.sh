#!/bin/sh
# Differential run of one battery program: plain, then under grove-run.
#
#   run_diff.sh GROVE_RUN PROGRAM
#
# Both runs must print the same transcript (stdout) byte for byte and exit
# with the same status; the plain run must not have the shim mapped and the
# shim run must (each program reports it on stderr as diff-shim-loaded=N).
# On a mismatch the diff of the two transcripts is printed, then both
# stderrs. DIFF_KEEP=DIR keeps the outputs in DIR.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GROVE_RUN PROGRAM" >&2
    exit 2
fi
grove_run=$1
prog=$2
# A sanitized build preloads the sanitizer runtime first: its own
# interceptors then see the battery's deliberately invalid calls (bad
# pointers, a huge nfds) before libc does. The plain build runs the battery.
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "SKIP: sanitized build (the sanitizer intercepts the invalid calls first)"
    exit 77
fi
limit=${DIFF_TIMEOUT:-45}

if [ -n "${DIFF_KEEP:-}" ]; then
    tmp=$DIFF_KEEP
    mkdir -p "$tmp"
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-diff.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
fi
name=$(basename "$prog")

# The plain run must not inherit a preload or the hub switch from outside.
env -u LD_PRELOAD -u GROVE_MAIN_HUB -u GROVE_DISABLE \
    timeout -k 5 "$limit" "$prog" >"$tmp/$name.plain.out" 2>"$tmp/$name.plain.err" </dev/null
plain_rc=$?
env -u LD_PRELOAD -u GROVE_MAIN_HUB -u GROVE_DISABLE \
    timeout -k 5 "$limit" "$grove_run" "$prog" >"$tmp/$name.shim.out" 2>"$tmp/$name.shim.err" </dev/null
shim_rc=$?

fail=0
if ! grep -qx 'diff-shim-loaded=0' "$tmp/$name.plain.err"; then
    echo "FAIL: the plain run did not report diff-shim-loaded=0" >&2
    fail=1
fi
if ! grep -qx 'diff-shim-loaded=1' "$tmp/$name.shim.err"; then
    echo "FAIL: the run under grove-run did not report diff-shim-loaded=1 (shim not loaded?)" >&2
    fail=1
fi
if [ "$plain_rc" -ne 0 ]; then
    echo "FAIL: the plain run exited with status $plain_rc (124: timed out)" >&2
    fail=1
fi
if ! grep -q '^end ' "$tmp/$name.plain.out"; then
    echo "FAIL: the plain transcript is incomplete (no 'end' line)" >&2
    fail=1
fi
if [ "$shim_rc" -ne "$plain_rc" ]; then
    echo "FAIL: exit status differs: plain $plain_rc, shim $shim_rc (124: timed out)" >&2
    fail=1
fi

cases=$(grep -c '^case ' "$tmp/$name.plain.out")
if ! diff -u --label plain --label shim "$tmp/$name.plain.out" "$tmp/$name.shim.out" >"$tmp/$name.diff"; then
    differing=$(grep -c '^-case ' "$tmp/$name.diff")
    echo "FAIL: transcripts differ ($differing of $cases cases):" >&2
    cat "$tmp/$name.diff" >&2
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "--- plain stderr" >&2
    cat "$tmp/$name.plain.err" >&2
    echo "--- shim stderr" >&2
    cat "$tmp/$name.shim.err" >&2
    exit 1
fi
echo "$name: $cases cases, plain and shim transcripts identical"
exit 0

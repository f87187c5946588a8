#!/bin/sh
# Differential run of one battery program: plain, then under grove-run (with
# and without GROVE_MAIN_HUB=1).
#
#   run_diff.sh GROVE_RUN PROGRAM
#
# Every run must print the same transcript (stdout) byte for byte and exit
# with the same status; the plain run must not have the shim mapped and the
# shim runs must (each program reports it on stderr as diff-shim-loaded=N).
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
limit=${DIFF_TIMEOUT:-35}  # three runs stay inside the suite's 120 s

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

fail=0
if ! grep -qx 'diff-shim-loaded=0' "$tmp/$name.plain.err"; then
    echo "FAIL: the plain run did not report diff-shim-loaded=0" >&2
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
cases=$(grep -c '^case ' "$tmp/$name.plain.out")

# Under grove-run twice: with GROVE_MAIN_HUB=1, where the main thread parks
# in its hub from its first call that could wait (every interposed path of
# the shim runs), and as grove-run leaves it, where the main thread has no
# hub until its first green thread starts (these programs start none: the
# calls pass through, and what the shim keeps for later must not show; a
# hub starting midway is tests/shim/run/check_hub_start.sh's).
for mode in hub lazy; do
    if [ "$mode" = hub ]; then
        set -- env -u LD_PRELOAD -u GROVE_DISABLE GROVE_MAIN_HUB=1
    else
        set -- env -u LD_PRELOAD -u GROVE_DISABLE -u GROVE_MAIN_HUB
    fi
    "$@" timeout -k 5 "$limit" "$grove_run" "$prog" >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err" </dev/null
    rc=$?
    bad=0
    if ! grep -qx 'diff-shim-loaded=1' "$tmp/$name.$mode.err"; then
        echo "FAIL ($mode): the run under grove-run did not report diff-shim-loaded=1 (shim not loaded?)" >&2
        bad=1
    fi
    if [ "$rc" -ne "$plain_rc" ]; then
        echo "FAIL ($mode): exit status differs: plain $plain_rc, shim $rc (124: timed out)" >&2
        bad=1
    fi
    if ! diff -u --label plain --label "shim ($mode)" "$tmp/$name.plain.out" "$tmp/$name.$mode.out" >"$tmp/$name.$mode.diff"; then
        differing=$(grep -c '^-case ' "$tmp/$name.$mode.diff")
        echo "FAIL ($mode): transcripts differ ($differing of $cases cases):" >&2
        cat "$tmp/$name.$mode.diff" >&2
        bad=1
    fi
    if [ "$bad" -ne 0 ]; then
        echo "--- shim ($mode) stderr" >&2
        cat "$tmp/$name.$mode.err" >&2
        fail=1
    fi
done

if [ "$fail" -ne 0 ]; then
    echo "--- plain stderr" >&2
    cat "$tmp/$name.plain.err" >&2
    exit 1
fi
echo "$name: $cases cases, plain and shim transcripts identical (with a main hub from the start, and without one)"
exit 0

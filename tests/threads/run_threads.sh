#!/bin/sh
# Differential run of one green-thread test: natively, under grove-run with
# GROVE_THREADS=green, and under grove-run with GROVE_THREADS=native.
#
#   run_threads.sh GROVE_RUN PROGRAM
#
# All runs must exit 0 and print the same transcript (stdout) byte for
# byte, ending in an "end" line; the green run must have used one OS thread
# (each program prints the Threads: line of /proc/self/status on stderr at
# its end), or several with THREADS_GREEN_OS=1 (a program whose threads the
# shim keeps as OS threads: OpenMP's). THREADS_KEEP=DIR keeps the outputs
# in DIR.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 GROVE_RUN PROGRAM" >&2
    exit 2
fi
grove_run=$1
prog=$2
# A sanitized build: the sanitizer runtime, preloaded first, interposes
# pthread_create itself, so green threads cannot be judged there.
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "SKIP: sanitized build (its runtime interposes pthreads itself)"
    exit 77
fi
limit=${THREADS_TIMEOUT:-60}

if [ -n "${THREADS_KEEP:-}" ]; then
    tmp=$THREADS_KEEP
    mkdir -p "$tmp"
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-threads.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
fi
name=$(basename "$prog")

env -u LD_PRELOAD -u GROVE_MAIN_HUB -u GROVE_DISABLE -u GROVE_THREADS \
    timeout -k 5 "$limit" "$prog" >"$tmp/$name.native.out" 2>"$tmp/$name.native.err" </dev/null
native_rc=$?
env -u LD_PRELOAD -u GROVE_MAIN_HUB -u GROVE_DISABLE GROVE_THREADS=green \
    timeout -k 5 "$limit" "$grove_run" "$prog" >"$tmp/$name.green.out" 2>"$tmp/$name.green.err" </dev/null
green_rc=$?
# The shim loaded with OS threads kept (GROVE_THREADS=native): every call
# passes through, and the transcript must not change either.
env -u LD_PRELOAD -u GROVE_MAIN_HUB -u GROVE_DISABLE GROVE_THREADS=native \
    timeout -k 5 "$limit" "$grove_run" "$prog" >"$tmp/$name.shimnative.out" 2>"$tmp/$name.shimnative.err" </dev/null
shimnative_rc=$?

fail=0
[ "$native_rc" -eq 0 ] || { echo "FAIL: native run exited with $native_rc (124: timed out)" >&2; fail=1; }
[ "$green_rc" -eq 0 ] || { echo "FAIL: green run exited with $green_rc (124: timed out)" >&2; fail=1; }
[ "$shimnative_rc" -eq 0 ] || { echo "FAIL: GROVE_THREADS=native run exited with $shimnative_rc" >&2; fail=1; }
grep -qx 'end' "$tmp/$name.native.out" || { echo "FAIL: native transcript incomplete (no 'end')" >&2; fail=1; }
if ! diff -u --label native --label green "$tmp/$name.native.out" "$tmp/$name.green.out" >"$tmp/$name.diff"; then
    echo "FAIL: transcripts differ:" >&2
    cat "$tmp/$name.diff" >&2
    fail=1
fi
if ! diff -u --label native --label shim-native "$tmp/$name.native.out" "$tmp/$name.shimnative.out" >"$tmp/$name.diff2"; then
    echo "FAIL: transcripts differ under GROVE_THREADS=native:" >&2
    cat "$tmp/$name.diff2" >&2
    fail=1
fi
green_threads=$(sed -n 's/^Threads:[[:space:]]*//p' "$tmp/$name.green.err" | tail -n 1)
native_threads=$(sed -n 's/^Threads:[[:space:]]*//p' "$tmp/$name.native.err" | tail -n 1)
if [ "${THREADS_GREEN_OS:-}" = 1 ]; then
    if [ "${green_threads:-0}" -le 1 ]; then
        echo "FAIL: the green run reported Threads: '${green_threads}' (want OS threads kept)" >&2
        fail=1
    fi
elif [ "$green_threads" != "1" ]; then
    echo "FAIL: the green run reported Threads: '${green_threads}' (want 1)" >&2
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "--- native stdout" >&2; cat "$tmp/$name.native.out" >&2
    echo "--- native stderr" >&2; cat "$tmp/$name.native.err" >&2
    echo "--- green stderr" >&2; cat "$tmp/$name.green.err" >&2
    echo "--- shim-native stderr" >&2; cat "$tmp/$name.shimnative.err" >&2
    exit 1
fi
echo "$name: $(wc -l <"$tmp/$name.native.out") lines identical; Threads at end: native ${native_threads:-?}, green ${green_threads}"
exit 0

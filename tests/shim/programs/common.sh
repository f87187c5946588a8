# Shared by the run_*.sh scripts: sourced, not run.
#
# Each script runs a real, unmodified Debian program twice, plain and under
# grove-run, and compares what it printed. Exit codes follow meson: 0 pass,
# 1 fail, 77 skip.

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 /path/to/grove-run" >&2
    exit 2
fi
GROVE_RUN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grove-prog.XXXXXX")
CLEANUP_PIDS=""

cleanup() {
    for pid in $CLEANUP_PIDS; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

skip() {
    echo "SKIP: $*"
    exit 77
}

# A sanitized build's shim drags the ASan runtime into programs never built
# for it (python, curl): those runs test the sanitizer, not grove.
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    skip "sanitized build: unmodified programs are run under the plain build's shim"
fi

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# need PROGRAM [DEBIAN-PACKAGE]: skips the test when a program is missing.
need() {
    command -v "$1" >/dev/null 2>&1 || skip "$1 not installed${2:+ (Debian package $2)}"
}

# Checks that grove-run really preloads the shim into a program.
check_preload() {
    "$GROVE_RUN" -- /bin/grep -q libgrove_shim /proc/self/maps ||
        fail "grove-run did not map libgrove_shim into /bin/grep"
}

# compare NAME: diffs $WORK/NAME.plain against $WORK/NAME.grove.
compare() {
    if ! cmp -s "$WORK/$1.plain" "$WORK/$1.grove"; then
        echo "FAIL: $1 differs (- plain, + under grove-run):" >&2
        diff -u "$WORK/$1.plain" "$WORK/$1.grove" | head -50 >&2
        exit 1
    fi
    echo "ok: $1 identical ($(wc -c <"$WORK/$1.plain") bytes):"
    sed "s/^/    /" "$WORK/$1.plain"
}

# compare_runs NAME COMMAND...: runs COMMAND plain and under grove-run (60 s
# each at most), requires the same output, a clean exit under grove-run and
# a last plain line "done".
compare_runs() {
    local name=$1
    shift
    timeout -k 5 60 "$@" >"$WORK/$name.plain" 2>&1 || fail "plain run failed: $(cat "$WORK/$name.plain")"
    timeout -k 5 60 "$GROVE_RUN" -- "$@" >"$WORK/$name.grove" 2>&1
    local status=$?
    compare "$name"
    [ $status -eq 0 ] || fail "under grove-run: exit status $status (124: timed out)"
    grep -qx 'done' "$WORK/$name.plain" || fail "unexpected plain output: $(cat "$WORK/$name.plain")"
}

#!/bin/bash
# run_all.sh - every grove benchmark, beside its peers, in one run; prints one
# Markdown report on stdout (progress goes to stderr).
#
#   tests/bench/run_all.sh [RUNS]        (RUNS >= 5, default 5)
#
# Environment:
#   BUILD      a release build of grove; configured and built here if missing
#              (default: build-bench in the repository)
#   PEERS      the peer programs (default: ../shared/peers beside the repository)
#   ECHO_SECS  seconds measured per echo run (3); HTTP_SECS per wrk run (5)
#   SCALE_1M   runs of the 1,000,000-fiber scale row (1; 0 skips it: it needs
#              ~5 GiB of memory and ~2 minutes here)
#   SKIP       space-separated parts to leave out: micro shim startup green_tls green_sync scale
#              echo http
#
# Every table reports medians over RUNS runs (repetitions interleaved across
# the servers compared), with each figure's ratio to the baseline measured
# in the same run: the raw Boost.Context jump for the micro benchmarks, the
# hand-written epoll C server for echo, Go net/http for HTTP.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-5}
[ "$runs" -ge 5 ] 2>/dev/null || { echo "run_all: RUNS must be a number >= 5" >&2; exit 2; }
BUILD=${BUILD:-$repo/build-bench}
PEERS=${PEERS:-$repo/../shared/peers}
SKIP=" ${SKIP:-} "
skip() { case "$SKIP" in *" $1 "*) return 0 ;; esac; return 1; }
say() { echo "run_all: $*" >&2; }

if [ ! -f "$BUILD/build.ninja" ]; then
    say "configuring a release build in $BUILD"
    meson setup "$BUILD" "$repo" --buildtype=release >&2 || exit 2
fi
say "building"
ninja -C "$BUILD" >&2 || exit 2
export BUILD PEERS

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
echo "# grove benchmarks"
echo
echo "$(date -u +%F) · $(nproc) CPUs ($cpu) · $mem · Linux $(uname -r) · $(c++ --version | head -1)"
echo "· load average at start: $(cut -d' ' -f1-3 /proc/loadavg) · RUNS=$runs"
echo

if ! skip micro; then
    say "micro benchmarks"
    echo "## Micro (one process, pinned to CPU 1; ratio to the raw jump of the same run)"
    echo
    taskset -c 1 "$BUILD/tests/bench/bench_micro" --reps "$((runs > 7 ? runs : 7))"
    echo
fi

if ! skip shim; then
    say "shim micro benchmarks"
    echo "## Plain libc calls through the shim"
    echo
    taskset -c 1 "$BUILD/tests/bench/bench_shim" --reps "$((runs > 7 ? runs : 7))"
    echo
fi

if ! skip startup; then
    say "start-up under the preloaded shim"
    echo "## Start-up of programs that never use fibers"
    echo
    echo "Each program started bare, with an empty library preloaded (what preloading"
    echo "anything costs), with the shim preloaded (native and green threads), and"
    echo "through grove-run; $((runs * 40)) interleaved rounds, pinned to CPU 1."
    echo
    for prog in /bin/true "/usr/bin/python3 -c pass"; do
        # shellcheck disable=SC2086
        taskset -c 1 "$BUILD/tests/bench/bench_startup" --runs "$((runs * 40))" \
            --preload "$BUILD/shim/libgrove_shim_preload.so" \
            --empty "$BUILD/tests/shim/run/libempty_preload.so" \
            --grove-run "$BUILD/shim/grove-run" -- $prog
        echo
    done
fi

if ! skip green_tls; then
    say "green-thread switches with their own thread-local variables"
    echo "## Green-thread switches and thread-local variables"
    echo
    echo "Two threads handing off through two semaphores, ns per switch (median"
    echo "of 7 reps of 100k round trips), pinned to CPU 1: OS threads, green threads"
    echo "each with its own \`__thread\` variables (GROVE_THREAD_TLS=own, the default:"
    echo "copied at each switch), and green threads sharing them (=shared)."
    echo
    echo "| __thread bytes | OS threads | green, own | green, shared | own ÷ shared |"
    echo "|---:|---:|---:|---:|---:|"
    for bytes in 64 4096; do
        prog="$BUILD/tests/bench/bench_green_tls_$bytes"
        os=$(taskset -c 1 "$prog" | sed -n 's/.*: \([0-9.]*\) ns.*/\1/p')
        own=$(GROVE_THREAD_TLS=own taskset -c 1 "$BUILD/shim/grove-run" "$prog" | sed -n 's/.*: \([0-9.]*\) ns.*/\1/p')
        shared=$(GROVE_THREAD_TLS=shared taskset -c 1 "$BUILD/shim/grove-run" "$prog" | sed -n 's/.*: \([0-9.]*\) ns.*/\1/p')
        ratio=$(awk -v a="$own" -v b="$shared" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        echo "| $bytes | $os | $own | $shared | $ratio |"
    done
    echo
fi

if ! skip green_sync; then
    say "pthread sync calls natively and on green threads"
    echo "## Pthread sync calls on green threads"
    echo
    echo "ns per operation (median of 5 reps), pinned to CPU 1: uncontended"
    echo "lock+unlock and post+wait, and a hand-off through two semaphores"
    echo "between the main thread and an OS thread started with libc's own"
    echo "pthread_create (green: a green thread and an OS thread sharing them)."
    echo
    echo "| measure | native | green | green ÷ native |"
    echo "|---|---:|---:|---:|"
    prog="$BUILD/tests/bench/bench_green_sync"
    native=$(taskset -c 1 "$prog" 1000000 5)
    green=$(GROVE_THREADS=green taskset -c 1 "$BUILD/shim/grove-run" "$prog" 1000000 5)
    for m in mutex_pair sem_pair os_pingpong; do
        a=$(echo "$native" | sed -n "s/^$m: \([0-9.]*\) ns.*/\1/p")
        b=$(echo "$green" | sed -n "s/^$m: \([0-9.]*\) ns.*/\1/p")
        ratio=$(awk -v a="$b" -v b="$a" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        echo "| $m | $a | $b | $ratio |"
    done
    echo
fi

if ! skip scale; then
    say "scale: 100k fibers x $runs, 1M fibers x ${SCALE_1M:-1}"
    out=$(mktemp)
    for _ in $(seq "$runs"); do
        taskset -c 1 "$BUILD/tests/bench/bench_scale" --fibers 100000 --sleep-ms 2000 >>"$out" || say "scale run failed"
    done
    for _ in $(seq "${SCALE_1M:-1}"); do
        taskset -c 1 "$BUILD/tests/bench/bench_scale" --fibers 1000000 --sleep-ms 5000 >>"$out" || say "1M run failed"
    done
    echo "## Scale: fibers parked in sleep on one hub"
    echo
    python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d = dict(t.split("=", 1) for t in line.split() if "=" in t)
    rows.setdefault(int(d["fibers"]), []).append({k: float(v) for k, v in d.items()})
print("| fibers | runs | spawn calls/s | first run + park /s (fresh stacks) | again /s (pooled stacks) "
      "| RSS per parked fiber | page tables per fiber | mappings while parked |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted(rows):
    rs = rows[n]
    m = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {n:,} | {len(rs)} | {m('spawn_per_s'):,.0f} | {m('park_per_s'):,.0f} | {m('warm_park_per_s'):,.0f} "
          f"| {m('rss_per_fiber_b') / 1024:.2f} KiB | {m('pte_per_fiber_b'):.0f} B | {m('maps'):,.0f} |")
PY
    rm -f "$out"
    echo
fi

if ! skip echo; then
    say "echo servers (about 20 minutes)"
    echo "## Echo servers"
    SYSCALLS=${SYSCALLS:-1} "$repo/tests/bench/echo/bench_echo.sh" "$runs" "${ECHO_SECS:-3}"
    echo
fi

if ! skip http; then
    if [ -x "$repo/tests/bench/http/bench_http.sh" ]; then
        say "HTTP servers"
        echo "## HTTP/1.1 keep-alive under wrk"
        RUNS=$runs SECS=${HTTP_SECS:-5} "$repo/tests/bench/http/bench_http.sh"
        echo
    else
        echo "(HTTP benchmark not present)"
    fi
fi

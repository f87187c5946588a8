#!/bin/bash
# bench_http.sh - grove's demos/http_server beside a Go net/http server
# (hello.go, GOMAXPROCS=1) under wrk; prints Markdown tables, the main one
# last (see README.md here).
#
#   tests/bench/http/bench_http.sh [RUNS] [SECS]
#
# Environment (defaults relative to this repository):
#   RUNS      repetitions per cell (5); the first argument overrides
#   SECS      measured seconds per run (5); the second argument overrides
#   CONNS     "100 1000": wrk connections per cell
#   WARM      warm-up seconds before each measured run, same connections (1)
#   BUILD     grove build dir holding demos/http_server ($repo/build)
#   SERVERS   subset/order of: grove go ("grove go")
#   SYSCALLS  1 (default): one extra short run per cell and server under
#             `perf stat -e raw_syscalls:sys_enter` and one under strace -c;
#             0: none; only: just those
#   PORT      first TCP port (19500); each run takes the next. 127.0.0.1 only.
#   NICE      1 (default): server and wrk at nice -20 when allowed
#   OUT       keep raw wrk outputs and results here (default: a temp dir)
#
# Each run: server pinned to CPU 0, wrk -t1 pinned to CPU 1; a warm-up run,
# then the measured one; the server's utime+stime is read from /proc/PID/stat
# just before and just after the measured wrk run. Repetitions alternate the
# order of the servers (odd: as listed, even: reversed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
RUNS=${1:-${RUNS:-5}}
SECS=${2:-${SECS:-5}}
CONNS=${CONNS:-"100 1000"}
WARM=${WARM:-1}
BUILD=${BUILD:-$repo/build}
SERVERS=${SERVERS:-"grove go"}
SYSCALLS=${SYSCALLS:-1}
port=${PORT:-19500}
prio=""
if [ "${NICE:-1}" = 1 ] && nice -n -20 true 2>/dev/null; then prio="nice -n -20"; fi

die() { echo "bench_http: $*" >&2; exit 2; }
case $RUNS in '' | *[!0-9]*) die "RUNS must be a number, not '$RUNS'" ;; esac
case $SECS in '' | *[!0-9]* | 0) die "SECS must be a positive number of seconds, not '$SECS'" ;; esac
case $WARM in '' | *[!0-9]*) die "WARM must be a number of seconds, not '$WARM'" ;; esac
command -v wrk >/dev/null || die "no wrk in PATH (Debian: apt-get install wrk)"
command -v taskset >/dev/null || die "no taskset in PATH (util-linux)"
[ -x "$BUILD/demos/http_server" ] || die "no $BUILD/demos/http_server (set BUILD=a grove build dir)"
BUILD=$(cd "$BUILD" && pwd)
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, wrk on CPU 1)"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_http.XXXXXX")
out=${OUT:-$work}
mkdir -p "$out"
results=$out/results.txt
notes=$out/notes.txt
: >"$results"
: >"$notes"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    [ -z "${OUT:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the servers ----------------------------------------------------------------------
avail=""
for s in $SERVERS; do
    case $s in
    grove) ;;
    go)
        if ! command -v go >/dev/null; then
            echo "hello.go skipped: no \`go\` in PATH" >>"$notes"; continue
        fi
        if ! (cd "$here" && GOCACHE=$work/gocache GOFLAGS= \
            go build -o "$work/hello_go" hello.go) >"$work/go_build.log" 2>&1; then
            echo "hello.go skipped: go build failed: $(head -c 300 "$work/go_build.log")" >>"$notes"; continue
        fi ;;
    *) die "unknown server '$s' (grove, go)" ;;
    esac
    avail="$avail $s"
done
[ -n "$avail" ] || die "no server to run"
rm -rf "$work/gocache"

server_cmd() { # SERVER PORT -> argv in cmd[]
    case $1 in
    grove) cmd=("$BUILD/demos/http_server" "$2") ;;
    go) cmd=(env GOMAXPROCS=1 "$work/hello_go" "$2") ;;
    esac
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null
fdmax=$(ulimit -n)

# start SERVER: starts it on the next port, pinned to CPU 0; sets server_pid
# and port, or returns 1 with a note.
start() {
    port=$((port + 1))
    server_cmd "$1" "$port"
    # taskset and env exec, so $! is the server's PID.
    $prio taskset -c 0 "${cmd[@]}" >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$work/server.out" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "$1 did not start on port $port: $(head -c 300 "$work/server.err")" >>"$notes"
    stop
    return 1
}

stop() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}

cpu_ticks() { # PID -> utime+stime of the whole process, in clock ticks
    # The fields after the last ')': state is field 3, utime 14, stime 15.
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    s=${s##*) }
    set -- $s
    echo $((${12} + ${13}))
}

rss_kb() { # PID -> VmRSS in KiB
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo -1
}

wrk_run() { # CONNS SECS OUTFILE: wrk pinned to CPU 1 against the current server
    $prio taskset -c 1 wrk -t1 -c "$1" -d "${2}s" --timeout 10s --latency "http://127.0.0.1:$port/" >"$3" 2>&1
}

# Same response from both: status line and fields (the Date value aside) and
# body of GET /, byte for byte.
check_same_response() {
    local s first="" firstname=""
    command -v curl >/dev/null || { echo "response check skipped: no curl" >>"$notes"; return; }
    for s in $avail; do
        start "$s" || continue
        curl -si --max-time 5 "http://127.0.0.1:$port/" | sed 's/^Date: .*$/Date: (now)\r/' >"$work/resp.$s"
        stop
        if [ -z "$first" ]; then
            first=$work/resp.$s firstname=$s
        elif cmp -s "$first" "$work/resp.$s"; then
            echo "GET / answered byte for byte the same by $firstname and $s (Date value aside): $(wc -c <"$first") bytes" >>"$notes"
        else
            echo "GET / answers differ between $firstname and $s: $(diff "$first" "$work/resp.$s" | tr '\r\n' '  ' | head -c 400)" >>"$notes"
        fi
    done
}

# run KIND SERVER CONNS REP: one server process, a warm-up and one measured
# wrk run; appends one line of key=value to $results.
run() {
    local kind=$1 s=$2 conns=$3 rep=$4 secs=$SECS
    [ "$kind" = main ] || secs=3
    start "$s" || return
    local warm_out=$out/wrk.$kind.$s.$conns.$rep.warm wout=$out/wrk.$kind.$s.$conns.$rep
    if [ "$WARM" -gt 0 ]; then
        wrk_run "$conns" "$WARM" "$warm_out"
    fi
    local tracer_pid="" c0 c1 t0 t1 rss=-1
    case $kind in
    perf)
        taskset -c 0 perf stat -x, -e raw_syscalls:sys_enter -o "$out/perf.$s.$conns" -p "$server_pid" &
        tracer_pid=$! ;;
    strace)
        taskset -c 0 strace -c -f -q -o "$out/strace.$s.$conns" -p "$server_pid" &
        tracer_pid=$! ;;
    esac
    # A tracer takes a moment to attach (strace to every thread): the load
    # starts after, so that every request of the run is counted.
    [ -n "$tracer_pid" ] && sleep 1
    c0=$(cpu_ticks "$server_pid")
    t0=$(date +%s.%N)
    (sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"; rss_kb "$server_pid" >"$work/rss") &
    local rss_pid=$!
    wrk_run "$conns" "$secs" "$wout"
    c1=$(cpu_ticks "$server_pid")
    t1=$(date +%s.%N)
    wait "$rss_pid" 2>/dev/null
    rss=$(cat "$work/rss" 2>/dev/null || echo -1)
    if [ -n "$tracer_pid" ]; then
        kill -INT "$tracer_pid" 2>/dev/null
        # Bounded: a tracer that does not let go is killed.
        for _ in $(seq 100); do kill -0 "$tracer_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$tracer_pid" 2>/dev/null
        wait "$tracer_pid" 2>/dev/null
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "$s died during a run ($kind, $conns connections, rep $rep): $(head -c 300 "$work/server.err")" >>"$notes"
    fi
    stop
    echo "kind=$kind server=$s conns=$conns rep=$rep cpu_ticks=$((c1 - c0)) clk_tck=$(getconf CLK_TCK)" \
        "window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') rss_kb=$rss wrk=$wout" >>"$results"
    echo "  $kind $s conns=$conns rep=$rep: $(grep -E 'Requests/sec' "$wout" | tr -s ' ') cpu_ticks=$((c1 - c0))" >&2
    sleep 0.3
}

echo "bench_http: $(date -u +%FT%TZ) runs=$RUNS secs=$SECS warm=$WARM conns=\"$CONNS\" servers=\"$avail\"" \
    "ulimit_n=$fdmax prio=\"$prio\" out=$out" >&2
check_same_response
cells=""
for c in $CONNS; do
    case $c in '' | *[!0-9]* | 0) die "CONNS holds '$c', not a positive number" ;; esac
    if [ "$c" -gt $((fdmax - 64)) ]; then
        echo "$c connections skipped: ulimit -n is only $fdmax" >>"$notes"
        continue
    fi
    cells="$cells $c"
done
[ "$SYSCALLS" = only ] && RUNS=0
for rep in $(seq "$RUNS"); do
    order=$avail
    if [ $((rep % 2)) = 0 ]; then
        order=$(echo "$avail" | tr ' ' '\n' | tac | tr '\n' ' ')
    fi
    for c in $cells; do
        for s in $order; do
            run main "$s" "$c" "$rep"
        done
    done
done
if [ "$SYSCALLS" != 0 ]; then
    for c in $cells; do
        for s in $avail; do
            if perf stat -x, -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
                run perf "$s" "$c" 1
            fi
            if command -v strace >/dev/null; then
                run strace "$s" "$c" 1
            fi
        done
    done
fi

{
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
    echo "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    command -v go >/dev/null && echo "go: $(go version | cut -d' ' -f3)"
} >>"$notes"
python3 "$here/report.py" "$results" "$notes"

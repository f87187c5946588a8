#!/bin/bash
# bench_echo.sh - grove's echo servers beside the peers of ../shared/peers, one
# load generator for all; prints a Markdown table (see README.md here).
#
#   tests/bench/echo/bench_echo.sh [RUNS=5] [SECS=3]
#
# Environment (defaults relative to this repository):
#   BUILD    grove build dir with demos/echo_server and shim/grove-run ($repo/build)
#   PEERS    the peer programs' sources ($repo/../shared/peers)
#   CELLS    "CONNS:SIZE ..." ("1000:64 10000:64 1000:16384 100:64"); 100 connections
#            measure wake-up latency, not CPU, and are tabled apart
#   SERVERS  subset/order of: epoll grove grove_uring thread thread_grove thread_grove_uring tdemo
#            tdemo_grove go gevent (*_uring: with GROVE_IO=uring)
#            (tdemo: grove's own demos/threaded_echo, natively; tdemo_grove: the
#            same binary under grove-run, green threads)
#   WARM     loadgen warm-up seconds (1)
#   SYSCALLS 1 (default): one extra run per cell under perf and one under strace;
#            0: none; only: just those runs
#   PORT     first TCP port (19100); each run takes the next one. 127.0.0.1 only.
#   OUT      keep the raw results and strace outputs here (default: a temp dir)
#
# Each run: server pinned to CPU 0, loadgen to CPU 1, repetitions interleaved
# (rep 1 of every server in every cell, then rep 2...), server killed by PID.
# sample.py reads the server's utime+stime over loadgen's measured window.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
runs=${1:-5} secs=${2:-3}
BUILD=${BUILD:-$repo/build}
PEERS=${PEERS:-$repo/../shared/peers}
CELLS=${CELLS:-"1000:64 10000:64 1000:16384 100:64"}
SERVERS=${SERVERS:-"epoll grove grove_uring thread thread_grove go gevent"}
WARM=${WARM:-1}
SYSCALLS=${SYSCALLS:-1}
port=${PORT:-19100}
# Server and loadgen run at nice -20 when we may (NICE=0 to turn off): on a
# shared VM, other work on the two CPUs then takes ~1 % of their time instead
# of half. CPU per message is per process either way.
prio=""
if [ "${NICE:-1}" = 1 ] && nice -n -20 true 2>/dev/null; then prio="nice -n -20"; fi

die() { echo "bench_echo: $*" >&2; exit 2; }
[ -x "$BUILD/demos/echo_server" ] || die "no $BUILD/demos/echo_server (set BUILD=grove build dir)"
[ -f "$PEERS/loadgen.c" ] || die "no $PEERS/loadgen.c (set PEERS=peers dir)"
BUILD=$(cd "$BUILD" && pwd) PEERS=$(cd "$PEERS" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_echo.XXXXXX")
out=${OUT:-$work}
mkdir -p "$out"
results=$out/results.txt
: >"$results"
notes=$out/notes.txt
: >"$notes"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -z "${OUT:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build the peers ------------------------------------------------------------------
bin=$work/bin
mkdir -p "$bin"
cc -O2 -o "$bin/epoll_echo" "$PEERS/epoll_echo.c" || die "cannot build epoll_echo"
cc -O2 -pthread -o "$bin/thread_echo" "$PEERS/thread_echo.c" || die "cannot build thread_echo"
cc -O2 -o "$bin/loadgen" "$PEERS/loadgen.c" || die "cannot build loadgen"
avail=""
for s in $SERVERS; do
    case $s in
    go)
        if ! command -v go >/dev/null; then
            echo "echo.go skipped: no \`go\` in PATH" >>"$notes"; continue
        fi
        (cd "$PEERS" && GOCACHE=$work/gocache GOFLAGS=-mod=mod go build -o "$bin/echo_go" echo.go) ||
            { echo "echo.go skipped: go build failed" >>"$notes"; continue; } ;;
    gevent)
        if ! /usr/bin/python3 -c 'import gevent' 2>/dev/null; then
            echo "gevent skipped: /usr/bin/python3 cannot import gevent" >>"$notes"; continue
        fi ;;
    thread_grove | thread_grove_uring)
        [ -x "$BUILD/shim/grove-run" ] || { echo "thread_grove skipped: no grove-run" >>"$notes"; continue; } ;;
    tdemo)
        [ -x "$BUILD/demos/threaded_echo" ] || { echo "tdemo skipped: no demos/threaded_echo" >>"$notes"; continue; } ;;
    tdemo_grove)
        [ -x "$BUILD/demos/threaded_echo" ] && [ -x "$BUILD/shim/grove-run" ] ||
            { echo "tdemo_grove skipped: no demos/threaded_echo or grove-run" >>"$notes"; continue; } ;;
    epoll | grove | grove_uring | thread) ;;
    *) die "unknown server $s" ;;
    esac
    avail="$avail $s"
done
case " $avail " in *" epoll "*) ;; *) die "the epoll baseline must be in SERVERS" ;; esac

# Each side holds one fd per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
fdmax=$(ulimit -n)

server_cmd() { # SERVER PORT -> argv in cmd[]
    case $1 in
    epoll) cmd=("$bin/epoll_echo" "$2") ;;
    grove) cmd=("$BUILD/demos/echo_server" "$2") ;;
    grove_uring) cmd=(env GROVE_IO=uring "$BUILD/demos/echo_server" "$2") ;;
    thread) cmd=("$bin/thread_echo" "$2") ;;
    # GROVE_THREADS=green asks for green threads; grove-run execs the program.
    thread_grove) cmd=(env GROVE_THREADS=green "$BUILD/shim/grove-run" "$bin/thread_echo" "$2") ;;
    thread_grove_uring) cmd=(env GROVE_THREADS=green GROVE_IO=uring "$BUILD/shim/grove-run" "$bin/thread_echo" "$2") ;;
    tdemo) cmd=("$BUILD/demos/threaded_echo" "$2") ;;
    tdemo_grove) cmd=(env GROVE_THREADS=green "$BUILD/shim/grove-run" "$BUILD/demos/threaded_echo" "$2") ;;
    go) cmd=(env GOMAXPROCS=1 "$bin/echo_go" "$2") ;;
    gevent) cmd=(/usr/bin/python3 "$PEERS/gevent_echo.py" "$2") ;;
    esac
}

# run KIND SERVER CONNS SIZE REP: one server, one loadgen run; appends one line.
run() {
    local kind=$1 s=$2 conns=$3 size=$4 rep=$5 d=$secs
    port=$((port + 1))
    server_cmd "$s" "$port"
    # taskset and env exec, so $! is the server's PID.
    $prio taskset -c 0 "${cmd[@]}" >/dev/null 2>"$work/server.err" &
    server_pid=$!
    local up=0
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
        sleep 0.1
    done
    if [ $up = 0 ]; then
        echo "$s did not listen on port $port: $(head -c 300 "$work/server.err")" >>"$notes"
        kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=
        return
    fi
    local extra=()
    case $kind in
    strace) extra=(--strace "$out/strace.$s.$conns.$size") ;;
    perf) extra=(--perf "$out/perf.$s.$conns.$size") ;;
    esac
    # sample.py starts loadgen itself (same CPU and priority) and prints its line.
    local line
    line=$($prio taskset -c 1 python3 "$here/sample.py" "$server_pid" "$WARM" "$d" "${extra[@]}" -- \
        "$bin/loadgen" -p "$port" -c "$conns" -s "$size" -d "$d" -w "$WARM")
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
    echo "kind=$kind server=$s rep=$rep $line" >>"$results"
    echo "  $kind $s rep=$rep $line" >&2
    sleep 0.5
}

echo "bench_echo: $(date -u +%FT%TZ) runs=$runs secs=$secs warm=$WARM cells=\"$CELLS\" servers=\"$avail\" ulimit_n=$fdmax prio=\"$prio\" out=$out" >&2
for cell in $CELLS; do
    [ "${cell%%:*}" -gt $((fdmax - 64)) ] && echo "cell $cell skipped: ulimit -n is only $fdmax" >>"$notes"
done
[ "$SYSCALLS" = only ] && runs=0
for rep in $(seq "$runs"); do
    for cell in $CELLS; do
        c=${cell%%:*} z=${cell##*:}
        [ "$c" -gt $((fdmax - 64)) ] && continue
        for s in $avail; do
            run main "$s" "$c" "$z" "$rep"
        done
    done
done
if [ "$SYSCALLS" != 0 ]; then
    for cell in $CELLS; do
        c=${cell%%:*} z=${cell##*:}
        [ "$c" -gt $((fdmax - 64)) ] && continue
        for s in $avail; do
            run perf "$s" "$c" "$z" 1
            run strace "$s" "$c" "$z" 1
        done
    done
fi

python3 "$here/table.py" "$results" "$out" "$notes"

#!/bin/bash
# curl fetching from a local python3 http.server: the output (bodies, HTTP
# codes, sizes) must be the same with and without grove-run. Then the
# server itself runs under grove-run, fetched by plain curl.
set -u
. "$(dirname "$0")/common.sh"

need curl curl
PY=/usr/bin/python3
[ -x "$PY" ] || skip "/usr/bin/python3 not installed (Debian package python3)"
check_preload

mkdir "$WORK/www"
# Deterministic content: a text page and 2 MiB of binary.
printf 'hello from grove\n' >"$WORK/www/hello.txt"
"$PY" -c 'import sys, hashlib
out = bytearray()
h = b"grove"
while len(out) < 2 * 1024 * 1024:
    h = hashlib.sha256(h).digest()
    out += h
sys.stdout.buffer.write(out)' >"$WORK/www/blob.bin"

# start_server [PREFIX...]: an http.server on a free port in $WORK/www;
# sets PORT once it answers.
start_server() {
    local log="$WORK/server.$$.$RANDOM.log"
    (cd "$WORK/www" && exec "$@" "$PY" -u -m http.server --bind 127.0.0.1 0) >"$log" 2>&1 &
    local pid=$!
    CLEANUP_PIDS="$CLEANUP_PIDS $pid"
    SERVER_PID=$pid
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$log" | head -1)
        if [ -n "$PORT" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT/hello.txt"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    fail "http.server ($*) did not answer"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}

# fetch PREFIX...: the same requests, optionally under grove-run.
fetch() {
    local base="http://127.0.0.1:$PORT"
    "$@" curl -sS --fail "$base/hello.txt"
    "$@" curl -sS --fail -o "$WORK/blob.out" -w '%{http_code} %{size_download}\n' "$base/blob.bin"
    sha256sum <"$WORK/blob.out"
    # Two URLs, one connection (keep-alive), and a name through the resolver.
    "$@" curl -sS --fail -w '%{http_code}\n' "$base/hello.txt" "http://localhost:$PORT/hello.txt"
    "$@" curl -sS -o /dev/null -w '%{http_code}\n' "$base/missing"
    # A refused connection: curl's exit status 7.
    "$@" curl -sS -o /dev/null "http://127.0.0.1:1/" 2>/dev/null
    echo "refused: exit $?"
}

start_server
fetch >"$WORK/client.plain" 2>&1
fetch "$GROVE_RUN" -- >"$WORK/client.grove" 2>&1
stop_server
compare client
grep -q '^200 2097152$' "$WORK/client.plain" || fail "unexpected plain output: $(cat "$WORK/client.plain")"

start_server "$GROVE_RUN" --
fetch >"$WORK/server.grove" 2>&1
stop_server
cp "$WORK/client.plain" "$WORK/server.plain"
compare server
exit 0

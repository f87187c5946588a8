#!/bin/bash
# with_dnsmasq.sh CMD [ARGS...]: runs CMD with a private dnsmasq serving the
# test zone on 127.0.0.1 (a free high port), GROVE_TEST_DNS=127.0.0.1:PORT
# and GROVE_TEST_SILENT=127.0.0.1:PORT2 (a UDP socket that never answers)
# in its environment, and GROVE_TEST_DNS6=[::1]:PORT when the loopback
# interface has IPv6 (dnsmasq then listens there too; unset otherwise);
# dnsmasq is killed at the end. Exit 77 (skip) when dnsmasq is not installed.
#
# The zone (.test):
#   a.test           A 192.0.2.1 (and its PTR)
#   both.test        A 192.0.2.2, AAAA 2001:db8::2
#   v6only.test      AAAA 2001:db8::6
#   alias.test       CNAME alias2.test, which is a CNAME of a.test
#   big.test         60 A records: the UDP answer is truncated, TCP needed
#   fail.test        SERVFAIL (forwarded to the silent server, which fails it)
#   mixed.test       A 192.0.2.77, 198.51.100.9; AAAA ::1, fd00::9, 2001:db8::9
#                    (for the address sort)
#   n0..n999.test    A 10.1.x.y, for the many-fibers case
#   anything else    NXDOMAIN
# Reverse: PTR 192.0.2.1 a.test; other 192.0.2.x NXDOMAIN; 192.0.3.x SERVFAIL;
# anything else REFUSED (no upstream).
set -u
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
if [ ! -x "$DNSMASQ" ]; then
    echo "SKIP: dnsmasq not installed (Debian package dnsmasq-base)"
    exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grove-dns.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

HOSTS=$WORK/hosts
: >"$HOSTS"
for i in $(seq 1 60); do
    echo "198.51.100.$i big.test" >>"$HOSTS"
done
for a in 192.0.2.77 198.51.100.9 ::1 fd00::9 2001:db8::9; do
    echo "$a mixed.test" >>"$HOSTS"
done
for i in $(seq 0 999); do
    echo "10.1.$((i / 256)).$((i % 256)) n$i.test" >>"$HOSTS"
done

PY=$(command -v /usr/bin/python3 || command -v python3) || { echo "SKIP: python3 not installed"; exit 77; }

# IPv6 on the loopback interface (some containers have none).
HAVE_V6=0
if "$PY" -c 'import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' 2>/dev/null; then
    HAVE_V6=1
fi

# A port free for both UDP and TCP on 127.0.0.1 (retried: under load a
# python start can fail, and an empty port would silently break the tests).
free_port() {
    local p=""
    for _ in 1 2 3 4 5; do
        p=$("$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
t = socket.socket(); t.bind(("127.0.0.1", p))
if sys.argv[1] == "1":
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", p))
    v = socket.socket(socket.AF_INET6); v.bind(("::1", p))
print(p)' "$HAVE_V6" 2>/dev/null)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.2
    done
    echo "FAIL: no free port" >&2
    exit 1
}

# A UDP server that answers SERVFAIL to names under fail.test and never
# answers anything else.
SILENT_PORT=$(free_port) || exit 1
"$PY" -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $SILENT_PORT))
sys.stdout.close()
while True:
    q, peer = s.recvfrom(4096)
    if len(q) > 12 and (b'\\x04fail\\x04test\\x00' in q.lower() or b'\\x013\\x010\\x03192\\x07in-addr' in q.lower()):
        # header: same id, QR + opcode + RD, RA + rcode 2, the question kept
        s.sendto(q[:2] + bytes([0x80 | (q[2] & 0x79), 0x82]) + q[4:], peer)
" &
PIDS="$PIDS $!"

for attempt in 1 2 3 4 5; do
    PORT=$(free_port) || exit 1
    "$DNSMASQ" --keep-in-foreground --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
        --listen-address=127.0.0.1 $([ $HAVE_V6 = 1 ] && echo --listen-address=::1) \
        --bind-interfaces --port="$PORT" --user="$(id -un)" \
        --pid-file="$WORK/pid" --log-facility="$WORK/log" \
        --addn-hosts="$HOSTS" --local=/test/ --local=/2.0.192.in-addr.arpa/ \
        --host-record=a.test,192.0.2.1 \
        --host-record=both.test,192.0.2.2,2001:db8::2 \
        --host-record=v6only.test,2001:db8::6 \
        --cname=alias2.test,a.test --cname=alias.test,alias2.test \
        --server=/fail.test/127.0.0.1#"$SILENT_PORT" --server=/3.0.192.in-addr.arpa/127.0.0.1#"$SILENT_PORT" \
        --auth-ttl=0 --local-ttl=0 --no-negcache >"$WORK/out" 2>&1 &
    DPID=$!
    ok=0
    for _ in $(seq 1 50); do
        if ! kill -0 "$DPID" 2>/dev/null; then
            break
        fi
        if "$PY" -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
q = b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01'
s.sendto(q, ('127.0.0.1', $PORT))
try:
    s.recv(512); sys.exit(0)
except Exception:
    sys.exit(1)
" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.1
    done
    if [ $ok = 1 ]; then
        PIDS="$PIDS $DPID"
        break
    fi
    kill "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
done
if [ "${ok:-0}" != 1 ]; then
    echo "FAIL: dnsmasq did not start:" >&2
    cat "$WORK/out" "$WORK/log" >&2 2>/dev/null
    exit 1
fi

export GROVE_TEST_DNS=127.0.0.1:$PORT
export GROVE_TEST_SILENT=127.0.0.1:$SILENT_PORT
if [ $HAVE_V6 = 1 ]; then
    export GROVE_TEST_DNS6="[::1]:$PORT"
else
    unset GROVE_TEST_DNS6
    echo "note: no IPv6 on the loopback interface: the IPv6 server cases are skipped"
fi
"$@"

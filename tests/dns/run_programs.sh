#!/bin/bash
# Real, unmodified programs doing lookups under grove-run: getent (ahosts:
# getaddrinfo; hosts: gethostbyname2/gethostbyaddr) and python3's socket
# module. Run by with_dnsmasq.sh.
# 1. /etc/hosts and numeric names: plain vs grove-run, both resolvers.
# 2. The dnsmasq zone: grove-run with the ares resolver vs grove-run with the
#    thread resolver (glibc's own getaddrinfo, pointed at the same server).
set -u
GROVE_RUN=$1
# A sanitized build's shim drags the sanitizer runtime into programs never
# built for it (getent, python3); the plain build runs these.
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "SKIP: sanitized build: unmodified programs are run under the plain build's shim"
    exit 77
fi
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grove-dnsprog.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[ -x "$PY" ] || { echo "SKIP: /usr/bin/python3 not installed"; exit 77; }
command -v getent >/dev/null || { echo "SKIP: getent not installed"; exit 77; }
export RES_OPTIONS="timeout:1 attempts:1"
# The programs are single-threaded: without a main hub their lookups would
# go straight to libc, and grove's resolvers would not be the ones compared.
export GROVE_MAIN_HUB=1
status=0

same() {  # NAME: compares $WORK/NAME.a and $WORK/NAME.b
    if cmp -s "$WORK/$1.a" "$WORK/$1.b"; then
        echo "ok: $1 ($(wc -l <"$WORK/$1.a") lines)"
    else
        echo "FAIL: $1 differs:" >&2
        diff -u "$WORK/$1.a" "$WORK/$1.b" | head -40 >&2
        status=1
    fi
}

# pair NAME A B: runs the functions A and B into $WORK/NAME.a and .b and
# compares them. Lookups of names and addresses missing from /etc/hosts go to
# the system's name server, which is not ours and may time out (EAI_AGAIN)
# for one run and not the other: a difference is looked at again, up to three
# rounds, and only one that stays is a failure.
pair() {
    local name=$1 round
    for round in 1 2 3; do
        "$2" >"$WORK/$name.a" 2>&1
        "$3" >"$WORK/$name.b" 2>&1
        cmp -s "$WORK/$name.a" "$WORK/$name.b" && break
        [ $round -lt 3 ] && echo "note: $name differed in round $round, looking again" >&2
    done
    same "$name"
}

local_names="localhost runsc vm 127.0.0.1 ::1 127.1"
getent_plain() { for n in $local_names; do getent $what "$n"; echo "rc=$?"; done; }
getent_grove() {
    for n in $local_names; do GROVE_RESOLVER=$r "$GROVE_RUN" -- getent $what "$n"; echo "rc=$?"; done
}
python_plain() { "$PY" "$HERE/lookups.py" $local_names; }
python_grove() { GROVE_RESOLVER=$r "$GROVE_RUN" -- "$PY" "$HERE/lookups.py" $local_names; }
for what in "ahosts" "ahostsv4" "hosts"; do
    for r in thread ares; do
        pair "getent-$what-$r" getent_plain getent_grove
    done
done
for r in thread ares; do
    pair "python-local-$r" python_plain python_grove
done

# big.test: dnsmasq rotates its 60 records, so no two answers are in the same
# order.
skip_zone='^gai big.test\|^ghbn big.test'
zone="a.test both.test v6only.test alias.test big.test nx.test fail.test mixed.test localhost. foo.localhost"
export GROVE_DNS_SERVERS=$GROVE_TEST_DNS
GROVE_RESOLVER=thread "$GROVE_RUN" -- "$PY" "$HERE/lookups.py" $zone | grep -v "$skip_zone" \
    >"$WORK/python-zone.a" 2>&1
GROVE_RESOLVER=ares "$GROVE_RUN" -- "$PY" "$HERE/lookups.py" $zone | grep -v "$skip_zone" \
    >"$WORK/python-zone.b" 2>&1
same python-zone
grep -q "192.0.2.1" "$WORK/python-zone.a" || { echo "FAIL: the zone was not reached" >&2; status=1; }
exit $status

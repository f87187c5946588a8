#!/bin/bash
# python3 (Debian's) with a multiprocessing.Pool: the pool's threads wait on
# process-shared semaphores that its other threads post, which must not
# stop the one OS thread green threads run on. The printed results must be
# the same with and without grove-run.
set -u
. "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "/usr/bin/python3 not installed (Debian package python3)"
check_preload

"$PY" "$HERE/pool.py" >"$WORK/pool.plain" 2>&1 || fail "plain run failed: $(cat "$WORK/pool.plain")"
timeout -k 5 60 "$GROVE_RUN" -- "$PY" "$HERE/pool.py" >"$WORK/pool.grove" 2>&1
status=$?
compare pool
[ $status -eq 0 ] || fail "under grove-run: exit status $status (124: timed out)"
grep -qx 'done' "$WORK/pool.plain" || fail "unexpected plain output: $(cat "$WORK/pool.plain")"
exit 0

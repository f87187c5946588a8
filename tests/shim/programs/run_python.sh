#!/bin/bash
# python3 (Debian's) doing blocking socket I/O, time.sleep and subprocess:
# the printed results must be the same with and without grove-run.
set -u
. "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "/usr/bin/python3 not installed (Debian package python3)"
check_preload

"$PY" "$HERE/echo_sleep.py" >"$WORK/python.plain" 2>&1 || fail "plain run failed: $(cat "$WORK/python.plain")"
"$GROVE_RUN" -- "$PY" "$HERE/echo_sleep.py" >"$WORK/python.grove" 2>&1
status=$?
compare python
[ $status -eq 0 ] || fail "under grove-run: exit status $status"
grep -q 'identical: True' "$WORK/python.plain" || fail "unexpected plain output: $(cat "$WORK/python.plain")"
exit 0

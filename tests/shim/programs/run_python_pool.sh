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

compare_runs pool "$PY" "$HERE/pool.py"
exit 0

#!/bin/bash
# guile (Debian's guile-3.0) with threads on green threads: its collector
# stops the other threads with a signal each, and each handler waits for
# the resume signal. Sent in the sender's context, the handlers stopped
# the collector itself and the program hung. The output must be the same
# with and without grove-run.
set -u
. "$(dirname "$0")/common.sh"

GUILE=$(command -v guile-3.0 || command -v guile)
[ -n "$GUILE" ] && [ -x "$GUILE" ] || skip "guile not installed (Debian package guile-3.0)"
check_preload

compare_runs guile "$GUILE" --no-auto-compile -s "$HERE/threads.scm"
exit 0

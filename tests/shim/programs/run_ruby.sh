#!/bin/bash
# ruby (Debian's) with threads on green threads: the VM keeps each thread's
# execution context in thread-local variables, so green threads that shared
# the OS thread's crashed it. The output must be the same with and without
# grove-run.
set -u
. "$(dirname "$0")/common.sh"

RUBY=/usr/bin/ruby
[ -x "$RUBY" ] || skip "/usr/bin/ruby not installed (Debian package ruby)"
check_preload

timeout -k 5 60 "$RUBY" "$HERE/threads.rb" >"$WORK/ruby.plain" 2>&1 || fail "plain run failed: $(cat "$WORK/ruby.plain")"
timeout -k 5 60 "$GROVE_RUN" -- "$RUBY" "$HERE/threads.rb" >"$WORK/ruby.grove" 2>&1
status=$?
compare ruby
[ $status -eq 0 ] || fail "under grove-run: exit status $status (124: timed out)"
grep -qx 'done' "$WORK/ruby.plain" || fail "unexpected plain output: $(cat "$WORK/ruby.plain")"
exit 0

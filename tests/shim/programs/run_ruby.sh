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

compare_runs ruby "$RUBY" "$HERE/threads.rb"
exit 0

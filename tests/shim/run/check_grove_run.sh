#!/bin/sh
# grove-run's own behaviour: --help, the errors for what preloading cannot
# reach (a missing program, a static binary, a setuid one), LD_PRELOAD kept,
# and a plain program's output unchanged.
#
#   check_grove_run.sh GROVE_RUN STATIC_PROGRAM LINKED_PROGRAM DEFAULT_SHIM_NAME INDIRECT_PROGRAM
#
# LINKED_PROGRAM links libgrove and prints its LD_PRELOAD; DEFAULT_SHIM_NAME
# is the library grove-run preloads into other programs in this build;
# INDIRECT_PROGRAM reaches libgrove only through a library of its own.
set -u
grove_run=$1
static_prog=$2
linked_prog=$3
default_shim=$4
indirect_prog=$5
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-run-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0

expect() {  # expect NAME WANT_STATUS PATTERN CMD...
    name=$1 want=$2 pattern=$3
    shift 3
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL $name: exit $got, wanted $want"; cat "$tmp/out"; fail=1
    elif ! grep -q -- "$pattern" "$tmp/out"; then
        echo "FAIL $name: output lacks '$pattern'"; cat "$tmp/out"; fail=1
    else
        echo "ok   $name"
    fi
}

expect help 0 "usage: grove-run" "$grove_run" --help
expect no-program 2 "usage: grove-run" "$grove_run"
expect missing 127 "no such program" "$grove_run" /nonexistent/program
expect missing-in-path 127 "no such program" "$grove_run" grove-no-such-program-anywhere
expect unknown-option 2 "unknown option" "$grove_run" --frobnicate true
expect static 126 "statically linked" "$grove_run" "$static_prog"
cp /bin/true "$tmp/setuid-true" && chmod u+s "$tmp/setuid-true"
expect setuid 126 "setuid" "$grove_run" "$tmp/setuid-true"
printf 'not executable\n' >"$tmp/plain-file"
expect not-executable 126 "not an executable" "$grove_run" "$tmp/plain-file"

# The shim is preloaded, existing LD_PRELOAD entries are kept after it, and
# pthreads become green threads. (A sanitized grove-run cannot itself start
# with a foreign LD_PRELOAD ahead of its runtime: that check is for the
# plain build.)
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "skip environment (sanitized build)"
else
env -u GROVE_THREADS LD_PRELOAD=libc.so.6 "$grove_run" /bin/sh -c 'echo "$LD_PRELOAD"; echo "threads=$GROVE_THREADS"' >"$tmp/env" 2>&1
if grep -q "/$default_shim:libc.so.6\$" "$tmp/env" && grep -qx threads=green "$tmp/env"; then
    echo "ok   environment"
else
    echo "FAIL environment (wanted $default_shim:libc.so.6):"; cat "$tmp/env"; fail=1
fi
# A program that links libgrove gets libgrove_shim.so, which shares that
# libgrove (a self-contained copy would run a second hub beside it).
out=$("$grove_run" "$linked_prog" 2>&1)
case $out in
    "42 "*/libgrove_shim.so) echo "ok   linked-program" ;;
    *) echo "FAIL linked-program: '$out'"; fail=1 ;;
esac
# One that reaches libgrove only through a library of its own is started
# over with libgrove_shim.so: its fiber's plain usleep() parks on the one
# hub there is.
out=$(timeout 20 "$grove_run" "$indirect_prog" 2>&1)
case $out in
    "42 "*/libgrove_shim.so) echo "ok   indirect-program" ;;
    *) echo "FAIL indirect-program: '$out'"; fail=1 ;;
esac
# An explicit --shim wins, and GROVE_SHIM too.
out=$("$grove_run" --shim "$tmp/plain-file" /bin/sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
if [ "$out" = "$tmp/plain-file" ]; then
    echo "ok   shim-option"
else
    echo "FAIL shim-option: '$out'"; fail=1
fi
out=$(GROVE_SHIM=/nonexistent/libx.so "$grove_run" /bin/true 2>&1)
case $out in
    *"cannot find the shim library /nonexistent/libx.so"*) echo "ok   shim-missing" ;;
    *) echo "FAIL shim-missing: '$out'"; fail=1 ;;
esac
fi

# A plain program prints the same with and without the shim. (sort is
# threaded, so under a sanitized build's runtime this is skipped too: that
# runtime interposes pthreads itself, which green threads cannot share.)
if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    echo "skip unchanged-output (sanitized build)"
else
plain=$(printf 'b\na\nc\n' | sort; echo "status $?")
shimmed=$(printf 'b\na\nc\n' | "$grove_run" sort; echo "status $?")
if [ "$plain" = "$shimmed" ]; then
    echo "ok   unchanged-output"
else
    echo "FAIL unchanged-output: '$plain' vs '$shimmed'"; fail=1
fi

# The main thread's hub starts with the first green thread, not before: a
# program that writes and sleeps on one thread makes no epoll instance; one
# that starts a thread does (and GROVE_MAIN_HUB=1 makes it at once).
if command -v python3 >/dev/null 2>&1; then
    cat >"$tmp/hub.py" <<'PY'
import os, sys, threading, time
def epolls():
    n = 0
    for f in os.listdir('/proc/self/fd'):
        try:
            n += os.readlink('/proc/self/fd/' + f) == 'anon_inode:[eventpoll]'
        except OSError:
            pass
    return n
os.write(1, b'')
time.sleep(0.01)
print('before', epolls())
if len(sys.argv) > 1:
    t = threading.Thread(target=time.sleep, args=(0.01,))
    t.start()
    t.join()
    print('after', epolls())
PY
    for case in "lazy:::before 0" "lazy-thread::t:before 0 after 1" "eager:1::before 1"; do
        name=${case%%:*} rest=${case#*:}
        hub=${rest%%:*} rest=${rest#*:}
        arg=${rest%%:*} want=${rest#*:}
        if [ -n "$hub" ]; then
            got=$(env GROVE_MAIN_HUB=1 "$grove_run" python3 "$tmp/hub.py" $arg 2>&1 | tr '\n' ' ')
        else
            got=$(env -u GROVE_MAIN_HUB "$grove_run" python3 "$tmp/hub.py" $arg 2>&1 | tr '\n' ' ')
        fi
        if [ "${got% }" = "$want" ]; then
            echo "ok   main-hub-$name: $want"
        else
            echo "FAIL main-hub-$name: '$got', wanted '$want'"; fail=1
        fi
    done
else
    echo "skip main-hub (no python3)"
fi
fi
exit $fail

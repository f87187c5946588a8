#!/bin/sh
# Preloading the shim onto a program that never uses fibers changes nothing
# it prints and adds no work at start-up (issue #4). Checks things that are
# deterministic, not timings:
#   - output: a plain C program, and a C++ one whose threads leave through
#     pthread_exit, print byte for byte the same, with the same status,
#     natively, with each shim library preloaded, and under grove-run;
#   - loaded objects: the self-contained preload library brings nothing
#     into a C program but itself (no libstdc++, libm, Boost.Context,
#     c-ares or libgrove; not even libgcc_s, loaded on the first unwind);
#   - exports: it exports exactly the C functions libgrove_shim.so does,
#     and no C++ symbol (its runtime copies stay private);
#   - syscalls: a preloaded /bin/true makes none but the loader's mapping
#     of the libraries: no malloc, epoll, eventfd, thread, signal
#     disposition, file or environment probing of the shim's own.
#
#   - page faults: preloading it onto /bin/true costs at most two page
#     faults more than preloading an empty library (what start-up time
#     there is to lose goes almost all to page faults on a VM); onto
#     python3 -c pass, which calls into the shim (semaphores, fcntl, close,
#     sigaction of every signal, fflush at exit) and never waits, at most
#     six more (eight with green threads, whose calls also classify fds and
#     keep pthread keys of their own).
#
#   check_preload.sh GROVE_RUN LIBGROVE_SHIM PRELOAD_LIB|none NM PLAIN_PROG CXX_PROG EMPTY_LIB
set -u
grove_run=$1 shim=$2 preload=$3 nm=$4 plain_prog=$5 cxx_prog=$6 empty=$7
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-preload-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

if [ "${GROVE_TEST_SANITIZED:-}" = 1 ]; then
    # The sanitized shim needs its runtime preloaded first, which changes
    # what the loader maps and what start-up does: nothing to compare.
    echo "SKIP: sanitized build"
    exit 77
fi

libs="$shim"
[ "$preload" != none ] && libs="$libs $preload"

# ---- output --------------------------------------------------------------------
run_plain() {  # run_plain NAME CMD... : stdout, stderr, status of the plain program
    printf 'first line\nsecond line\n\nlast, no newline' | "$@" one 'two words' >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo "status $?" >>"$tmp/$name.out"
}
name=native; run_plain "$plain_prog"
if ! grep -qx 'status 3' "$tmp/native.out" || ! grep -q "reply 16 'PING FROM PARENT', child reaped, exit 7" "$tmp/native.out"; then
    bad "plain program: unexpected native transcript"; cat "$tmp/native.out"
fi
n=0
for lib in $libs; do
    n=$((n + 1))
    name=pre$n; LD_PRELOAD=$lib run_plain "$plain_prog"
    name=pre$n-hub; LD_PRELOAD=$lib GROVE_MAIN_HUB=1 run_plain "$plain_prog"
done
name=grove-run; run_plain "$grove_run" "$plain_prog"
for f in "$tmp"/pre*.out "$tmp/grove-run.out"; do
    base=${f%.out}
    if cmp -s "$tmp/native.out" "$f" && cmp -s "$tmp/native.err" "$base.err"; then
        ok "plain-output $(basename "$base")"
    else
        bad "plain-output $(basename "$base") differs from native:"
        diff "$tmp/native.out" "$f"; diff "$tmp/native.err" "$base.err"
    fi
done

"$cxx_prog" >"$tmp/cxx.native" 2>&1; echo "status $?" >>"$tmp/cxx.native"
if ! grep -q 'destroyed thread top' "$tmp/cxx.native" || ! grep -qx 'status 0' "$tmp/cxx.native"; then
    bad "c++ program: unexpected native transcript"; cat "$tmp/cxx.native"
fi
for lib in $libs; do
    LD_PRELOAD=$lib "$cxx_prog" >"$tmp/cxx.pre" 2>&1; echo "status $?" >>"$tmp/cxx.pre"
    if cmp -s "$tmp/cxx.native" "$tmp/cxx.pre"; then
        ok "c++-output $(basename "$lib")"
    else
        bad "c++-output $(basename "$lib") differs from native:"; diff "$tmp/cxx.native" "$tmp/cxx.pre"
    fi
done
for threads in green native; do
    GROVE_THREADS=$threads "$grove_run" "$cxx_prog" >"$tmp/cxx.run" 2>&1; echo "status $?" >>"$tmp/cxx.run"
    if cmp -s "$tmp/cxx.native" "$tmp/cxx.run"; then
        ok "c++-output grove-run $threads threads"
    else
        bad "c++-output grove-run ($threads threads) differs from native:"; diff "$tmp/cxx.native" "$tmp/cxx.run"
    fi
done

if [ "$preload" = none ]; then
    echo "skip objects, exports, syscalls (no self-contained preload library in this build)"
    exit $fail
fi

# ---- loaded objects --------------------------------------------------------------
# The loader lists what it maps and stops: no program code runs.
objects() {  # objects [VAR=VALUE...]
    env -u LD_LIBRARY_PATH LD_TRACE_LOADED_OBJECTS=1 "$@" /bin/true |
        sed -e 's/ (0x[0-9a-f]*)$//' -e 's/^[[:space:]]*//' | sort
}
objects >"$tmp/objs.native"
objects LD_PRELOAD="$preload" >"$tmp/objs.pre"
extra=$(comm -13 "$tmp/objs.native" "$tmp/objs.pre" | grep -v -e "^$preload\$")
if [ -z "$extra" ] && grep -qx "$preload" "$tmp/objs.pre"; then
    ok "objects: the preload library adds only itself"
else
    bad "objects: preloading $preload also loads:"; echo "$extra"; cat "$tmp/objs.pre"
fi
# The control: the shared-library shim does bring libstdc++ (else this
# check would prove nothing).
objects LD_PRELOAD="$shim" | grep -q 'libstdc++' || bad "objects: libgrove_shim.so no longer loads libstdc++? the check is stale"

# ---- exports ---------------------------------------------------------------------
exports() { "$nm" -D --defined-only "$1" | awk '{print $NF}' | sort -u; }
exports "$preload" >"$tmp/exp.pre"
# The private C++ runtime's, c-ares', Boost.Context's names; glibc's
# __cxa_thread_atexit_impl is one the shim interposes (green threads'
# thread_local destructors).
runtime_exports() {
    grep -e '^__cxa_' -e '^__gxx_' -e '^ares_' -e '_fcontext$' "$tmp/exp.pre" | grep -vx '__cxa_thread_atexit_impl'
}
exports "$shim" | grep -v '^_Z' >"$tmp/exp.shim"
if grep -q '^_Z' "$tmp/exp.pre"; then
    bad "exports: C++ symbols exported:"; grep '^_Z' "$tmp/exp.pre" | head
elif runtime_exports | grep -q .; then
    bad "exports: runtime symbols exported:"; runtime_exports | head
elif ! cmp -s "$tmp/exp.shim" "$tmp/exp.pre"; then
    bad "exports: not the C functions libgrove_shim.so exports:"; diff "$tmp/exp.shim" "$tmp/exp.pre"
elif [ "$(wc -l <"$tmp/exp.pre")" -lt 100 ]; then
    bad "exports: only $(wc -l <"$tmp/exp.pre") symbols: the interposed functions are missing"
else
    ok "exports: the $(wc -l <"$tmp/exp.pre") interposed C functions, nothing else"
fi

# ---- what the loader writes -------------------------------------------------------
# The loader relocates the read-only-after-relocation data at every start and
# writes each page of it: the preload library keeps it small (3.9 KiB: no
# demangler and its tables of pointers, shim/terminate_handler.cpp).
relro=$(readelf -lW "$preload" 2>/dev/null | awk '$1 == "GNU_RELRO" { print $3, $6 }')
if [ -z "$relro" ]; then
    echo "skip relocated data (no readelf, or no RELRO segment)"
else
    start=$((${relro% *})) size=$((${relro#* }))
    pages=$(( (start + size + 4095) / 4096 - start / 4096 ))
    if [ "$pages" -le 2 ] && ! nm "$preload" 2>/dev/null | grep -q ' __cxa_demangle$'; then
        ok "relocated data: $size bytes on $pages page(s), no demangler"
    else
        bad "relocated data: $size bytes on $pages pages (at most 2), or the demangler is linked in"
    fi
fi

# ---- lazy bindings -----------------------------------------------------------------
# A program that never calls the shim makes no lazily bound call of the
# shim's: its constructor and exit work bind nothing after load (the first
# lazy binding of a process costs ~10 us here, most programs binding their
# own calls at start).
if LD_DEBUG=bindings LD_PRELOAD="$preload" /bin/true 2>"$tmp/bindings"; then
    late=$(sed -n '/calling init: .*libgrove_shim_preload/,$p' "$tmp/bindings" | grep -c "binding file .*libgrove_shim_preload")
    if ! grep -q "calling init: .*libgrove_shim_preload" "$tmp/bindings"; then
        echo "skip lazy bindings (the loader printed no bindings)"
    elif [ "$late" -eq 0 ]; then
        ok "lazy bindings: none made by the shim's start-up and exit in /bin/true"
    else
        bad "lazy bindings: the shim's start-up or exit bound $late call(s) lazily:"
        sed -n '/calling init: .*libgrove_shim_preload/,$p' "$tmp/bindings" | grep "binding file .*libgrove_shim_preload" | head
    fi
else
    bad "lazy bindings: /bin/true failed with the shim preloaded"
fi

# ---- page faults -----------------------------------------------------------------
# Median minor faults of 15 starts of a program each way (posix_spawn, the
# child's own rusage). What the shim may add over any preloaded library at
# load: one page of text or data that a random load address may split in
# two (its relocated data is one page, as an empty library's is; the data
# the loader writes beside it, one more). A program that calls into
# the shim also runs its entry points, which sit together
# (shim/preload_layout.ld), and writes a little of its data, which sits on
# a page loading writes anyway (GROVE_LOAD_DATA): a few pages more.
faults() {  # faults "PROG ARGS" VAR=VALUE...
    env -u LD_LIBRARY_PATH python3 - "$@" <<'PY'
import os, statistics, sys
argv = sys.argv[1].split()
env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "GROVE_"))}
env.update(a.split("=", 1) for a in sys.argv[2:])
counts = []
for _ in range(15):
    pid = os.posix_spawn(argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    counts.append(ru.ru_minflt)
print(int(statistics.median(counts)))
PY
}
if command -v python3 >/dev/null 2>&1; then
    # Libraries just linked may still be under writeback, and the kernel's
    # fault-around maps no page that is: written out first, they fault as
    # an installed library does.
    sync "$preload" "$empty" 2>/dev/null || sync
    for case in "/bin/true:2:2" "/usr/bin/python3 -c pass:5:6"; do
        prog=${case%%:*} rest=${case#*:}
        [ -x "${prog%% *}" ] || { echo "skip faults of $prog (not installed)"; continue; }
        f_empty=$(faults "$prog" LD_PRELOAD="$empty")
        f_pre=$(faults "$prog" LD_PRELOAD="$preload")
        f_green=$(faults "$prog" LD_PRELOAD="$preload" GROVE_THREADS=green)
        for pair in "native:$f_pre:${rest%%:*}" "green:$f_green:${rest#*:}"; do
            mode=${pair%%:*} n=${pair#*:} most=${pair##*:}
            n=${n%%:*}
            if [ -n "$n" ] && [ -n "$f_empty" ] && [ "$n" -le $((f_empty + most)) ]; then
                ok "faults ($mode threads): $n page faults starting $prog, an empty library $f_empty"
            else
                bad "faults ($mode threads): $n page faults starting $prog, an empty library only $f_empty (at most $most more)"
            fi
        done
    done
else
    echo "skip page faults (no python3)"
fi

# ---- syscalls --------------------------------------------------------------------
if ! command -v strace >/dev/null 2>&1; then
    echo "skip syscalls (no strace)"
    exit $fail
fi
# Syscall names in order, less the loader's work on libraries (the search
# along a RUNPATH, opening, reading the ELF header, mapping, protecting,
# closing), and for libgrove_shim.so what the first malloc does (the shared
# libstdc++ allocates its emergency exception pool at load; the preload
# library's own runtime does not). Any other file the shim opened, or
# epoll, eventfd, clone, rt_sigaction, readlink..., stays in the list.
calls() {  # calls EXTRA_CALLS_ALLOWED [strace args]
    allowed="mmap|mprotect|munmap|pread64$1"
    shift
    # Not meson's LD_LIBRARY_PATH: the loader would probe its directories.
    env -u LD_LIBRARY_PATH strace -qq -o "$tmp/trace" "$@" /bin/true || return 1
    sed -e 's/^[0-9]* *//' "$tmp/trace" |
        grep -v -E -e "^($allowed)\\(" \
                   -e '^openat\(AT_FDCWD, "[^"]*(\.so(\.[0-9]+)*|/ld\.so\.cache)", ' \
                   -e '^read\([0-9]+, "\\177ELF' \
                   -e '^newfstatat\([0-9]+, "", ' \
                   -e '^newfstatat\(AT_FDCWD, "[^"]*", 0x[0-9a-f]+, 0\) = -1 ENOENT' \
                   -e '^close\([0-9]+\) += 0' \
                   -e '^access\("/etc/ld\.so\.preload", ' \
                   -e '^\+\+\+ exited with 0' |
        sed -e 's/(.*//'
}
for lib in $libs; do
    extra=""
    [ "$lib" = "$shim" ] && extra="|brk|getrandom"
    calls "$extra" >"$tmp/sys.native" || bad "syscalls: strace failed"
    calls "$extra" -E LD_PRELOAD="$lib" >"$tmp/sys.pre" || bad "syscalls: strace failed"
    if cmp -s "$tmp/sys.native" "$tmp/sys.pre"; then
        ok "syscalls $(basename "$lib"): none of its own at start-up"
    else
        bad "syscalls $(basename "$lib"): start-up makes calls /bin/true does not:"
        diff "$tmp/sys.native" "$tmp/sys.pre"
    fi
done
exit $fail

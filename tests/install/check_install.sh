#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR and builds a user program with
# nothing but `pkg-config --cflags --libs grove`, as a user would, then runs it.
set -euo pipefail
build_root=$1
source_root=$2
extra_flags=${3:-}   # a sanitized build's -fsanitize=..., for the user program too
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build_root" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name grove.pc | head -n 1)
[ -n "$pc" ] || { echo "grove.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"   # the .pc names the real prefix
flags=$(pkg-config --cflags --libs grove)
libdir=$(pkg-config --variable=libdir grove)  # sysroot applied
includedir=$(pkg-config --variable=includedir grove)
for h in grove.hpp fiber.hpp sync.hpp timeout.hpp io.hpp net.hpp; do
    [ -f "$includedir/grove/$h" ] || { echo "header $h was not installed" >&2; exit 1; }
done
c++ -O1 $extra_flags -o "$tmp/user" "$source_root/tests/install/user_program.cpp" $flags
out=$(LD_LIBRARY_PATH="$libdir" ASAN_OPTIONS=detect_leaks=0 "$tmp/user")
echo "$out"
[ "$out" = "42 ok" ] || { echo "unexpected output from the installed build" >&2; exit 1; }

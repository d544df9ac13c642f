#!/bin/sh
# Usage: install_test.sh BUILD_DIR SOURCE_ROOT MESON CC [CC args...]
# Installs the build into a temporary DESTDIR, builds the README example (or
# tests/test_header.c when the README has none) with pkg-config against the
# installed files only, runs it, and checks that the installed libinorm
# exports nothing but inorm_* symbols.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$1
src=$2
meson=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "install test: FAIL: $*" >&2; exit 1; }

if ! "$meson" install -C "$build" --destdir "$tmp/root" --no-rebuild > "$tmp/install.log" 2>&1; then
    cat "$tmp/install.log" >&2
    fail "meson install failed"
fi

pc=$(find "$tmp/root" -name inorm.pc | head -n 1)
[ -n "$pc" ] || fail "no inorm.pc installed"
prefix=$(sed -n 's/^prefix=//p' "$pc" | head -n 1)
[ -n "$prefix" ] || fail "inorm.pc has no prefix= line"
mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$tmp/root$prefix|" "$pc" > "$tmp/pc/inorm.pc"
export PKG_CONFIG_PATH="$tmp/pc"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR 2>/dev/null || true
cflags=$(pkg-config --cflags inorm) || fail "pkg-config --cflags inorm"
libs=$(pkg-config --libs inorm) || fail "pkg-config --libs inorm"
libdir=$(pkg-config --variable=libdir inorm)
includedir=$(pkg-config --variable=includedir inorm)
echo "installed: prefix $prefix, libdir $libdir"
echo "pkg-config: $cflags $libs"
[ -f "$includedir/inorm.h" ] || fail "inorm.h not installed in $includedir"
case "$cflags" in *"$src"*) fail "pkg-config cflags point into the source tree: $cflags" ;; esac

if sh "$here/readme_extract.sh" "$src/README.md" "$tmp/example.c" 2>"$tmp/extract.err"; then
    what="README example"
else
    cat "$tmp/extract.err" >&2
    echo "note: no README example; building tests/test_header.c instead"
    cp "$here/test_header.c" "$tmp/example.c"
    what="test_header.c"
fi
# shellcheck disable=SC2086
"$@" -std=c11 $cflags "$tmp/example.c" -o "$tmp/example" $libs -lm -lpthread -ldl \
    || fail "building the $what against the installed inorm"
LD_LIBRARY_PATH="$libdir" "$tmp/example" || fail "the $what built against the installed inorm failed"

so=$(find "$tmp/root" -name 'libinorm.so*' -type f | head -n 1)
if [ -n "$so" ]; then
    bad=$(nm -D --defined-only "$so" | awk '$2 != "A" && $3 !~ /^inorm_/ { print $3 }')
    if [ -n "$bad" ]; then
        echo "$bad" | head -n 40 >&2
        fail "$(basename "$so") exports $(echo "$bad" | wc -l) symbol(s) not starting with inorm_ (listed above)"
    fi
    n=$(nm -D --defined-only "$so" | awk '$3 ~ /^inorm_/' | wc -l)
    echo "$(basename "$so"): $n exported symbols, all inorm_*"
    [ "$n" -gt 0 ] || fail "no inorm_ symbol exported"
    # and every function the installed header declares is exported
    nm -D --defined-only "$so" | awk '{ print $3 }' > "$tmp/exported"
    missing=""
    for f in $(grep '^INORM_API' "$includedir/inorm.h" | sed 's/(.*//' | awk '{ print $NF }' | tr -d '*'); do
        grep -qx "$f" "$tmp/exported" || missing="$missing $f"
    done
    [ -z "$missing" ] || fail "declared in inorm.h but not exported:$missing"
else
    echo "note: no shared libinorm installed (static build); symbol check skipped"
fi
echo "install test: 1 passed, 0 failed"

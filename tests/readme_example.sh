#!/bin/sh
# Usage: readme_example.sh SOURCE_ROOT LIBINORM_PATH CC [CC args...]
# Extracts the C example after <!-- readme-example --> in README.md, builds it
# against the source tree's header and the built libinorm, and runs it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$1
lib=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

sh "$here/readme_extract.sh" "$src/README.md" "$tmp/example.c"
echo "--- README example ($(wc -l < "$tmp/example.c") lines)"
libdir=$(dirname "$lib")
"$@" -std=c11 -Wall -Wextra -Werror=implicit-function-declaration -Werror=incompatible-pointer-types \
    -I"$src/include" "$tmp/example.c" -o "$tmp/example" \
    "$lib" -Wl,-rpath,"$libdir" -lm -lpthread -ldl
echo "--- running it"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/example"
echo "README example: 1 passed, 0 failed"

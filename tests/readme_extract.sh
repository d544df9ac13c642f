#!/bin/sh
# Usage: readme_extract.sh README.md OUT.c
# Writes the ```c fenced block that follows the line <!-- readme-example -->
# to OUT.c. Exit 1 (with a message) when there is no such block.
set -eu
readme=$1
out=$2
if [ ! -f "$readme" ]; then
    echo "readme_extract: $readme does not exist" >&2
    exit 1
fi
awk '
    state == 0 && index($0, "<!-- readme-example -->") { state = 1; next }
    state == 1 && /^[[:space:]]*$/ { next }
    state == 1 && /^```[[:space:]]*c[[:space:]]*$/ { state = 2; next }
    state == 1 { print "readme_extract: the line after <!-- readme-example --> is not ```c: " $0 > "/dev/stderr"; exit 2 }
    state == 2 && /^```[[:space:]]*$/ { state = 3; exit }
    state == 2 { print }
    END { if (state != 3) { if (state < 2) print "readme_extract: no ```c block after <!-- readme-example -->" > "/dev/stderr"; else print "readme_extract: unterminated ```c block" > "/dev/stderr"; exit 1 } }
' "$readme" > "$out" || { rm -f "$out"; exit 1; }
if [ ! -s "$out" ]; then
    echo "readme_extract: the example block is empty" >&2
    exit 1
fi

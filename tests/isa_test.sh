#!/bin/sh
# The CPU path gives the same bits at every vector level this machine has:
# tests/isa_outputs.c's hashes with INORM_CPU_ISA unset (the processor's
# best), avx2 and portable must be equal line for line. A level above what
# the processor has falls back to the best it has; the first line of each
# run says which level ran, and the cap itself is checked: "portable" must
# run the portable loops everywhere.
#
#   isa_test.sh ISA_OUTPUTS
set -u
prog=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

status=0
env -u INORM_CPU_ISA "$prog" > "$tmp/best" || { echo "FAIL: the best level's run failed"; status=1; }
INORM_CPU_ISA=avx2 "$prog" > "$tmp/avx2" || { echo "FAIL: the avx2 run failed"; status=1; }
INORM_CPU_ISA=portable "$prog" > "$tmp/portable" || { echo "FAIL: the portable run failed"; status=1; }

if [ "$(head -n 1 "$tmp/portable")" != "isa portable" ]; then
  echo "FAIL: INORM_CPU_ISA=portable ran: $(head -n 1 "$tmp/portable")"
  status=1
fi
cases=$(($(wc -l < "$tmp/best") - 1))
if [ "$cases" -lt 100 ]; then
  echo "FAIL: only $cases cases"
  status=1
fi
tail -n +2 "$tmp/best" > "$tmp/best.cases"
for level in avx2 portable; do
  tail -n +2 "$tmp/$level" > "$tmp/$level.cases"
  if ! diff -u "$tmp/best.cases" "$tmp/$level.cases"; then
    echo "FAIL: $(head -n 1 "$tmp/best") and $(head -n 1 "$tmp/$level") give different bits (lines above)"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "ok: $cases cases, the same bits at $(head -n 1 "$tmp/best" | cut -d' ' -f2), $(head -n 1 "$tmp/avx2" | cut -d' ' -f2) and portable"
exit "$status"

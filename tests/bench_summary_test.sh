#!/bin/sh
# Usage: bench_summary_test.sh INORM_BENCH SUMMARY_SCRIPT PYTHON
# Two quick benchmark runs as JSON, summarised by tools/bench-summary.py: the
# instance-norm table must hold a row per layout of the quick shape with the
# plan the bench printed, and the target counts must cover every op case.
set -eu
bench=$1
summary=$2
python=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "bench summary test: FAIL: $*" >&2; exit 1; }

for i in 1 2; do
    "$bench" --quick --json > "$tmp/run$i.json" || fail "inorm-bench --quick --json exited $?"
done
"$python" "$summary" "$tmp/run1.json" "$tmp/run2.json" > "$tmp/summary.md" || fail "bench-summary exited $?"
cat "$tmp/summary.md"
grep -q '^Medians of 2 run(s)' "$tmp/summary.md" || fail "no run count"
for layout in nchw nhwc; do
    grep -q "^| 1x32x16x16 | $layout | [0-9]" "$tmp/summary.md" || fail "no $layout row for 1x32x16x16"
done
# every Vulkan op case of the quick shape is counted: 6 ops x 2 layouts per dtype
grep -q '^- vulkan f32, smaller shapes: [0-9]* of 12 at' "$tmp/summary.md" || fail "Vulkan fp32 count is not over 12 cases"
# and again against the copy shader whose values go through the ALU
grep -q '^  - against the through-ALU copy: [0-9]* of 12 at' "$tmp/summary.md" || fail "no count against the through-ALU copy"
# a run that holds no op is refused
echo '{"cases": [], "failures": 0}' > "$tmp/empty.json"
if "$python" "$summary" "$tmp/empty.json" > /dev/null 2>&1; then
    fail "an empty run was accepted"
fi
echo "bench summary test: ok"

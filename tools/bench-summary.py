#!/usr/bin/env python3
"""Summarises runs of `inorm-bench --json` as the README's benchmark tables.

    for i in 1 2 3 4 5 6; do build/tools/inorm-bench --json > run$i.json; done
    python3 tools/bench-summary.py run*.json

Each figure is the median over the runs given (this project's CI machine is a
virtual machine whose timings wander from run to run). Prints Markdown: the
instance-norm table, the group/layer-norm table, and the counts against the
speed targets (Vulkan: >= 0.6 of the shader copy on shapes of 1 MiB and more,
>= 0.3 on smaller ones; CPU path: >= 0.3 of a 2-thread memcpy on planes of
64x64 and more). Exit status 1 when a run reported a failure or holds no op.
Python 3 standard library only.
"""
import collections
import json
import statistics
import sys

BIG_BYTES = 1 << 20
TARGETS = {("vulkan", True): 0.6, ("vulkan", False): 0.3, ("cpu", True): 0.3}


def load(paths):
    """(backend, op, shape, dtype, layout) -> list of one dict per run."""
    cases = collections.defaultdict(list)
    failures = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
        reported = run.get("failures") or 0
        failures += len(reported) if isinstance(reported, list) else int(reported)
        for c in run["cases"]:
            if c["kind"] != "op" or c["status"] != "ok":
                continue
            key = (c["backend"], c["op"], "x".join(map(str, c["shape"])), c["dtype"], c["layout"])
            ratio = c["ratio"]["shader_copy" if c["backend"] == "vulkan" else "memcpy"]
            cases[key].append({"ratio": ratio, "alu_ratio": c["ratio"].get("shader_copy_alu"),
                               "ms": c["median_s"] * 1e3, "plan": c["plan"],
                               "x_bytes": c["x_bytes"], "shape": c["shape"]})
    return cases, failures


def median(cases, key, field="ratio"):
    runs = cases.get(key)
    if not runs or any(r[field] is None for r in runs):
        return None
    return statistics.median(r[field] for r in runs)


def quartiles(values):
    """Lower quartile, median, upper quartile of sorted values."""
    return statistics.quantiles(values, n=4) if len(values) > 1 else values * 3


def fmt(value):
    return "-" if value is None else f"{value:.2f}"


def plan_of(cases, key):
    runs = cases.get(key)
    if not runs:
        return "-", "-"
    plan = runs[0]["plan"]
    return f"{plan['dispatches']}, {plan['bytes_per_element']:.2f}", plan["variant"]


def shapes_in_order(cases):
    seen = []
    for key in cases:
        if key[2] not in seen:
            seen.append(key[2])
    return seen


def tables(cases):
    lines = ["| shape | layout | Vulkan IN ms | ÷ shader copy | dispatches, B/element | plan | "
             "AdaIN ÷ shader copy | fp16 IN ÷ shader copy | CPU IN ms | CPU ÷ memcpy | CPU fp16 ÷ memcpy |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    shapes = shapes_in_order(cases)
    for shape in shapes:
        for layout in ("nchw", "nhwc"):
            vk = ("vulkan", "instance_norm", shape, "f32", layout)
            if vk not in cases:
                continue
            cpu = ("cpu", "instance_norm", shape, "f32", layout)
            budget, variant = plan_of(cases, vk)
            lines.append(f"| {shape} | {layout} | {fmt(median(cases, vk, 'ms'))} | {fmt(median(cases, vk))} | "
                         f"{budget} | {variant} | {fmt(median(cases, ('vulkan', 'adain', shape, 'f32', layout)))} | "
                         f"{fmt(median(cases, ('vulkan', 'instance_norm', shape, 'f16', layout)))} | "
                         f"{fmt(median(cases, cpu, 'ms'))} | {fmt(median(cases, cpu))} | "
                         f"{fmt(median(cases, ('cpu', 'instance_norm', shape, 'f16', layout)))} |")
    lines += ["", "| shape | layout | group norm ÷ shader copy | dispatches, B/element | "
              "layer norm ÷ shader copy | dispatches, B/element |", "|---|---|---|---|---|---|"]
    for shape in shapes:
        for layout in ("nchw", "nhwc"):
            group = ("vulkan", "group_norm", shape, "f32", layout)
            layer = ("vulkan", "layer_norm", shape, "f32", layout)
            if group not in cases and layer not in cases:
                continue
            lines.append(f"| {shape} | {layout} | {fmt(median(cases, group))} | {plan_of(cases, group)[0]} | "
                         f"{fmt(median(cases, layer))} | {plan_of(cases, layer)[0]} |")
    return lines


def target_lines(cases):
    lines = []
    for (backend, big), target in TARGETS.items():
        for dtype in ("f32", "f16"):
            picked = []
            for key, runs in cases.items():
                if key[0] != backend or key[3] != dtype or (runs[0]["x_bytes"] >= BIG_BYTES) != big:
                    continue
                shape = runs[0]["shape"]
                if backend == "cpu" and shape[2] * shape[3] < 64 * 64:
                    continue
                ratio = median(cases, key)
                if ratio is not None:
                    picked.append((ratio, key))
            if not picked:
                continue
            picked.sort()
            ratios = [r for r, _ in picked]
            q = quartiles(ratios)
            lowest, key = picked[0]
            what = ("shapes of 1 MiB and more" if big else "smaller shapes") if backend == "vulkan" \
                else "planes of 64x64 and more"
            lines.append(f"- {backend} {dtype}, {what}: {sum(r >= target for r in ratios)} of {len(ratios)} at "
                         f">= {target} (quartiles {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}; "
                         f"lowest {lowest:.2f}, {key[1]} {key[2]} {key[4]})")
            # Vulkan: the same cases against the copy shader whose values go
            # through the ALU (the row copy:shader-alu), where the runs have it
            alu = [median(cases, k, "alu_ratio") for _, k in picked]
            if backend == "vulkan" and None not in alu:
                alu.sort()
                q = quartiles(alu)
                lines.append(f"  - against the through-ALU copy: {sum(r >= target for r in alu)} of {len(alu)} "
                             f"at >= {target} (quartiles {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}; lowest {alu[0]:.2f})")
    return lines


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    cases, failures = load(argv[1:])
    if not cases:
        print("bench-summary: no op cases in the runs given", file=sys.stderr)
        return 1
    print(f"Medians of {len(argv) - 1} run(s).\n")
    print("\n".join(tables(cases)))
    print()
    print("\n".join(target_lines(cases)))
    if failures:
        print(f"bench-summary: the runs reported {failures} failure(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

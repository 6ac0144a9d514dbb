#!/usr/bin/env python3
"""Median tables over the runs kept by ci/bench.sh: target/bench-results/run*/.

Messaging: criterion's median estimate of the time per iteration of each run, turned into
messages (or round trips) per second; the table shows the median over runs, every run's value,
and coreactor's ratio to each baseline of its group (ratio of the medians). Latency: the median
over runs of each percentile. Alloc: the median over runs of allocations per message.
"""
import csv
import glob
import json
import os
import statistics
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/bench-results"
runs = sorted(glob.glob(os.path.join(root, "run*")))
if not runs:
    sys.exit(f"no runs under {root}")
print(f"{len(runs)} runs: {', '.join(os.path.basename(r) for r in runs)}\n")

# ----- messaging
groups = ["same_shard_tell", "cross_shard_tell", "cross_shard_ping_pong", "outside_tell"]
print("## messaging (M msgs/s; ping-pong: M round trips/s)\n")
print("| group | implementation | median | runs | coreactor / this |")
print("|---|---|---:|---|---:|")
for g in groups:
    rates = {}
    for r in runs:
        for bj in glob.glob(os.path.join(r, "criterion", g, "*", "new", "benchmark.json")):
            b = json.load(open(bj))
            est = json.load(open(os.path.join(os.path.dirname(bj), "estimates.json")))
            ns = est["median"]["point_estimate"]
            elems = b["throughput"]["Elements"]
            rates.setdefault(b["function_id"], []).append(elems / ns * 1e3)  # M/s
    if not rates:
        continue
    med = {k: statistics.median(v) for k, v in rates.items()}
    ours = med.get("coreactor")
    order = ["coreactor"] + sorted(k for k in med if k != "coreactor")
    for k in order:
        if k not in med:
            continue
        ratio = "" if k == "coreactor" or ours is None else f"{ours / med[k]:.2f}x"
        runs_s = " / ".join(f"{x:.2f}" for x in rates[k])
        print(f"| {g} | {k} | {med[k]:.2f} | {runs_s} | {ratio} |")
print()

# ----- latency
rows = {}
order = []
for r in runs:
    p = os.path.join(r, "latency.csv")
    if not os.path.exists(p):
        continue
    for row in csv.DictReader(open(p)):
        key = (row["bench"], row["implementation"])
        if key not in rows:
            order.append(key)
        rows.setdefault(key, []).append(row)
if rows:
    cols = ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]
    print("## latency (ns, median over runs of each percentile)\n")
    print("| bench | implementation | p50 | p90 | p99 | p99.9 | max | p99 of each run |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for key in order:
        rs = rows[key]
        meds = [statistics.median(int(x[c]) for x in rs) for c in cols]
        p99s = " / ".join(x["p99_ns"] for x in rs)
        print(f"| {key[0]} | {key[1]} | " + " | ".join(f"{m:.0f}" for m in meds) + f" | {p99s} |")
    print()

# ----- alloc
rows = {}
order = []
for r in runs:
    p = os.path.join(r, "alloc.csv")
    if not os.path.exists(p):
        continue
    for row in csv.DictReader(open(p)):
        if row["scenario"] not in rows:
            order.append(row["scenario"])
        rows.setdefault(row["scenario"], []).append(row)
if rows:
    print("## heap allocations per message (median over runs)\n")
    print("| scenario | allocs/msg | bytes/msg | runs | sizes (last run) |")
    print("|---|---:|---:|---|---|")
    for s in order:
        rs = rows[s]
        a = statistics.median(float(x["allocs_per_msg"]) for x in rs)
        b = statistics.median(float(x["bytes_per_msg"]) for x in rs)
        each = " / ".join(x["allocs_per_msg"] for x in rs)
        print(f"| {s} | {a:.3f} | {b:.1f} | {each} | {rs[-1]['sizes']} |")

#!/usr/bin/env python3
"""Draws target/bench/chart.png from results.json: fan-out throughput and p99
latency against N, rcimd next to the baselines measured in the same run.

Usage: plot.py results.json chart.png (run by rcim-bench; needs matplotlib,
which ships its own fonts)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series(rows, key, field):
    xs, ys = [], []
    for row in rows:
        run = row.get(key)
        if run:
            xs.append(row["n"])
            ys.append(run[field] if not isinstance(field, tuple) else run[field[0]][field[1]])
    return xs, ys


def main():
    results = json.load(open(sys.argv[1]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    fan = results.get("fanout", [])
    for key, label, style in [
        ("rcimd", "rcimd", "o-"),
        ("raw_coalesced", "raw UDS, 64 frames/write", "s--"),
        ("raw_per_message", "raw UDS, 1 write/msg", "^--"),
        ("mosquitto", "Mosquitto 2 (UDS, QoS 0)", "d:"),
    ]:
        xs, ys = series(fan, key, "deliveries_per_s")
        if xs:
            left.plot(xs, ys, style, label=label)
    # The physical ceiling with durable commits (rcim-bench computes it).
    xs, ys = [], []
    for row in fan:
        if row.get("ceiling"):
            xs.append(row["n"])
            ys.append(row["n"] * row["ceiling"]["msgs_per_s"])
    if xs:
        left.plot(xs, ys, "x-.", color="grey", label="ceiling: raw SQLite insert + raw deliveries")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("subscribers N")
    left.set_ylabel("deliveries / s (saturated)")
    left.set_title("Fan-out throughput")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    lat = results.get("latency", [])
    for rate in sorted({row["rate"] for row in lat}):
        rows = [row for row in lat if row["rate"] == rate]
        for key, label, style in [("rcimd", "rcimd", "o-"), ("raw", "raw UDS", "s--")]:
            xs, ys = series(rows, key, ("latency", "p99_us"))
            if xs:
                right.plot(xs, ys, style, label=f"{label} @ {rate:.0f} msg/s")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("subscribers N")
    right.set_ylabel("p99 latency per delivery (µs)")
    right.set_title("Fan-out p99 latency (paced)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    machine = results.get("machine", {})
    fig.suptitle(
        f"rcim-bench {results.get('plan', {}).get('name', '')}: "
        f"{machine.get('nproc', '?')} × {machine.get('cpu_model', '?')}, kernel {machine.get('kernel', '?')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()

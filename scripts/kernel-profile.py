#!/usr/bin/env python3
"""Summarizes a cubecl kernel-profile log by kernel family.

cubecl's profiling logger (a `cubecl.toml` in the working directory with `[profiling.logger] level = "basic"`
and `file = "..."`) writes one line per kernel launch, `| <GPU time> | <kernel name>_<hash>`, and a summary table
closing with a `| Total ...` row at every device synchronisation. `qcs bench` synchronises before every clock
read, so each timed run is one section of the log.

usage: scripts/kernel-profile.py LOG [--section N] [--top K]
  Lists the sections (launches and GPU time each), then the kernel families of section N (default: the last
  one that a synchronisation closed, which for `qcs bench --repeats 1` is the last timed run) by GPU time: time,
  share, launches. Launches the logger could not time are counted with no time.
"""
import argparse
import collections
import re
import sys

UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
LAUNCH = re.compile(r"^\|\s*([0-9.]+)\s*(ns|µs|us|ms|s)\s*\|\s*(.+?)\s*$")
# A launch the logger could not time: counted, with no time.
UNTIMED = re.compile(r"^\|\s*not measured\s*\|\s*(.+?)\s*$")


def family(name):
    """The kernel's name without its hash suffix; a matrix product as its family and partitioner."""
    name = re.sub(r"_[0-9a-f]{8}$", "", name.strip())
    if name.startswith("MatmulEntry"):
        parts = re.findall(r"(\w+Family|\w+Partitioner)", name)
        name = "Matmul (" + ", ".join(parts[:2]) + ")"
    return name


def sections(lines):
    """Launches `(ms, family)` per section, a section ending at each summary table's `| Total` row, and the
    launches after the last one (no synchronisation closed them: not a finished timed run)."""
    closed, current = [], []
    for line in lines:
        if line.startswith("| Total"):
            closed.append(current)
            current = []
            continue
        m = LAUNCH.match(line)
        if m:
            current.append((float(m.group(1)) * UNITS[m.group(2)], family(m.group(3))))
            continue
        m = UNTIMED.match(line)
        if m:
            current.append((0.0, family(m.group(1))))
    return closed, current


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log")
    ap.add_argument("--section", type=int, default=-1, help="section index (negative: from the end)")
    ap.add_argument("--top", type=int, default=25, help="families listed")
    args = ap.parse_args()
    with open(args.log, encoding="utf-8", errors="replace") as f:
        secs, trailing = sections(f.read().splitlines())
    if not secs:
        sys.exit(f"{args.log}: no synchronised section found (was the profiling level `basic` or finer, "
                 "and did the run reach its first timed run?)")
    print("| section | launches | GPU ms |")
    print("|--:|--:|--:|")
    for i, s in enumerate(secs):
        print(f"| {i} | {len(s)} | {sum(t for t, _ in s):.2f} |")
    if trailing:
        print(f"| after the last synchronisation (not summarized) | {len(trailing)} | "
              f"{sum(t for t, _ in trailing):.2f} |")
    try:
        chosen = secs[args.section]
    except IndexError:
        sys.exit(f"no section {args.section}: the log has {len(secs)}")
    total = sum(t for t, _ in chosen) or 1.0
    by = collections.defaultdict(lambda: [0.0, 0])
    for t, name in chosen:
        by[name][0] += t
        by[name][1] += 1
    print()
    print(f"Section {args.section % len(secs)}: {len(chosen)} launches, {total:.2f} ms of GPU time")
    print()
    print("| kernel family | GPU ms | share | launches |")
    print("|---|--:|--:|--:|")
    for name, (t, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[: args.top]:
        shown = name.replace("|", "/")
        print(f"| {shown} | {t:.2f} | {100 * t / total:.1f} % | {n} |")


if __name__ == "__main__":
    main()

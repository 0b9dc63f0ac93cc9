#!/usr/bin/env python3
"""Medians over repeated `rcumaps bench --json` runs.

Usage: python3 scripts/bench-median.py run1.json run2.json ... [--baseline NAME ...]

Each run's ratios were measured side by side in that run; this prints, per cell
(map, workload, shape, threads), the median throughput, the median of each run's ratio to
each requested baseline, and the range of those ratios, so that one noisy run does not
decide a comparison. With no --baseline, every baseline the runs report is shown. A ratio
that only some of a cell's runs report (runs made with other --maps) says how many it is
the median of, as "[2/3 runs]".
"""
import json
import statistics
import sys


def main(argv):
    files, baselines = [], []
    args = iter(argv)
    for arg in args:
        if arg == "--baseline":
            baselines.append(next(args, None) or sys.exit("--baseline needs a name"))
        elif arg in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            files.append(arg)
    if not files:
        sys.exit(__doc__.strip())
    cells = {}
    order = []
    required = {"map": str, "workload": str, "shape": str, "threads": int, "mopsPerSecond": (int, float)}
    for path in files:
        try:
            with open(path) as handle:
                run = json.load(handle)
        except (OSError, ValueError) as error:
            sys.exit(f"bench-median: cannot read {path}: {error}")
        if not isinstance(run, list):
            sys.exit(f"bench-median: {path} is not the output of `rcumaps bench --json` (a list of cells)")
        for number, cell in enumerate(run):
            if not isinstance(cell, dict) or any(not isinstance(cell.get(field), kind) for field, kind in required.items()) \
                    or not isinstance(cell.get("ratios", {}), dict):
                sys.exit(f"bench-median: {path}: cell {number} is not a bench cell (it needs "
                         + ", ".join(required) + ")")
            # Cells of one map, workload, shape and thread count from runs with other
            # entries or batch sizes are different cells, not more runs of one.
            key = (cell["map"], cell["workload"], cell["shape"], cell["threads"], cell.get("entries"),
                   cell.get("batchSize"))
            if key not in cells:
                cells[key] = []
                order.append(key)
            cells[key].append(cell)
    if not order:
        sys.exit("bench-median: no cells in " + ", ".join(files))
    reported = {name for runs in cells.values() for cell in runs for name in cell.get("ratios", {})}
    unknown = [name for name in baselines if name not in reported]
    if unknown:
        sys.exit(f"bench-median: no run reports a ratio to {', '.join(unknown)} (reported: "
                 + (", ".join(sorted(reported)) or "none") + ")")
    if not baselines:
        seen = []
        for key in order:
            for cell in cells[key]:
                for name in cell.get("ratios", {}):
                    if name not in seen:
                        seen.append(name)
        baselines = seen
    header = f"{'map':<18} {'workload':<12} {'shape':<5} {'thr':>3} {'runs':>4} {'Mops/s':>8}"
    for name in baselines:
        header += f"  {'vs ' + name + ' (min-max)':>30}"
    print(header)
    # Runs of several sizes: each line says its entries (and batch size) after the shape.
    sizes = len({(key[4], key[5]) for key in order}) > 1
    for key in order:
        runs = cells[key]
        shape = f"{key[2]}@{key[4]}" + (f"/b{key[5]}" if key[5] is not None else "") if sizes else key[2]
        line = f"{key[0]:<18} {key[1]:<12} {shape:<5} {key[3]:>3} {len(runs):>4} "
        line += f"{statistics.median(c['mopsPerSecond'] for c in runs):>8.1f}"
        for name in baselines:
            ratios = [c["ratios"][name] for c in runs if c.get("ratios", {}).get(name) is not None]
            text = (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-")
            # Every run measured the cell, but fewer reported this baseline (made with other
            # --maps): the median is of those, and says so.
            if ratios and len(ratios) < len(runs):
                text += f" [{len(ratios)}/{len(runs)} runs]"
            line += f"  {text:>30}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

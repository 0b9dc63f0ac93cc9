#!/usr/bin/env python3
"""Draws throughput against threads from `rcumaps bench --json` output, as an SVG.

    .build/release/rcumaps bench --json --threads 1,2 > bench.json
    python3 scripts/plot-scaling.py bench.json docs/scaling.svg [workload ...]

One panel per workload (default: lookup, read-mostly), one line per map, for the 8x8 shape
only (another shape's points would join the same map's line): the hash maps that run every
`--shapes` are kept at 8x8; the other rows run one shape and report their own sizes (4x8 for
the arrays, 0x8 for the queues, ...). No dependencies.
"""
import json
import sys

# The rows `--shapes` applies to (MapKind.runsEveryShape).
SHAPED_MAPS = {"hash-lockfree", "hash-bucket", "hash-lockfree-user", "hash-bucket-user"}

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000"]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot-scaling.py BENCH.json OUT.svg [workload ...]")
    try:
        with open(sys.argv[1]) as handle:
            run = json.load(handle)
        cells = [cell for cell in run
                 if cell["map"] not in SHAPED_MAPS or cell.get("shape", "8x8") == "8x8"]
        for cell in cells:
            cell["workload"], cell["threads"], cell["mopsPerSecond"]
    except (OSError, ValueError) as error:
        sys.exit(f"plot-scaling: cannot read {sys.argv[1]}: {error}")
    except (TypeError, KeyError):
        sys.exit(f"plot-scaling: {sys.argv[1]} is not the output of `rcumaps bench --json` (a list of cells)")
    workloads = sys.argv[3:] or ["lookup", "read-mostly"]
    present = {cell["workload"] for cell in cells}
    missing = [workload for workload in workloads if workload not in present]
    if missing:
        sys.exit(f"plot-scaling: no cells of {', '.join(missing)} in {sys.argv[1]} (it has: "
                 + (", ".join(sorted(present)) or "none") + ")")
    maps = []
    for cell in cells:
        if cell["map"] not in maps:
            maps.append(cell["map"])
    threads = sorted({cell["threads"] for cell in cells})
    panel_w, panel_h, margin = 420, 300, 60
    width = margin + len(workloads) * (panel_w + margin) + 170
    height = panel_h + 2 * margin
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for panel, workload in enumerate(workloads):
        x0 = margin + panel * (panel_w + margin)
        y0 = margin
        data = [c for c in cells if c["workload"] == workload and c["mopsPerSecond"] is not None]
        top = max([c["mopsPerSecond"] for c in data] + [1]) * 1.1
        out.append(f'<text x="{x0 + panel_w / 2}" y="{y0 - 20}" text-anchor="middle" font-size="14">'
                   f'{workload}: Mops/s (higher is better)</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#999"/>')
        for tick in range(5):
            value = top * tick / 4
            y = y0 + panel_h - panel_h * tick / 4
            out.append(f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{y}" y2="{y}" stroke="#eee"/>')
            # As many decimals as the scale needs for five distinct labels (0.275 Mops/s
            # steps were all labelled 0 or 1).
            step = top / 4
            decimals = 0 if step >= 2 else 1 if step >= 0.2 else 2 if step >= 0.02 else 3
            out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{value:.{decimals}f}</text>')

        def xpos(t):
            if len(threads) == 1:
                return x0 + panel_w / 2
            return x0 + 30 + (panel_w - 60) * threads.index(t) / (len(threads) - 1)

        for t in threads:
            out.append(f'<text x="{xpos(t)}" y="{y0 + panel_h + 18}" text-anchor="middle">{t} thread{"s" if t > 1 else ""}</text>')
        for index, name in enumerate(maps):
            points = sorted((c["threads"], c["mopsPerSecond"]) for c in data if c["map"] == name)
            if not points:
                continue
            color = COLORS[index % len(COLORS)]
            path = " ".join(f"{xpos(t)},{y0 + panel_h - panel_h * v / top}" for t, v in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            for t, v in points:
                out.append(f'<circle cx="{xpos(t)}" cy="{y0 + panel_h - panel_h * v / top}" r="3" fill="{color}"/>')
    legend_x = margin + len(workloads) * (panel_w + margin)
    for index, name in enumerate(maps):
        y = margin + 18 * index
        color = COLORS[index % len(COLORS)]
        out.append(f'<line x1="{legend_x}" x2="{legend_x + 20}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{legend_x + 26}" y="{y + 4}">{name}</text>')
    out.append("</svg>")
    with open(sys.argv[2], "w") as handle:
        handle.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Draws a soak's memory samples (`rcumaps stress --samples FILE`) as an SVG.

    python3 scripts/plot-soak.py SAMPLES.csv OUT.svg [--title TEXT]

One panel per map run, in the order the maps ran. Each panel has two charts over the
seconds since the map's workers started:

- on top, the process's RSS (MiB, one scale for every panel, from 0) and, dashed, the
  heap bytes in use (glibc's count plus the epoch layer's own mapped blocks of 4 MiB or
  more: RSS rising over a flat heap is memory malloc keeps
  for reuse, not a leak);
- below, the map's pool-tag epoch memory: live bytes (allocated, not yet reclaimed) and,
  filled, the part of them awaiting reclamation (pending). A hollow circle at the right
  is the live figure once the map was dropped and its memory reclaimed (should be 0).

Each panel's heading gives the RSS at the start and end and its peak, the heap's peak,
the peaks of live and pending bytes, and for RSS and live bytes their trend: the
least-squares slope over the second half of the run, per minute. Reclamation keeps up
when RSS and live bytes stay flat (trend about 0) and pending stays bounded.
No dependencies.
"""
import csv
import sys
from xml.sax.saxutils import escape

RSS_COLOR = "#1f77b4"
HEAP_COLOR = "#9467bd"
LIVE_COLOR = "#2ca02c"
PENDING_COLOR = "#ff7f0e"
FAIL_COLOR = "#d62728"
MIB = 1024 * 1024


def load(path):
    """The samples as a list of runs: {map, rows}, a run starting at each `start` row."""
    runs = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                sample = {
                    "seconds": float(row["seconds"]),
                    "phase": row["phase"],
                    "rss": int(row["rss_bytes"]) if row["rss_bytes"] else None,
                    "heap": int(row["heap_bytes"]) if row.get("heap_bytes") else None,
                    "live": int(row["live_bytes"]),
                    "pending": int(row["pending_bytes"]),
                    "operations": int(row["operations"]),
                    "violations": int(row["violations"]),
                }
                name = row["map"]
            except (KeyError, TypeError, ValueError):
                continue  # a line cut short (a run killed mid-write) or not a sample
            if name is None:
                continue
            if sample["phase"] == "start" or not runs or runs[-1]["map"] != name:
                runs.append({"map": name, "rows": []})
            runs[-1]["rows"].append(sample)
    return runs


def nice_step(span, count):
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `count` ticks."""
    raw = span / max(count, 1)
    if raw <= 0:
        return 1
    power = 1
    while power * 10 <= raw:
        power *= 10
    while power > raw:
        power /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if power * factor >= raw:
            return power * factor
    return power * 10


def ticks(top, count=4, slack=0.0):
    """Ticks from 0 to at least `top` (less `slack`, a fraction), and the top of the axis."""
    step = nice_step(top, count)
    values = [0]
    while values[-1] < top * (1 - slack) - 1e-9:
        values.append(values[-1] + step)
    return values, max(values[-1], top)


def byte_unit(top):
    for unit, size in (("MiB", MIB), ("KiB", 1024)):
        if top >= size:
            return unit, size
    return "B", 1


def number(value):
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}".rstrip("0")


def human(size):
    unit, scale = byte_unit(abs(size))
    value = size / scale
    return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"


def mib(size):
    return f"{size / MIB:.1f} MiB"


def chart(out, x0, y0, width, height, xtop, xticks, ytop, yticks, ylabel, label_scale):
    """Frame, grid and tick labels of one chart; returns the (x, y) mapping."""
    out.append(f'<rect x="{x0}" y="{y0}" width="{width}" height="{height}" fill="none" stroke="#999"/>')
    for value in yticks:
        y = y0 + height - height * value / ytop
        out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end">{number(value / label_scale)}</text>')
    for value in xticks:
        x = x0 + width * value / xtop
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0 + height}" y2="{y0 + height + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + height + 16}" text-anchor="middle">{number(value)}</text>')
    out.append(f'<text x="{x0 - 42}" y="{y0 + height / 2}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 42} {y0 + height / 2})">{escape(ylabel)}</text>')
    return (lambda s: x0 + width * s / xtop), (lambda v: y0 + height - height * v / ytop)


def polyline(points, color, width=1.5, dash=None):
    if not points:
        return ""
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    style = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"{style}/>'


def trend(points):
    """Least-squares slope per minute of the (seconds, value) points in the second half of
    the run, or None with fewer than 3 of them."""
    if not points:
        return None
    end = points[-1][0]
    half = [(s, v) for s, v in points if s >= end / 2]
    if len(half) < 3:
        return None
    mean_s = sum(s for s, _ in half) / len(half)
    mean_v = sum(v for _, v in half) / len(half)
    spread = sum((s - mean_s) ** 2 for s, _ in half)
    if spread == 0:
        return None
    return 60 * sum((s - mean_s) * (v - mean_v) for s, v in half) / spread


def signed(size):
    return ("+" if size >= 0 else "−") + human(abs(size))


def summary(run):
    """Heading lines of one run's panel."""
    rows = [r for r in run["rows"] if r["phase"] != "released"]
    running = [r for r in rows if r["phase"] == "run"]
    rss = [r["rss"] for r in rows if r["rss"] is not None]
    lines = []
    if rss:
        slope = trend([(r["seconds"], r["rss"]) for r in running if r["rss"] is not None])
        lines.append(f"RSS {rss[0] / MIB:.1f} → {mib(rss[-1])}, peak {mib(max(rss))}"
                     + (f", trend {signed(slope)}/min" if slope is not None else ""))
    heap = [r["heap"] for r in rows if r["heap"] is not None]
    if heap:
        slope = trend([(r["seconds"], r["heap"]) for r in running if r["heap"] is not None])
        lines.append(f"heap in use: peak {mib(max(heap))}" + (f", trend {signed(slope)}/min" if slope is not None else ""))
    live = max((r["live"] for r in rows), default=0)
    slope = trend([(r["seconds"], r["live"]) for r in running])
    released = [r for r in run["rows"] if r["phase"] == "released"]
    lines.append(f"live: peak {human(live)}" + (f", trend {signed(slope)}/min" if slope is not None else "")
                 + (f"; {human(released[-1]['live'])} after the drop" if released else ""))
    peak = max((r["pending"] for r in rows), default=0)
    pending = [r["pending"] for r in running] or [0]
    lines.append(f"pending: peak {human(peak)}, mean {human(sum(pending) / len(pending))} while running")
    return lines


def main():
    arguments = sys.argv[1:]
    title = "rcumaps stress soak: memory over time"
    if "--title" in arguments:
        index = arguments.index("--title")
        if index + 1 >= len(arguments):
            sys.exit("plot-soak.py: --title needs a value")
        title = arguments[index + 1]
        del arguments[index:index + 2]
    if len(arguments) != 2:
        sys.exit("usage: plot-soak.py SAMPLES.csv OUT.svg [--title TEXT]")
    try:
        runs = load(arguments[0])
    except OSError as error:
        sys.exit(f"plot-soak: cannot read {arguments[0]}: {error.strerror}")
    if not runs:
        sys.exit(f"plot-soak.py: no samples in {arguments[0]}")

    columns = min(3, len(runs))
    rows_of_panels = (len(runs) + columns - 1) // columns
    chart_w, rss_h, epoch_h = 380, 130, 130
    head_h, gap_h, foot_h = 92, 30, 44
    left, right, col_gap = 70, 40, 90
    panel_h = head_h + rss_h + gap_h + epoch_h + foot_h
    top_margin = 80
    width = left + columns * chart_w + (columns - 1) * col_gap + right
    height = top_margin + rows_of_panels * panel_h + 10

    all_rss = [r[k] for run in runs for r in run["rows"] for k in ("rss", "heap") if r[k] is not None]
    rss_ticks = [t * MIB for t in ticks(max(all_rss + [MIB]) * 1.05 / MIB, 4)[0]]
    rss_top = rss_ticks[-1]

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="26" text-anchor="middle" font-size="16">{escape(title)}</text>']
    # Legend.
    legend = [(RSS_COLOR, "process RSS", None), (HEAP_COLOR, "heap in use", "dash"),
              (LIVE_COLOR, "pool tag: live epoch bytes", None),
              (PENDING_COLOR, "pool tag: pending (awaiting reclamation)", "fill")]
    x = left
    for color, label, kind in legend:
        if kind == "fill":
            out.append(f'<rect x="{x}" y="42" width="20" height="10" fill="{color}" fill-opacity="0.35" stroke="{color}"/>')
        else:
            dash = ' stroke-dasharray="5,3"' if kind == "dash" else ""
            out.append(f'<line x1="{x}" x2="{x + 20}" y1="47" y2="47" stroke="{color}" stroke-width="2.5"{dash}/>')
        out.append(f'<text x="{x + 26}" y="51">{escape(label)}</text>')
        x += 40 + 7 * len(label)
    out.append(f'<circle cx="{x + 6}" cy="47" r="4" fill="white" stroke="{LIVE_COLOR}" stroke-width="1.5"/>')
    out.append(f'<text x="{x + 16}" y="51">live after the map is dropped</text>')

    names = [run["map"] for run in runs]
    for number_, run in enumerate(runs):
        column, row = number_ % columns, number_ // columns
        x0 = left + column * (chart_w + col_gap)
        y0 = top_margin + row * panel_h
        samples = run["rows"]
        living = [r for r in samples if r["phase"] != "released"]
        released = [r for r in samples if r["phase"] == "released"]
        violations = max((r["violations"] for r in samples), default=0)
        # A run whose workers were stuck ends with a "hung" sample (and no "end"/"released").
        hung = any(r["phase"] == "hung" for r in samples)
        name = run["map"] + (f" (run {names[:number_ + 1].count(run['map'])})" if names.count(run["map"]) > 1 else "")
        end = max((r["seconds"] for r in living), default=1) or 1
        operations = max((r["operations"] for r in samples), default=0)
        rate = (f"{operations / 1e6:,.0f}M" if operations >= 1e8 else f"{operations / 1e6:.3g}M" if operations >= 1e6
                else f"{operations:,}")
        verdict = (f'<tspan fill="{FAIL_COLOR}">{violations} violation{"s" if violations != 1 else ""}'
                   f'{", stuck" if hung else ""}</tspan>' if violations or hung else "0 violations")
        out.append(f'<text x="{x0}" y="{y0 + 14}" font-size="14" font-weight="bold">{escape(name)}</text>')
        out.append(f'<text x="{x0 + chart_w}" y="{y0 + 14}" text-anchor="end">'
                   f'{rate} ops in {end:.0f} s, {verdict}</text>')
        for line_number, line in enumerate(summary(run)):
            out.append(f'<text x="{x0}" y="{y0 + 32 + 15 * line_number}" fill="#444">{escape(line)}</text>')

        time_ticks, time_top = ticks(end, 5, slack=0.03)
        # RSS chart.
        cy = y0 + head_h
        xmap, ymap = chart(out, x0, cy, chart_w, rss_h, time_top, time_ticks, rss_top, rss_ticks, "RSS (MiB)", MIB)
        out.append(polyline([(xmap(r["seconds"]), ymap(r["heap"])) for r in living if r["heap"] is not None],
                            HEAP_COLOR, 1.5, "5,3"))
        out.append(polyline([(xmap(r["seconds"]), ymap(r["rss"])) for r in living if r["rss"] is not None],
                            RSS_COLOR, 2))
        # Epoch chart.
        ey = cy + rss_h + gap_h
        epoch_max = max([r["live"] for r in samples] + [r["pending"] for r in samples] + [1])
        unit, scale = byte_unit(epoch_max)
        unit_ticks, _ = ticks(epoch_max * 1.05 / scale, 4)
        epoch_ticks = [t * scale for t in unit_ticks]
        epoch_top = epoch_ticks[-1]
        xmap, ymap = chart(out, x0, ey, chart_w, epoch_h, time_top, time_ticks, epoch_top, epoch_ticks,
                           f"epoch memory ({unit})", scale)
        pending = [(xmap(r["seconds"]), ymap(r["pending"])) for r in living]
        if pending:
            area = pending + [(pending[-1][0], ymap(0)), (pending[0][0], ymap(0))]
            out.append('<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in area)
                       + f'" fill="{PENDING_COLOR}" fill-opacity="0.35" stroke="none"/>')
            out.append(polyline(pending, PENDING_COLOR, 1))
        # Thinner on long runs, so that the pending area shows through a dense live line.
        out.append(polyline([(xmap(r["seconds"]), ymap(r["live"])) for r in living], LIVE_COLOR,
                            2 if len(living) <= 120 else 0.8))
        for r in released:
            out.append(f'<circle cx="{x0 + chart_w}" cy="{ymap(r["live"]):.1f}" r="4" fill="white" '
                       f'stroke="{LIVE_COLOR}" stroke-width="1.5"/>')
        out.append(f'<text x="{x0 + chart_w / 2}" y="{ey + epoch_h + 32}" text-anchor="middle" fill="#444">'
                   f'seconds since the map\'s workers started</text>')
    out.append("</svg>")
    with open(arguments[1], "w") as handle:
        handle.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

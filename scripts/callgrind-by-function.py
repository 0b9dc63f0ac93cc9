#!/usr/bin/env python3
"""Per-function cost of one operation, from two callgrind runs of N and 2N operations.

    python3 scripts/callgrind-by-function.py OUT_N OUT_2N N [TOP]

Each function's self cost in the run of 2N operations minus its cost in the run of N,
divided by N: what one operation spends in it (start-up, prefill and exit cancel out, as
in instructions-per-op.sh, which calls this with BY_FUNCTION=TOP). Prints the TOP
functions (default 15) by instructions, with L1 and last-level misses when the runs had
callgrind's cache simulation. Needs callgrind_annotate (valgrind).
"""
import re
import subprocess
import sys

EVENTS = ["Ir", "D1mr", "D1mw", "DLmr", "DLmw"]


def self_costs(path):
    """{function: {event: count}} from callgrind_annotate's per-function table."""
    header = open(path).read().split("\n", 50)
    events_line = next((line for line in header if line.startswith("events:")), "events: Ir")
    present = [event for event in EVENTS if event in events_line.split()[1:]]
    # --auto=no, and the table ends at its first blank or separator line: with annotated
    # sources (an object whose line info points at readable files), the source lines that
    # followed were counted as functions, and "(all functions)" summed them again (found by
    # review, 2026-12-05).
    output = subprocess.run(["callgrind_annotate", "--auto=no", "--show=" + ",".join(present), "--threshold=100",
                             path], capture_output=True, text=True, check=True).stdout
    costs, started = {}, False
    for line in output.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        if not line.strip() or line.startswith("--"):
            if costs:
                break
            continue
        tokens, values, index = line.split(), [], 0
        # Each column: a count ("1,234", or "." for none), maybe followed by "(12.3%)",
        # which callgrind_annotate may split as "(" "1.2%)".
        while len(values) < len(present) and index < len(tokens):
            token = tokens[index]
            if token == ".":
                values.append(0)
                index += 1
            elif re.fullmatch(r"[\d,]+", token):
                values.append(int(token.replace(",", "")))
                index += 1
                if index < len(tokens) and tokens[index].startswith("("):
                    while not tokens[index].endswith(")"):
                        index += 1
                    index += 1
            else:
                break
        if len(values) == len(present):
            # "file:function [/path/to/object]": the object by its file name alone.
            name = re.sub(r"\[(?:[^\]]*/)?([^/\]]+)\]$", r"[\1]", " ".join(tokens[index:]))
            costs[name] = dict(zip(present, values))
    return costs, present


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    try:
        operations, top = int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) == 5 else 15
    except ValueError:
        sys.exit("callgrind-by-function: OPERATIONS and TOP must be whole numbers")
    if operations <= 0 or top < 0:
        sys.exit("callgrind-by-function: OPERATIONS must be positive and TOP not negative")
    try:
        (first, present), (second, _) = self_costs(sys.argv[1]), self_costs(sys.argv[2])
    except FileNotFoundError as error:
        sys.exit(f"callgrind-by-function: {error.filename}: not found"
                 + (" (callgrind_annotate comes with valgrind)" if error.filename == "callgrind_annotate" else ""))
    except subprocess.CalledProcessError as error:
        sys.exit(f"callgrind-by-function: callgrind_annotate failed: {error.stderr.strip()}")
    rows = []
    for function in set(first) | set(second):
        a, b = first.get(function, {}), second.get(function, {})
        rows.append(({event: (b.get(event, 0) - a.get(event, 0)) / operations for event in present}, function))
    rows.sort(key=lambda row: -row[0]["Ir"])
    misses = "DLmr" in present

    def line(per, name):
        text = "%10.1f" % per["Ir"]
        if misses:
            text += " %10.2f %10.2f" % (per["D1mr"] + per["D1mw"], per["DLmr"] + per["DLmw"])
        return text + "  " + name

    print("%10s" % "instr/op" + (" %10s %10s" % ("L1 miss/op", "LL miss/op") if misses else "") + "  function")
    total = {event: sum(row[0][event] for row in rows) for event in present}
    print(line(total, "(all functions)"))
    for per, function in rows[:top]:
        print(line(per, function[:150]))


if __name__ == "__main__":
    main()

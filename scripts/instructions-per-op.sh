#!/usr/bin/env bash
# Instructions (and, with CACHE_SIM=1, simulated cache misses) per operation of bench
# cells, counted by callgrind: repeatable on a shared, noisy machine where wall time is not.
#
#   bash scripts/instructions-per-op.sh BINARY WORKLOAD MAP [MAP...]
#
# BINARY is a release build of rcumaps (say .build/release/rcumaps; a copy without its
# debug information is what runs: valgrind 3.19 cannot read Swift's DWARF 5). For each map,
# the bench runs WORKLOAD on one thread twice under callgrind, for N and 2N operations
# (N = $OPERATIONS, default 200000); (count(2N) - count(N)) divided by the difference of
# the operations the two runs made (the bench rounds N up to whole batches) is what one
# operation costs: prefill, start-up and exit cancel out. Extra bench options (say --entries 1000000)
# go in $BENCH_OPTIONS.
#
# CACHE_SIM=1 adds callgrind's cache simulation: L1 data misses (a 32 KiB, 8-way L1) and
# last-level misses, the last level being a 1 MiB, 16-way cache (this machine's L2 per
# core; $LL overrides, as size,associativity,line). A miss there is a trip to L3 or memory.
#
# BY_FUNCTION=K also prints, for each map, the K functions that cost one operation the most
# instructions (and misses, with CACHE_SIM=1), by scripts/callgrind-by-function.py.
#
# FAIR_SCHED=1 runs valgrind with --fair-sched=yes. Valgrind runs one thread at a time;
# without it, the epoch layer's grace-period thread gets the lock only now and then, so
# reclamation (and anything recycled after a grace period) lags far behind the writer and
# the counts of write workloads vary by about 5 % from run to run.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 BINARY WORKLOAD MAP [MAP...]" >&2
    exit 2
fi
binary=$1 workload=$2
shift 2
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
n=${OPERATIONS:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip --strip-debug -o "$work/rcumaps" "$binary"
binary=$work/rcumaps
simulate=()
if [ "${CACHE_SIM:-0}" = 1 ]; then simulate=(--cache-sim=yes --D1=32768,8,64 "--LL=${LL:-1048576,16,64}"); fi
if [ "${FAIR_SCHED:-0}" = 1 ]; then simulate+=(--fair-sched=yes); fi
totals() {  # "events" and "totals" lines of one callgrind run of $1 operations on map $2, kept in $work/out.$3
    # (--json: the operations the run actually made, which --operations rounds up to whole
    # batches, are in $work/json.$3.)
    valgrind --tool=callgrind "${simulate[@]}" --callgrind-out-file="$work/out.$3" "$binary" bench --maps "$2" \
        --workloads "$workload" --threads 1 --operations "$1" --json ${BENCH_OPTIONS:-} >"$work/json.$3" 2>"$work/log" \
        || { cat "$work/log" >&2; exit 1; }
    grep -E '^(events|summary|totals):' "$work/out.$3" | head -2
}
operations() {  # the operations of the run kept as $work/json.$1
    python3 -c 'import json, sys; print(sum(cell["operations"] for cell in json.load(open(sys.argv[1]))))' "$work/json.$1"
}
if [ "${CACHE_SIM:-0}" = 1 ]; then
    printf '%-22s %-12s %10s %10s %10s\n' map workload "instr/op" "L1 miss/op" "LL miss/op"
else
    printf '%-22s %-12s %10s\n' map workload "instr/op"
fi
for map in "$@"; do
    totals "$n" "$map" 1 > "$work/totals"
    totals $((2 * n)) "$map" 2 >> "$work/totals"
    # The difference of the operations made, not of the operations asked: the bench rounds
    # up to whole batches of 64 (a batch workload: whole calls), which overstated small N.
    made=$(( $(operations 2) - $(operations 1) ))
    [ "$made" -gt 0 ] || { echo "$0: the two runs made the same number of operations" >&2; exit 1; }
    awk -v n="$made" -v map="$map" -v w="$workload" '
        /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i; next }
        { run++; for (i = 2; i <= NF; i++) value[run, name[i]] = $i }
        function per(event) { return (value[2, event] - value[1, event]) / n }
        END {
            if ((1, "D1mr") in value)
                printf "%-22s %-12s %10.1f %10.2f %10.2f\n", map, w, per("Ir"),
                    per("D1mr") + per("D1mw"), per("DLmr") + per("DLmw")
            else
                printf "%-22s %-12s %10.1f\n", map, w, per("Ir")
        }' "$work/totals"
    if [ -n "${BY_FUNCTION:-}" ]; then
        python3 "$(dirname "$0")/callgrind-by-function.py" "$work/out.1" "$work/out.2" "$made" "$BY_FUNCTION"
    fi
done

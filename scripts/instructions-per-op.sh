#!/usr/bin/env bash
# Instructions per operation of bench cells, counted by callgrind: repeatable on a shared,
# noisy machine where wall time is not.
#
#   bash scripts/instructions-per-op.sh BINARY WORKLOAD MAP [MAP...]
#
# BINARY is a release build of rcumaps (say .build/release/rcumaps). For each map, the
# bench runs WORKLOAD on one thread twice under callgrind, for N and 2N operations
# (N = $OPERATIONS, default 200000); (instructions(2N) - instructions(N)) / N is what one
# operation costs: prefill, start-up and exit cancel out. Extra bench options (say
# --entries 1000000) go in $BENCH_OPTIONS.
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
total() {  # total instructions of one callgrind run of $1 operations on map $2
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$binary" bench --maps "$2" --workloads "$workload" \
        --threads 1 --operations "$1" ${BENCH_OPTIONS:-} >/dev/null 2>"$work/log" \
        || { cat "$work/log" >&2; exit 1; }
    awk '/^(summary|totals):/ { print $2; exit }' "$work/out"
}
printf '%-22s %-12s %12s\n' map workload "instr/op"
for map in "$@"; do
    one=$(total "$n" "$map")
    two=$(total $((2 * n)) "$map")
    awk -v one="$one" -v two="$two" -v n="$n" -v map="$map" -v w="$workload" 'BEGIN { printf "%-22s %-12s %12.1f\n", map, w, (two - one) / n }'
done

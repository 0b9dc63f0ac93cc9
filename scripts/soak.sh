#!/usr/bin/env bash
# Soak: builds `rcumaps` in release mode and runs `rcumaps stress` on every map it offers
# (the object map included), one after the other, with many threads, sampling the
# process's RSS and each map's epoch memory about once a second into a CSV file; then
# draws the samples (scripts/plot-soak.py). Exits non-zero on any violation.
#
#   bash scripts/soak.sh [--duration S] [--threads N] [--seed N] [--samples FILE.csv]
#                        [--plot FILE.svg] [-- more rcumaps stress options]
#
# Defaults: 600 s per map, 8 threads, a random seed (printed), samples to
# ${TMPDIR:-/tmp}/rcumaps-soak-SEED.csv, the plot beside them (.svg) and the verdicts
# too (.log). The build's scratch directory is $SCRATCH_PATH (default .build).
set -euo pipefail
repository="$(cd "$(dirname "$0")/.." && pwd)"

duration=600
threads=8
seed=""
samples=""
plot=""
extra=()

usage() { sed -n '2,12p' "$repository/scripts/soak.sh" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration|--threads|--seed|--samples|--plot)
            [ $# -ge 2 ] || { echo "soak.sh: $1 needs a value" >&2; exit 2; } ;;
    esac
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --samples) samples="$2"; shift 2 ;;
        --plot) plot="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "soak.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
if [ -z "$seed" ]; then
    seed=$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 1000000000 ))
fi
samples="${samples:-${TMPDIR:-/tmp}/rcumaps-soak-$seed.csv}"
plot="${plot:-${samples%.csv}.svg}"
log="${samples%.csv}.log"
scratch="${SCRATCH_PATH:-.build}"

mkdir -p "$(dirname "$samples")" "$(dirname "$plot")"
# Paths as given, relative to the caller's directory.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
samples="$(absolute "$samples")"
plot="$(absolute "$plot")"
log="$(absolute "$log")"
cd "$repository"

bash scripts/install-deps.sh
swift build -c release --product rcumaps --scratch-path "$scratch"
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/rcumaps"

echo "soak: seed $seed, $threads threads, $duration s per map (all maps), samples to $samples, log to $log"
started=$(date +%s)
status=0
# Verdicts (stdout) to the terminal and the log; progress (stderr) to the terminal only.
"$bin" stress --duration "$duration" --threads "$threads" --seed "$seed" --samples "$samples" \
    ${extra[@]+"${extra[@]}"} | tee "$log" || status=$?
echo "soak: rcumaps stress exited with status $status after $(( $(date +%s) - started )) s (seed $seed)"

if command -v python3 >/dev/null 2>&1 && [ -s "$samples" ]; then
    python3 scripts/plot-soak.py "$samples" "$plot" \
        --title "rcumaps stress soak: $threads threads, $duration s per map, seed $seed" && echo "soak: plot in $plot"
fi
exit "$status"

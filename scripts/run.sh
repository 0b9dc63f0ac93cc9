#!/usr/bin/env bash
# The main job of README's quick start: installs the system packages if missing,
# builds the `rcumaps` tool in release mode and runs its default benchmark, then the
# write-heavy case at a million entries: churn (half inserts of new keys, half deletes, over
# twice the prefilled keys: about half are refused as present or absent) on the
# hash maps and their baselines, with write-latency percentiles.
# Arguments, if any, go to `rcumaps` instead (try `bash scripts/run.sh bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ $# -gt 0 ]; then exec swift run -c release rcumaps "$@"; fi
swift run -c release rcumaps
echo
swift run -c release rcumaps bench --entries 1000000 --workloads churn \
    --maps hash-lockfree,hash-bucket,mutex-dict,c-rculfhash --latency

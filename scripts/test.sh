#!/usr/bin/env bash
# The test command of README's quick start (and of .ci/run): installs the system
# packages if missing, runs the whole test suite, then checks that the DocC catalog
# builds with no warning and runs a short fuzzing pass (ASan) over every fuzz target.
# Extra arguments go to `swift test`. RCUMAPS_QUICK_TESTS=1 runs the test suite only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift test "$@"

if [ "${RCUMAPS_QUICK_TESTS:-0}" = "1" ]; then exit 0; fi

echo "== DocC: the documentation builds with no warning"
mkdir -p .build  # (extra arguments such as --scratch-path build elsewhere)
swift package --disable-sandbox generate-documentation --enable-experimental-combined-documentation \
    --warnings-as-errors --target RCUEpoch --target RCUBaseMaps --target RCUMapProviders --target RCUMaps \
    --target ObjectMapProvider > .build/docc.log 2>&1 || { cat .build/docc.log; exit 1; }
echo "   ok"

echo "== Fuzzing: a 10-second pass per target (optimised build, ASan), after replaying the corpus"
FUZZ_CONFIGURATIONS=release bash scripts/fuzz.sh 10

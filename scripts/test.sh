#!/usr/bin/env bash
# The test command of README's quick start (and of .ci/run): installs the system
# packages if missing, then runs the whole test suite. Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec swift test "$@"

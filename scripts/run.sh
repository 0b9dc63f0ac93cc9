#!/usr/bin/env bash
# The main job of README's quick start: installs the system packages if missing,
# builds the `rcumaps` tool in release mode and runs its default benchmark.
# Extra arguments go to `rcumaps` (try `bash scripts/run.sh bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec swift run -c release rcumaps "$@"

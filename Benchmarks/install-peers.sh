#!/usr/bin/env bash
# Installs the peer hash maps the Benchmarks package measures beside RCUMaps' maps
# (the CPeerMaps target): ConcurrencyKit (libck-dev, ck_ht), libcuckoo (libcuckoo-dev,
# header-only C++) and oneTBB (libtbb-dev, concurrent_hash_map), when they are missing.
# Only the Benchmarks package uses them; RCUMaps itself never does.
# Debian/Ubuntu (apt-get); uses sudo when not root (through ../scripts/install-deps.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/install-deps.sh" libck-dev libcuckoo-dev libtbb-dev

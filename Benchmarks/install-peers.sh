#!/usr/bin/env bash
# Installs the peer hash maps the Benchmarks package measures beside RCUMaps' maps
# (the CPeerMaps target): ConcurrencyKit (libck-dev, ck_ht), libcuckoo (libcuckoo-dev,
# header-only C++) and oneTBB (libtbb-dev, concurrent_hash_map), when they are missing.
# Only the Benchmarks package uses them; RCUMaps itself never does.
# Debian/Ubuntu (apt-get); uses sudo when not root. Mirrors ../scripts/install-deps.sh.
set -euo pipefail

packages=(libck-dev libcuckoo-dev libtbb-dev)

have_all() {
    if command -v dpkg-query >/dev/null 2>&1; then
        for package in "${packages[@]}"; do
            dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || return 1
        done
        return 0
    fi
    # Not a dpkg system: accept whatever the compiler can find.
    printf '#include <ck_ht.h>\n#include <libcuckoo/cuckoohash_map.hh>\n#include <oneapi/tbb/concurrent_hash_map.h>\n' \
        | c++ -std=c++17 -x c++ -E - >/dev/null 2>&1
}

if have_all; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${packages[*]} are missing and apt-get is not available; install ConcurrencyKit (>= 0.7), libcuckoo (>= 0.3) and oneTBB (>= 2021) development files by hand" >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
        echo "error: installing ${packages[*]} needs root (no sudo found)" >&2
        exit 1
    fi
fi

echo "Installing ${packages[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null

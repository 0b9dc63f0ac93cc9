#!/usr/bin/env bash
# Installs the system packages RCUMaps builds against (liburcu-dev, libnuma-dev)
# when they are missing. Debian/Ubuntu (apt-get); uses sudo when not root.
set -euo pipefail

packages=(liburcu-dev libnuma-dev)

have_all() {
    if command -v dpkg-query >/dev/null 2>&1; then
        for package in "${packages[@]}"; do
            dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || return 1
        done
        return 0
    fi
    # Not a dpkg system: accept whatever pkg-config and the compiler can find.
    pkg-config --exists liburcu-memb liburcu-cds 2>/dev/null && echo '#include <numa.h>' | cc -E - >/dev/null 2>&1
}

if have_all; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${packages[*]} are missing and apt-get is not available; install liburcu (>= 0.13) and libnuma development files by hand" >&2
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

#!/usr/bin/env bash
# Installs the system packages RCUMaps builds against (liburcu-dev, libnuma-dev)
# when they are missing. Debian/Ubuntu (apt-get); uses sudo when not root.
#
#   bash scripts/install-deps.sh               # what RCUMaps needs
#   bash scripts/install-deps.sh PACKAGE...    # other Debian packages, the same way
#                                              # (Benchmarks/install-peers.sh)
set -euo pipefail

default_packages=(liburcu-dev libnuma-dev)
for argument in "$@"; do
    case $argument in
        -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "error: unknown option $argument (arguments are Debian package names)" >&2; exit 2 ;;
    esac
done
if [ $# -gt 0 ]; then packages=("$@"); else packages=("${default_packages[@]}"); fi

have_all() {
    if command -v dpkg-query >/dev/null 2>&1; then
        for package in "${packages[@]}"; do
            # The third word of the status: "install ok installed", and "hold ok installed"
            # for a package held at its version, are both installed. One line for each
            # architecture it is installed for (Multi-Arch: same): every one must say so.
            local states
            states=$(dpkg-query -W -f='${db:Status-Status}\n' "$package" 2>/dev/null) || return 1
            [ -n "$states" ] || return 1
            while read -r state; do [ "$state" = installed ] || return 1; done <<<"$states"
        done
        return 0
    fi
    # Not a dpkg system: for RCUMaps' own packages, accept whatever pkg-config and the
    # compiler can find; other packages cannot be checked here.
    [ "${packages[*]}" = "${default_packages[*]}" ] || return 1
    pkg-config --exists liburcu-memb liburcu-cds 2>/dev/null && echo '#include <numa.h>' | cc -E - >/dev/null 2>&1
}

if have_all; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${packages[*]} are missing and apt-get is not available; install them (for RCUMaps: liburcu >= 0.13 and libnuma development files) by hand" >&2
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

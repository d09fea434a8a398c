#!/usr/bin/env bash
# Installs the Debian packages segview builds against (plus any named as arguments, e.g. tmux for
# the tests), or says exactly what to run.
set -euo pipefail
packages=(pkg-config libpng-dev libjpeg-dev libopenblas-dev libncurses-dev ncurses-bin "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "segview needs these packages; run:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH (expected at /opt/swift/usr/bin)" >&2
    exit 1
fi

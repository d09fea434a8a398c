#!/usr/bin/env bash
# The main job: set up what is missing, build, and segment the bundled sample with the bundled model.
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
tools/ensure-deps.sh
swift build -c release >&2
mkdir -p out
.build/release/segview predict samples/street.png --model samples/models/deeplabv3_tiny_random.safetensors \
    --out out/street.mask.png --overlay out/street.overlay.png --force "$@"

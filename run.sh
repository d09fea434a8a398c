#!/usr/bin/env bash
# The main job: set up what is missing, build, and open the viewer on the bundled sample scenes with
# the bundled models and the scenes' labels (press ? for the keys, q to quit). Extra arguments go to segview.
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
tools/ensure-deps.sh
swift build -c release >&2
exec .build/release/segview samples/scene*.png --model samples/models --labels samples/labels --ignore 11 "$@"

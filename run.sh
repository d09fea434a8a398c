#!/usr/bin/env bash
# The main job: set up what is missing, build, and open the viewer on the bundled sample with the
# bundled model (press ? for the keys, q to quit). Extra arguments go to segview.
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
tools/ensure-deps.sh
swift build -c release >&2
exec .build/release/segview samples/street.png --model samples/models "$@"

#!/usr/bin/env bash
# The tests: set up what is missing (tmux drives the viewer's end-to-end tests), build, run every
# test. No Python and no network needed.
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
tools/ensure-deps.sh tmux
swift test --disable-swift-testing "$@"

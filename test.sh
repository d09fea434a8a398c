#!/usr/bin/env bash
# The tests: set up what is missing, build, run every test (no Python, no network needed).
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
tools/ensure-deps.sh
swift test "$@"

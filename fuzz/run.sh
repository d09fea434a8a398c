#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs each for SECONDS (default 600) on the
# committed seed corpora, one after another; prints libFuzzer's final statistics for each.
#   bash fuzz/run.sh [SECONDS] [TARGET...]     (targets: FuzzPNG FuzzJPEG FuzzModelFile FuzzCheckpoint)
# Crashing inputs are written to fuzz/artifacts/ (add them to the tests, then fix).
set -euo pipefail
cd "$(dirname "$0")"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
seconds=${1:-600}
shift || true
targets=("${@:-FuzzPNG FuzzJPEG FuzzModelFile FuzzCheckpoint}")
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address
bin=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)
mkdir -p artifacts work
for target in ${targets[*]}; do
    corpus=$(echo "$target" | sed 's/Fuzz//' | tr 'A-Z' 'a-z' | sed 's/modelfile/model/')
    # Checkpoints are zips of 64-byte-aligned entries: the seeds of the larger models run to 240 KB.
    max_len=$([ "$target" = FuzzCheckpoint ] && echo 262144 || echo 65536)
    mkdir -p "work/$corpus"
    echo "== $target: $seconds s, seeds corpus/$corpus"
    # New inputs go to work/ (not committed); the committed seeds stay as they are.
    "$bin/$target" "work/$corpus" "corpus/$corpus" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=4096 \
        -artifact_prefix=artifacts/ -print_final_stats=1 2>&1 | grep -E "^(stat::|==|SUMMARY|Done|INFO: seed)|ERROR|crash" || true
done

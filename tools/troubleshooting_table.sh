#!/usr/bin/env bash
# Regenerates README's Troubleshooting table from what the built binary really prints: each row
# makes a bad input, runs segview on it, and shows the first line of its message, its exit
# status and what to do. Usage: bash tools/troubleshooting_table.sh [path/to/segview]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
segview="${1:-$root/.build/release/segview}"
fixtures="$root/Tests/SegModelsTests/Fixtures"
model="$fixtures/tiny_five_classes.safetensors"
image="$fixtures/street_37x53.png"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# row ADVICE -- COMMAND...: runs COMMAND (file names shortened to their last part) and prints a table row.
row() {
    local advice="$1"; shift 2
    local output status
    output=$("$@" 2>&1 </dev/null); status=$?
    # The first line of the message; for a folder run, the line naming the file that failed.
    local failed; failed=$(printf '%s\n' "$output" | grep -m1 'failed: ')
    [ -n "$failed" ] && output="${failed#  }"
    output=$(printf '%s\n' "$output" | grep -v '^Usage:\|^  See\|^Help:' | grep . | head -1 \
        | sed -e "s#$work/##g" -e "s#$fixtures/##g" -e "s#$root/##g" -e 's/|/\\|/g')
    printf '| `%s` | %s | %s |\n' "$output" "$status" "$advice"
}

printf 'GIF89a' > photo.png
printf '\x89PNG\r\n\x1a\n' > cut.png; head -c 60 "$image" | tail -c +9 >> cut.png
head -c -40 "$root/Tests/SegImageTests/Fixtures/jpeg/baseline.jpg" > cut.jpg
touch mask.png
printf 'not a model' > broken.safetensors
mkdir -p images labels && cp "$image" images/a.png && cp "$root/Tests/SegImageTests/Fixtures/jpeg/baseline.jpg" images/b.jpg
cp "$fixtures/eval/labels/street_37x53.png" labels/b.png
mkfifo fifo

echo '| message | exit | what to do |'
echo '|---|---|---|'
row 'the viewer needs a terminal; write files with `segview predict`' -- "$segview" "$image" --model "$model"
row 'the content decides the format, whatever the name says; convert it' -- "$segview" predict photo.png --model "$model"
row 'a broken or cut-short file' -- "$segview" predict cut.png --model "$model" --out a.png
row 'a cut-short JPEG; `--allow-truncated` keeps what decodes (grey below)' -- "$segview" predict cut.jpg --model "$model" --out b.png
row 'refused from the header, before decoding; raise the limit only if you mean it' -- "$segview" predict "$image" --model "$model" --max-pixels 1000
row '`--scale native` or a large `--scale N`: the pass'"'"'s memory grows with the working size' -- "$segview" predict "$image" --model "$model" --scale 5000 --max-pixels 3000000
row 'outputs never replace files silently' -- "$segview" predict "$image" --model "$model" --out mask.png
row 'only regular files are replaced, even with `--force`' -- "$segview" predict "$image" --model "$model" --out fifo --force
row 'truncated or not a model file; the reason names the header field or tensor' -- "$segview" predict "$image" --model broken.safetensors
row 'that stride needs layers the file lacks' -- "$segview" predict "$image" --model "$fixtures/arch/fcn32s.safetensors" --output-stride 8
row 'a label map must have its image'"'"'s size; the other images are still scored' -- "$segview" eval --model "$model" --images images --labels labels
row 'labels are `NAME.png`, `NAME_L.png` or `NAME_label.png` in the labels folder' -- "$segview" eval --model "$model" --images images --labels images/..
row 'a usage error: the usage follows' -- "$segview" predict "$image" --model "$model" --threads 0

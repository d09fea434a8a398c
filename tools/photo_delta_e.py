#!/usr/bin/env python3
"""chafa's figure for the photo-colour measure of Tests/SegTUITests/PhotoColourTests.swift.

    python tools/photo_delta_e.py [--frames 20] [DIR]     (default DIR: ../shared/datasets/camvid/val)

Renders each frame with chafa in half blocks (--symbols vhalf) at the grid the Swift test uses
(64x48 pixels: 64x24 cells), in 256, 16 and 8 colours with diffusion dithering and in full colour,
and prints the mean CIE76 delta E between each mode and full colour over colourful pixels
(chroma > 15) after a 3x3 blur of both. Needs chafa, numpy and Pillow; segview's own figures come
from `swift test --filter PhotoColourTests` (it prints them).
"""
import argparse
import os
import re
import subprocess

import numpy as np

ANSI = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
        (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255),
        (0, 255, 255), (255, 255, 255)]
LEVELS = [0, 95, 135, 175, 215, 255]


def index_rgb(n):
    if n < 16:
        return ANSI[n]
    if n >= 232:
        v = 8 + 10 * (n - 232)
        return (v, v, v)
    n -= 16
    return (LEVELS[n // 36], LEVELS[n // 6 % 6], LEVELS[n % 6])


def parse(text, columns, rows):
    """chafa's half-block output as a (2*rows, columns, 3) picture."""
    picture = np.zeros((2 * rows, columns, 3))
    fg = bg = (0, 0, 0)
    row = column = 0
    for token in re.finditer(r"\x1b\[([0-9;]*)m|\n|(.)", text, re.S):
        if token.group(0) == "\n":
            row, column = row + 1, 0
            continue
        if token.group(1) is not None:
            codes = [int(c) for c in token.group(1).split(";") if c]
            i = 0
            while i < len(codes):
                code = codes[i]
                if code in (38, 48) and codes[i + 1] == 5:
                    color, step, foreground = index_rgb(codes[i + 2]), 3, code == 38
                elif code in (38, 48) and codes[i + 1] == 2:
                    color, step, foreground = tuple(codes[i + 2:i + 5]), 5, code == 38
                elif 30 <= code <= 37 or 90 <= code <= 97:
                    color, step, foreground = ANSI[code - 30 if code < 90 else code - 82], 1, True
                elif 40 <= code <= 47 or 100 <= code <= 107:
                    color, step, foreground = ANSI[code - 40 if code < 100 else code - 92], 1, False
                else:
                    if code == 7:
                        raise SystemExit("chafa used inverse video, which this parser does not follow")
                    i += 1
                    continue
                if foreground:
                    fg = color
                else:
                    bg = color
                i += step
            continue
        glyph = token.group(2)
        if row >= rows or column >= columns:
            continue
        upper, lower = {"▄": (bg, fg), "▀": (fg, bg), "█": (fg, fg)}.get(glyph, (bg, bg))
        picture[2 * row, column], picture[2 * row + 1, column] = upper, lower
        column += 1
    return picture


def lab(rgb):
    c = rgb / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    x = (c @ [0.4124, 0.3576, 0.1805]) / 0.95047
    y = c @ [0.2126, 0.7152, 0.0722]
    z = (c @ [0.0193, 0.1192, 0.9505]) / 1.08883
    f = lambda t: np.where(t > 216 / 24389, np.cbrt(t), (24389 / 27 * t + 16) / 116)
    return np.stack([116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))], axis=-1)


def blur(values):
    padded = np.pad(values, ((1, 1), (1, 1), (0, 0)))
    counts = np.pad(np.ones(values.shape[:2]), 1)
    total = sum(np.roll(np.roll(padded, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))[1:-1, 1:-1]
    n = sum(np.roll(np.roll(counts, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))[1:-1, 1:-1]
    return total / n[..., None]


def chafa(path, colors, columns=64, rows=24):
    command = ["chafa", "-s", f"{columns}x{rows}", "--symbols", "vhalf", "-c", colors, "--animate", "off",
               "--polite", "on"] + (["--dither", "diffusion"] if colors != "full" else [])
    return parse(subprocess.run(command + [path], capture_output=True, text=True, check=True).stdout, columns, rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=os.path.join(os.path.dirname(__file__),
                                                                  "../../shared/datasets/camvid/val"))
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    frames = sorted(os.listdir(args.folder))[:args.frames]
    for colors in ["256", "16", "8"]:
        scores = []
        for name in frames:
            path = os.path.join(args.folder, name)
            reference, shown = blur(lab(chafa(path, "full"))), blur(lab(chafa(path, colors)))
            colourful = np.hypot(reference[..., 1], reference[..., 2]) > 15
            scores.append(np.linalg.norm(reference - shown, axis=-1)[colourful].mean())
        print(f"chafa {colors} colours: mean delta E {np.mean(scores):.2f} over {len(frames)} frames")


if __name__ == "__main__":
    main()

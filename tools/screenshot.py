#!/usr/bin/env python3
"""A PNG of the viewer as a terminal shows it: segview runs in a detached tmux pane (24-bit colour),
keys are sent one step at a time, each step waits for a text to appear, then the pane is captured
with its colours and drawn cell by cell (half blocks as two pixels, text in DejaVu Sans Mono).

  python tools/screenshot.py --out docs/compare.png --size 160x48 \\
      --step "c=A ≠ B: " -- samples/scene*.png --model samples/models --labels samples/labels --ignore 11

A step is KEYS=TEXT: send KEYS (tmux key names separated by spaces, or plain characters), then wait
for TEXT. The first wait, before any key, is for a finished pass (" ms ").

With --graphics kitty (tmux keeps graphics from its panes) segview runs on a pseudo-terminal of this
script's own instead, with 8x16-pixel cells: the text goes through a terminal emulator (pyte), the
kitty images are decoded from the stream and drawn where they were placed. Steps are plain
characters there, each followed by a second's wait.
"""
import base64
import fcntl
import pty
import select
import struct
import termios
import argparse
import os
import re
import subprocess
import time

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
CELL = (8, 16)
XTERM16 = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
           (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
           (255, 0, 255), (0, 255, 255), (255, 255, 255)]


def palette256(index):
    if index < 16:
        return XTERM16[index]
    if index < 232:
        index -= 16
        levels = [0, 95, 135, 175, 215, 255]
        return levels[index // 36], levels[index // 6 % 6], levels[index % 6]
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


def tmux(*arguments, check=True):
    return subprocess.run(["tmux", "-L", "segview-shot", *arguments], check=check, capture_output=True,
                          text=True).stdout


def wait_for(text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in tmux("capture-pane", "-p", "-t", "shot"):
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {text!r}")


def parse(capture, columns):
    """Rows of (character, foreground, background, bold) from `capture-pane -e` output."""
    default_fg, default_bg = (220, 220, 220), (16, 16, 16)
    rows = []
    for line in capture.split("\n"):
        fg, bg, bold, cells = default_fg, default_bg, False, []
        for escape, text in re.findall(r"(\x1b\[[0-9;]*m)?([^\x1b]*)", line):
            codes = [int(c) if c else 0 for c in escape[2:-1].split(";")] if escape else []
            i = 0
            while i < len(codes):
                code = codes[i]
                if code == 0:
                    fg, bg, bold = default_fg, default_bg, False
                elif code == 1:
                    bold = True
                elif code in (38, 48) and i + 1 < len(codes):
                    colour = tuple(codes[i + 2:i + 5]) if codes[i + 1] == 2 else palette256(codes[i + 2])
                    i += 4 if codes[i + 1] == 2 else 2
                    fg, bg = (colour, bg) if code == 38 else (fg, colour)
                elif 30 <= code <= 37 or 90 <= code <= 97:
                    fg = XTERM16[code - 30 if code < 90 else code - 82]
                elif 40 <= code <= 47 or 100 <= code <= 107:
                    bg = XTERM16[code - 40 if code < 100 else code - 92]
                elif code == 39:
                    fg = default_fg
                elif code == 49:
                    bg = default_bg
                i += 1
            cells += [(character, fg, bg, bold) for character in text]
        rows.append((cells + [(" ", default_fg, default_bg, False)] * columns)[:columns])
    return rows


def render(rows, path):
    width, height = CELL
    image = Image.new("RGB", (width * len(rows[0]), height * len(rows)))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 13)
    for y, row in enumerate(rows):
        for x, (character, fg, bg, _) in enumerate(row):
            box = (x * width, y * height, (x + 1) * width - 1, (y + 1) * height - 1)
            draw.rectangle(box, fill=bg)
            if character == "▀":
                draw.rectangle((box[0], box[1], box[2], box[1] + height // 2 - 1), fill=fg)
            elif character != " ":
                draw.text((box[0], box[1]), character, font=font, fill=fg)
    image.save(path, optimize=True)


def kitty_capture(command, columns, rows, steps):
    """The screen of `command` on a pty: pyte's cells, and the kitty images at their cells."""
    import pyte
    master, slave = pty.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, columns * CELL[0], rows * CELL[1]))
    environment = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", LANG="C.UTF-8")
    process = subprocess.Popen(command + ["--graphics", "kitty"], stdin=slave, stdout=slave, stderr=slave,
                               env=environment, cwd=ROOT)
    output = b""

    def read(seconds, until=None):
        nonlocal output
        deadline = time.time() + seconds
        while time.time() < deadline and not (until and until in output):
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 1 << 16)

    read(60, until=b" ms ")
    for keys in steps:
        os.write(master, keys.encode())
        read(1.0)
    read(1.0)
    process.kill()
    # Images: the cursor position written just before each transmission, and the chunks joined.
    images, placed = {}, {}
    for match in re.finditer(rb"\x1b\[(\d+);(\d+)H\x1b_Ga=d,d=I,i=(\d+)", output):
        placed[int(match.group(3))] = (int(match.group(1)) - 1, int(match.group(2)) - 1)
    current = None
    for match in re.finditer(rb"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\", output):
        keys = dict(pair.split(b"=", 1) for pair in match.group(1).split(b",") if b"=" in pair)
        if keys.get(b"a") == b"T":
            current = [int(keys[b"i"]), int(keys[b"s"]), int(keys[b"v"]), match.group(2) or b""]
        elif b"a" not in keys and current:
            current[3] += match.group(2) or b""
        if keys.get(b"m") == b"0" and current:
            images[current[0]] = (current[1], current[2], base64.b64decode(current[3]))
            current = None
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(re.sub(rb"\x1b_G[^\x1b]*\x1b\\", b"", output))
    cells = []
    for y in range(rows):
        row = []
        for x in range(columns):
            char = screen.buffer[y][x]

            def colour(name, default):
                if name == "default":
                    return default
                try:
                    return tuple(int(name[i:i + 2], 16) for i in (0, 2, 4))
                except ValueError:
                    return default
            row.append((char.data, colour(char.fg, (220, 220, 220)), colour(char.bg, (16, 16, 16)), char.bold))
        cells.append(row)
    return cells, [(placed[i], images[i]) for i in sorted(images) if i in placed]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", default="160x48", help="COLUMNSxROWS")
    parser.add_argument("--step", action="append", default=[], help="KEYS=TEXT")
    parser.add_argument("--segview", default=os.path.join(ROOT, ".build", "release", "segview"))
    parser.add_argument("--graphics", choices=["kitty"], help="draw the panes as kitty images, on a pty")
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    columns, rows = (int(v) for v in args.size.split("x"))
    if args.graphics:
        cells, images = kitty_capture([args.segview] + [a for a in args.arguments if a != "--"], columns, rows,
                                      [step.partition("=")[0] for step in args.step])
        render(cells, args.out)
        picture = Image.open(args.out)
        for (row, column), (width, height, pixels) in images:
            picture.paste(Image.frombytes("RGB", (width, height), pixels), (column * CELL[0], row * CELL[1]))
        picture.save(args.out, optimize=True)
        print(f"wrote {args.out}")
        return
    command = " ".join([args.segview] + [a for a in args.arguments if a != "--"])
    tmux("kill-server", check=False)
    tmux("new-session", "-d", "-s", "shot", "-x", str(columns), "-y", str(rows), "-e", "TERM=xterm-256color",
         "-e", "COLORTERM=truecolor", "-c", ROOT, command)
    try:
        wait_for(" ms ")
        for step in args.step:
            keys, _, text = step.partition("=")
            for key in keys.split(" ") if " " in keys else list(keys):
                tmux("send-keys", "-t", "shot", key)
            wait_for(text)
        time.sleep(0.5)
        render(parse(tmux("capture-pane", "-p", "-e", "-t", "shot"), columns)[:rows], args.out)
    finally:
        tmux("kill-server", check=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

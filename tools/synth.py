#!/usr/bin/env python3
"""Procedural street scenes with exact label maps in CamVid's 11 classes (no dataset image enters
the repository). Every object is drawn twice with the same geometry: in colour into the picture
and as its class id into the label map; lighting, noise and blur then touch only the picture.
Deterministic per seed.

  python tools/synth.py --seed 1 --out samples/scene1.png --labels samples/labels/scene1.png
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from camvid import CLASSES

ID = {name: i for i, name in enumerate(CLASSES)}


class Canvas:
    """Draws each shape into the picture and the label map at once."""

    def __init__(self, width, height):
        self.picture = Image.new("RGB", (width, height))
        self.labels = Image.new("L", (width, height), ID["sky"])
        self.paint = ImageDraw.Draw(self.picture)
        self.mark = ImageDraw.Draw(self.labels)

    def polygon(self, points, color, label):
        self.paint.polygon(points, fill=tuple(color))
        self.mark.polygon(points, fill=ID[label])

    def rectangle(self, box, color, label):
        self.paint.rectangle(box, fill=tuple(color))
        self.mark.rectangle(box, fill=ID[label])

    def ellipse(self, box, color, label):
        self.paint.ellipse(box, fill=tuple(color))
        self.mark.ellipse(box, fill=ID[label])


def jitter(rng, color, amount=20):
    return [int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color]


def scene(width, height, seed):
    rng = np.random.default_rng(seed)
    canvas = Canvas(width, height)
    horizon = int(height * rng.uniform(0.45, 0.58))
    # Sky: a vertical gradient and a few soft clouds (clouds are sky too).
    top, bottom = np.array(jitter(rng, [80, 130, 200])), np.array(jitter(rng, [190, 215, 235]))
    for y in range(horizon + 1):
        t = y / max(horizon, 1)
        canvas.paint.line([(0, y), (width, y)], fill=tuple(int(v) for v in top * (1 - t) + bottom * t))
    for _ in range(rng.integers(1, 4)):
        cx, cy, r = rng.integers(0, width), rng.integers(0, horizon // 2 + 1), rng.integers(width // 20, width // 8)
        canvas.paint.ellipse([cx - 2 * r, cy - r // 2, cx + 2 * r, cy + r // 2], fill=(235, 238, 242))
    # Buildings with windows along the horizon.
    x = -int(rng.integers(0, 20))
    while x < width:
        w = int(rng.integers(width // 9, width // 4))
        roof = int(rng.integers(int(height * 0.08), int(horizon * 0.8)))
        facade = jitter(rng, rng.choice([[150, 140, 125], [120, 80, 70], [170, 165, 160], [95, 100, 110]]), 15)
        canvas.rectangle([x, roof, x + w, horizon], facade, "building")
        wy_step, wx_step = int(rng.integers(10, 16)), int(rng.integers(9, 14))
        glass = jitter(rng, [45, 55, 75], 10)
        for wy in range(roof + 6, horizon - 10, wy_step):
            for wx in range(x + 4, x + w - 6, wx_step):
                canvas.paint.rectangle([wx, wy, wx + wx_step // 2, wy + wy_step // 2], fill=tuple(glass))  # windows are building
        x += w + int(rng.integers(0, 8))
    # Trees in front of some buildings.
    for _ in range(rng.integers(1, 4)):
        cx = int(rng.integers(0, width))
        r = int(rng.integers(height // 12, height // 6))
        canvas.rectangle([cx - r // 8, horizon - r, cx + r // 8, horizon + 4], jitter(rng, [90, 65, 40], 10), "tree")
        canvas.ellipse([cx - r, horizon - 2 * r, cx + r, horizon - r // 3], jitter(rng, [60, 110, 50]), "tree")
    # Road in perspective, sidewalk on the left, a fence on the right.
    vanish = int(width * rng.uniform(0.4, 0.6))
    canvas.rectangle([0, horizon, width, height], jitter(rng, [150, 142, 135], 10), "sidewalk")
    canvas.polygon([(vanish - 4, horizon), (vanish + 4, horizon), (width * 1.3, height), (-width * 0.3, height)],
                   jitter(rng, [95, 95, 100], 8), "road")
    canvas.polygon([(0, horizon), (vanish - 6, horizon), (int(width * 0.05), height), (0, height)],
                   jitter(rng, [160, 150, 140], 10), "sidewalk")
    canvas.polygon([(vanish + 8, horizon - 6), (width, horizon - 30), (width, horizon + 10), (vanish + 8, horizon)],
                   jitter(rng, [110, 90, 70], 10), "fence")
    for i in range(7):  # lane markings (road in CamVid's 11 classes)
        t0, t1 = i / 7, i / 7 + 1 / 16
        y0, y1 = horizon + (height - horizon) * t0 ** 1.5, horizon + (height - horizon) * t1 ** 1.5
        canvas.polygon([(vanish - 1 - 6 * t0, y0), (vanish + 1 + 6 * t0, y0), (vanish + 1 + 6 * t1, y1), (vanish - 1 - 6 * t1, y1)],
                       [225, 225, 215], "road")
    # A pole with a sign.
    px = int(rng.integers(width // 10, width // 3))
    canvas.rectangle([px, int(horizon * 0.55), px + 3, int(height * 0.8)], [70, 70, 75], "pole")
    canvas.rectangle([px - 9, int(horizon * 0.55), px + 12, int(horizon * 0.55) + 16], jitter(rng, [30, 90, 170], 10), "sign")
    # Cars on the road, nearer ones lower and bigger.
    for _ in range(rng.integers(1, 4)):
        depth = rng.uniform(0.15, 0.9)
        cy = int(horizon + (height - horizon) * depth)
        w = int(width * (0.06 + 0.22 * depth))
        cx = int(vanish + (rng.uniform(-1, 1) * width * 0.5) * depth)
        body = jitter(rng, rng.choice([[160, 20, 30], [30, 60, 140], [200, 200, 205], [40, 40, 45]]), 15)
        canvas.rectangle([cx - w // 2, cy - w // 3, cx + w // 2, cy], body, "car")
        canvas.rectangle([cx - w // 3, cy - w // 2, cx + w // 3, cy - w // 3], jitter(rng, [60, 80, 100], 10), "car")
        for wx in (cx - w // 3, cx + w // 3):
            canvas.ellipse([wx - w // 10, cy - w // 10, wx + w // 10, cy + w // 10], [20, 20, 20], "car")
    # A pedestrian on the sidewalk and a bicyclist at the road's edge.
    hx, hy = int(width * rng.uniform(0.02, 0.12)), int(horizon + (height - horizon) * 0.5)
    canvas.rectangle([hx, hy - height // 6, hx + height // 30, hy], jitter(rng, [70, 60, 90]), "pedestrian")
    canvas.ellipse([hx - 1, hy - height // 6 - 9, hx + height // 30 + 1, hy - height // 6 + 1], [200, 170, 150], "pedestrian")
    bx, by = int(vanish + width * rng.uniform(0.1, 0.3)), int(horizon + (height - horizon) * 0.35)
    canvas.ellipse([bx - 12, by - 8, bx + 4, by + 8], [25, 25, 25], "bicyclist")
    canvas.ellipse([bx + 10, by - 8, bx + 26, by + 8], [25, 25, 25], "bicyclist")
    canvas.rectangle([bx + 2, by - 30, bx + 10, by - 4], jitter(rng, [180, 60, 40]), "bicyclist")
    # Light, blur and sensor noise touch the picture only.
    picture = canvas.picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.0)))
    pixels = np.asarray(picture, dtype=np.float32) * rng.uniform(0.85, 1.1) + rng.normal(0, 3.5, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), canvas.labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--labels", required=True)
    args = parser.parse_args()
    picture, labels = scene(args.width, args.height, args.seed)
    for path in (args.out, args.labels):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture.save(args.out)
    labels.save(args.labels)


if __name__ == "__main__":
    main()

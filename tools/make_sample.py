#!/usr/bin/env python3
"""A photo-like test picture, made procedurally (no dataset image enters the repository):
sky gradient, buildings with windows, a road in perspective, a car, sensor noise and blur."""
import argparse

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def street_scene(width, height, seed):
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = int(height * 0.55)
    for y in range(horizon):  # sky: light near the horizon
        t = y / max(horizon, 1)
        draw.line([(0, y), (width, y)], fill=(int(90 + 100 * t), int(140 + 80 * t), int(210 + 30 * t)))
    x = 0
    while x < width:  # buildings
        w = int(rng.integers(width // 10, width // 4))
        top = int(rng.integers(int(height * 0.1), int(height * 0.45)))
        shade = int(rng.integers(90, 190))
        draw.rectangle([x, top, x + w, horizon], fill=(shade, shade - 10, shade - 25))
        for wy in range(top + 6, horizon - 8, 14):
            for wx in range(x + 4, x + w - 6, 12):
                draw.rectangle([wx, wy, wx + 5, wy + 7], fill=(40, 50, 70))
        x += w + int(rng.integers(0, 6))
    draw.rectangle([0, horizon, width, height], fill=(95, 95, 100))  # road and sidewalk
    draw.polygon([(0, horizon), (int(width * 0.3), horizon), (0, int(height * 0.8))], fill=(150, 140, 130))
    for i in range(6):  # lane markings in perspective
        y0 = horizon + (height - horizon) * i / 6
        y1 = y0 + (height - horizon) / 14
        cx = width / 2
        draw.polygon([(cx - 1 - i, y0), (cx + 1 + i, y0), (cx + 2 + i * 1.5, y1), (cx - 2 - i * 1.5, y1)], fill=(230, 230, 220))
    cx, cy = int(width * 0.62), int(height * 0.72)  # a car
    draw.rounded_rectangle([cx, cy - height // 10, cx + width // 5, cy + height // 14], radius=6, fill=(160, 20, 30))
    draw.rectangle([cx + width // 30, cy - height // 7, cx + width // 7, cy - height // 12], fill=(60, 80, 100))
    for wx in (cx + width // 25, cx + width // 6):
        draw.ellipse([wx - 7, cy + height // 20, wx + 7, cy + height // 20 + 14], fill=(20, 20, 20))
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32)
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    street_scene(args.width, args.height, args.seed).save(args.out)


if __name__ == "__main__":
    main()

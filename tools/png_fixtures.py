"""PNG test images of every colour type and bit depth, encoded here byte by byte (so that the files
do not depend on any one encoder's choices), with the RGB8 (and label-index) decode they must give."""
import os
import struct
import zlib

import numpy as np

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 8:
        return bytes(int(s) for s in samples)
    if depth == 16:
        return b"".join(struct.pack(">H", int(s)) for s in samples)
    per_byte = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        byte = 0
        for j, s in enumerate(samples[i:i + per_byte]):
            byte |= int(s) << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def encode(samples, color_type, depth, palette=None, trns=None, interlace=False):
    """samples: int array (height, width, channels)."""
    height, width = samples.shape[:2]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        data += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", bytes(trns))
    return data + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


def to8(values, depth):
    """How libpng brings samples to 8 bits: low depths scaled up, 16 bits scaled down with rounding."""
    values = values.astype(np.int64)
    if depth == 16:
        return (values * 255 + 32895) >> 16
    return values * 255 // ((1 << depth) - 1)


def write_all(directory, seed=5):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = 13, 7  # odd sizes exercise partial bytes and every Adam7 pass
    palette = rng.integers(0, 256, (256, 3))
    cases = []
    for depth in (1, 2, 4, 8, 16):
        cases.append((f"gray{depth}", 0, depth, False))
    for depth in (8, 16):
        cases += [(f"gray_alpha{depth}", 4, depth, False), (f"rgb{depth}", 2, depth, False), (f"rgba{depth}", 6, depth, False)]
    for depth in (1, 4, 8):
        cases.append((f"palette{depth}", 3, depth, False))
    cases += [("rgb8_interlaced", 2, 8, True), ("palette4_interlaced", 3, 4, True), ("gray16_interlaced", 0, 16, True)]
    for name, color_type, depth, interlace in cases:
        samples = rng.integers(0, 1 << depth, (height, width, CHANNELS[color_type]))
        extra = {}
        if color_type == 3:
            extra = dict(palette=palette[:1 << depth], trns=[0, 128])  # transparency is dropped, colour kept
            rgb = palette[samples[:, :, 0]]
            index = samples[:, :, 0]
        elif color_type in (0, 4):
            gray = to8(samples[:, :, 0], depth)
            rgb = np.repeat(gray[:, :, None], 3, axis=2)
            index = samples[:, :, 0] if depth <= 8 else None  # 16-bit levels past 255 are no labels
        else:
            rgb = to8(samples[:, :, :3], depth)
            index = None
        with open(os.path.join(directory, f"{name}.png"), "wb") as f:
            f.write(encode(samples, color_type, depth, interlace=interlace, **extra))
        with open(os.path.join(directory, f"{name}.rgb"), "wb") as f:
            f.write(bytes(rgb.astype(np.uint8).reshape(-1)))
        if index is not None:
            with open(os.path.join(directory, f"{name}.index"), "wb") as f:
                f.write(bytes(index.astype(np.uint8).reshape(-1)))
    # A 16-bit label map: its samples are labels as they are (0-255), not levels to scale to 8 bits.
    labels = rng.integers(0, 12, (height, width, 1))
    labels[0, 0, 0] = 255
    with open(os.path.join(directory, "labels16.png"), "wb") as f:
        f.write(encode(labels, 0, 16))
    gray = to8(labels[:, :, 0], 16)
    with open(os.path.join(directory, "labels16.rgb"), "wb") as f:
        f.write(bytes(np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8).reshape(-1)))
    with open(os.path.join(directory, "labels16.index"), "wb") as f:
        f.write(bytes(labels.astype(np.uint8).reshape(-1)))
    # A PNG cut off in the middle of its image data.
    with open(os.path.join(directory, "rgb8.png"), "rb") as f:
        whole = f.read()
    with open(os.path.join(directory, "truncated.bad"), "wb") as f:
        f.write(whole[:len(whole) // 2])

"""JPEG test images (Pillow, which wraps libjpeg-turbo like segview) with the RGB8 decode they must
give, upright: baseline, progressive, grayscale, every EXIF orientation, and files that must be
refused (CMYK, truncated header, a PNG named .jpg is handled by content elsewhere)."""
import io
import os

import numpy as np
from PIL import Image


def picture(width=23, height=17):
    """Smooth colours (JPEG keeps them well) with an asymmetric mark, so that any flip or rotation shows."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 127 // (width + height)], axis=-1)
    rgb[1:5, 1:8] = (250, 250, 250)  # top-left bar
    return rgb.astype(np.uint8)


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# EXIF orientation -> the transform that turns the stored pixels upright (EXIF 2.3, tag 0x0112).
UPRIGHT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
           8: lambda a: np.rot90(a, 1)}
# ... and its inverse: how a camera stores an upright picture under each tag.
STORED = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
          8: lambda a: np.rot90(a, -1)}


def write_all(folder):
    os.makedirs(folder, exist_ok=True)
    upright = picture()
    for name, options in {"baseline": {}, "progressive": {"progressive": True}}.items():
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(upright).save(path, quality=95, **options)
        np.asarray(Image.open(path).convert("RGB")).tofile(os.path.join(folder, f"{name}.rgb"))
    gray = os.path.join(folder, "gray.jpg")
    Image.fromarray(upright[..., 1]).save(gray, quality=95)
    np.asarray(Image.open(gray).convert("RGB")).tofile(os.path.join(folder, "gray.rgb"))
    for value, stored in STORED.items():
        path = os.path.join(folder, f"orientation{value}.jpg")
        Image.fromarray(np.ascontiguousarray(stored(upright))).save(path, quality=95, exif=exif_orientation(value))
        # Pillow decodes the stored pixels; turning them upright is what the reader must do.
        decoded = np.asarray(Image.open(path).convert("RGB"))
        upright_decoded = np.ascontiguousarray(UPRIGHT[value](decoded))
        assert upright_decoded.shape == upright.shape
        upright_decoded.tofile(os.path.join(folder, f"orientation{value}.rgb"))
    # Scans past the limit: the progressive file's last scan repeated (a few bytes each, and each a
    # pass over the whole image when decoded).
    with open(os.path.join(folder, "progressive.jpg"), "rb") as f:
        progressive = f.read()
    last_scan, end = progressive.rindex(b"\xff\xda"), progressive.rindex(b"\xff\xd9")
    with open(os.path.join(folder, "many_scans.jpg"), "wb") as f:
        f.write(progressive[:end] + progressive[last_scan:end] * 600 + progressive[end:])
    Image.fromarray(upright).convert("CMYK").save(os.path.join(folder, "cmyk.jpg"), quality=95)
    buffer = io.BytesIO()
    Image.fromarray(upright).save(buffer, format="JPEG", quality=95)
    with open(os.path.join(folder, "truncated_header.jpg"), "wb") as f:
        f.write(buffer.getvalue()[:40])

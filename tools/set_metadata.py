#!/usr/bin/env python3
"""Set or remove entries of a segview model file's metadata in place, without torch.

    python tools/set_metadata.py MODEL.safetensors resize_size=360 [KEY=VALUE ...] [KEY= to remove]

A safetensors file is an 8-byte little-endian header length, a JSON header and the tensor bytes;
tensor offsets count from the end of the header, so the header may change length freely.
"""
import json
import os
import struct
import sys


def set_metadata(path, changes):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        body = f.read()
    metadata = header.setdefault("__metadata__", {})
    for key, value in changes.items():
        if value == "":
            metadata.pop(key, None)
        else:
            metadata[key] = value
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the tensor data 8-byte aligned
    temporary = f"{path}.{os.getpid()}.partial"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + body)
    os.replace(temporary, path)


def main():
    if len(sys.argv) < 3 or not all("=" in arg for arg in sys.argv[2:]):
        sys.exit(__doc__)
    set_metadata(sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:]))


if __name__ == "__main__":
    main()

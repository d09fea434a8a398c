#!/usr/bin/env python3
"""Compare `segview predict --save-logits` with PyTorch on the same model file and image.

Prints, per output stride, the largest absolute difference relative to the largest logit magnitude
and the share of pixels whose argmax agrees; exits non-zero if any stride misses the tolerances."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

from torch_reference import build_from_file, logits, preprocess


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--output-stride", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--segview", default=".build/release/segview")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max |diff| / max |logit|")
    parser.add_argument("--agreement", type=float, default=0.999, help="minimum argmax agreement")
    args = parser.parse_args()
    torch.set_num_threads(2)
    failed = False
    for stride in args.output_stride:
        model, metadata = build_from_file(args.model, stride)
        reference = logits(model, preprocess(args.image, metadata))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "logits.npy")
            subprocess.run([args.segview, "predict", args.image, "--model", args.model, "--output-stride", str(stride),
                            "--save-logits", path], check=True, stdout=subprocess.DEVNULL)
            ours = np.load(path)
        relative = float(np.abs(ours - reference).max() / np.abs(reference).max())
        agreement = float((ours.argmax(0) == reference.argmax(0)).mean())
        ok = relative <= args.tolerance and agreement >= args.agreement
        failed |= not ok
        print(f"{os.path.basename(args.model)} OS{stride} {reference.shape}: max|diff|/max|logit| = {relative:.2e}, "
              f"argmax agreement = {agreement * 100:.3f}%  {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

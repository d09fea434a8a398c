#!/usr/bin/env python3
"""The README's architecture table: every architecture x backbone x output stride, full-size random
weights (tools/export.py --seed), forward time of segview next to PyTorch (eager) on the same weights,
input and thread count, interleaved in one run (tools/bench_peers.py), with the logits checked.

  python tools/bench_architectures.py --size 360x480 --threads 2 > table.md
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

import reference
from bench_peers import compare

CONFIGS = [("fcn8s", "vgg16"), ("deeplabv3plus", "resnet101"), ("deeplabv3plus", "xception"),
           ("deeplabv3plus", "mobilenetv2"), ("refinenet", "resnet101"), ("dfn", "resnet101")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="360x480")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--segview", default=".build/release/segview")
    parser.add_argument("--only", nargs="*", help="architectures to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    here = os.path.dirname(os.path.abspath(__file__))
    print(f"| architecture | backbone | output stride | GFLOP | segview ms | PyTorch ms | ratio | max diff | argmax agree |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, backbone in CONFIGS:
            if args.only and arch not in args.only:
                continue
            path = os.path.join(tmp, f"{arch}_{backbone}.safetensors")
            subprocess.run([sys.executable, os.path.join(here, "export.py"), "--arch", arch, "--backbone", backbone,
                            "--seed", "1", "--out", path], check=True, stdout=subprocess.DEVNULL)
            for stride in reference.output_strides(arch, backbone):
                row = compare(path, args.size, stride, args.threads, args.rounds, args.runs, args.segview, onnx=False,
                              tmp=tmp)
                name = f"fcn{stride}s" if arch.startswith("fcn") else arch
                print(f"| {name} | {backbone} | {stride} | {row['gflop']:.0f} | {row['segview_ms']:.0f} | "
                      f"{row['pytorch_ms']:.0f} | {row['segview_ms'] / row['pytorch_ms']:.2f}x | "
                      f"{row['segview_vs_pytorch']:.1e} | {row['argmax_agreement'] * 100:.2f} % |", flush=True)


if __name__ == "__main__":
    main()

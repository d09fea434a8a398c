#!/usr/bin/env python3
"""The README's table of bundled models: for every samples/models/*.safetensors, parameters, file
size, CamVid val mIoU at each output stride it runs at, mIoU on the sample scenes and on the first
20 val frames (the regression tests' figures), and the forward time at 360x480; every figure from
`segview eval` / `segview bench` (commands printed beside the table).

  python tools/bundled_table.py [--camvid ../shared/datasets/camvid] [--threads 2]
"""
import argparse
import glob
import json
import os
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def segview(*args):
    return subprocess.run([os.path.join(ROOT, ".build", "release", "segview"), *args], check=True,
                          capture_output=True, text=True).stdout


def evaluate(model, images, labels, stride, threads):
    report = json.loads(segview("eval", "--model", model, "--images", images, "--labels", labels, "--ignore", "11",
                                "--output-stride", str(stride), "--threads", str(threads), "--json"))
    return report["mean_iou"] * 100


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camvid", default=os.path.join(ROOT, "..", "shared", "datasets", "camvid"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="*", help="only these files of samples/models (default: all)")
    parser.add_argument("--skip", choices=["eval", "bench"], help="leave out the mIoU or the timing columns")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subset = {kind: os.path.join(tmp, kind) for kind in ("images", "labels")}
        for folder in subset.values():
            os.makedirs(folder)
        for name in sorted(os.listdir(os.path.join(args.camvid, "val")))[:20]:
            os.symlink(os.path.abspath(os.path.join(args.camvid, "val", name)), os.path.join(subset["images"], name))
            os.symlink(os.path.abspath(os.path.join(args.camvid, "valannot", name)), os.path.join(subset["labels"], name))
        print("| model | architecture | params | file | val mIoU OS 8 | OS 16 | OS 32 | samples mIoU | first 20 val | forward 360x480 |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for model in sorted(glob.glob(os.path.join(ROOT, "samples", "models", "*.safetensors"))):
            if args.models and os.path.basename(model) not in args.models:
                continue
            info = segview("info", model)
            trained = int(info.split("trained at ")[1].split(";")[0])
            strides = [int(s) for s in info.split("runs at ")[1].split("\n")[0].split(", ")]
            params = int(info.split("parameters")[1].split()[0])
            architecture = info.split("architecture")[1].split("\n")[0].strip()
            cells = []
            for stride in (8, 16, 32):
                if args.skip == "eval":
                    cells.append("")
                elif stride in strides:
                    value = evaluate(model, os.path.join(args.camvid, "val"), os.path.join(args.camvid, "valannot"), stride,
                                     args.threads)
                    cells.append(f"**{value:.2f}**" if stride == trained else f"{value:.2f}")
                else:
                    cells.append("-")
            samples = first20 = time = ""
            if args.skip != "eval":
                samples = f"{evaluate(model, os.path.join(ROOT, 'samples'), os.path.join(ROOT, 'samples', 'labels'), trained, args.threads):.2f}"
                first20 = f"{evaluate(model, subset['images'], subset['labels'], trained, args.threads):.2f}"
            if args.skip != "bench":
                bench = json.loads(segview("bench", "--model", model, "--size", "360x480", "--runs", "5",
                                           "--threads", str(args.threads), "--json"))
                time = f"{bench['median_ms']:.0f} ms"
            print(f"| {os.path.basename(model)} | {architecture} | {params / 1e6:.2f} M | "
                  f"{os.path.getsize(model) / 1e6:.1f} MB | {' | '.join(cells)} | {samples} | {first20} | {time} |", flush=True)


if __name__ == "__main__":
    main()

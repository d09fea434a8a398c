#!/usr/bin/env python3
"""segview against PyTorch (eager) and ONNX Runtime on the same model file, input and thread count.

For each size: the same photo-like PNG goes to all three; the logits are compared (max |diff|
relative to the largest logit) so that speed never comes from a wrong answer; then rounds of timed
runs alternate between the three tools and the medians and ratios are printed.

  python tools/bench_peers.py --model m.safetensors --size 512x512 360x480 --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from make_sample import street_scene
from torch_reference import build_from_file, logits, preprocess


def time_torch(model, x, runs):
    times = []
    with torch.no_grad():
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return times


def onnx_session(model, x, threads, path):
    try:
        import onnxruntime as ort
    except ImportError:
        return None

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, image):
            out = self.inner(image)
            return out["out"] if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out

    torch.onnx.export(Logits(model).eval(), x, path, dynamo=False, input_names=["image"], output_names=["out"], opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def time_ort(session, x, runs):
    feed = {"image": x.numpy()}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return times


IDLE_BETWEEN_TOOLS = 2.0  # seconds


def segview_bench(binary, model, image, stride, threads, runs):
    out = subprocess.run([binary, "bench", "--model", model, "--image", image, "--output-stride", str(stride),
                          "--threads", str(threads), "--runs", str(runs), "--warmup", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compare(model_path, size, stride, threads, rounds, runs, segview, onnx=True, tmp=None):
    """One interleaved comparison on a photo-like picture of `size` ("HxW"); returns the figures."""
    model, metadata = build_from_file(model_path, stride)
    height, width = map(int, size.lower().split("x"))
    image = os.path.join(tmp, f"input_{size}.png")
    street_scene(width, height, seed=11).save(image)
    x = preprocess(image, metadata)
    reference = logits(model, x)
    logits_path = os.path.join(tmp, "ours.npy")
    subprocess.run([segview, "predict", image, "--model", model_path, "--output-stride", str(stride),
                    "--threads", str(threads), "--save-logits", logits_path, "--force"], check=True, stdout=subprocess.DEVNULL)
    ours = np.load(logits_path)
    scale = float(np.abs(reference).max())
    session = onnx_session(model, x, threads, os.path.join(tmp, "model.onnx")) if onnx else None
    ort_diff = None
    if session is not None:
        ort_out = session.run(None, {"image": x.numpy()})[0][0]
        ort_diff = float(np.abs(ort_out - reference).max() / scale)
    time_torch(model, x, 1)  # warm-up
    if session is not None:
        time_ort(session, x, 1)
    ours_t, torch_t, ort_t, report = [], [], [], None
    for _ in range(rounds):
        # Each tool starts after a pause: the thread pools of PyTorch (OpenMP) and ONNX Runtime spin
        # for a while after their last run and would otherwise take the cores from the next tool.
        time.sleep(IDLE_BETWEEN_TOOLS)
        report = segview_bench(segview, model_path, image, stride, threads, runs)
        ours_t.append(report["median_ms"])
        time.sleep(IDLE_BETWEEN_TOOLS)
        torch_t += time_torch(model, x, runs)
        if session is not None:
            time.sleep(IDLE_BETWEEN_TOOLS)
            ort_t += time_ort(session, x, runs)
    return {
        "size": size, "output_stride": stride, "segview_ms": statistics.median(ours_t),
        "pytorch_ms": statistics.median(torch_t), "onnxruntime_ms": statistics.median(ort_t) if ort_t else None,
        "segview_vs_pytorch": float(np.abs(ours - reference).max() / scale), "onnxruntime_vs_pytorch": ort_diff,
        "argmax_agreement": float((ours.argmax(0) == reference.argmax(0)).mean()),
        "gflop": report["gflop"], "activation_peak_mb": report["activation_peak_mb"],
        "weights_mb": report["weights_mb"], "resting_rss_mb": report["resting_rss_mb"],
        "forward_peak_rss_mb": report["forward_peak_rss_mb"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--size", nargs="+", default=["512x512", "360x480"])
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool per round")
    parser.add_argument("--segview", default=".build/release/segview")
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.size:
            row = compare(args.model, size, args.output_stride, args.threads, args.rounds, args.runs, args.segview,
                          onnx=not args.no_onnx, tmp=tmp)
            rows.append(row)
            ort_diff = row["onnxruntime_vs_pytorch"]
            ort_text = (f"ONNX Runtime {row['onnxruntime_ms']:.0f} ms ({row['segview_ms'] / row['onnxruntime_ms']:.2f}x)"
                        if row["onnxruntime_ms"] else "ONNX Runtime n/a")
            print(f"{os.path.basename(args.model)} {size} OS{args.output_stride}, {args.threads} threads: "
                  f"segview {row['segview_ms']:.0f} ms, PyTorch {row['pytorch_ms']:.0f} ms "
                  f"({row['segview_ms'] / row['pytorch_ms']:.2f}x), {ort_text}; "
                  f"max|diff|/max|logit| segview {row['segview_vs_pytorch']:.1e}"
                  + (f", ORT {ort_diff:.1e}" if ort_diff is not None else "")
                  + f"; argmax agreement {row['argmax_agreement'] * 100:.2f}%; "
                  f"{row['gflop']:.0f} GFLOP; memory: weights {row['weights_mb']:.0f} MB, activation peak "
                  f"{row['activation_peak_mb']:.0f} MB, RSS {row['resting_rss_mb']:.0f} MB at rest, "
                  f"{row['forward_peak_rss_mb']:.0f} MB peak during the passes", flush=True)
    json.dump(rows, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()

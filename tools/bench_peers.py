#!/usr/bin/env python3
"""segview against PyTorch (eager) and ONNX Runtime on the same model file, input and thread count.

For each size: the same photo-like PNG goes to all three; the logits are compared (max |diff|
relative to the largest logit) so that speed never comes from a wrong answer; then rounds of timed
runs alternate between the three tools and the medians and ratios are printed.

With --layers, rounds of profiled passes then alternate between segview (`bench --profile
--by-shape`) and ONNX Runtime (its node profiler), and a table gives both tools' time per
convolution shape: where segview gains or loses against ONNX Runtime.

With --int8 FILE (the model quantized by `segview quantize`) and --calibration DIR, the rounds also
time segview's int8 pass and those of the peers' own int8 models: PyTorch's (FX graph mode, the
x86 backend) and ONNX Runtime's (`quantize_static`, QDQ), both with per-channel signed weights
and unsigned activations calibrated on the images `segview quantize --limit N` takes (N spread
evenly over DIR by name), resized to the input size; their logits are compared with float32's.

  python tools/bench_peers.py --model m.safetensors --size 512x512 360x480 --threads 2 [--layers]
  python tools/bench_peers.py --model m.safetensors --int8 m.int8.safetensors --calibration camvid/train
"""
import argparse
import collections
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

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


def ort_session(path, threads, profile_prefix=None):
    """ONNX Runtime on the model at `path`: `threads` threads for one run at a time, every graph
    optimisation; with `profile_prefix`, its node profiler on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_session(model, x, threads, path):
    try:
        import onnxruntime  # noqa: F401 (whether it is installed)
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
    return ort_session(path, threads)


def time_ort(session, x, runs):
    feed = {"image": x.numpy()}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return times


def onnx_int8_session(float_path, int8_path, calibration, threads):
    """ONNX Runtime's own int8 model of `float_path`, calibrated on the tensors `calibration`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"image": tensor.numpy()} for tensor in calibration)

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(float_path, int8_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return ort_session(int8_path, threads)


def torch_int8_model(model, calibration):
    """PyTorch's own int8 model of `model` (FX graph mode, x86 backend), calibrated on `calibration`."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"),
                          example_inputs=(calibration[0],))
    with torch.no_grad():
        for tensor in calibration:
            prepared(tensor)
    return convert_fx(prepared)


def calibration_tensors(folder, limit, width, height, metadata, tmp):
    """The images `segview quantize --limit` takes from `folder` (`limit` spread evenly over its
    images sorted by name), resized to width x height, preprocessed."""
    images = sorted(name for name in os.listdir(folder) if name.lower().endswith((".png", ".jpg", ".jpeg", ".jpe")))
    if not images:
        sys.exit(f"bench_peers.py: {folder} has no PNG or JPEG images to calibrate on")
    count = min(limit, len(images))
    names = [images[i * len(images) // count] for i in range(count)]
    tensors = []
    for name in names:
        path = os.path.join(tmp, "calibration.png")
        Image.open(os.path.join(folder, name)).convert("RGB").resize((width, height), Image.BILINEAR).save(path)
        tensors.append(preprocess(path, metadata))
    return tensors


IDLE_BETWEEN_TOOLS = 2.0  # seconds


def segview_bench(binary, model, image, stride, threads, runs, precision=None):
    out = subprocess.run([binary, "bench", "--model", model, "--image", image, "--output-stride", str(stride),
                          "--threads", str(threads), "--runs", str(runs), "--warmup", "1", "--json"]
                         + (["--precision", precision] if precision else []),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def segview_logits(binary, model, image, stride, threads, tmp, precision=None):
    path = os.path.join(tmp, "ours.npy")
    subprocess.run([binary, "predict", image, "--model", model, "--output-stride", str(stride), "--threads",
                    str(threads), "--save-logits", path, "--force"] + (["--precision", precision] if precision else []),
                   check=True, stdout=subprocess.DEVNULL)
    return np.load(path)


def difference(logits, reference):
    """(max |difference| / max |logit|, share of pixels with the same class) against float32's."""
    scale = float(np.abs(reference).max())
    return float(np.abs(logits - reference).max() / scale), float((logits.argmax(0) == reference.argmax(0)).mean())


def compare(model_path, size, stride, threads, rounds, runs, segview, onnx=True, tmp=None, int8=None):
    """One interleaved comparison on a photo-like picture of `size` ("HxW"); returns the figures.

    `int8`: (segview's int8 model file, calibration folder, limit), or None."""
    model, metadata = build_from_file(model_path, stride)
    height, width = map(int, size.lower().split("x"))
    image = os.path.join(tmp, f"input_{size}.png")
    street_scene(width, height, seed=11).save(image)
    x = preprocess(image, metadata)
    reference = logits(model, x)
    ours = segview_logits(segview, model_path, image, stride, threads, tmp)
    scale = float(np.abs(reference).max())
    onnx_path = os.path.join(tmp, "model.onnx")
    session = onnx_session(model, x, threads, onnx_path) if onnx else None
    ort_diff = None
    if session is not None:
        ort_out = session.run(None, {"image": x.numpy()})[0][0]
        ort_diff = float(np.abs(ort_out - reference).max() / scale)
    int8_session, torch_int8, int8_figures = None, None, {}
    if int8 is not None:
        int8_model, folder, limit = int8
        int8_figures["segview_int8_vs_pytorch"] = difference(
            segview_logits(segview, int8_model, image, stride, threads, tmp, precision="int8"), reference)
        calibration = calibration_tensors(folder, limit, width, height, metadata, tmp)
        try:
            torch_int8 = torch_int8_model(model, calibration)
            int8_figures["pytorch_int8_vs_pytorch"] = difference(logits(torch_int8, x), reference)
        except Exception as error:  # FX cannot trace every reference implementation (slices of a Sequential)
            int8_figures["pytorch_int8_unavailable"] = f"{type(error).__name__}: {error}"
        if session is not None:
            int8_session = onnx_int8_session(onnx_path, os.path.join(tmp, "model.int8.onnx"), calibration, threads)
            int8_figures["onnxruntime_int8_vs_pytorch"] = difference(
                int8_session.run(None, {"image": x.numpy()})[0][0], reference)
    for warm in (model, torch_int8):
        if warm is not None:
            time_torch(warm, x, 1)
    for warm in (session, int8_session):
        if warm is not None:
            time_ort(warm, x, 1)
    ours_t, torch_t, ort_t, ours8_t, torch8_t, ort8_t, report = [], [], [], [], [], [], None
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
        if int8 is not None:
            time.sleep(IDLE_BETWEEN_TOOLS)
            ours8_t.append(segview_bench(segview, int8[0], image, stride, threads, runs, precision="int8")["median_ms"])
            if torch_int8 is not None:
                time.sleep(IDLE_BETWEEN_TOOLS)
                torch8_t += time_torch(torch_int8, x, runs)
        if int8_session is not None:
            time.sleep(IDLE_BETWEEN_TOOLS)
            ort8_t += time_ort(int8_session, x, runs)
    if ours8_t:
        int8_figures["segview_int8_ms"] = statistics.median(ours8_t)
    if torch8_t:
        int8_figures["pytorch_int8_ms"] = statistics.median(torch8_t)
    if ort8_t:
        int8_figures["onnxruntime_int8_ms"] = statistics.median(ort8_t)
    return int8_figures | {
        "size": size, "output_stride": stride, "segview_ms": statistics.median(ours_t),
        "pytorch_ms": statistics.median(torch_t), "onnxruntime_ms": statistics.median(ort_t) if ort_t else None,
        "segview_vs_pytorch": float(np.abs(ours - reference).max() / scale), "onnxruntime_vs_pytorch": ort_diff,
        "argmax_agreement": float((ours.argmax(0) == reference.argmax(0)).mean()),
        "gflop": report["gflop"], "activation_peak_mb": report["activation_peak_mb"], "tensor_peak_mb": report["tensor_peak_mb"],
        "weights_mb": report["weights_mb"], "resting_rss_mb": report["resting_rss_mb"],
        "forward_peak_rss_mb": report["forward_peak_rss_mb"],
    }


SEGVIEW_CONV = re.compile(r"conv (\d+)x(\d+) (?:([a-z][\w ]*?) )?(\d+)->(\d+) (\d+)x(\d+)(?: s(\d+))?(?: d(\d+))?$")


def layer_key(kernel, in_channels, out_channels, height, width, stride):
    return f"{kernel} {in_channels}->{out_channels} {height}x{width}" + (f" s{stride}" if stride > 1 else "")


def segview_layers(profile):
    """segview's `bench --profile --by-shape` entries -> {shape: ms}, {shape: "paths and dilations"}, other ms.

    Shapes leave out the dilation, which ONNX Runtime's profile does not give."""
    times, paths, other = collections.defaultdict(float), collections.defaultdict(lambda: collections.defaultdict(set)), 0.0
    for entry in profile:
        match = SEGVIEW_CONV.match(entry["kind"])
        if not match:
            other += entry["ms"]
            continue
        kh, kw, path, cin, cout, h, w, stride, dilation = match.groups()
        key = layer_key(f"{kh}x{kw}", cin, cout, h, w, int(stride or 1))
        times[key] += entry["ms"]
        paths[key][path or "gemm"].add(int(dilation or 1))

    def describe(dilations_by_path):  # "winograd d1,2"
        return ", ".join(name + (" d" + ",".join(map(str, sorted(dilations))) if max(dilations) > 1 else "")
                         for name, dilations in sorted(dilations_by_path.items()))
    return times, {key: describe(value) for key, value in paths.items()}, other


def ort_layers(events, passes):
    """ONNX Runtime profile events of a warm-up run and `passes` more -> {shape: ms per pass}, other ms per pass."""
    nodes = [event for event in events if event.get("cat") == "Node" and event["name"].endswith("_kernel_time")]
    times, other = collections.defaultdict(float), 0.0
    for event in nodes[len(nodes) // (passes + 1):]:  # every run has the same nodes: the warm-up's go
        args, ms = event["args"], event["dur"] / 1000 / passes
        if args.get("op_name") != "Conv":
            other += ms
            continue
        x, w = args["input_type_shape"][0]["float"], args["input_type_shape"][1]["float"]
        y = args["output_type_shape"][0]["float"]
        stride = max(1, round(x[2] / y[2]))
        times[layer_key(f"{w[2]}x{w[3]}", x[1], w[0], x[2], x[3], stride)] += ms
    return times, other


def layer_table(ours, paths, our_other, theirs, their_other):
    """Lines comparing the two tools shape by shape, the costliest first, then the totals."""
    keys = sorted(set(ours) | set(theirs), key=lambda key: -max(ours.get(key, 0), theirs.get(key, 0)))
    lines = [f"{'convolution (input shape)':28s} {'segview path':20s} {'segview ms':>10s} {'ORT ms':>8s} {'ratio':>6s}"]
    for key in keys:
        a, b = ours.get(key), theirs.get(key)
        ratio = f"{a / b:6.2f}" if a and b else "     -"
        lines.append(f"{key:28s} {paths.get(key, '-'):20s} {a or 0:10.1f} {b or 0:8.1f} {ratio}")
    lines.append(f"{'other kernels':28s} {'':20s} {our_other:10.1f} {their_other:8.1f}")
    total_a, total_b = sum(ours.values()) + our_other, sum(theirs.values()) + their_other
    lines.append(f"{'total':28s} {'':20s} {total_a:10.1f} {total_b:8.1f} {total_a / total_b:6.2f}")
    return lines


def compare_layers(model_path, size, stride, threads, rounds, segview, tmp):
    """Per-shape profile of segview and ONNX Runtime, `rounds` profiled passes each, alternating."""
    model, metadata = build_from_file(model_path, stride)
    image = os.path.join(tmp, f"input_{size}.png")
    height, width = map(int, size.lower().split("x"))
    street_scene(width, height, seed=11).save(image)
    x = preprocess(image, metadata)
    path = os.path.join(tmp, "layers.onnx")
    onnx_session(model, x, threads, path)  # exports the model
    session = ort_session(path, threads, profile_prefix=os.path.join(tmp, "ort_profile"))
    feed = {"image": x.numpy()}
    session.run(None, feed)  # warm-up
    ours, paths, our_other = collections.defaultdict(float), {}, 0.0
    for _ in range(rounds):
        time.sleep(IDLE_BETWEEN_TOOLS)
        report = subprocess.run([segview, "bench", "--model", model_path, "--image", image, "--output-stride", str(stride),
                                 "--threads", str(threads), "--runs", "1", "--warmup", "1", "--profile", "--by-shape",
                                 "--json"], check=True, capture_output=True, text=True).stdout
        times, round_paths, other = segview_layers(json.loads(report)["profile"])
        for key, ms in times.items():
            ours[key] += ms / rounds
        paths.update(round_paths)
        our_other += other / rounds
        time.sleep(IDLE_BETWEEN_TOOLS)
        session.run(None, feed)
    with open(session.end_profiling()) as file:
        theirs, their_other = ort_layers(json.load(file), rounds)
    return layer_table(ours, paths, our_other, theirs, their_other)


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
    parser.add_argument("--layers", action="store_true", help="also profile both tools by convolution shape (needs ONNX Runtime)")
    parser.add_argument("--int8", metavar="FILE", help="also time segview's int8 model FILE and the peers' int8 models")
    parser.add_argument("--calibration", metavar="DIR", help="with --int8: images to calibrate the peers' int8 models on")
    parser.add_argument("--calibration-limit", type=int, default=32,
                        help="with --int8: N images of DIR, spread as segview quantize --limit N spreads them")
    args = parser.parse_args()
    if args.int8 and not args.calibration:
        parser.error("--int8 needs --calibration DIR for the peers' int8 models")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        int8 = (args.int8, args.calibration, args.calibration_limit) if args.int8 else None
        for size in args.size:
            row = compare(args.model, size, args.output_stride, args.threads, args.rounds, args.runs, args.segview,
                          onnx=not args.no_onnx, tmp=tmp, int8=int8)
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
                  f"{row['activation_peak_mb']:.0f} MB (tensors {row['tensor_peak_mb']:.0f} MB), RSS {row['resting_rss_mb']:.0f} MB at rest, "
                  f"{row['forward_peak_rss_mb']:.0f} MB peak during the passes", flush=True)
            if "segview_int8_ms" in row:
                line = f"  int8: segview {row['segview_int8_ms']:.0f} ms ({row['segview_int8_ms'] / row['segview_ms']:.2f}x " \
                       f"its float32), against float32 PyTorch: max|diff|/max|logit| " \
                       f"{row['segview_int8_vs_pytorch'][0]:.1e}, argmax agreement {row['segview_int8_vs_pytorch'][1] * 100:.2f}%"
                if "pytorch_int8_ms" in row:
                    line += f"; PyTorch {row['pytorch_int8_ms']:.0f} ms " \
                            f"({row['pytorch_int8_ms'] / row['pytorch_ms']:.2f}x its float32; segview " \
                            f"{row['segview_int8_ms'] / row['pytorch_int8_ms']:.2f}x), " \
                            f"{row['pytorch_int8_vs_pytorch'][0]:.1e}, {row['pytorch_int8_vs_pytorch'][1] * 100:.2f}%"
                else:
                    line += f"; PyTorch int8 n/a ({row['pytorch_int8_unavailable'][:80]})"
                if "onnxruntime_int8_ms" in row:
                    line += f"; ONNX Runtime {row['onnxruntime_int8_ms']:.0f} ms " \
                            f"({row['onnxruntime_int8_ms'] / row['onnxruntime_ms']:.2f}x its float32; segview " \
                            f"{row['segview_int8_ms'] / row['onnxruntime_int8_ms']:.2f}x), " \
                            f"{row['onnxruntime_int8_vs_pytorch'][0]:.1e}, {row['onnxruntime_int8_vs_pytorch'][1] * 100:.2f}%"
                print(line, flush=True)
            if args.layers:
                print(f"per convolution shape, mean of {args.rounds} profiled passes each (ms):")
                for line in compare_layers(args.model, size, args.output_stride, args.threads, args.rounds, args.segview, tmp):
                    print("  " + line, flush=True)
    json.dump(rows, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()

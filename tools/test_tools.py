#!/usr/bin/env python3
"""Smoke tests of the Python tools (run by .ci/run only where torch is installed; CI does not need it).

- every tools/reference architecture takes a few training steps on a tiny model with the loss
  tools/train.py uses (DFN: deep supervision and the border focal loss) and its loss goes down;
- tools/export.py refuses a state_dict that does not fit and converts one that does, and
  tools/reference rebuilds the same model from the file (widths read back from the shapes);
- tools/bench_peers.py --layers matches segview's and ONNX Runtime's profiles by convolution shape;
- tools/train.py's recipe parts: class weighting schemes, hard-pixel mining, rotation (labels stay
  labels, uncovered corners void) and the moving average of the weights.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import reference
import train
from torch_reference import build_from_file

TINY = {
    "fcn8s": dict(widths=(4, 8, 8, 16, 16, 32)),
    "deeplabv3plus": dict(backbone="mobilenetv2", width_mult=0.25, head_channels=16, low_level_channels=8),
    "refinenet": dict(layers=[1, 1, 1, 1], base_width=8, channels=(16, 8)),
    "dfn": dict(layers=[1, 1, 1, 1], base_width=8, smooth_channels=16, border_channels=4),
}


def training_steps_reduce_the_loss():
    rng = np.random.default_rng(0)
    # Two flat-coloured regions are easy to learn: the loss must fall within a few steps.
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, 48:] = (200, 60, 40)
    label = np.zeros((64, 96), np.int64)
    label[:, 48:] = 3
    label[:4, :4] = 11  # some void
    for arch, options in TINY.items():
        torch.manual_seed(0)
        model = reference.build(arch, reference.TRAINED_STRIDE[arch], num_classes=11, **options)
        x = torch.stack([train.to_input(image, reference.preprocessing(arch))] * 2)
        y = torch.from_numpy(np.stack([label] * 2))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        model.train()
        for _ in range(6):
            loss = train.training_loss(model, arch, x, y, torch.ones(11))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert all(np.isfinite(losses)), (arch, losses)
        assert losses[-1] < losses[0], (arch, losses)
        print(f"ok: {arch} trains, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    boundary = train.boundaries(torch.from_numpy(np.stack([label])))[0]
    assert boundary[10, 47] == 1 and boundary[10, 10] == 0 and boundary[0, 0] == -1
    print("ok: border targets from labels")


def recipe_parts_do_what_they_say():
    labels = [np.array([[0] * 90 + [1] * 9 + [2]] * 10)]
    median, root = train.class_weights(labels, 3, "median"), train.class_weights(labels, 3, "sqrt")
    assert torch.allclose(root, median.sqrt()) and median[2] > median[1] > median[0], (median, root)
    assert train.class_weights(labels, 3, "none") is None and train.class_weights(labels, 3, "ohem") is None
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 0] = 5  # confident class 0 everywhere
    y = torch.tensor([[[0, 0], [0, 1]]])
    hard = train.hard_pixel_loss(logits, y)  # the hardest quarter: the one pixel labelled 1
    assert torch.isclose(hard, torch.nn.functional.cross_entropy(logits, y, reduction="none")[0, 1, 1]), hard
    x, labelled = train.rotated(torch.rand(3, 40, 40), torch.full((40, 40), 4), np.radians(30))
    assert set(labelled.unique().tolist()) == {4, 11} and labelled[20, 20] == 4 and labelled[0, 0] == 11
    model = torch.nn.Linear(2, 1)
    average = train.EMA(model, 0.5)
    with torch.no_grad():
        model.weight.add_(2.0)
    average.update(model)
    assert torch.allclose(average.copy_of(model).weight, model.weight - 1.0)
    print("ok: class weights, hard pixels, rotation and the weight average")


def export_checks_the_state_dict():
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        model = reference.build("refinenet", 32, num_classes=5, **TINY["refinenet"])
        good, bad = os.path.join(tmp, "good.pth"), os.path.join(tmp, "bad.pth")
        torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, good)
        state = model.state_dict()
        del state["clf_conv.bias"]
        torch.save(state, bad)
        out = os.path.join(tmp, "m.safetensors")
        refused = subprocess.run([sys.executable, os.path.join(here, "export.py"), "--arch", "refinenet", "--state-dict", bad,
                                  "--out", out], capture_output=True, text=True)
        assert refused.returncode != 0 and "clf_conv.bias" in refused.stderr, refused.stderr
        subprocess.run([sys.executable, os.path.join(here, "export.py"), "--arch", "refinenet", "--state-dict", good,
                        "--out", out], check=True, capture_output=True)
        rebuilt, metadata = build_from_file(out, 32)
        x = torch.randn(1, 3, 45, 61)
        with torch.no_grad():
            assert torch.allclose(rebuilt(x), model.eval()(x))
        assert metadata["architecture"] == "refinenet" and metadata["num_classes"] == "5"
        print("ok: export.py refuses a mismatched state_dict and round-trips a good one")


def layer_profiles_meet_by_shape():
    import bench_peers
    ours = [{"kind": "conv 3x3 tapwise 2048->256 45x60 d12", "ms": 10.0}, {"kind": "conv 3x3 tapwise 2048->256 45x60 d24", "ms": 5.0},
            {"kind": "conv 7x7 im2col 3->64 360x480 s2", "ms": 9.0}, {"kind": "max pool", "ms": 1.5},
            {"kind": "conv 3x3 int8 tapwise 512->512 45x60 d4", "ms": 2.0}]
    times, paths, other = bench_peers.segview_layers(ours)
    assert times == {"3x3 2048->256 45x60": 15.0, "7x7 3->64 360x480 s2": 9.0, "3x3 512->512 45x60": 2.0} \
        and other == 1.5, (times, other)
    assert paths["3x3 2048->256 45x60"] == "tapwise d12,24" and paths["3x3 512->512 45x60"] == "int8 tapwise d4", paths

    def node(cin, h, w, cout, k, oh, ow, op="Conv", ms=2.0):
        return {"cat": "Node", "name": "n_kernel_time", "dur": ms * 1000,
                "args": {"op_name": op, "input_type_shape": [{"float": [1, cin, h, w]}, {"float": [cout, cin, k, k]}],
                         "output_type_shape": [{"float": [1, cout, oh, ow]}]}}
    run = [node(3, 360, 480, 64, 7, 180, 240), node(2048, 45, 60, 256, 3, 45, 60, ms=12.0), node(1, 1, 1, 1, 1, 1, 1, "Concat", 0.5)]
    theirs, their_other = bench_peers.ort_layers([{"cat": "Session"}] + run * 3, passes=2)  # the first run is the warm-up
    assert theirs == {"7x7 3->64 360x480 s2": 2.0, "3x3 2048->256 45x60": 12.0} and their_other == 0.5, (theirs, their_other)
    table = bench_peers.layer_table(times, paths, other, theirs, their_other)
    assert table[1].startswith("3x3 2048->256 45x60") and table[1].split()[-1] == "1.25", table
    assert table[-1].split()[-1] == f"{(15 + 9 + 2 + 1.5) / (14 + 0.5):.2f}", table
    print("ok: bench_peers.py meets the two profiles shape by shape")


if __name__ == "__main__":
    training_steps_reduce_the_loss()
    recipe_parts_do_what_they_say()
    export_checks_the_state_dict()
    layer_profiles_meet_by_shape()

#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures segview's tests read (no test needs Python):

- Tests/SegModelsTests/Fixtures/checkpoints: the narrow parity models of Fixtures/arch saved with
  torch.save the way each reference's trainer saves them (jfzhang95's Saver: DataParallel's `module.`
  prefix, the optimizer, a NumPy `best_pred`, MobileNetV2's aliased layers; wkentaro's trainer:
  `model_state_dict` and `best_mean_iu`; TorchSeg: `model`, `optimizer`, `epoch`; DrSleep and
  torchvision: a plain state dict), in the zip format and the legacy one.
- Tests/TorchCheckpointTests/Fixtures: tensors of every layout and dtype the reader handles, and
  hostile files: pickles that would run code (os.system, builtins.eval), a truncated archive, an
  entry named outside the archive, a storage too short for its tensor, deeply nested and cyclic pickles.

  python tools/checkpoint_fixtures.py
"""
import argparse
import collections
import io
import os
import zipfile

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ARCH = os.path.join(ROOT, "Tests", "SegModelsTests", "Fixtures", "arch")
MODELS = os.path.join(ROOT, "Tests", "SegModelsTests", "Fixtures", "checkpoints")
READER = os.path.join(ROOT, "Tests", "TorchCheckpointTests", "Fixtures")
# What the hostile pickles would create if anything ran them; the tests check it never appears.
MARKER = "/tmp/segview-pickle-ran"


def save(obj, path, legacy=False):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def state_dict(name):
    return collections.OrderedDict(load_file(os.path.join(ARCH, name + ".safetensors")))


def optimizer_state(state):
    first = next(iter(state.values()))
    return {"state": {0: {"momentum_buffer": torch.zeros_like(first)}},
            "param_groups": [{"lr": 0.007, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False,
                              "params": list(range(len(state)))}]}


def jfzhang95(state, mobilenet=False):
    """pytorch-deeplab-xception's Saver.save_checkpoint of a DataParallel model."""
    wrapped = collections.OrderedDict()
    for name, value in state.items():
        wrapped["module." + name] = value
        parts = name.split(".")
        if mobilenet and parts[:2] == ["backbone", "features"]:
            index = int(parts[2])
            alias = ["low_level_features", str(index)] if index < 4 else ["high_level_features", str(index - 4)]
            wrapped[".".join(["module", "backbone"] + alias + parts[3:])] = value
    return {"epoch": 30, "state_dict": wrapped, "optimizer": optimizer_state(state), "best_pred": np.float64(0.7123)}


def wkentaro(state):
    """pytorch-fcn's Trainer checkpoint."""
    return {"epoch": 11, "iteration": 100000, "arch": "FCN8s", "optim_state_dict": optimizer_state(state),
            "model_state_dict": state, "best_mean_iu": np.float64(0.6512)}


def torchseg(state):
    """TorchSeg's Engine.save_checkpoint."""
    return {"model": state, "optimizer": optimizer_state(state), "epoch": 120, "iteration": 5000}


CHECKPOINTS = {
    "deeplabv3plus_mobilenetv2_jfzhang95_legacy.pth.tar": ("deeplabv3plus_mobilenetv2",
                                                           lambda s: jfzhang95(s, mobilenet=True), True),
    "deeplabv3plus_xception_jfzhang95.pth.tar": ("deeplabv3plus_xception", jfzhang95, False),
    "deeplabv3plus_resnet_plain.pth": ("deeplabv3plus_resnet", lambda s: s, False),
    "fcn8s_wkentaro.pth": ("fcn8s", wkentaro, False),
    "fcn32s_plain_legacy.pth": ("fcn32s", lambda s: s, True),
    "refinenet_plain.pth": ("refinenet", lambda s: s, False),
    "dfn_torchseg.pth": ("dfn", torchseg, False),
}


class RunsCode:
    """Pickles as a call of `function(argument)`: what loading it with Python's pickle would run."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def layouts():
    """Every layout and dtype the reader must put in row-major order."""
    shared = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    return collections.OrderedDict([
        ("transposed", torch.arange(12, dtype=torch.float32).reshape(3, 4).t()),
        ("offset_f64", torch.arange(10, dtype=torch.float64)[2:7]),
        ("half", torch.tensor([1.5, -2.0, 65504.0], dtype=torch.float16)),
        ("bfloat", torch.tensor([1.0, -3.5], dtype=torch.bfloat16)),
        ("long", torch.tensor([1, -2, 3], dtype=torch.int64)),
        ("shared_row0", shared[0]),
        ("shared_row1", shared[1]),
        ("scalar", torch.tensor(7.25)),
        ("empty", torch.zeros(0, 3)),
        ("strided", torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)[:, ::2, 1::2]),
    ])


def stored_zip(path, entries):
    """A zip of stored entries, as torch.save writes them."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def main():
    os.makedirs(MODELS, exist_ok=True)
    os.makedirs(READER, exist_ok=True)
    for file, (model, wrap, legacy) in CHECKPOINTS.items():
        save(wrap(state_dict(model)), os.path.join(MODELS, file), legacy)
    # torchvision's layout saved from a DataParallel model, as a training script of one would.
    tiny = collections.OrderedDict(load_file(os.path.join(ARCH, "..", "tiny_deeplabv3.safetensors")))
    save(collections.OrderedDict(("module." + name, value) for name, value in tiny.items()),
         os.path.join(MODELS, "deeplabv3_torchvision_dataparallel.pth"))
    extra = state_dict("refinenet")
    extra["leftover.weight"] = torch.ones(3, 3)
    save(extra, os.path.join(MODELS, "refinenet_extra.pth"))
    # A weight stored as integers, beside the integer bookkeeping every batch norm keeps.
    save(collections.OrderedDict([("conv1_1.weight", torch.ones(2, 3, 3, 3, dtype=torch.int64)),
                                  ("conv1_1.bias", torch.zeros(2)),
                                  ("bn1.num_batches_tracked", torch.tensor(7))]),
         os.path.join(MODELS, "integer_weight.pth"))

    save(layouts(), os.path.join(READER, "layouts.pt"))
    save(layouts(), os.path.join(READER, "layouts_legacy.pt"), legacy=True)
    save({"state_dict": {"x": RunsCode(os.system, "touch " + MARKER)}}, os.path.join(READER, "runs_system.pt"))
    save({"state_dict": {"x": RunsCode(eval, f"__import__('os').system('touch {MARKER}')")}},
         os.path.join(READER, "runs_eval_legacy.pt"), legacy=True)
    # The model file's tensors come first in the pickle: a code-running object after them.
    save(collections.OrderedDict([("weight", torch.ones(2)), ("hook", RunsCode(os.system, "touch " + MARKER))]),
         os.path.join(READER, "runs_after_tensors.pt"))
    with open(os.path.join(READER, "layouts.pt"), "rb") as f:
        whole = f.read()
    with open(os.path.join(READER, "truncated.pt"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    with open(os.path.join(READER, "layouts_legacy.pt"), "rb") as f:
        legacy = f.read()
    with open(os.path.join(READER, "truncated_legacy.pt"), "wb") as f:
        f.write(legacy[:-20])
    pickled = io.BytesIO()
    torch.save(layouts(), pickled)
    with zipfile.ZipFile(io.BytesIO(pickled.getvalue())) as archive:
        inner = {name: archive.read(name) for name in archive.namelist()}
    stored_zip(os.path.join(READER, "traversal.pt"),
               {"../" + name if name.endswith("data.pkl") else name: data for name, data in inner.items()})
    # The storage of "transposed" (12 floats) cut to 2.
    stored_zip(os.path.join(READER, "short_storage.pt"),
               {name: data[:8] if name.endswith("/data/0") else data for name, data in inner.items()})
    # 100,000 lists, each appended to the one before: deep, but no recursion in the reader.
    deep = b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b"."
    stored_zip(os.path.join(READER, "deep.pt"), {"archive/data.pkl": deep})
    # A dict that holds itself under "state_dict".
    cycle = b"\x80\x02}q\x00X\x0a\x00\x00\x00state_dicth\x00s."
    stored_zip(os.path.join(READER, "cycle.pt"), {"archive/data.pkl": cycle})
    unusual_views()


def unusual_views():
    """Views no state dict holds, and a score tensor beside one."""
    # A size-1 dimension with a stride of 2^63 - 1: walking it overflowed.
    save({"x": torch.as_strided(torch.arange(4.0), (2, 1), (2, 2**63 - 1))}, os.path.join(READER, "huge_stride.pt"))
    # One float expanded to 2^31 - 1 elements: 8 GB from a 1.5 KB file.
    save({"x": torch.zeros(1).expand(2**31 - 1)}, os.path.join(READER, "expanded.pt"))
    save({"state_dict": layouts(), "best_miou": torch.tensor(0.5)}, os.path.join(READER, "score_beside.pt"))
    # torchvision's references/segmentation/train.py keeps its argparse.Namespace beside the model.
    state = collections.OrderedDict([("conv.weight", torch.ones(2, 3)), ("conv.bias", torch.zeros(2))])
    arguments = argparse.Namespace(data_path="/datasets/coco/", model="fcn_resnet50", aux_loss=True, lr=0.02,
                                   epochs=30, device="cuda", weights=None, test_only=False, resize=[520, 480])
    save({"model": state, "optimizer": optimizer_state(state), "lr_scheduler": {"last_epoch": 3, "_step_count": 4},
          "epoch": 3, "args": arguments}, os.path.join(READER, "torchvision_reference.pth"))
    # 40 views of one 64 KB storage: 2.6 MB of tensors from a 66 KB file.
    shared = torch.zeros(16384)
    save({f"view{i}": shared[:] for i in range(40)}, os.path.join(READER, "repeated_views.pt"))


if __name__ == "__main__":
    main()

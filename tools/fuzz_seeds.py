#!/usr/bin/env python3
"""Seed corpora of the model-file and checkpoint fuzzers (fuzz/corpus/model, fuzz/corpus/checkpoint): the
smallest valid model of every architecture (widths of 1-2 channels, two classes) as a model file and as
PyTorch checkpoints (zip and legacy formats, float32 and float16), so that mutations reach every loader
path; with the checkpoint reader's own small test files. Legacy checkpoints name their storages by object
id, so a rerun changes their bytes, not what they hold."""
import os
import shutil

import torch

import reference
from segtools import model_metadata, voc_colors, write_model_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fuzz", "corpus", "model")
CHECKPOINTS = os.path.join(ROOT, "fuzz", "corpus", "checkpoint")
READER_FIXTURES = os.path.join(ROOT, "Tests", "TorchCheckpointTests", "Fixtures")
SMALLEST = {
    "fcn8s": ("fcn8s", dict(widths=(1, 1, 1, 1, 1, 2))),
    "deeplabv3plus_resnet": ("deeplabv3plus", dict(backbone="resnet", layers=[1, 1, 1, 1], base_width=1, head_channels=2,
                                                   low_level_channels=1)),
    "deeplabv3plus_xception": ("deeplabv3plus", dict(backbone="xception", widths=(1, 1, 1, 1, 2, 3, 1, 1, 1), middle_blocks=1,
                                                     head_channels=2, low_level_channels=1)),
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus", dict(backbone="mobilenetv2", width_mult=0.1, head_channels=2,
                                                        low_level_channels=1)),
    "refinenet": ("refinenet", dict(layers=[1, 1, 1, 1], base_width=1, channels=(2, 1), crp_stages=1)),
    "dfn": ("dfn", dict(layers=[1, 1, 1, 1], base_width=1, smooth_channels=2, border_channels=1)),
}


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CHECKPOINTS, exist_ok=True)
    for name, (arch, options) in SMALLEST.items():
        options = dict(options)
        backbone = options.get("backbone", reference.DEFAULT_BACKBONE[arch])
        model = reference.build(arch, reference.TRAINED_STRIDE[arch], num_classes=2, **options)
        state = {k: v for k, v in model.state_dict().items() if "upscore" not in k}  # FCN: synthesised when absent
        metadata = model_metadata(arch, backbone, ["a", "b"], voc_colors(2), output_stride=reference.TRAINED_STRIDE[arch],
                                  **reference.preprocessing(arch))
        path = os.path.join(OUT, f"{name}.safetensors")
        write_model_file(state, metadata, path, "f16")
        print(f"{path}: {os.path.getsize(path)} bytes")
        for suffix, legacy, dtype in (("zip", False, torch.float32), ("legacy_f16", True, torch.float16)):
            path = os.path.join(CHECKPOINTS, f"{name}_{suffix}.pth")
            torch.save({"state_dict": {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}},
                       path, _use_new_zipfile_serialization=not legacy)
            print(f"{path}: {os.path.getsize(path)} bytes")
    # The reader's crafted files, but for deep.pt, beyond the fuzzer's input size.
    for name in sorted(os.listdir(READER_FIXTURES)):
        if os.path.getsize(os.path.join(READER_FIXTURES, name)) <= 65536:
            shutil.copy(os.path.join(READER_FIXTURES, name), CHECKPOINTS)


if __name__ == "__main__":
    main()

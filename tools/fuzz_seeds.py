#!/usr/bin/env python3
"""Seed corpus of the model-file fuzzer (fuzz/corpus/model): the smallest valid model file of every
architecture (widths of 1-2 channels, two classes), so that mutations reach every loader path."""
import os

import torch

import reference
from segtools import model_metadata, voc_colors, write_model_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "model")
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
    os.makedirs(OUT, exist_ok=True)
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


if __name__ == "__main__":
    main()

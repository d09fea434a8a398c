#!/usr/bin/env python3
"""Writes the parity fixtures of the tools/reference architectures (Tests/SegModelsTests/Fixtures/arch):
for each architecture and backbone a narrow model with random weights and randomised BatchNorm
statistics, written as a segview model file, and PyTorch's logits (DFN: and border probabilities)
on an odd-sized photo-like picture at every output stride the model supports.

Run from the repository root: python tools/make_architecture_fixtures.py (make_fixtures.py calls it).
"""
import os

import numpy as np
import torch

import reference
from make_sample import street_scene
from segtools import model_metadata, randomize_batchnorm, voc_colors, write_model_file
from torch_reference import build_from_file, outputs, preprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "SegModelsTests", "Fixtures", "arch")
CLASSES = ["void", "sky", "road", "car", "tree"]

# name: (architecture, options of tools/reference's constructor)
MODELS = {
    "fcn8s": ("fcn8s", dict(widths=(4, 8, 8, 16, 16, 32))),
    "fcn8s_atonce": ("fcn8s", dict(widths=(4, 8, 8, 16, 16, 32), at_once=True)),
    "fcn32s": ("fcn32s", dict(widths=(4, 8, 8, 16, 16, 32))),
    "deeplabv3plus_resnet": ("deeplabv3plus", dict(backbone="resnet101", layers=[1, 1, 1, 3], base_width=4,
                                                   head_channels=16, low_level_channels=8)),
    "deeplabv3plus_xception": ("deeplabv3plus", dict(backbone="xception", widths=(8, 8, 8, 16, 24, 32, 32, 32, 40),
                                                     middle_blocks=2, head_channels=16, low_level_channels=8)),
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus", dict(backbone="mobilenetv2", width_mult=0.25, head_channels=16,
                                                        low_level_channels=8)),
    "refinenet": ("refinenet", dict(layers=[1, 1, 1, 1], base_width=8, channels=(16, 8))),
    "dfn": ("dfn", dict(layers=[1, 1, 1, 1], base_width=4, smooth_channels=16, border_channels=4)),
}


def write_model(name, arch, options, seed):
    torch.manual_seed(seed)
    options = dict(options)
    at_once = options.pop("at_once", False)
    backbone = options.get("backbone", reference.DEFAULT_BACKBONE[arch])
    trained = reference.TRAINED_STRIDE[arch]
    model = reference.build(arch, trained, num_classes=len(CLASSES), **options)
    # He initialisation keeps activations from fading through the deep stacks, so that the logits
    # vary over the picture and their argmax uses several classes (a sharper test).
    generator = torch.Generator().manual_seed(seed + 2)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    extra = dict(description=f"tiny {name} for parity tests (random weights)")
    if arch == "deeplabv3plus":
        extra.update(aspp_rates=(6, 12, 18))
    if at_once:
        extra.update(fcn_at_once="true")
    metadata = model_metadata(arch, backbone, CLASSES, voc_colors(len(CLASSES)), output_stride=trained,
                              **reference.preprocessing(arch), **extra)
    path = os.path.join(OUT, f"{name}.safetensors")
    write_model_file(model.state_dict(), metadata, path)
    return path, reference.output_strides(arch, backbone)


def main():
    os.makedirs(OUT, exist_ok=True)
    image_path = os.path.join(OUT, "street_51x67.png")
    street_scene(67, 51, seed=11).save(image_path)
    for seed, (name, (arch, options)) in enumerate(MODELS.items()):
        path, strides = write_model(name, arch, options, 1000 + 10 * seed)
        for stride in strides:
            model, metadata = build_from_file(path, stride)
            scores, border = outputs(model, preprocess(image_path, metadata))
            np.save(os.path.join(OUT, f"{name}_os{stride}.npy"), scores.astype(np.float32))
            if border is not None:
                np.save(os.path.join(OUT, f"{name}_border_os{stride}.npy"), border.astype(np.float32))
            print(f"{name} OS{stride}: logits {scores.shape}, max |logit| {np.abs(scores).max():.3g}, "
                  f"classes used {len(np.unique(scores.argmax(0)))}")


if __name__ == "__main__":
    main()

"""Shared helpers for the Python tools: importing torchvision, random weights, writing model files.

The model-file schema written here is the one documented in the README ("Model files").
"""
import json
import os
import sys

import torch

FORMAT_VERSION = 1

VOC_CLASSES = [
    "__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def voc_colors(count):
    """PASCAL VOC palette: label bits 0/1/2 go to R/G/B, most significant bit first."""
    colors = []
    for label in range(count):
        rgb = [0, 0, 0]
        value = label
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        colors.append(rgb)
    return colors


def import_torchvision():
    """torchvision from PyPI is built against CUDA torch; with the CPU wheel its C ops fail to load
    and its fake-op registrations raise on import. The models need none of those ops, so the
    registrations are skipped while importing."""
    import torch.library

    real = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda function: function)
    try:
        import torchvision
    finally:
        torch.library.register_fake = real
    return torchvision


def randomize_batchnorm(model, generator):
    """Random BatchNorm affine parameters and running statistics, so that folding BN into the
    convolutions is really exercised (fresh BN layers are the identity)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=generator) * 0.8 + 0.6)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)


def model_metadata(architecture, backbone, classes, colors, output_stride, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   input_range="0-1", input_channels="RGB", resize_size=None, **extra):
    """The `__metadata__` map of a segview model file (every value a string). `resize_size` is the
    short side, in pixels, of the images the model expects (docs/model-format.md)."""
    metadata = {
        "format": "segview-model",
        "format_version": str(FORMAT_VERSION),
        "architecture": architecture,
        "backbone": backbone,
        "num_classes": str(len(classes)),
        "class_names": json.dumps(list(classes)),
        "class_colors": json.dumps([list(map(int, c)) for c in colors]),
        "input_mean": ",".join(repr(float(m)) for m in mean),
        "input_std": ",".join(repr(float(s)) for s in std),
        "input_range": input_range,
        "input_channels": input_channels,
        "output_stride": str(output_stride),
    }
    if resize_size is not None:
        metadata["resize_size"] = str(int(resize_size))
    for key, value in extra.items():
        metadata[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return metadata


DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def write_model_file(state_dict, metadata, path, dtype="f32"):
    """Writes floating tensors under their state_dict names; integer bookkeeping such as
    BatchNorm's num_batches_tracked is left out."""
    from safetensors.torch import save_file

    tensors = {name: value.detach().to(DTYPES[dtype]).contiguous()
               for name, value in state_dict.items() if value.is_floating_point()}
    save_file(tensors, path, metadata=metadata)


def round_trip(state_dict, dtype):
    """The state_dict as segview will see it after storing in `dtype` (for reference outputs)."""
    return {k: (v.to(DTYPES[dtype]).to(torch.float32) if v.is_floating_point() else v) for k, v in state_dict.items()}


def add_output_arguments(parser):
    """--out, --dtype and --force, shared by the export tools."""
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="f32", choices=list(DTYPES))
    parser.add_argument("--force", action="store_true", help="overwrite --out")


def refuse_existing(args):
    """Exporters never replace a file without --force."""
    if os.path.exists(args.out) and not args.force:
        sys.exit(f"{args.out} already exists (use --force to overwrite)")

#!/usr/bin/env python3
"""Convert a PyTorch state_dict of one of the reference implementations into a segview model file.

  python tools/export.py --arch deeplabv3plus --backbone resnet101 --state-dict deeplab-resnet.pth.tar --out dlv3p.safetensors
  python tools/export.py --arch fcn8s --state-dict fcn8s_from_caffe.pth --out fcn8s.safetensors
  python tools/export.py --arch dfn --state-dict dfn_voc.pth --classes voc.txt --out dfn.safetensors
  python tools/export.py --arch refinenet --seed 1 --out random.safetensors   # random weights, random BN statistics

Names are those of the implementations users hold weights for: FCN as wkentaro/pytorch-fcn keeps the
Caffe layer names (conv1_1 ... fc6, fc7, score_fr, score_pool4, upscore2 ...), DeepLabV3+ as
jfzhang95/pytorch-deeplab-xception, RefineNet as DrSleep/refinenet-pytorch, DFN as ycszen/TorchSeg.
Checkpoint wrappers are unwrapped (`state_dict`, `model`, `module.` prefixes), MobileNetV2's aliased
copies (`low_level_features`, `high_level_features`) dropped, and the weights are loaded strictly into
tools/reference's model, so a file that does not fit is refused with the names that do not. The
preprocessing the reference expects (FCN: BGR 0-255 minus the Caffe mean; the others: RGB, ImageNet
mean/std) is recorded in the metadata.
"""
import argparse
import json
import os
import sys

import torch

import reference
from reference.options import infer_options
from segtools import add_output_arguments, refuse_existing, model_metadata, randomize_batchnorm, voc_colors, write_model_file

BACKBONES = ["vgg16", "resnet50", "resnet101", "resnet152", "xception", "mobilenetv2"]


def unwrap(checkpoint):
    """The plain state_dict inside the checkpoint formats the references save."""
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    state = {}
    for name, value in checkpoint.items():
        name = name[len("module."):] if name.startswith("module.") else name
        if ".low_level_features." in name or ".high_level_features." in name or name.endswith("num_batches_tracked"):
            continue
        state[name] = value
    return state


def class_set(args, count):
    """Names and colours: a preset by name, a file of names, the preset of this class count, or numbered
    names (as `segview convert` chooses them)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "class_presets.json")) as f:
        presets = json.load(f)
    if args.classes in presets:
        preset = presets[args.classes]
        if len(preset["names"]) != count:
            sys.exit(f"--classes {args.classes} has {len(preset['names'])} classes, the weights {count}")
        return preset["names"], preset["colors"]
    if args.classes:
        with open(args.classes) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) != count:
            sys.exit(f"{args.classes} names {len(names)} classes but the weights have {count}")
        return names, voc_colors(count)
    for preset in presets.values():
        if len(preset["names"]) == count:
            return preset["names"], preset["colors"]
    return [f"class{i}" for i in range(count)], voc_colors(count)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, choices=reference.ARCHITECTURES)
    parser.add_argument("--backbone", choices=BACKBONES, help="default: vgg16 for FCN, resnet101 otherwise")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--state-dict", help="a .pth/.pth.tar checkpoint with the reference implementation's names")
    source.add_argument("--seed", type=int, help="random weights (BatchNorm statistics randomised), full size")
    parser.add_argument("--num-classes", type=int, help="classes of the weights (default: read from them; 21 with --seed)")
    parser.add_argument("--classes", help="a preset (voc, cityscapes, ade20k, camvid) or a text file with one class "
                        "name per line (default: the preset with the weights' class count)")
    parser.add_argument("--at-once", action="store_true", help="FCN-8s at-once weights (skips scaled by 0.01 / 1e-4)")
    parser.add_argument("--output-stride", type=int, choices=[8, 16, 32],
                        help="the stride the weights were trained at (default: the reference's)")
    add_output_arguments(parser)
    args = parser.parse_args()
    refuse_existing(args)
    arch = args.arch
    backbone = args.backbone or reference.DEFAULT_BACKBONE[arch]
    if arch.startswith("fcn") != (backbone == "vgg16"):
        sys.exit(f"{arch} takes backbone {'vgg16' if arch.startswith('fcn') else 'resnet50/101/152, xception or mobilenetv2'}")
    if arch in ("refinenet", "dfn") and not backbone.startswith("resnet"):
        sys.exit(f"{arch} takes a ResNet backbone")
    stride = args.output_stride or reference.TRAINED_STRIDE[arch]
    if arch.startswith("fcn"):
        stride = reference.TRAINED_STRIDE[arch]

    if args.seed is not None:
        torch.manual_seed(args.seed)
        model = reference.build(arch, stride, num_classes=args.num_classes or 21,
                                **({} if arch.startswith("fcn") else {"backbone": backbone}))
        randomize_batchnorm(model, torch.Generator().manual_seed(args.seed))
        state = model.state_dict()
        description = f"{arch} {backbone}, random weights (seed {args.seed})"
    else:
        state = unwrap(torch.load(args.state_dict, map_location="cpu", weights_only=False))
        try:
            options = infer_options(arch, backbone, state)
        except KeyError as missing:
            sys.exit(f"{args.state_dict} is not a {arch} state_dict: no tensor {missing}")
        if args.num_classes and options["num_classes"] != args.num_classes:
            sys.exit(f"the weights have {options['num_classes']} classes, not {args.num_classes}")
        model = reference.build(arch, stride, **options)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            sys.exit(f"{args.state_dict} does not match {arch} {backbone}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        description = f"{arch} {backbone}, weights from {os.path.basename(args.state_dict)}"
    count = model.state_dict()[{"deeplabv3plus": "decoder.last_conv.8.weight", "refinenet": "clf_conv.weight",
                                "dfn": "smooth_heads.3.conv.weight"}.get(arch, "score_fr.weight")].shape[0]
    extra = {"description": description}
    if arch == "deeplabv3plus":
        extra["aspp_rates"] = [6 * 16 // stride, 12 * 16 // stride, 18 * 16 // stride]
    if args.at_once:
        extra["fcn_at_once"] = "true"
    names, colors = class_set(args, count)
    metadata = model_metadata(arch, backbone, names, colors, output_stride=stride,
                              resize_size=reference.resize_size(arch), **reference.preprocessing(arch), **extra)
    write_model_file(model.state_dict(), metadata, args.out, args.dtype)
    print(f"wrote {args.out}: {description}, {count} classes, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{args.dtype}")


if __name__ == "__main__":
    main()

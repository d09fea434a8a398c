#!/usr/bin/env python3
"""Export torchvision's DeepLabV3 / FCN (ResNet-50/101) to a segview model file.

  --state-dict FILE.pth   weights you downloaded (torchvision's .pth, a plain state_dict)
  --pretrained            torchvision's COCO-VOC weights from torchvision's cache (downloads if absent)
  --seed N                random weights, BatchNorm statistics randomised (tests, benchmarks)

The auxiliary classifier is kept in the file (segview accepts and ignores it).
"""
import argparse
import os
import sys

import torch

from segtools import add_output_arguments, refuse_existing, VOC_CLASSES, model_metadata, randomize_batchnorm, voc_colors, write_model_file
from torchvision_models import build, tv

ARCHS = ["deeplabv3_resnet50", "deeplabv3_resnet101", "fcn_resnet50", "fcn_resnet101"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, choices=ARCHS)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--state-dict", help="a .pth state_dict with torchvision's names")
    source.add_argument("--pretrained", action="store_true", help="torchvision's pretrained COCO-VOC weights")
    source.add_argument("--seed", type=int, help="random weights from this seed")
    parser.add_argument("--backbone-layers", help="blocks per ResNet stage, e.g. 1,1,1,1 (small models; default: the arch's)")
    parser.add_argument("--backbone-width", type=int, default=64, help="stem channels / first-stage width (small models)")
    parser.add_argument("--head-channels", type=int, default=256, help="DeepLabV3 ASPP width (small models)")
    add_output_arguments(parser)
    args = parser.parse_args()
    refuse_existing(args)
    family, backbone = args.arch.split("_")
    layers = [int(n) for n in args.backbone_layers.split(",")] if args.backbone_layers else None
    custom = layers is not None or args.backbone_width != 64 or args.head_channels != 256
    if custom and args.seed is None:
        sys.exit("--backbone-layers/--backbone-width/--head-channels make a custom size: only with --seed")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    model = build(family, num_classes=21, output_stride=8, backbone=backbone, layers=layers,
                  base_width=args.backbone_width, head_channels=args.head_channels)
    if args.seed is not None:
        randomize_batchnorm(model, torch.Generator().manual_seed(args.seed))
        shape = f"layers {layers or 'standard'}, width {args.backbone_width}, head {args.head_channels}" if custom else args.arch
        description = f"torchvision-layout {family} ({shape}), random weights (seed {args.seed})"
    else:
        if args.pretrained:
            state = tv.models.get_model(args.arch, weights="DEFAULT").state_dict()
            description = f"torchvision {args.arch}, pretrained COCO-VOC weights"
        else:
            state = torch.load(args.state_dict, map_location="cpu", weights_only=True)
            state = state.get("model", state) if isinstance(state, dict) else state
            description = f"torchvision {args.arch}, weights from {os.path.basename(args.state_dict)}"
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or [k for k in unexpected if not k.startswith("aux_classifier")]:
            sys.exit(f"state_dict does not match {args.arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    extra = {"description": description}
    if family == "deeplabv3":
        extra.update(aspp_rates=(12, 24, 36), head_channels=args.head_channels)
    if custom:
        backbone = "resnet"
        extra.update(backbone_layers=layers or [3, 4, 6, 3], backbone_width=args.backbone_width)
    # torchvision's weight presets for these models resize the short side to 520.
    metadata = model_metadata(family, backbone, VOC_CLASSES, voc_colors(21), output_stride=8, resize_size=520, **extra)
    write_model_file(model.state_dict(), metadata, args.out, args.dtype)
    print(f"wrote {args.out}: {description}, {sum(p.numel() for p in model.parameters())} parameters, {args.dtype}")


if __name__ == "__main__":
    main()

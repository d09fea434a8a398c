#!/usr/bin/env python3
"""`segview convert` against tools/export.py on full-size checkpoints of every reference configuration.

For each of the nine configurations (FCN-32s/16s/8s VGG-16; DeepLabV3+ ResNet-101 at output stride 16
and 8, Xception, MobileNetV2; RefineNet-101; DFN-101) and torchvision's deeplabv3_resnet50: random
weights in the reference model, saved with torch.save the way its trainer saves them (one in the legacy
format), converted by both tools; the tensors must be bit-identical and the metadata equal.

  python tools/check_convert.py [--segview .build/release/segview] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open

import reference
from checkpoint_fixtures import jfzhang95, torchseg, wkentaro
from segtools import randomize_batchnorm
from torchvision_models import build as build_torchvision

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (architecture, backbone, trained output stride, trainer's wrapper, legacy format)
CONFIGURATIONS = {
    "fcn32s": ("fcn32s", "vgg16", 32, wkentaro, False),
    "fcn16s": ("fcn16s", "vgg16", 16, wkentaro, False),
    "fcn8s": ("fcn8s", "vgg16", 8, wkentaro, False),
    "deeplabv3plus_resnet101_os16": ("deeplabv3plus", "resnet101", 16, jfzhang95, False),
    "deeplabv3plus_resnet101_os8": ("deeplabv3plus", "resnet101", 8, jfzhang95, False),
    "deeplabv3plus_xception": ("deeplabv3plus", "xception", 16, jfzhang95, False),
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus", "mobilenetv2", 16, lambda s: jfzhang95(s, mobilenet=True), False),
    "refinenet101": ("refinenet", "resnet101", 32, lambda s: s, True),
    "dfn101": ("dfn", "resnet101", 32, torchseg, False),
}


def tensors(path):
    with safe_open(path, "pt") as f:
        return f.metadata(), {name: f.get_tensor(name) for name in f.keys()}


def compare(name, ours, theirs):
    (our_metadata, our_tensors), (their_metadata, their_tensors) = tensors(ours), tensors(theirs)
    problems = []
    if set(our_tensors) != set(their_tensors):
        problems.append(f"tensor names differ: {sorted(set(our_tensors) ^ set(their_tensors))[:5]}")
    for key in sorted(set(our_tensors) & set(their_tensors)):
        a, b = our_tensors[key], their_tensors[key]
        if a.dtype != torch.float32 or a.shape != b.shape or not torch.equal(a.view(torch.int32), b.view(torch.int32)):
            problems.append(f"{key} differs")
    for key in sorted(set(our_metadata) | set(their_metadata)):
        if our_metadata.get(key) != their_metadata.get(key):
            problems.append(f"metadata {key}: {our_metadata.get(key)!r} vs {their_metadata.get(key)!r}")
    print(f"{name}: {len(our_tensors)} tensors, " + ("bit-identical, same metadata" if not problems
                                                     else "; ".join(problems[:6])))
    return not problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segview", default=".build/release/segview")
    parser.add_argument("--keep", help="write the files here instead of a temporary folder")
    args = parser.parse_args()
    segview = os.path.abspath(args.segview)
    folder = args.keep or tempfile.mkdtemp(prefix="segview-convert-")
    os.makedirs(folder, exist_ok=True)
    ok = True
    for seed, (name, (arch, backbone, stride, wrap, legacy)) in enumerate(CONFIGURATIONS.items()):
        torch.manual_seed(seed)
        options = {} if arch.startswith("fcn") else {"backbone": backbone}
        model = reference.build(arch, stride, num_classes=21, **options)
        randomize_batchnorm(model, torch.Generator().manual_seed(seed))
        checkpoint = os.path.join(folder, name + (".pth.tar" if wrap is jfzhang95 else ".pth"))
        torch.save(wrap(model.state_dict()), checkpoint, _use_new_zipfile_serialization=not legacy)
        exported, converted = (os.path.join(folder, f"{name}.{tool}.safetensors") for tool in ("export", "convert"))
        strides = ["--output-stride", str(stride)] if arch == "deeplabv3plus" else []
        subprocess.run([sys.executable, os.path.join(HERE, "export.py"), "--arch", arch, "--backbone", backbone,
                        "--state-dict", checkpoint, "--out", exported, "--force"] + strides, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([segview, "convert", checkpoint, "--out", converted, "--force"] + strides, check=True)
        ok &= compare(name, converted, exported)
        for path in (checkpoint, exported, converted):
            if not args.keep:
                os.remove(path)
    torch.manual_seed(99)
    model = build_torchvision("deeplabv3", num_classes=21, output_stride=8, backbone="resnet50")
    randomize_batchnorm(model, torch.Generator().manual_seed(99))
    checkpoint = os.path.join(folder, "deeplabv3_resnet50.pth")
    torch.save(model.state_dict(), checkpoint)
    exported, converted = (os.path.join(folder, f"deeplabv3_resnet50.{tool}.safetensors") for tool in ("export", "convert"))
    subprocess.run([sys.executable, os.path.join(HERE, "export_torchvision.py"), "--arch", "deeplabv3_resnet50",
                    "--state-dict", checkpoint, "--out", exported, "--force"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([segview, "convert", checkpoint, "--out", converted, "--force"], check=True)
    ok &= compare("deeplabv3_resnet50 (torchvision)", converted, exported)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

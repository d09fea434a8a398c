"""Rebuild the PyTorch model a segview model file describes, with its weights, at any output stride."""
import json

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

import reference
import torchvision_models
from reference.options import infer_options


def read_model_file(path):
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        state = {name: f.get_tensor(name).to(torch.float32) for name in f.keys()}
    return state, metadata


def ints(metadata, key, default=None):
    return [int(v) for v in metadata[key].split(",")] if key in metadata else default


def build_from_file(path, output_stride):
    """The PyTorch model for a model file: torchvision's classes for deeplabv3/fcn, tools/reference for the rest."""
    state, metadata = read_model_file(path)
    arch = metadata["architecture"]
    if arch in reference.ARCHITECTURES:
        options = infer_options(arch, metadata["backbone"], state)
        if arch == "deeplabv3plus":
            options.update(aspp_rates=ints(metadata, "aspp_rates", [6, 12, 18]), trained_stride=int(metadata["output_stride"]))
        if arch.startswith("fcn"):
            options.update(at_once=metadata.get("fcn_at_once") == "true")
        model = reference.build(arch, output_stride, **options)
        # An FCN-8s file runs as FCN-16s/32s with the fixed bilinear kernels of the layers it lacks.
        model.load_state_dict(state, strict=not arch.startswith("fcn"))
        return model.eval(), metadata
    if arch not in ("deeplabv3", "fcn"):
        raise SystemExit(f"no PyTorch reference for architecture {arch}")
    model = torchvision_models.build(
        arch, num_classes=int(metadata["num_classes"]), output_stride=output_stride,
        backbone=metadata["backbone"], layers=ints(metadata, "backbone_layers"),
        base_width=int(metadata.get("backbone_width", 64)), head_channels=int(metadata.get("head_channels", 256)),
        aspp_rates=ints(metadata, "aspp_rates", [12, 24, 36]), trained_stride=int(metadata["output_stride"]),
        aux=any(k.startswith("aux_classifier") for k in state))
    model.load_state_dict(state, strict=False)
    return model.eval(), metadata


def preprocessing(metadata):
    """A model file's input preprocessing, in the form of reference.IMAGENET_PREPROCESSING."""
    return dict(input_channels=metadata.get("input_channels", "RGB"), input_range=metadata.get("input_range", "0-1"),
                mean=[float(v) for v in metadata["input_mean"].split(",")],
                std=[float(v) for v in metadata["input_std"].split(",")])


def preprocess(image_path, metadata):
    """The same preprocessing segview applies, from the model file's metadata."""
    steps = preprocessing(metadata)
    pixels = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)
    if steps["input_channels"] == "BGR":
        pixels = pixels[:, :, ::-1]
    if steps["input_range"] == "0-1":
        pixels = pixels / 255.0
    pixels = (pixels - np.array(steps["mean"], dtype=np.float32)) / np.array(steps["std"], dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]


def outputs(model, image):
    """(logits, border probabilities or None) as numpy arrays, for any architecture."""
    with torch.no_grad():
        out = model(image)
    if isinstance(out, dict):
        return out["out"][0].numpy(), None
    if isinstance(out, tuple):
        return out[0][0].numpy(), torch.sigmoid(out[1])[0].numpy()
    return out[0].numpy(), None


def logits(model, image):
    return outputs(model, image)[0]

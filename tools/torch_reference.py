"""Rebuild the PyTorch model a segview model file describes, with its weights, at any output stride."""
import json

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

import torchvision_models


def read_model_file(path):
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        state = {name: f.get_tensor(name).to(torch.float32) for name in f.keys()}
    return state, metadata


def ints(metadata, key, default=None):
    return [int(v) for v in metadata[key].split(",")] if key in metadata else default


def build_from_file(path, output_stride):
    state, metadata = read_model_file(path)
    arch = metadata["architecture"]
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


def preprocess(image_path, metadata):
    """The same preprocessing segview applies, from the model file's metadata."""
    pixels = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)
    if metadata.get("input_channels", "RGB") == "BGR":
        pixels = pixels[:, :, ::-1]
    if metadata.get("input_range", "0-1") == "0-1":
        pixels = pixels / 255.0
    mean = np.array([float(v) for v in metadata["input_mean"].split(",")], dtype=np.float32)
    std = np.array([float(v) for v in metadata["input_std"].split(",")], dtype=np.float32)
    pixels = (pixels - mean) / std
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]


def logits(model, image):
    with torch.no_grad():
        return model(image)["out"][0].numpy()

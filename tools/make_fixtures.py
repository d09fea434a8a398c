#!/usr/bin/env python3
"""Writes the PyTorch-made fixtures that `swift test` compares against (Tests/*/Fixtures).

1. kernels.safetensors: small cases for every engine kernel, computed with torch.nn.functional;
   each case's parameters are a JSON string in the metadata under the case's name.
2. PNGs of every colour type, bit depth and interlacing, with the pixels they must decode to.
3. Tiny torchvision-layout DeepLabV3 and FCN models (torchvision's own classes, narrow ResNet,
   random weights with randomised BatchNorm statistics), an odd-sized photo-like input, and
   PyTorch's logits at output strides 8, 16 and 32 (and for a float16 copy of the DeepLabV3 file).
4. JPEGs (baseline, progressive, gray, every EXIF orientation, CMYK, truncated) and their decodes.
5. The tools/reference architectures' parity fixtures (make_architecture_fixtures.py).

Run from the repository root: python tools/make_fixtures.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

import make_architecture_fixtures
from make_sample import street_scene
from jpeg_fixtures import write_all as write_jpeg_fixtures
from png_fixtures import write_all as write_png_fixtures
from segtools import VOC_CLASSES, model_metadata, randomize_batchnorm, round_trip, voc_colors, write_model_file
from torch_reference import logits, preprocess
import torchvision_models

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ENGINE = os.path.join(ROOT, "Tests", "SegEngineTests", "Fixtures")
MODELS = os.path.join(ROOT, "Tests", "SegModelsTests", "Fixtures")
IMAGES = os.path.join(ROOT, "Tests", "SegImageTests", "Fixtures", "png")


def kernel_cases(generator):
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    tensors, metadata = {}, {}

    def case(name, params, inputs, output):
        metadata[name] = json.dumps(params)
        for key, value in inputs.items():
            tensors[f"{name}.{key}"] = value.clone().contiguous()
        tensors[f"{name}.output"] = output[0].contiguous() if output.dim() == 4 else output.contiguous()

    convs = {
        "conv3x3": dict(cin=5, cout=7, k=3, stride=1, padding=1, dilation=1, groups=1, h=9, w=11),
        "conv3x3_stride2_dilation2": dict(cin=6, cout=4, k=3, stride=2, padding=2, dilation=2, groups=1, h=13, w=10),
        "conv_groups3": dict(cin=6, cout=9, k=3, stride=1, padding=1, dilation=1, groups=3, h=8, w=7),
        "conv_depthwise_stride2": dict(cin=8, cout=8, k=3, stride=2, padding=1, dilation=1, groups=8, h=11, w=9),
        "conv_depthwise5_dilation2": dict(cin=4, cout=4, k=5, stride=1, padding=4, dilation=2, groups=4, h=10, w=12),
        "conv1x1": dict(cin=16, cout=5, k=1, stride=1, padding=0, dilation=1, groups=1, h=6, w=7),
        "conv1x1_stride2": dict(cin=8, cout=6, k=1, stride=2, padding=0, dilation=1, groups=1, h=9, w=9),
        "conv7x7_stride2": dict(cin=3, cout=4, k=7, stride=2, padding=3, dilation=1, groups=1, h=15, w=17),
        "conv_dead_taps": dict(cin=5, cout=3, k=3, stride=1, padding=8, dilation=8, groups=1, h=5, w=6),
        "conv_no_padding": dict(cin=3, cout=2, k=3, stride=2, padding=0, dilation=1, groups=1, h=8, w=9),
    }
    for name, p in convs.items():
        x = randn(1, p["cin"], p["h"], p["w"])
        weight = randn(p["cout"], p["cin"] // p["groups"], p["k"], p["k"], scale=0.3)
        bias = randn(p["cout"])
        y = F.conv2d(x, weight, bias, p["stride"], p["padding"], p["dilation"], p["groups"])
        case(name, dict(op="conv", **p), {"input": x[0], "weight": weight, "bias": bias}, y)

    deconvs = {
        "deconv_k4_s2": dict(cin=3, cout=4, k=4, stride=2, padding=0, h=5, w=6),
        "deconv_k3_s3_p1": dict(cin=2, cout=3, k=3, stride=3, padding=1, h=4, w=3),
    }
    for name, p in deconvs.items():
        x = randn(1, p["cin"], p["h"], p["w"])
        weight = randn(p["cin"], p["cout"], p["k"], p["k"], scale=0.5)
        bias = randn(p["cout"])
        y = F.conv_transpose2d(x, weight, bias, p["stride"], p["padding"])
        case(name, dict(op="deconv", **p), {"input": x[0], "weight": weight, "bias": bias}, y)

    pools = {
        "maxpool_k3_s2_p1": dict(op="maxpool", k=3, stride=2, padding=1, ceil=False, h=9, w=8),
        "maxpool_k2_s2_ceil": dict(op="maxpool", k=2, stride=2, padding=0, ceil=True, h=7, w=9),
        "maxpool_k3_s2_p1_ceil": dict(op="maxpool", k=3, stride=2, padding=1, ceil=True, h=8, w=10),
        "maxpool_k5_s1_p2": dict(op="maxpool", k=5, stride=1, padding=2, ceil=False, h=6, w=7),
        "avgpool_k3_s2_p1_ceil": dict(op="avgpool", k=3, stride=2, padding=1, ceil=True, h=8, w=10),
        "avgpool_k2_s2_ceil": dict(op="avgpool", k=2, stride=2, padding=0, ceil=True, h=7, w=9),
    }
    for name, p in pools.items():
        x = randn(1, 3, p["h"], p["w"])
        if p["op"] == "maxpool":
            y = F.max_pool2d(x, p["k"], p["stride"], p["padding"], ceil_mode=p["ceil"])
        else:
            y = F.avg_pool2d(x, p["k"], p["stride"], p["padding"], ceil_mode=p["ceil"], count_include_pad=True)
        case(name, p, {"input": x[0]}, y)

    for name, (h, w, oh, ow) in {"adaptive_avgpool_3x4": (7, 10, 3, 4), "adaptive_avgpool_1x1": (5, 6, 1, 1)}.items():
        x = randn(1, 3, h, w)
        case(name, dict(op="adaptive_avgpool", oh=oh, ow=ow), {"input": x[0]}, F.adaptive_avg_pool2d(x, (oh, ow)))

    resizes = {
        "bilinear_up": dict(mode="bilinear", align_corners=False, h=5, w=7, oh=12, ow=17),
        "bilinear_up_align": dict(mode="bilinear", align_corners=True, h=5, w=7, oh=12, ow=17),
        "bilinear_down": dict(mode="bilinear", align_corners=False, h=12, w=17, oh=5, ow=7),
        "bilinear_down_align": dict(mode="bilinear", align_corners=True, h=12, w=17, oh=5, ow=7),
        "bilinear_broadcast": dict(mode="bilinear", align_corners=False, h=1, w=1, oh=4, ow=6),
        "nearest_up": dict(mode="nearest", align_corners=False, h=5, w=7, oh=12, ow=17),
        "nearest_down": dict(mode="nearest", align_corners=False, h=12, w=17, oh=5, ow=7),
    }
    for name, p in resizes.items():
        x = randn(1, 2, p["h"], p["w"])
        kwargs = {"align_corners": p["align_corners"]} if p["mode"] == "bilinear" else {}
        y = F.interpolate(x, size=(p["oh"], p["ow"]), mode=p["mode"], **kwargs)
        case(name, dict(op="resize", **p), {"input": x[0]}, y)
    # scale_factor instead of size: PyTorch then maps with 1/scale, not in/out (5 -> 12 at 2.5).
    x = randn(1, 2, 5, 5)
    y = F.interpolate(x, scale_factor=2.5, mode="bilinear", align_corners=False)
    case("bilinear_scale_factor", dict(op="resize", mode="bilinear", align_corners=False, h=5, w=5,
                                       oh=y.shape[2], ow=y.shape[3], scale=2.5), {"input": x[0]}, y)

    x = randn(1, 6, 4, 5, scale=4)
    for act, fn in {"relu": F.relu, "relu6": F.relu6, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
                    "sigmoid": torch.sigmoid}.items():
        case(f"activation_{act}", dict(op="activation", activation=act), {"input": x[0]}, fn(x))
    x = randn(1, 5, 3, 4, scale=3)
    case("softmax", dict(op="softmax"), {"input": x[0]}, F.softmax(x, dim=1))
    case("argmax", dict(op="argmax"), {"input": x[0]}, x.argmax(dim=1).to(torch.float32))
    return tensors, metadata


def model_fixtures():
    image_path = os.path.join(MODELS, "street_37x53.png")
    street_scene(53, 37, seed=7).save(image_path)
    configs = {
        "deeplabv3": dict(layers=[1, 2, 2, 1], base_width=8, head_channels=16),
        "fcn": dict(layers=[1, 1, 2, 1], base_width=8),
    }
    for seed, (arch, config) in enumerate(configs.items()):
        torch.manual_seed(100 + seed)
        model = torchvision_models.build(arch, output_stride=8, **config)
        randomize_batchnorm(model, torch.Generator().manual_seed(200 + seed))
        state = model.state_dict()
        extra = dict(backbone_layers=config["layers"], backbone_width=config["base_width"],
                     description=f"tiny torchvision-layout {arch} for parity tests (random weights)")
        if arch == "deeplabv3":
            extra.update(head_channels=config["head_channels"], aspp_rates=(12, 24, 36))
        metadata = model_metadata(arch, "resnet", VOC_CLASSES, voc_colors(21), output_stride=8, **extra)
        dtypes = ["f32", "f16"] if arch == "deeplabv3" else ["f32"]
        for dtype in dtypes:
            suffix = "" if dtype == "f32" else f"_{dtype}"
            write_model_file(state, metadata, os.path.join(MODELS, f"tiny_{arch}{suffix}.safetensors"), dtype)
            for stride in ([8, 16, 32] if dtype == "f32" else [16]):
                reference = torchvision_models.build(arch, output_stride=stride, **config)
                reference.load_state_dict(round_trip(state, dtype))
                out = logits(reference.eval(), preprocess(image_path, metadata))
                np.save(os.path.join(MODELS, f"tiny_{arch}{suffix}_os{stride}.npy"), out.astype(np.float32))


def viewer_fixture():
    """A five-class tiny model for the viewer's end-to-end tests, fitted for a few hundred steps to a
    colour-rule labelling of the test picture, so that its mask varies over the image and with the
    output stride. Its top-5 is every class, so the inspector's probabilities must sum to 1."""
    torch.manual_seed(300)
    model = torchvision_models.build("deeplabv3", num_classes=5, output_stride=8, layers=[1, 1, 1, 1], base_width=8,
                                     head_channels=16, aux=False)
    classes = ["sky", "building", "road", "car", "tree"]
    colors = [[70, 130, 180], [128, 64, 0], [128, 64, 128], [64, 0, 128], [0, 128, 0]]
    metadata = model_metadata("deeplabv3", "resnet", classes, colors, output_stride=8, backbone_layers=[1, 1, 1, 1],
                              backbone_width=8, head_channels=16, aspp_rates=(12, 24, 36),
                              description="tiny five-class model for viewer tests, fitted to one picture")
    image_path = os.path.join(MODELS, "street_37x53.png")
    x = preprocess(image_path, metadata)
    pixels = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.int32)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    target = np.full(r.shape, 1)                                   # building
    target[(b > r + 40) & (b > 150)] = 0                          # sky
    target[(abs(r - g) < 12) & (abs(g - b) < 16) & (np.arange(r.shape[0])[:, None] > r.shape[0] * 0.55)] = 2  # road
    target[(r > 120) & (g < 70)] = 3                               # car
    target[:, :3] = 4                                              # a "tree" strip on the left edge
    # A batch of the picture and its mirror image: BatchNorm after global pooling needs two samples.
    target = torch.from_numpy(target)[None]
    x, target = torch.cat([x, x.flip(3)]), torch.cat([target, target.flip(2)])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(300):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x)["out"], target)
        loss.backward()
        optimizer.step()
    model.eval()
    write_model_file(model.state_dict(), metadata, os.path.join(MODELS, "tiny_five_classes.safetensors"), "f16")

    # Ground truth for `segview eval`: the colour-rule labels with a void (255) corner, and the
    # confusion matrix numpy computes from PyTorch's prediction with the same (float16) weights.
    truth = target[0].numpy().astype(np.uint8)
    truth[:4, -6:] = 255
    labels_dir = os.path.join(MODELS, "eval", "labels")
    images_dir = os.path.join(MODELS, "eval", "images")
    os.makedirs(labels_dir, exist_ok=True)
    os.makedirs(images_dir, exist_ok=True)
    Image.fromarray(truth).save(os.path.join(labels_dir, "street_37x53.png"))
    Image.open(image_path).save(os.path.join(images_dir, "street_37x53.png"))
    reference = torchvision_models.build("deeplabv3", num_classes=5, output_stride=8, layers=[1, 1, 1, 1], base_width=8,
                                         head_channels=16, aux=False)
    reference.load_state_dict(round_trip(model.state_dict(), "f16"))
    prediction = logits(reference.eval(), preprocess(image_path, metadata)).argmax(0)
    valid = truth != 255
    matrix = np.bincount(truth[valid].astype(np.int64) * 5 + prediction[valid], minlength=25).reshape(5, 5)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    present = union > 0
    with open(os.path.join(MODELS, "eval", "expected.json"), "w") as f:
        json.dump({"confusion": matrix.tolist(), "pixel_accuracy": float(tp.sum() / matrix.sum()),
                   "mean_iou": float((tp[present] / union[present]).mean())}, f)


def main():
    os.makedirs(ENGINE, exist_ok=True)
    os.makedirs(MODELS, exist_ok=True)
    tensors, metadata = kernel_cases(torch.Generator().manual_seed(0))
    save_file(tensors, os.path.join(ENGINE, "kernels.safetensors"), metadata=metadata)
    model_fixtures()
    viewer_fixture()
    write_png_fixtures(IMAGES)
    write_jpeg_fixtures(os.path.join(IMAGES, "..", "jpeg"))
    make_architecture_fixtures.main()
    print(f"wrote {len(metadata)} kernel cases to {ENGINE} and model fixtures to {MODELS}")


if __name__ == "__main__":
    main()

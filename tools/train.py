#!/usr/bin/env python3
"""Train a segmentation model on CamVid on the CPU, then export it as a segview model file (F16).

  python tools/train.py --arch deeplabv3 --run runs/deeplabv3 --minutes 40 --out samples/models/camvid_deeplabv3.safetensors
  python tools/train.py --arch dfn --options '{"layers": [2,2,2,2], "base_width": 16}' --init-backbone FILE ...
  python tools/train.py --run runs/deeplabv3 --resume --minutes 30 ...   # continue a stopped run
  python tools/train.py --run runs/finetune --init runs/deeplabv3/best.pt --synthetic 60 --epochs 10 --lr 5e-4 ...

Train split for training, val for choosing the checkpoint. Seeds fix initialisation, shuffling and
augmentation (random scale, crop, flip, colour jitter). Poly learning-rate schedule, cross-entropy
weighted by median-frequency class balancing, void (11) ignored. DFN also trains its border
network: every head of both networks is supervised (deep supervision, as in the paper), the border
heads by boundaries derived from the labels with a sigmoid focal loss weighted 0.1. A checkpoint
after every epoch (`RUN/last.pt`, and `RUN/best.pt` by val mIoU), a log (`RUN/log.txt`), a progress
bar on a terminal.

`--arch` is torchvision's deeplabv3/fcn (narrow ResNet flags) or any tools/reference architecture,
whose constructor options go in `--options` as JSON. `--init-backbone` starts the ResNet backbone
from another model file or checkpoint of ours (our substitute for ImageNet pre-training). `--teacher`
adds pixel-wise distillation from a trained model file of ours (a larger or better architecture).
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import camvid
import reference
import synth
from segtools import model_metadata, write_model_file
import torchvision_models
from torch_reference import build_from_file, preprocessing as preprocessing_of, read_model_file

TORCHVISION = ["deeplabv3", "fcn"]


def class_weights(labels, classes, scheme):
    """Per-class loss weights. "median": median frequency balancing (SegNet), weight_c = median(freq) /
    freq_c over the images containing c; "sqrt": the square root of that, which lifts small classes less
    (median balancing makes pole and sign eat building); "none" (and "ohem"): every class weighs 1."""
    if scheme in ("none", "ohem"):
        return None
    pixels = np.zeros(classes)
    present = np.zeros(classes)
    for label in labels:
        counts = np.bincount(label.reshape(-1), minlength=classes + 1)[:classes]
        pixels += counts
        present += (counts > 0) * label.size
    frequency = pixels / np.maximum(present, 1)
    weights = np.median(frequency) / np.maximum(frequency, 1e-12)
    return torch.tensor(np.sqrt(weights) if scheme == "sqrt" else weights, dtype=torch.float32)


def hard_pixel_loss(logits, y, keep=0.25):
    """Online hard-pixel mining: the mean cross-entropy of the hardest quarter of the labelled pixels."""
    losses = F.cross_entropy(logits, y, ignore_index=camvid.VOID, reduction="none")[y != camvid.VOID]
    if losses.numel() == 0:
        return logits.sum() * 0
    return losses.topk(max(1, int(losses.numel() * keep))).values.mean()


def to_input(pixels, preprocessing):
    """An RGB uint8 picture as the network's input, as the model file's metadata will describe it."""
    x = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float()
    if preprocessing["input_channels"] == "BGR":
        x = x.flip(0)
    if preprocessing["input_range"] == "0-1":
        x = x / 255
    mean = torch.tensor(preprocessing["mean"])[:, None, None]
    std = torch.tensor(preprocessing["std"])[:, None, None]
    return (x - mean) / std


def converted(x, source, target):
    """A batch preprocessed as `source` describes, preprocessed as `target` describes instead."""
    def channels(values):
        return torch.tensor(values, dtype=x.dtype)[None, :, None, None]
    pixels = x * channels(source["std"]) + channels(source["mean"])
    if source["input_range"] == "0-1":
        pixels = pixels * 255
    if source["input_channels"] != target["input_channels"]:
        pixels = pixels.flip(1)
    if target["input_range"] == "0-1":
        pixels = pixels / 255
    return (pixels - channels(target["mean"])) / channels(target["std"])


def boundaries(labels):
    """1 where a pixel's 3x3 neighbourhood holds another class, 0 elsewhere, void (-1) near void."""
    padded = F.pad(labels[:, None].float(), [1, 1, 1, 1], mode="replicate")
    low = -F.max_pool2d(-padded, 3, stride=1)[:, 0]
    high = F.max_pool2d(padded, 3, stride=1)[:, 0]
    target = (low != high).float()
    target[high == camvid.VOID] = -1
    return target


def focal_loss(logits, target, gamma=2.0, alpha=0.25):
    """Sigmoid focal loss (Lin et al.) over the pixels whose target is not -1."""
    valid = target >= 0
    logits, target = logits[valid], target[valid]
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * ce).mean()


def distillation_loss(student, teacher, y, temperature):
    """Pixel-wise knowledge distillation: KL divergence from the teacher's softened class distribution to
    the student's over the labelled pixels (void, which includes rotation's corners without picture, is
    left out), scaled by T^2."""
    labelled = (y != camvid.VOID)[:, None]
    target = F.softmax(teacher / temperature, dim=1)
    divergence = target * (torch.log(target.clamp_min(1e-8)) - F.log_softmax(student / temperature, dim=1))
    return (divergence * labelled).sum() / labelled.sum().clamp_min(1) * temperature ** 2


class Teacher:
    """A trained model file of ours whose predictions the student learns to match (--teacher)."""

    def __init__(self, path, student_preprocessing, classes):
        _, metadata = read_model_file(path)
        if int(metadata["num_classes"]) != classes:
            raise SystemExit(f"{path} has {metadata['num_classes']} classes; the student has {classes}")
        self.model, _ = build_from_file(path, int(metadata["output_stride"]))
        self.arch = metadata["architecture"]
        self.student_preprocessing = student_preprocessing
        self.preprocessing = preprocessing_of(metadata)

    def logits(self, x):
        with torch.no_grad():
            return class_logits(self.model, self.arch, converted(x, self.student_preprocessing, self.preprocessing))


def training_loss(model, arch, x, y, weights, hard_pixels=False, teacher=None, distill=0.0, temperature=1.0):
    taught = teacher.logits(x) if teacher else None

    def ce(logits):
        if hard_pixels:
            loss = hard_pixel_loss(logits, y)
        else:
            loss = F.cross_entropy(logits, y, weight=weights, ignore_index=camvid.VOID)
        if taught is None:
            return loss
        return (1 - distill) * loss + distill * distillation_loss(logits, taught, y, temperature)
    if arch in TORCHVISION:
        return ce(model(x)["out"])
    if arch == "dfn":
        smooth, border = model.heads(x, all_outputs=True)
        target = boundaries(y)
        return sum(ce(s) for s in smooth) + 0.1 * sum(focal_loss(b[:, 0], target) for b in border)
    return ce(model(x))


def class_logits(model, arch, x):
    out = model(x)
    return out["out"] if arch in TORCHVISION else out[0] if isinstance(out, tuple) else out


def augment(image, label, crop, rng, preprocessing, scales=(0.5, 1.25), rotate=0.0, blur=0.0):
    """Random scale, rotation (degrees either way, corners void), crop, flip, colour jitter and blur."""
    scale = rng.uniform(*scales)
    h, w = label.shape
    size = (max(crop[0], int(h * scale)), max(crop[1], int(w * scale)))
    x = F.interpolate(to_input(image, preprocessing)[None], size=size, mode="bilinear", align_corners=False)[0]
    y = F.interpolate(torch.from_numpy(np.array(label))[None, None].float(), size=size, mode="nearest")[0, 0].long()
    if rotate:
        x, y = rotated(x, y, math.radians(rng.uniform(-rotate, rotate)))
    top, left = rng.integers(0, size[0] - crop[0] + 1), rng.integers(0, size[1] - crop[1] + 1)
    x, y = x[:, top:top + crop[0], left:left + crop[1]], y[top:top + crop[0], left:left + crop[1]]
    if rng.random() < 0.5:
        x, y = x.flip(2), y.flip(1)
    # Jitter in normalised space: brightness as an offset, contrast as a gain.
    x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.3, 0.3)
    if rng.random() < blur:
        kernel = torch.tensor([1.0, 2.0, 1.0]) / 4
        kernel = (kernel[:, None] * kernel[None, :]).expand(x.shape[0], 1, 3, 3)
        x = F.conv2d(F.pad(x[None], [1, 1, 1, 1], mode="replicate"), kernel, groups=x.shape[0])[0]
    return x, y


def rotated(x, y, angle):
    """The input (bilinear) and labels (nearest) turned by angle radians; uncovered label pixels void."""
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=torch.float32)
    grid = F.affine_grid(theta, [1, 1, *y.shape], align_corners=False)
    x = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    shifted = (y + 1).float()[None, None]  # 0 marks "outside the picture"
    y = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0].long() - 1
    y[y < 0] = camvid.VOID
    return x, y


def confusion(model, arch, images, labels, classes, preprocessing):
    """Confusion matrix over a split at full resolution (void excluded)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for image, label in zip(images, labels):
            prediction = class_logits(model, arch, to_input(image, preprocessing)[None])[0].argmax(0).numpy()
            valid = label < classes
            matrix += np.bincount(label[valid] * classes + prediction[valid], minlength=classes * classes).reshape(classes, classes)
    return matrix


def mean_iou(matrix):
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = tp / np.maximum(union, 1)
    return float(iou.mean()), iou


class Progress:
    """A one-line bar on a terminal; nothing when stderr is not one."""

    def __init__(self, total, label):
        self.total, self.label, self.tty, self.start = total, label, sys.stderr.isatty(), time.time()

    def update(self, done, note=""):
        if not self.tty:
            return
        width = 30
        filled = int(width * done / max(self.total, 1))
        elapsed = time.time() - self.start
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {elapsed:.0f}s {note}   ")
        sys.stderr.flush()

    def close(self):
        if self.tty:
            sys.stderr.write("\n")


class EMA:
    """An exponential moving average of a model's floating-point weights; integer buffers follow the model."""

    def __init__(self, model, decay):
        self.decay = decay
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model):
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if value.is_floating_point():
                    self.weights[name].mul_(self.decay).add_(value.detach(), alpha=1 - self.decay)
                else:
                    self.weights[name].copy_(value)

    def copy_of(self, model):
        averaged = copy.deepcopy(model)
        averaged.load_state_dict(self.weights)
        return averaged


def init_backbone(model, arch, path):
    """Copies the ResNet stages (layer1..layer4, and the stem where shapes agree) of another model of
    ours into this one; returns how many tensors were copied."""
    if path.endswith(".safetensors"):
        source, _ = read_model_file(path)
    else:
        source = torch.load(path, weights_only=False)["model"]
    source = {k[len("backbone."):]: v for k, v in source.items() if k.startswith("backbone.")}
    prefix = "" if arch == "refinenet" else "backbone."
    target = model.state_dict()
    copied = {prefix + k: v for k, v in source.items()
              if prefix + k in target and target[prefix + k].shape == v.shape}
    model.load_state_dict(copied, strict=False)
    return len(copied)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="deeplabv3", choices=TORCHVISION + reference.ARCHITECTURES)
    parser.add_argument("--options", default="{}", help="JSON constructor options of a tools/reference architecture")
    parser.add_argument("--init-backbone", help="model file or checkpoint whose ResNet backbone starts this one")
    parser.add_argument("--backbone-layers", default="2,2,2,2")
    parser.add_argument("--backbone-width", type=int, default=16)
    parser.add_argument("--head-channels", type=int, default=64)
    parser.add_argument("--output-stride", type=int, choices=[8, 16, 32],
                        help="training stride (default: 8 for torchvision models, the reference's otherwise)")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "camvid"))
    parser.add_argument("--crop", default="192x256")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", required=True, help="folder for checkpoints and the log")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init", help="start from this checkpoint's or model file's weights (fine-tuning)")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="mix this many tools/synth.py scenes (seeds 1000, 1001, ...) into the training set")
    parser.add_argument("--class-weights", default="median", choices=["none", "sqrt", "median", "ohem"],
                        help="loss weighting: none, square-root or plain median-frequency balancing, or online "
                             "hard-pixel mining (the hardest quarter of the pixels, unweighted)")
    parser.add_argument("--scales", default="0.5,1.25", help="random rescaling range before the crop")
    parser.add_argument("--rotate", type=float, default=0.0, help="random rotation up to this many degrees")
    parser.add_argument("--blur", type=float, default=0.0, help="probability of a 3x3 blur")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="evaluate and export an exponential moving average of the weights with this decay")
    parser.add_argument("--teacher", help="model file of ours to distil from (pixel-wise KL to its predictions)")
    parser.add_argument("--distill", type=float, default=0.5,
                        help="weight of the distillation loss (the labels' loss weighs 1 - this)")
    parser.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the distillation")
    parser.add_argument("--export", default="final", choices=["final", "best"],
                        help="export the final weights of the schedule (honest) or the best val epoch (fits val)")
    parser.add_argument("--out", help="model file to export to (F16)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.run, exist_ok=True)
    log = open(os.path.join(args.run, "log.txt"), "a")

    def say(text):
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    layers = [int(n) for n in args.backbone_layers.split(",")]
    crop = tuple(int(n) for n in args.crop.split("x"))
    classes = len(camvid.CLASSES)
    options = json.loads(args.options)
    if args.arch in TORCHVISION:
        args.output_stride = args.output_stride or 8
        model = torchvision_models.build(args.arch, num_classes=classes, output_stride=args.output_stride, layers=layers,
                                         base_width=args.backbone_width, head_channels=args.head_channels,
                                         trained_stride=args.output_stride, aux=False)
        preprocessing = reference.IMAGENET_PREPROCESSING
    else:
        args.output_stride = args.output_stride or reference.TRAINED_STRIDE[args.arch]
        model = reference.build(args.arch, args.output_stride, num_classes=classes, **options)
        preprocessing = reference.preprocessing(args.arch)
    if hasattr(model, "zero_residual_branches") and not args.resume and not args.init:
        model.zero_residual_branches()
    if args.init_backbone and not args.resume:
        say(f"backbone from {args.init_backbone}: {init_backbone(model, args.arch, args.init_backbone)} tensors")
    train_images, train_labels = camvid.load_split(args.data, "train")
    for seed in range(1000, 1000 + args.synthetic):  # a minority share of procedural scenes
        picture, labels = synth.scene(480, 360, seed)
        train_images.append(np.asarray(picture))
        train_labels.append(np.asarray(labels))
    if args.init:
        if args.init.endswith(".safetensors"):  # a bundled model, stored in float16
            model.load_state_dict(read_model_file(args.init)[0])
        else:
            model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
    val_images, val_labels = camvid.load_split(args.data, "val")
    weights = class_weights(train_labels, classes, args.class_weights)
    scales = tuple(float(n) for n in args.scales.split(","))
    averaged = EMA(model, args.ema) if args.ema else None
    teacher = Teacher(args.teacher, preprocessing, classes) if args.teacher else None
    if teacher:
        say(f"distilling from {args.teacher} ({teacher.arch}), weight {args.distill}, temperature {args.temperature}")
    steps_per_epoch = len(train_images) // args.batch
    total_steps = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    epoch, best, history = 0, -1.0, []  # history: val mIoU after each epoch
    checkpoint_path = os.path.join(args.run, "last.pt")
    if args.resume and os.path.exists(checkpoint_path):
        state = torch.load(checkpoint_path, weights_only=False)
        model.load_state_dict(state.get("raw", state["model"]))
        optimizer.load_state_dict(state["optimizer"])
        epoch, best, history = state["epoch"], state["best"], state.get("val", [])
        if averaged:
            averaged.weights = state["model"]
        say(f"resumed at epoch {epoch}, best val mIoU {best:.4f}")
    shape = f"layers {layers} width {args.backbone_width} head {args.head_channels}" if args.arch in TORCHVISION else args.options
    say(f"{args.arch} {shape}, output stride {args.output_stride}, "
        f"{sum(p.numel() for p in model.parameters())} parameters, crop {crop}, batch {args.batch}, seed {args.seed}")
    started = time.time()
    while epoch < args.epochs:
        rng = np.random.default_rng(args.seed * 100003 + epoch)  # the same epoch gets the same data after a resume
        order = rng.permutation(len(train_images))
        model.train()
        progress = Progress(steps_per_epoch, f"epoch {epoch + 1}")
        running = 0.0
        for step in range(steps_per_epoch):
            batch = [augment(train_images[i], train_labels[i], crop, rng, preprocessing, scales, args.rotate, args.blur)
                     for i in order[step * args.batch:(step + 1) * args.batch]]
            x, y = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
            lr = args.lr * (1 - (epoch * steps_per_epoch + step) / total_steps) ** 0.9
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = training_loss(model, args.arch, x, y, weights, args.class_weights == "ohem",
                                 teacher, args.distill, args.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if averaged:
                averaged.update(model)
            running += loss.item()
            progress.update(step + 1, f"loss {running / (step + 1):.3f} lr {lr:.2e}")
        progress.close()
        epoch += 1
        evaluated = averaged.copy_of(model) if averaged else model
        miou, iou = mean_iou(confusion(evaluated, args.arch, val_images, val_labels, classes, preprocessing))
        say(f"epoch {epoch}: loss {running / steps_per_epoch:.4f}, val mIoU {miou:.4f}, "
            f"per class {json.dumps([round(float(v), 3) for v in iou])}, {time.time() - started:.0f}s")
        history.append(miou)
        # "model" holds the weights to use (the average when there is one), "raw" the ones training goes on from.
        state = {"model": evaluated.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                 "best": max(best, miou), "args": vars(args), "val": list(history)}
        if averaged:
            state["raw"] = model.state_dict()
        torch.save(state, checkpoint_path)
        if miou > best:
            best = miou
            torch.save(state, os.path.join(args.run, "best.pt"))
        if args.minutes and time.time() - started > args.minutes * 60:
            say(f"stopping after {args.minutes} minutes at epoch {epoch}; continue with --resume")
            break
    last = history[-5:]
    if last:
        say(f"val mIoU, mean of the last {len(last)} epochs: {sum(last) / len(last):.4f} (best epoch {best:.4f})")
    if args.out:
        if args.export == "final" and not last:
            raise SystemExit(f"{args.run} has no val figures of its epochs (a checkpoint from before they were kept)")
        if args.export == "best":
            model.load_state_dict(torch.load(os.path.join(args.run, "best.pt"), weights_only=False)["model"])
            chosen = f"best val epoch, val mIoU {best:.4f}"
        else:
            model = averaged.copy_of(model) if averaged else model
            mean = sum(last) / len(last)
            chosen = f"final epoch {epoch}, val mIoU {last[-1]:.4f}, mean of the last {len(last)} {mean:.4f}"
        description = f"{args.arch} trained on CamVid train by tools/train.py, {chosen}"
        if args.arch in TORCHVISION:
            extra = dict(backbone_layers=layers, backbone_width=args.backbone_width)
            if args.arch == "deeplabv3":
                extra.update(head_channels=args.head_channels, aspp_rates=(12, 24, 36))
            metadata = model_metadata(args.arch, "resnet", camvid.CLASSES, camvid.COLORS, output_stride=args.output_stride,
                                      resize_size=camvid.HEIGHT, description=description, **extra)
        else:
            extra = {"aspp_rates": (6, 12, 18)} if args.arch == "deeplabv3plus" else {}
            # A narrow ResNet given by its stages is "resnet", not the reference's resnet101.
            backbone = options.get("backbone", "resnet" if "layers" in options else reference.DEFAULT_BACKBONE[args.arch])
            metadata = model_metadata(args.arch, backbone,
                                      camvid.CLASSES, camvid.COLORS, output_stride=args.output_stride,
                                      resize_size=camvid.HEIGHT, description=description, **preprocessing, **extra)
        write_model_file(model.state_dict(), metadata, args.out, "f16")
        say(f"exported the {chosen} to {args.out}")


if __name__ == "__main__":
    main()

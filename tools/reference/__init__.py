"""PyTorch definitions of segview's architectures with the reference implementations' tensor names.

Written from ../shared/docs/architectures.md and the papers. Used to make parity fixtures, to train
the bundled models and to export model files; depth and width are parameters so that small models
share the code of the full-size ones.

`build(arch, output_stride, **options)` makes any of them; `options` are the constructor's
(`num_classes`, `backbone`, widths...). Every model's forward takes a normalised NCHW image and
returns logits at input resolution (DFN: a (logits, border logits) pair).
"""
from .deeplabv3plus import DeepLabV3Plus
from .dfn import DFN
from .fcn import FCN
from .refinenet import RefineNet

ARCHITECTURES = ["fcn32s", "fcn16s", "fcn8s", "deeplabv3plus", "refinenet", "dfn"]
DEFAULT_BACKBONE = {"fcn32s": "vgg16", "fcn16s": "vgg16", "fcn8s": "vgg16", "deeplabv3plus": "resnet101",
                    "refinenet": "resnet101", "dfn": "resnet101"}


def output_strides(arch, backbone=None):
    """Strides a model runs at; an FCN file runs as its own variant and every coarser one."""
    if arch.startswith("fcn"):
        return tuple(s for s in (8, 16, 32) if s >= TRAINED_STRIDE[arch])
    if backbone == "xception":
        return (8, 16)
    return (8, 16, 32)


# Input preprocessing each reference expects, as model-file metadata (segtools.model_metadata arguments).
CAFFE_PREPROCESSING = dict(mean=(104.00698793, 116.66876762, 122.67891434), std=(1.0, 1.0, 1.0), input_range="0-255",
                           input_channels="BGR")
IMAGENET_PREPROCESSING = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_range="0-1",
                              input_channels="RGB")
# The output stride the reference trains at (stored in the file; ASPP rates are given for it).
TRAINED_STRIDE = {"fcn32s": 32, "fcn16s": 16, "fcn8s": 8, "deeplabv3plus": 16, "refinenet": 32, "dfn": 32}


def preprocessing(arch):
    return CAFFE_PREPROCESSING if arch.startswith("fcn") else IMAGENET_PREPROCESSING


# The short side each reference evaluates PASCAL VOC at: jfzhang95's DeepLabV3+ resizes it to its
# crop size, 513 (FixScaleCrop); wkentaro's FCN, DrSleep's RefineNet and TorchSeg's DFN run VOC's
# images (at most 500 px a side) as they are, so 500 leaves those untouched.
EVAL_RESIZE_SIZE = {"deeplabv3plus": 513}


def resize_size(arch):
    return EVAL_RESIZE_SIZE.get(arch, 500)


def build(arch, output_stride, **options):
    if arch.startswith("fcn"):
        options.pop("backbone", None)
        return FCN(variant=output_stride, **options)
    if arch == "deeplabv3plus":
        return DeepLabV3Plus(output_stride=output_stride, **options)
    if arch == "refinenet":
        return RefineNet(output_stride=output_stride, **options)
    if arch == "dfn":
        return DFN(output_stride=output_stride, **options)
    raise ValueError(f"unknown architecture {arch}")

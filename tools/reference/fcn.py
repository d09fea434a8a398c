"""FCN-32s / FCN-16s / FCN-8s (Long et al.) on VGG-16, named as the Caffe models and the widely used
PyTorch port (wkentaro/pytorch-fcn) name them: conv1_1 ... conv5_3, fc6, fc7, score_fr,
score_pool4, score_pool3, upscore / upscore2 / upscore16 / upscore_pool4 / upscore8.

Caffe semantics kept: conv1_1 pads by 100, max pools round up (ceil mode), fc6 is a 7x7 conv
without padding, the upsampling layers are bias-free transposed convolutions (bilinear-initialised,
one kernel per class on the diagonal) followed by fixed crops (5 and 9 for the skips; 19, 27, 31 for
the final output of 32s, 16s, 8s). `at_once` is FCN-8s at-once (skips scaled by 0.01 and 1e-4
before scoring). Input: BGR, 0-255, minus the Caffe mean.

`widths` = channels of the five VGG stages and of fc6/fc7 (VGG-16: 64, 128, 256, 512, 512, 4096).
"""
import numpy as np
import torch
from torch import nn

VGG16_WIDTHS = (64, 128, 256, 512, 512, 4096)
CONVS_PER_STAGE = (2, 2, 3, 3, 3)
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
FINAL_CROP = {32: 19, 16: 27, 8: 31}


def bilinear_kernel(channels, size):
    """The diagonal bilinear kernel FCN initialises (and in the Caffe release, freezes) its upsampling with."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = np.zeros((channels, channels, size, size), dtype=np.float32)
    weight[range(channels), range(channels)] = filt
    return torch.from_numpy(weight)


def upsampling(channels, size, stride):
    layer = nn.ConvTranspose2d(channels, channels, size, stride=stride, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, size))
    return layer


class FCN(nn.Module):
    """variant: 32, 16 or 8 (FCN-32s, -16s, -8s)."""

    def __init__(self, num_classes=21, variant=8, widths=VGG16_WIDTHS, at_once=False):
        super().__init__()
        self.variant = variant
        # FCN-8s "at-once" scales the skip features by fixed constants before scoring them.
        self.skip_scales = (0.01, 0.0001) if at_once else (1.0, 1.0)
        inplanes = 3
        for stage, (count, width) in enumerate(zip(CONVS_PER_STAGE, widths[:5])):
            for index in range(count):
                padding = 100 if (stage, index) == (0, 0) else 1
                setattr(self, f"conv{stage + 1}_{index + 1}", nn.Conv2d(inplanes, width, 3, padding=padding))
                inplanes = width
        self.fc6 = nn.Conv2d(inplanes, widths[5], 7)
        self.fc7 = nn.Conv2d(widths[5], widths[5], 1)
        self.score_fr = nn.Conv2d(widths[5], num_classes, 1)
        if variant == 32:
            self.upscore = upsampling(num_classes, 64, 32)
        else:
            self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
            self.upscore2 = upsampling(num_classes, 4, 2)
            if variant == 16:
                self.upscore16 = upsampling(num_classes, 32, 16)
            else:
                self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
                self.upscore_pool4 = upsampling(num_classes, 4, 2)
                self.upscore8 = upsampling(num_classes, 16, 8)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        height, width = x.shape[2:]
        pools = []
        h = x
        for stage, count in enumerate(CONVS_PER_STAGE):
            for index in range(count):
                h = self.relu(getattr(self, f"conv{stage + 1}_{index + 1}")(h))
            h = self.pool(h)
            pools.append(h)
        h = self.relu(self.fc6(h))
        h = self.relu(self.fc7(h))
        h = self.score_fr(h)
        if self.variant == 32:
            h = self.upscore(h)
        else:
            h = self.upscore2(h)
            skip = self.score_pool4(pools[3] * self.skip_scales[0])
            h = h + skip[:, :, 5:5 + h.shape[2], 5:5 + h.shape[3]]
            if self.variant == 16:
                h = self.upscore16(h)
            else:
                h = self.upscore_pool4(h)
                skip = self.score_pool3(pools[2] * self.skip_scales[1])
                h = h + skip[:, :, 9:9 + h.shape[2], 9:9 + h.shape[3]]
                h = self.upscore8(h)
        offset = FINAL_CROP[self.variant]
        return h[:, :, offset:offset + height, offset:offset + width]

"""MobileNetV2 as jfzhang95/pytorch-deeplab-xception builds it for DeepLabV3+ (`features.i.conv.k`).

Kept quirk that changes numbers: each inverted residual zero-pads its *input* by the dilation before
the 1x1 expansion, and the depthwise conv has no padding, so the border of the expanded tensor is
ReLU6(BN(0)) rather than 0. The output-stride logic is the reference's: once the running stride
reaches the target, later strides become dilation, one stage late.

`width_mult` scales channels like the reference (`int(c * width_mult)`; first 32, last 320).
"""
from torch import nn
import torch.nn.functional as F

SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, dilation, expand_ratio):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        self.dilation = dilation
        depthwise = [nn.Conv2d(hidden, hidden, 3, stride, 0, dilation, groups=hidden, bias=False),
                     nn.BatchNorm2d(hidden), nn.ReLU6()]
        project = [nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        expand = [] if expand_ratio == 1 else [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        self.conv = nn.Sequential(*expand, *depthwise, *project)

    def forward(self, x):
        y = self.conv(F.pad(x, [self.dilation] * 4))
        return x + y if self.use_res_connect else y


class MobileNetV2(nn.Module):
    def __init__(self, output_stride=16, width_mult=1.0):
        super().__init__()
        inp = int(32 * width_mult)
        layers = [nn.Sequential(nn.Conv2d(3, inp, 3, 2, 1, bias=False), nn.BatchNorm2d(inp), nn.ReLU6())]
        current_stride, rate = 2, 1
        for t, c, n, s in SETTINGS:
            if current_stride == output_stride:
                stride, dilation = 1, rate
                rate *= s
            else:
                stride, dilation = s, 1
                current_stride *= s
            oup = int(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(inp, oup, stride if i == 0 else 1, dilation, t))
                inp = oup
        self.features = nn.Sequential(*layers)
        self.channels = (int(24 * width_mult), inp)

    def forward(self, x):
        low_level = self.features[:4](x)
        return self.features[4:](low_level), low_level

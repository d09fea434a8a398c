"""Aligned Xception as jfzhang95/pytorch-deeplab-xception builds it for DeepLabV3+ (output stride 16 or 8).

Kept quirks that change numbers: separable convs are depthwise -> BN -> pointwise with no ReLU in
between; each unit of a block is [ReLU, SeparableConv, BN]; a block whose rep starts with a ReLU
applies it to its input *in place*, so the skip branch sees ReLU(x). Here that is written out
explicitly instead of relying on in-place mutation.

`widths` = (stem1, stem2, entry1, entry2, middle, exit, conv3, conv4, conv5); Xception-65:
(32, 64, 128, 256, 728, 1024, 1536, 1536, 2048) with 16 middle blocks.
"""
from torch import nn
import torch.nn.functional as F

XCEPTION65_WIDTHS = (32, 64, 128, 256, 728, 1024, 1536, 1536, 2048)


class SeparableConv2d(nn.Module):
    def __init__(self, inplanes, planes, stride=1, dilation=1):
        super().__init__()
        self.dilation = dilation
        self.conv1 = nn.Conv2d(inplanes, inplanes, 3, stride, 0, dilation, groups=inplanes, bias=False)
        self.bn = nn.BatchNorm2d(inplanes)
        self.pointwise = nn.Conv2d(inplanes, planes, 1, bias=False)

    def forward(self, x):
        x = F.pad(x, [self.dilation] * 4)  # jfzhang95's fixed_padding for a 3x3 kernel
        return self.pointwise(self.bn(self.conv1(x)))


class Block(nn.Module):
    def __init__(self, inplanes, planes, reps, stride=1, dilation=1, start_with_relu=True, grow_first=True,
                 is_last=False):
        super().__init__()
        if planes != inplanes or stride != 1:
            self.skip = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(planes)
        else:
            self.skip = None
        units = []  # (in, out, stride, dilation) of each [ReLU, SeparableConv, BN] unit
        filters = inplanes
        if grow_first:
            units.append((inplanes, planes, 1, dilation))
            filters = planes
        units += [(filters, filters, 1, dilation)] * (reps - 1)
        if not grow_first:
            units.append((inplanes, planes, 1, dilation))
        if stride != 1:
            units.append((planes, planes, 2, 1))
        elif is_last:
            units.append((planes, planes, 1, 1))
        layers = []
        for cin, cout, s, d in units:
            layers += [nn.ReLU(), SeparableConv2d(cin, cout, s, d), nn.BatchNorm2d(cout)]
        self.start_with_relu = start_with_relu
        self.rep = nn.Sequential(*(layers if start_with_relu else layers[1:]))

    def forward(self, x):
        if self.start_with_relu:
            x = F.relu(x)  # the in-place ReLU of rep[0]: the skip sees it too
        skip = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + skip


class AlignedXception(nn.Module):
    def __init__(self, output_stride=16, widths=XCEPTION65_WIDTHS, middle_blocks=16):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError("aligned Xception runs at output stride 8 or 16")
        entry3_stride, middle_dilation, exit_dilations = (2, 1, (1, 2)) if output_stride == 16 else (1, 2, (2, 4))
        s1, s2, e1, e2, mid, ex, c3, c4, c5 = widths
        self.conv1 = nn.Conv2d(3, s1, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(s1)
        self.conv2 = nn.Conv2d(s1, s2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(s2)
        self.block1 = Block(s2, e1, 2, stride=2, start_with_relu=False)
        self.block2 = Block(e1, e2, 2, stride=2, start_with_relu=False)
        self.block3 = Block(e2, mid, 2, stride=entry3_stride, is_last=True)
        self.middle_blocks = middle_blocks
        for index in range(middle_blocks):
            setattr(self, f"block{4 + index}", Block(mid, mid, 3, dilation=middle_dilation))
        self.exit_name = f"block{4 + middle_blocks}"
        setattr(self, self.exit_name, Block(mid, ex, 2, dilation=exit_dilations[0], grow_first=False, is_last=True))
        self.conv3 = SeparableConv2d(ex, c3, dilation=exit_dilations[1])
        self.bn3 = nn.BatchNorm2d(c3)
        self.conv4 = SeparableConv2d(c3, c4, dilation=exit_dilations[1])
        self.bn4 = nn.BatchNorm2d(c4)
        self.conv5 = SeparableConv2d(c4, c5, dilation=exit_dilations[1])
        self.bn5 = nn.BatchNorm2d(c5)
        self.channels = (e1, c5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        low_level = F.relu(self.block1(x))
        x = self.block3(self.block2(low_level))
        for index in range(self.middle_blocks):
            x = getattr(self, f"block{4 + index}")(x)
        x = F.relu(getattr(self, self.exit_name)(x))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.relu(self.bn4(self.conv4(x)))
        x = F.relu(self.bn5(self.conv5(x)))
        return x, low_level

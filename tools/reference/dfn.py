"""DFN (Yu et al., "Learning a Discriminative Feature Network"), named as the first author's
re-implementation (ycszen/TorchSeg, `model/dfn`) names it: ResNet v1c backbone (deep stem), Smooth
Network (`global_context`, `smooth_pre_rrbs`, `cabs`, `smooth_aft_rrbs`, `smooth_heads`) and Border
Network (`border_pre_rrbs`, `border_aft_rrbs`, `border_heads`).

`forward` returns (class logits, border logits), both at input resolution; the reference's inference
output is log_softmax of the same class logits (same argmax), and its border map is the sigmoid of the
last border head, which the reference computes only for its training loss.

The reference needs inputs whose sides are multiples of 32 (it upsamples by fixed factors); here the
input is zero-padded at the bottom and right to the next multiple of 32 (zero in normalised space, as
the reference's evaluation pads) and the outputs cropped back, and every upsampling goes to the size
of the map it joins, which equals the reference's x2 steps on such inputs. Output stride 16 or 8
dilates the backbone's last stages (an extension; the release runs at 32).

`smooth_channels` (512 in the reference) and `border_channels` (21) are the inner widths.
"""
import torch
from torch import nn
import torch.nn.functional as F

from .resnet import STANDARD_LAYERS, ResNet


class ConvBnRelu(nn.Module):
    def __init__(self, inplanes, planes, kernel):
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class RefineResidual(nn.Module):
    """RRB: 1x1 conv to `planes`, then x + conv3x3(ConvBnRelu3x3(x)), optionally ReLU'd."""

    def __init__(self, inplanes, planes, has_relu):
        super().__init__()
        self.conv_1x1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.cbr = ConvBnRelu(planes, planes, 3)
        self.conv_refine = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.has_relu = has_relu

    def forward(self, x):
        x = self.conv_1x1(x)
        x = self.conv_refine(self.cbr(x)) + x
        return F.relu(x) if self.has_relu else x


class SELayer(nn.Module):
    def __init__(self, inplanes, planes):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(inplanes, planes), nn.ReLU(), nn.Linear(planes, planes), nn.Sigmoid())

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class ChannelAttention(nn.Module):
    """CAB: weights from concat(low, high) scale the low-stage features, then the high stage is added."""

    def __init__(self, inplanes, planes):
        super().__init__()
        self.channel_attention = SELayer(inplanes, planes)

    def forward(self, low, high):
        return low * self.channel_attention(torch.cat([low, high], dim=1)) + high


class DFNHead(nn.Module):
    def __init__(self, inplanes, planes):
        super().__init__()
        self.rrb = RefineResidual(inplanes, planes * 9, has_relu=False)
        self.conv = nn.Conv2d(planes * 9, planes, 1)

    def forward(self, x, size):
        return F.interpolate(self.conv(self.rrb(x)), size=size, mode="bilinear", align_corners=True)


class DFN(nn.Module):
    def __init__(self, num_classes=21, output_stride=32, layers=None, base_width=64, smooth_channels=512,
                 border_channels=21, backbone="resnet101"):
        super().__init__()
        self.backbone = ResNet(layers or STANDARD_LAYERS[backbone], base_width, output_stride, deep_stem=True)
        stages = self.backbone.channels[::-1]
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBnRelu(stages[0], smooth_channels, 1))
        self.smooth_pre_rrbs = nn.ModuleList(RefineResidual(c, smooth_channels, True) for c in stages)
        self.cabs = nn.ModuleList(ChannelAttention(smooth_channels * 2, smooth_channels) for _ in stages)
        self.smooth_aft_rrbs = nn.ModuleList(RefineResidual(smooth_channels, smooth_channels, True) for _ in stages)
        self.smooth_heads = nn.ModuleList(DFNHead(smooth_channels, num_classes) for _ in stages)
        self.border_pre_rrbs = nn.ModuleList(RefineResidual(c, border_channels, True) for c in stages[::-1])
        self.border_aft_rrbs = nn.ModuleList(RefineResidual(border_channels, border_channels, True) for _ in stages)
        self.border_heads = nn.ModuleList(DFNHead(border_channels, 1) for _ in stages)

    def heads(self, image, all_outputs=False):
        """Smooth and border head outputs at the (padded) input size; the last of each is the full one."""
        size = image.shape[2:]
        blocks = self.backbone(image)[::-1]
        last = self.global_context(blocks[0]).expand(-1, -1, *blocks[0].shape[2:])
        smooth = []
        for i, fm in enumerate(blocks):
            fm = self.smooth_aft_rrbs[i](self.cabs[i](self.smooth_pre_rrbs[i](fm), last))
            if all_outputs or i == 3:
                smooth.append(self.smooth_heads[i](fm, size))
            if i < 3:
                last = F.interpolate(fm, size=blocks[i + 1].shape[2:], mode="bilinear", align_corners=True)
        blocks = blocks[::-1]
        border, last = [], None
        for i, fm in enumerate(blocks):
            fm = self.border_pre_rrbs[i](fm)
            if last is None:
                last = fm
            else:
                last = self.border_aft_rrbs[i](last + F.interpolate(fm, size=last.shape[2:], mode="bilinear",
                                                                        align_corners=True))
            if all_outputs or i == 3:
                border.append(self.border_heads[i](last, size))
        return smooth, border

    def forward(self, image):
        height, width = image.shape[2:]
        padded = F.pad(image, [0, -width % 32, 0, -height % 32])
        smooth, border = self.heads(padded)
        return smooth[-1][:, :, :height, :width], border[-1][:, :, :height, :width]

"""DeepLabV3+ as jfzhang95/pytorch-deeplab-xception builds it: backbone -> ASPP (plain convs, rates
6/12/18 at OS 16, scaled with the output stride) -> decoder (48-channel low-level projection, two
3x3 convs at stride 4) -> bilinear resize to the input, align_corners=True throughout.

`head_channels` is the ASPP/decoder width (256 in the reference) and `low_level_channels` the
decoder's projection (48); both parameters only so that small models share this code.
"""
import torch
from torch import nn
import torch.nn.functional as F

from .mobilenetv2 import MobileNetV2
from .resnet import STANDARD_LAYERS, ResNet
from .xception import XCEPTION65_WIDTHS, AlignedXception


class ASPPModule(nn.Module):
    def __init__(self, inplanes, planes, kernel, dilation):
        super().__init__()
        padding = 0 if kernel == 1 else dilation
        self.atrous_conv = nn.Conv2d(inplanes, planes, kernel, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x):
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    def __init__(self, inplanes, planes, rates):
        super().__init__()
        self.aspp1 = ASPPModule(inplanes, planes, 1, 1)
        for index, rate in enumerate(rates):
            setattr(self, f"aspp{index + 2}", ASPPModule(inplanes, planes, 3, rate))
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(inplanes, planes, 1, bias=False),
                                             nn.BatchNorm2d(planes), nn.ReLU())
        self.conv1 = nn.Conv2d(planes * 5, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        branches = [getattr(self, f"aspp{i}")(x) for i in range(1, 5)]
        pooled = F.interpolate(self.global_avg_pool(x), size=x.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat(branches + [pooled], dim=1)
        return self.dropout(F.relu(self.bn1(self.conv1(x))))


class Decoder(nn.Module):
    def __init__(self, low_level_inplanes, planes, low_level_planes, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(low_level_inplanes, low_level_planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(low_level_planes)
        self.last_conv = nn.Sequential(
            nn.Conv2d(planes + low_level_planes, planes, 3, padding=1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
            nn.Dropout(0.5),
            nn.Conv2d(planes, planes, 3, padding=1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv2d(planes, num_classes, 1))

    def forward(self, x, low_level):
        low_level = F.relu(self.bn1(self.conv1(low_level)))
        x = F.interpolate(x, size=low_level.shape[2:], mode="bilinear", align_corners=True)
        return self.last_conv(torch.cat([x, low_level], dim=1))


class ResNetBackbone(ResNet):
    """jfzhang95's ResNet: multi-grid dilation, returns (layer4, layer1)."""

    def __init__(self, output_stride, layers, base_width):
        super().__init__(layers, base_width, output_stride, schedule="multigrid")
        self.channels = (self.channels[0], self.channels[3])

    def forward(self, x):
        features = super().forward(x)
        return features[3], features[0]


def make_backbone(name, output_stride, layers=None, base_width=64, widths=None, middle_blocks=16, width_mult=1.0):
    if name.startswith("resnet"):
        return ResNetBackbone(output_stride, layers or STANDARD_LAYERS[name], base_width)
    if name == "xception":
        return AlignedXception(output_stride, widths or XCEPTION65_WIDTHS, middle_blocks)
    if name == "mobilenetv2":
        return MobileNetV2(output_stride, width_mult)
    raise ValueError(f"DeepLabV3+ has no backbone {name}")


class DeepLabV3Plus(nn.Module):
    def __init__(self, backbone="resnet101", num_classes=21, output_stride=16, head_channels=256,
                 low_level_channels=48, aspp_rates=(6, 12, 18), trained_stride=16, **backbone_options):
        super().__init__()
        self.backbone = make_backbone(backbone, output_stride, **backbone_options)
        low_channels, high_channels = self.backbone.channels
        rates = [r * trained_stride // output_stride for r in aspp_rates]
        self.aspp = ASPP(high_channels, head_channels, rates)
        self.decoder = Decoder(low_channels, head_channels, low_level_channels, num_classes)

    def forward(self, image):
        x, low_level = self.backbone(image)
        x = self.decoder(self.aspp(x), low_level)
        return F.interpolate(x, size=image.shape[2:], mode="bilinear", align_corners=True)

"""RefineNet (Lin et al.), 4-cascade on ResNet, named as DrSleep/refinenet-pytorch names its port of
the released VOC model (`rf101`): per path `p_ims1d2_outl{k}_dimred` (3x3, no bias), two adaptive
RCUs `adapt_stage{k}_b`, the multi-resolution fusion conv `adapt_stage{k}_b2_joint_varout_dimred` /
`mflow_conv_g{k-1}_b3_joint_varout_dimred`, chained residual pooling `mflow_conv_g{k}_pool`
(`crp_stages` blocks of 5x5 max-pool -> 3x3 conv, default 4 as released), three output RCUs
`mflow_conv_g{k}_b`, and `clf_conv` (3x3, bias) at 1/4 resolution.

RCU = x + conv2(relu(conv1(relu(x)))), first conv with bias, second without; no BatchNorm outside the
backbone. Fusion upsampling is bilinear with align_corners=True. The reference returns logits at 1/4
of the input; `forward` also resizes them to the input (align_corners=True), as segview does.

`channels` = (RefineNet-4 width, width of the other blocks): (512, 256) in the release. The backbone
is torchvision-style ResNet, its keys without prefix; output stride 16 or 8 dilates its last stages (an extension; the
release runs at 32, where fusion upsamples by 2 at every step).
"""
from torch import nn
import torch.nn.functional as F

from .resnet import STANDARD_LAYERS, ResNet


def conv3x3(inplanes, planes, bias=False):
    return nn.Conv2d(inplanes, planes, 3, padding=1, bias=bias)


class RCUBlock(nn.Module):
    """`count` residual conv units; keys `{i}_conv` (bias) and `{i}_conv_relu_varout_dimred`."""

    def __init__(self, inplanes, planes, count):
        super().__init__()
        self.count = count
        for i in range(count):
            setattr(self, f"{i + 1}_conv", conv3x3(inplanes if i == 0 else planes, planes, bias=True))
            setattr(self, f"{i + 1}_conv_relu_varout_dimred", conv3x3(planes, planes))

    def forward(self, x):
        for i in range(self.count):
            y = getattr(self, f"{i + 1}_conv")(F.relu(x))
            x = getattr(self, f"{i + 1}_conv_relu_varout_dimred")(F.relu(y)) + x
        return x


class CRPBlock(nn.Module):
    """Chained residual pooling: each stage pools (5x5, stride 1) and convolves the previous stage."""

    def __init__(self, planes, stages):
        super().__init__()
        self.stages = stages
        for i in range(stages):
            setattr(self, f"{i + 1}_outvar_dimred", conv3x3(planes, planes))

    def forward(self, x):
        top = x
        for i in range(self.stages):
            top = getattr(self, f"{i + 1}_outvar_dimred")(F.max_pool2d(top, 5, stride=1, padding=2))
            x = top + x
        return x


class RefineNet(ResNet):
    """The backbone's layers sit at the top level of the state_dict (`conv1`, `layer1`...), as in the port."""

    def __init__(self, num_classes=21, output_stride=32, layers=None, base_width=64, channels=(512, 256),
                 crp_stages=4, backbone="resnet101"):
        super().__init__(layers or STANDARD_LAYERS[backbone], base_width, output_stride)
        wide, narrow = channels
        stage_channels = self.channels
        self.p_ims1d2_outl1_dimred = conv3x3(stage_channels[3], wide)
        self.adapt_stage1_b = nn.Sequential(RCUBlock(wide, wide, 2))
        self.mflow_conv_g1_pool = nn.Sequential(CRPBlock(wide, crp_stages))
        self.mflow_conv_g1_b = nn.Sequential(RCUBlock(wide, wide, 3))
        self.mflow_conv_g1_b3_joint_varout_dimred = conv3x3(wide, narrow)
        for k in (2, 3, 4):
            setattr(self, f"p_ims1d2_outl{k}_dimred", conv3x3(stage_channels[4 - k], narrow))
            setattr(self, f"adapt_stage{k}_b", nn.Sequential(RCUBlock(narrow, narrow, 2)))
            setattr(self, f"adapt_stage{k}_b2_joint_varout_dimred", conv3x3(narrow, narrow))
            setattr(self, f"mflow_conv_g{k}_pool", nn.Sequential(CRPBlock(narrow, crp_stages)))
            setattr(self, f"mflow_conv_g{k}_b", nn.Sequential(RCUBlock(narrow, narrow, 3)))
            if k < 4:
                setattr(self, f"mflow_conv_g{k}_b3_joint_varout_dimred", conv3x3(narrow, narrow))
        self.clf_conv = nn.Conv2d(narrow, num_classes, 3, padding=1, bias=True)

    def zero_residual_branches(self):
        """Training from scratch: the last conv of every RCU and every pooling-chain conv start at
        zero, so each block starts as the identity. Without BatchNorm in the refinement path, random
        residual branches multiply the activations block after block and training stalls."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d) and (name.endswith("_conv_relu_varout_dimred") or name.endswith("_outvar_dimred")):
                nn.init.zeros_(module.weight)

    def quarter_logits(self, image):
        l1, l2, l3, l4 = super().forward(image)
        x = self.p_ims1d2_outl1_dimred(l4)
        x = F.relu(self.adapt_stage1_b(x))
        x = self.mflow_conv_g1_b(self.mflow_conv_g1_pool(x))
        x = self.mflow_conv_g1_b3_joint_varout_dimred(x)
        for k, skip in zip((2, 3, 4), (l3, l2, l1)):
            x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=True)
            y = getattr(self, f"p_ims1d2_outl{k}_dimred")(skip)
            y = getattr(self, f"adapt_stage{k}_b")(y)
            y = getattr(self, f"adapt_stage{k}_b2_joint_varout_dimred")(y)
            x = F.relu(y + x)
            x = getattr(self, f"mflow_conv_g{k}_b")(getattr(self, f"mflow_conv_g{k}_pool")(x))
            if k < 4:
                x = getattr(self, f"mflow_conv_g{k}_b3_joint_varout_dimred")(x)
        return self.clf_conv(x)

    def forward(self, image):
        return F.interpolate(self.quarter_logits(image), size=image.shape[2:], mode="bilinear", align_corners=True)

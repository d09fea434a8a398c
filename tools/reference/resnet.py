"""ResNet ("v1.5": stride on the 3x3 conv) returning the four stage outputs, with the layouts the
reference implementations use:

- `schedule="torchvision"`: torchvision's replace_stride_with_dilation (the first block of a dilated
  stage keeps the previous dilation); DrSleep's RefineNet port and TorchSeg's DFN use the plain
  (OS 32) case of it.
- `schedule="multigrid"`: jfzhang95's DeepLabV3+ ResNet (every block of a dilated stage uses the
  stage's dilation; the last stage's blocks use multi-grid (1, 2, 4) times its base rate).
- `deep_stem=True`: TorchSeg's "v1c" stem (three 3x3 convs, `conv1.{0,1,3,4,6}` then `bn1`).

Depth (`layers`) and width (`base_width`) are parameters, so that small fixture and bundled models
share the code of the full-size ones; names are the reference state_dict names.
"""
import torch
from torch import nn

STANDARD_LAYERS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, width, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


def stage_plan(layers, output_stride, schedule):
    """(stride, dilation) of every block of the four stages."""
    if schedule == "torchvision":
        dilate = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}[output_stride]
        plan, dilation = [], 1
        for index, count in enumerate(layers):
            stride, previous = (1 if index == 0 else 2), dilation
            if index > 0 and dilate[index - 1]:
                dilation *= stride
                stride = 1
            plan.append([(stride, previous)] + [(1, dilation)] * (count - 1))
        return plan
    if schedule == "multigrid":
        strides, dilations = {8: ([1, 2, 1, 1], [1, 1, 2, 4]), 16: ([1, 2, 2, 1], [1, 1, 1, 2]),
                              32: ([1, 2, 2, 2], [1, 1, 1, 1])}[output_stride]
        plan = []
        for index, count in enumerate(layers):
            if index == 3:
                grid = [1, 2, 4] + [4] * max(0, count - 3)
                plan.append([(strides[3] if b == 0 else 1, grid[b] * dilations[3]) for b in range(count)])
            else:
                plan.append([(strides[index] if b == 0 else 1, dilations[index]) for b in range(count)])
        return plan
    raise ValueError(schedule)


class ResNet(nn.Module):
    def __init__(self, layers=(3, 4, 23, 3), base_width=64, output_stride=32, schedule="torchvision", deep_stem=False):
        super().__init__()
        if deep_stem:
            stem = base_width
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                nn.Conv2d(stem, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                nn.Conv2d(stem, stem * 2, 3, padding=1, bias=False))
            inplanes = stem * 2
        else:
            self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
            inplanes = base_width
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.channels = []
        for index, steps in enumerate(stage_plan(layers, output_stride, schedule)):
            width = base_width << index
            blocks = []
            for b, (stride, dilation) in enumerate(steps):
                downsample = None
                if b == 0 and (stride != 1 or inplanes != width * 4):
                    downsample = nn.Sequential(nn.Conv2d(inplanes, width * 4, 1, stride=stride, bias=False),
                                               nn.BatchNorm2d(width * 4))
                blocks.append(Bottleneck(inplanes, width, stride, dilation, downsample))
                inplanes = width * 4
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.channels.append(inplanes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for index in range(4):
            x = getattr(self, f"layer{index + 1}")(x)
            features.append(x)
        return features

"""torchvision's segmentation models, at any output stride and width, built from torchvision's own
classes so that every parameter name is the one torchvision's pretrained weights use."""
import torch

from segtools import import_torchvision

tv = import_torchvision()
from torchvision.models import resnet as tv_resnet  # noqa: E402
from torchvision.models.segmentation import deeplabv3 as tv_deeplab  # noqa: E402
from torchvision.models.segmentation import fcn as tv_fcn  # noqa: E402
from torchvision.models._utils import IntermediateLayerGetter  # noqa: E402

STANDARD_LAYERS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3]}
DILATION_FOR_STRIDE = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}


class NarrowResNet(tv_resnet.ResNet):
    """torchvision's ResNet with a base width other than 64 (for small test and bundled models).
    Stages are built with torchvision's own _make_layer and Bottleneck, so names are unchanged."""

    def __init__(self, layers, base_width, replace_stride_with_dilation):
        super().__init__(tv_resnet.Bottleneck, layers, replace_stride_with_dilation=replace_stride_with_dilation)
        self.inplanes, self.dilation = base_width, 1
        self.conv1 = torch.nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(base_width)
        self.layer1 = self._make_layer(tv_resnet.Bottleneck, base_width, layers[0])
        for index, name in enumerate(["layer2", "layer3", "layer4"]):
            setattr(self, name, self._make_layer(tv_resnet.Bottleneck, base_width << (index + 1), layers[index + 1],
                                                 stride=2, dilate=replace_stride_with_dilation[index]))


def build(arch, num_classes=21, output_stride=8, backbone="resnet50", layers=None, base_width=64,
          head_channels=256, aspp_rates=(12, 24, 36), trained_stride=8, aux=True):
    """arch: 'deeplabv3' or 'fcn'. ASPP rates are given at `trained_stride` and scaled to `output_stride`."""
    layers = layers or STANDARD_LAYERS[backbone]
    resnet = NarrowResNet(layers, base_width, DILATION_FOR_STRIDE[output_stride])
    returns = {"layer4": "out", "layer3": "aux"} if aux else {"layer4": "out"}
    body = IntermediateLayerGetter(resnet, return_layers=returns)
    out_channels, aux_channels = base_width * 8 * 4, base_width * 4 * 4
    aux_head = tv_fcn.FCNHead(aux_channels, num_classes) if aux else None
    if arch == "deeplabv3":
        rates = [r * trained_stride // output_stride for r in aspp_rates]
        # DeepLabHead with a configurable width (torchvision's fixes it at 256); same layout and names.
        head = torch.nn.Sequential(
            tv_deeplab.ASPP(out_channels, rates, out_channels=head_channels),
            torch.nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(head_channels), torch.nn.ReLU(), torch.nn.Conv2d(head_channels, num_classes, 1))
        return tv_deeplab.DeepLabV3(body, head, aux_head)
    if arch == "fcn":
        return tv_fcn.FCN(body, tv_fcn.FCNHead(out_channels, num_classes), aux_head)
    raise ValueError(f"unknown architecture {arch}")

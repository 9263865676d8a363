"""ResNet-18 regressor trained from scratch (paper 1).

torchvision's ResNet-18 with the input convolution rebuilt for ``in_channels`` (same 7 x 7, stride 2,
padding 3, no bias) and the 1000-class layer replaced by ``Linear(512, out_features)``. With 2 input
channels and 1 output it has 11,173,889 parameters, the count paper 1 states.

Reference:
    Scaling laws in deep regression (``scaling-laws-deep-regression.txt``), Methods, "Residual network";
    K. He et al., "Deep residual learning for image recognition", CVPR 2016.
"""

from __future__ import annotations

import torchvision
from torch import nn

from scalinglab.models._common import ImageRegressor, check_positive_int
from scalinglab.models._registry import register_model


@register_model()
def resnet18(*, in_channels: int = 2, out_features: int = 1) -> ImageRegressor:
    """torchvision ResNet-18, randomly initialized, for regression.

    input_shape: ``[B, in_channels, H, W]`` (paper 1: ``[B, 2, 100, 100]``); any ``H, W >= 1`` works
    thanks to the adaptive average pool (batch norm in train mode needs more than one value per channel).
    Output ``[B, out_features]``.

    Args:
        in_channels: input channels (paper 1: 2, the top and bottom layer images).
        out_features: regressed values (paper 1: 1).

    Reference:
        Paper 1 (scaling-laws-deep-regression), Methods: 11,173,889 parameters for 2 channels, 1 output.
    """
    in_channels = check_positive_int("resnet18", "in_channels", in_channels)
    out_features = check_positive_int("resnet18", "out_features", out_features)
    net = torchvision.models.resnet18(weights=None, num_classes=out_features)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        # torchvision's own initialization for ResNet convolutions.
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    return ImageRegressor(net, "resnet18", in_channels, out_features)

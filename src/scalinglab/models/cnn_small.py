"""Small CNN for patch regression (paper 4's Model0-6, "mod").

Paper 4 states only the outline: seven convolution layers, batch normalization and ReLU, at most 36
channels, about 16,000 parameters, two outputs (D, J), 64 x 64 input patches; the exact layout is in the
authors' earlier work (Mamada et al., JPSJ 90, 014705 (2021)), which is not in our papers. We rebuild it
within those constraints: seven ``Conv3x3 -> BatchNorm -> ReLU`` stages with channels
(4, 8, 8, 16, 16, 24, 36), stride 2 in stages 2, 4 and 6 (64 -> 8 pixels), global average pooling and a
linear layer. With one input channel and two outputs: 15,886 parameters.

``padding`` (default 1, "same" convolutions) sets the zero padding of every convolution. ``padding=0`` gives the
unpadded ("valid") variant with the same layers and parameter count: a 64 x 64 patch then leaves a 3 x 3 final
feature map, and the network's sliding-window map (paper 4 Algorithm 1) is computed exactly by one fully
convolutional pass (``scalinglab.analysis.param_map.dense_map``), because no window ever sees padded zeros.

Reference:
    Detection of non-uniformity in parameters for magnetic domain pattern generation
    (``domain-pattern-nonuniform-parameters.txt``), Sect. II C 1 and Table I.
"""

from __future__ import annotations

import torch
from torch import nn

from scalinglab.models._common import check_image, check_int_tuple, check_positive_int
from scalinglab.models._registry import register_model


def cnn_small_param_count(in_channels: int, channels: tuple[int, ...], out_features: int) -> int:
    """Closed-form count: per stage 9 c_in c_out (conv, no bias) + 2 c_out (BN), plus the linear head."""
    total, c_in = 0, in_channels
    for c_out in channels:
        total += 9 * c_in * c_out + 2 * c_out
        c_in = c_out
    return total + c_in * out_features + out_features


class CNNSmall(nn.Module):
    """Seven conv-BN-ReLU stages, global average pool, linear head.

    Attributes:
        input_shape: ``(in_channels, None, None)`` (paper 4: 64 x 64 patches).
        out_features: outputs per sample.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], strides: tuple[int, ...], out_features: int,
                 padding: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.input_shape = (in_channels, None, None)
        self.out_features = out_features
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out, stride in zip(channels, strides):
            # No conv bias: the following batch norm's shift makes it redundant.
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=padding, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, out_features)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` -> ``[B, out_features]``."""
        x = check_image("cnn_small", x, self.input_shape)
        return self.head(self.features(x).mean(dim=(2, 3)))  # (B, C_last) after global average pooling


@register_model()
def cnn_small(
    *,
    in_channels: int = 1,
    out_features: int = 2,
    channels: tuple[int, ...] = (4, 8, 8, 16, 16, 24, 36),
    strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2, 1),
    padding: int = 1,
) -> CNNSmall:
    """Paper 4's small CNN (Model0-6), reconstructed from its stated constraints.

    input_shape: ``[B, in_channels, H, W]`` (paper 4: ``[B, 1, 64, 64]`` binarized patches);
    output ``[B, out_features]`` (paper 4: D and J).

    Args:
        in_channels: input channels.
        out_features: regressed values.
        channels: output channels of the convolution stages (paper: 7 stages, at most 36 channels).
        strides: stride of each stage (same length as ``channels``).
        padding: zero padding of every 3 x 3 convolution: 1 keeps the spatial size at stride 1 (default);
            0 is the unpadded variant whose dense parameter map is exact (same parameter count). With
            ``padding=0`` the input must be large enough to leave a non-empty final feature map (64 x 64
            patches leave 3 x 3 with the default strides).

    Reference:
        Paper 4 (domain-pattern-nonuniform-parameters), Sect. II C 1, Table I (about 16,000 parameters).
    """
    in_channels = check_positive_int("cnn_small", "in_channels", in_channels)
    out_features = check_positive_int("cnn_small", "out_features", out_features)
    chans = check_int_tuple("cnn_small", "channels", channels)
    strd = check_int_tuple("cnn_small", "strides", strides, length=len(chans))
    padding = check_positive_int("cnn_small", "padding", padding, minimum=0)
    return CNNSmall(in_channels, chans, strd, out_features, padding)

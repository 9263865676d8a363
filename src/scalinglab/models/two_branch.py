"""Two-branch fully connected regression network (paper 2, Appendix B, Fig. 12).

Each layer image (top, bottom) is flattened and reduced by its own two hidden layers to 512 features;
the two 512-vectors are concatenated (1024) and passed through two more hidden layers to 512 features and
a linear output. GELU after every hidden layer.

Reference:
    Twisted magnets regression and generation (``twisted-magnets-regression-and-generation.txt``),
    Sect. "Regression model" and Appendix B. The widths of h1_1, h1_2 and h3 are not stated in the text;
    our defaults (1024 and 512) give 22,319,617 parameters for 100 x 100 images, close to the
    "approximately 2.1e7" that paper 1 (Results, Ref. 28) quotes for this network.
"""

from __future__ import annotations

import torch
from torch import nn

from scalinglab.models._common import (
    ACTIVATIONS,
    check_image_size,
    check_int_tuple,
    check_positive_int,
    check_tensor,
    make_activation,
    shape_str,
)
from scalinglab.models._registry import register_model


def _mlp(widths: tuple[int, ...], fan_in: int, activation: str) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(fan_in, w), make_activation(activation, "two_branch_fcn")]
        fan_in = w
    return nn.Sequential(*layers), fan_in


class TwoBranchFCN(nn.Module):
    """Two image branches -> concatenation -> trunk -> linear output.

    Attributes:
        input_shape: ``(2, H, W)``; a flattened ``[B, 2 H W]`` input is accepted too (first half = top).
        out_features: outputs per sample.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        branch_widths: tuple[int, ...],
        trunk_widths: tuple[int, ...],
        activation: str,
        out_features: int,
    ):
        super().__init__()
        self.image_size = image_size
        self.input_shape = (2, *image_size)
        self.out_features = out_features
        pixels = image_size[0] * image_size[1]
        self.branch_top, branch_out = _mlp(branch_widths, pixels, activation)
        self.branch_bottom, _ = _mlp(branch_widths, pixels, activation)
        self.trunk, trunk_out = _mlp(trunk_widths, 2 * branch_out, activation)
        self.head = nn.Linear(trunk_out, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, H, W]`` (or ``[B, 2 H W]``) -> ``[B, out_features]``."""
        x = check_tensor("two_branch_fcn", x)
        h, w = self.image_size
        if not (tuple(x.shape[1:]) == (2, h, w) or (x.ndim == 2 and x.shape[1] == 2 * h * w)):
            raise ValueError(
                f"two_branch_fcn expects input [B, 2, {h}, {w}] (or [B, {2 * h * w}]), got {shape_str(x.shape)}"
            )
        flat = x.reshape(x.shape[0], 2, h * w)
        features = torch.cat([self.branch_top(flat[:, 0]), self.branch_bottom(flat[:, 1])], dim=1)  # (B, 2 w2)
        return self.head(self.trunk(features))


@register_model()
def two_branch_fcn(
    *,
    image_size: int | tuple[int, int] = (100, 100),
    branch_widths: tuple[int, ...] = (1024, 512),
    trunk_widths: tuple[int, ...] = (512, 512),
    activation: str = "gelu",
    out_features: int = 1,
) -> TwoBranchFCN:
    """Two-branch FCN of paper 2 (one network per regressed parameter).

    input_shape: ``[B, 2, H, W]`` (channel 0 = top layer, 1 = bottom layer) or the flattened ``[B, 2 H W]``;
    output ``[B, out_features]``.

    Args:
        image_size: ``(H, W)`` of each layer image (paper 2: the 100 x 100 first quadrant of 200 x 200).
        branch_widths: hidden widths of each branch (h1, h2); the last one is 512 in the paper.
        trunk_widths: hidden widths after concatenation (h3, h4); the last one is 512 in the paper.
        activation: gelu (paper), relu, elu, prelu or swish.
        out_features: regressed values (paper: 1).

    Reference:
        Paper 2 (twisted-magnets-regression-and-generation), Appendix B, Fig. 12.
    """
    size = check_image_size("two_branch_fcn", "image_size", image_size)
    branch = check_int_tuple("two_branch_fcn", "branch_widths", branch_widths)
    trunk = check_int_tuple("two_branch_fcn", "trunk_widths", trunk_widths)
    out_features = check_positive_int("two_branch_fcn", "out_features", out_features)
    if not branch or not trunk:
        raise ValueError("two_branch_fcn: branch_widths and trunk_widths need at least one layer each")
    if activation not in ACTIVATIONS:
        raise ValueError(f"two_branch_fcn: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    return TwoBranchFCN(size, branch, trunk, activation, out_features)

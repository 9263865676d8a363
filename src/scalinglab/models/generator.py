"""Fully connected generator: Hamiltonian parameters -> domain image pair (paper 2, Appendix B, Fig. 13).

Three parameters (theta, J, D) pass through two GELU hidden layers and a linear output layer of
2 x 197 x 197 = 77,618 values, reshaped into the top and bottom images. Trained with MAE in paper 2.

Reference:
    Twisted magnets regression and generation (``twisted-magnets-regression-and-generation.txt``),
    Sect. "Generative model" and Appendix B. The two hidden widths are not stated in the text, so they
    are configurable; the defaults (256, 512) are our choice.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalinglab.models._common import (
    ACTIVATIONS,
    check_features,
    check_int_tuple,
    check_positive_int,
    make_activation,
)
from scalinglab.models._registry import register_model

OUTPUT_ACTIVATIONS = ("none", "tanh")


class GeneratorFCN(nn.Module):
    """``[B, in_features] -> [B, C * H * W]`` (flat, like every registry model); ``images`` reshapes.

    Attributes:
        input_shape: ``(in_features,)``.
        image_shape: ``(C, H, W)`` of the generated images.
        out_features: ``C * H * W`` (values per sample).
    """

    def __init__(
        self,
        in_features: int,
        hidden_widths: tuple[int, ...],
        out_shape: tuple[int, ...],
        activation: str,
        output_activation: str,
    ):
        super().__init__()
        self.in_features = in_features
        self.input_shape = (in_features,)
        self.image_shape = out_shape
        self.out_features = math.prod(out_shape)
        layers: list[nn.Module] = []
        fan_in = in_features
        for w in hidden_widths:
            layers += [nn.Linear(fan_in, w), make_activation(activation, "generator_fcn")]
            fan_in = w
        layers.append(nn.Linear(fan_in, self.out_features))
        if output_activation == "tanh":
            # m_z lies in [-1, 1]; tanh enforces it (the paper's output layer is linear).
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` parameters -> ``[B, C * H * W]`` flattened images (the training target layout:
        a plain MLP, so R realizations train as stacked matrix products)."""
        x = check_features("generator_fcn", x, self.in_features)
        return self.net(x.reshape(x.shape[0], self.in_features))

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` parameters -> ``[B, *image_shape]`` images (top, bottom layer m_z)."""
        return self(x).reshape(x.shape[0], *self.image_shape)


@register_model()
def generator_fcn(
    *,
    in_features: int = 3,
    hidden_widths: tuple[int, ...] = (256, 512),
    out_shape: tuple[int, ...] = (2, 197, 197),
    activation: str = "gelu",
    output_activation: str = "none",
) -> GeneratorFCN:
    """Generator FCN of paper 2.

    input_shape: ``[B, in_features]`` (paper: the 3 parameters theta, J, D, standardized);
    output ``[B, prod(out_shape)]``, reshaped by ``model.images(x)`` to ``[B, *out_shape]`` (paper:
    ``[B, 2, 197, 197]``, top and bottom layer m_z).

    Args:
        in_features: number of input parameters.
        hidden_widths: widths of the hidden layers (paper: two layers, widths not stated).
        out_shape: shape of one generated sample, e.g. ``(2, H, W)``.
        activation: gelu (paper), relu, elu, prelu or swish.
        output_activation: "none" (paper: linear output) or "tanh" (bounds the output to [-1, 1]).

    Reference:
        Paper 2 (twisted-magnets-regression-and-generation), Appendix B, Fig. 13.
    """
    in_features = check_positive_int("generator_fcn", "in_features", in_features)
    hidden = check_int_tuple("generator_fcn", "hidden_widths", hidden_widths)
    shape = check_int_tuple("generator_fcn", "out_shape", out_shape)
    if activation not in ACTIVATIONS:
        raise ValueError(f"generator_fcn: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"generator_fcn: unknown output_activation {output_activation!r} (known: {', '.join(OUTPUT_ACTIVATIONS)})"
        )
    return GeneratorFCN(in_features, hidden, shape, activation, output_activation)

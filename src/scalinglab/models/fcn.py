"""Fully connected regression network (paper 1's FCN).

Reference:
    Scaling laws in deep regression (``scaling-laws-deep-regression.txt``), Methods, "Fully connected
    network": n_l hidden layers of n_n neurons, GELU between all layers, flattened image pair
    (n_i = 20,000) in, one value out; N_M = n_n [n_i + (n_l - 1) n_n + 1 + n_l] + 1.
"""

from __future__ import annotations

import torch
from torch import nn

from scalinglab.models._common import (
    ACTIVATIONS,
    check_features,
    check_positive_int,
    make_activation,
)
from scalinglab.models._registry import register_model


def fcn_param_count(in_features: int, num_layers: int, width: int, out_features: int = 1) -> int:
    """Closed-form parameter count of ``fcn`` without learnable activations.

    For ``out_features = 1`` this is paper 1's N_M = n_n [n_i + (n_l - 1) n_n + 1 + n_l] + 1.

    Args:
        in_features: n_i, input values per sample.
        num_layers: n_l >= 1, hidden layers.
        width: n_n, neurons per hidden layer.
        out_features: outputs.

    Returns:
        Weights plus biases: n_i n_n + n_n + (n_l - 1)(n_n^2 + n_n) + out (n_n + 1).
    """
    n_i, n_l, n_n = in_features, num_layers, width
    return n_n * (n_i + (n_l - 1) * n_n + 1 + n_l) + 1 + (out_features - 1) * (n_n + 1)


class FCN(nn.Module):
    """``in_features -> [width] * num_layers -> out_features`` with an activation after each hidden layer.

    Attributes:
        input_shape: ``(in_features,)``; any ``[B, ...]`` input with that many values per sample is flattened.
        out_features: outputs per sample.
    """

    def __init__(self, in_features: int, num_layers: int, width: int, activation: str, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.input_shape = (in_features,)
        self.activation = activation
        layers: list[nn.Module] = []
        fan_in = in_features
        for _ in range(num_layers):
            layers += [nn.Linear(fan_in, width), make_activation(activation, "fcn")]
            fan_in = width
        layers.append(nn.Linear(fan_in, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...]`` (``in_features`` values per sample) -> ``[B, out_features]``."""
        x = check_features("fcn", x, self.in_features)
        return self.net(x.reshape(x.shape[0], self.in_features))


@register_model()
def fcn(
    *,
    in_features: int = 20000,
    num_layers: int = 3,
    width: int = 64,
    activation: str = "gelu",
    out_features: int = 1,
) -> FCN:
    """Fully connected network of paper 1.

    input_shape: ``[B, in_features]``, or any ``[B, ...]`` holding ``in_features`` values per sample
    (e.g. an image pair ``[B, 2, 100, 100]`` for the paper's n_i = 20,000); output ``[B, out_features]``.

    Args:
        in_features: n_i, input values per sample (paper 1: 20,000 = two 100 x 100 images).
        num_layers: n_l, hidden layers (paper 1: 3 for most runs; 0 gives a linear model).
        width: n_n, neurons per hidden layer (paper 1: 4 ... 512).
        activation: one of gelu (paper 1), relu, elu, prelu (adds one learnable slope per hidden
            layer), swish.
        out_features: number of regressed values (paper 1: one network per parameter, so 1).

    Returns:
        An ``FCN`` whose parameter count is ``fcn_param_count(...)`` (paper 1's N_M for one output),
        plus ``num_layers`` for prelu.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Methods, N_M formula.
    """
    in_features = check_positive_int("fcn", "in_features", in_features)
    num_layers = check_positive_int("fcn", "num_layers", num_layers, minimum=0)
    width = check_positive_int("fcn", "width", width)
    out_features = check_positive_int("fcn", "out_features", out_features)
    if activation not in ACTIVATIONS:
        raise ValueError(f"fcn: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    return FCN(in_features, num_layers, width, activation, out_features)

"""Private helpers shared by the model builders: config checks, input checks, activations.

Every check raises a one-line ``ValueError`` that names the model, what it expected and what it got,
so that a wrong dataset/model pairing fails before any arithmetic runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = ("gelu", "relu", "elu", "prelu", "swish")


def shape_str(shape: Sequence[int | str | None]) -> str:
    """``(8, 2, None)`` -> ``"[8, 2, *]"`` (``*`` marks a free dimension; strings are kept as names)."""
    return "[" + ", ".join("*" if s is None else s if isinstance(s, str) else str(int(s)) for s in shape) + "]"


def make_activation(name: str, model: str) -> nn.Module:
    """A fresh activation module by name.

    ``prelu`` has one learnable slope per module (``nn.PReLU()``), so it adds one parameter per
    hidden layer; ``swish`` is ``x * sigmoid(x)`` (``nn.SiLU``).
    """
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU()
    if name == "elu":
        return nn.ELU()
    if name == "prelu":
        return nn.PReLU()
    if name == "swish":
        return nn.SiLU()
    raise ValueError(f"{model}: unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")


def check_positive_int(model: str, key: str, value: object, *, minimum: int = 1) -> int:
    """Config value ``key`` must be an integer >= ``minimum``; returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"{model}: config {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{model}: config {key} must be >= {minimum}, got {value}")
    return int(value)


def check_int_tuple(model: str, key: str, value: object, *, length: int | None = None) -> tuple[int, ...]:
    """Config value ``key`` must be a sequence of positive integers (of ``length`` if given)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{model}: config {key} must be a list of integers, got {value!r}")
    out = tuple(check_positive_int(model, key, v) for v in value)
    if length is not None and len(out) != length:
        raise ValueError(f"{model}: config {key} must have {length} entries, got {len(out)} ({value!r})")
    return out


def check_image_size(model: str, key: str, value: object) -> tuple[int, int]:
    """An image size given as ``n`` (square) or ``(height, width)``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    size = check_int_tuple(model, key, value, length=2)
    return size[0], size[1]


def check_tensor(model: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{model} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{model} expects a floating-point tensor, got dtype {x.dtype}")
    return x


def check_features(model: str, x: object, in_features: int) -> torch.Tensor:
    """Inputs ``[B, ...]`` with ``in_features`` values per sample (flattened by the caller)."""
    x = check_tensor(model, x)
    if x.ndim < 2 or math.prod(x.shape[1:]) != in_features:
        raise ValueError(
            f"{model} expects input [B, {in_features}] (or [B, ...] with in_features={in_features} values "
            f"per sample), got {shape_str(x.shape)}"
        )
    return x


def check_image(model: str, x: object, expected: Sequence[int | None]) -> torch.Tensor:
    """Inputs ``[B, *expected]``; ``None`` entries of ``expected`` accept any size."""
    x = check_tensor(model, x)
    ok = x.ndim == len(expected) + 1 and all(e is None or e == s for e, s in zip(expected, x.shape[1:]))
    if not ok:
        raise ValueError(f"{model} expects input {shape_str(['B', *expected])}, got {shape_str(x.shape)}")
    return x


class ImageRegressor(nn.Module):
    """Wraps an image network (a torchvision backbone) with input validation.

    The wrapped network is ``self.net``; its state dict keys therefore start with ``net.``.

    Attributes:
        name: registry name, used in error messages.
        input_shape: ``(in_channels, None, None)``: any spatial size the network accepts.
        in_channels: expected channels.
        out_features: outputs per sample.
    """

    def __init__(self, net: nn.Module, name: str, in_channels: int, out_features: int):
        super().__init__()
        self.net = net
        self.name = name
        self.in_channels = in_channels
        self.out_features = out_features
        self.input_shape = (in_channels, None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` -> ``[B, out_features]``."""
        return self.net(check_image(self.name, x, self.input_shape))

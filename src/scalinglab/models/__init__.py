"""The model zoo: every network behind one registry.

Every model takes a float32 tensor ``[B, *input_shape]`` and returns ``[B, out_features]``
(``generator_fcn`` too: flattened images, ``model.images(x)`` gives ``[B, *image_shape]``).
Each model instance carries ``input_shape`` (``None`` marks a free spatial size) and ``out_features``;
a wrong input shape raises a one-line
``ValueError`` naming the expected and the received shape. An unknown model name raises
``scalinglab.registry.UnknownNameError`` and an unknown configuration key
``scalinglab.registry.UnknownConfigKeyError`` (both ``ValueError``).

Examples:
    >>> import torch
    >>> from scalinglab.models import count_parameters, get_model, list_models
    >>> "fcn" in list_models()
    True
    >>> model = get_model("fcn", in_features=20000, num_layers=3, width=16)   # paper 1's FCN
    >>> count_parameters(model)       # N_M = n_n [n_i + (n_l - 1) n_n + 1 + n_l] + 1
    320577
    >>> model(torch.zeros(4, 2, 100, 100)).shape   # the image pair is flattened
    torch.Size([4, 1])
    >>> count_parameters(get_model("resnet18", in_channels=2, out_features=1))
    11173889
    >>> vit = get_model("vit")        # paper 1: patch 10, 8 heads, 4 layers, embedding 64, MLP 256
    >>> vit(torch.zeros(2, 2, 100, 100)).shape
    torch.Size([2, 1])
    >>> small = get_model("cnn_small", in_channels=1, out_features=2)   # paper 4's Model0-6
    >>> net = get_model("regnet_x_16gf", in_channels=1, out_features=2, pretrained=None)
"""

from __future__ import annotations

from torch import nn

from scalinglab.models._registry import MODELS, register_model

# --- model modules: importing one registers its builders --------------------------------------------
# Keep one import per module; add new model families here (e.g. mlp_invariants, lloca_transformer).
from scalinglab.models import fcn  # noqa: E402,F401  isort: skip
from scalinglab.models import two_branch  # noqa: E402,F401  isort: skip
from scalinglab.models import generator  # noqa: E402,F401  isort: skip
from scalinglab.models import resnet  # noqa: E402,F401  isort: skip
from scalinglab.models import vit  # noqa: E402,F401  isort: skip
from scalinglab.models import cnn_small  # noqa: E402,F401  isort: skip
from scalinglab.models import backbones  # noqa: E402,F401  isort: skip
from scalinglab.models import mlp_invariants  # noqa: E402,F401  isort: skip
from scalinglab.models import lloca_transformer  # noqa: E402,F401  isort: skip
# --- end of model modules ------------------------------------------------------------------------------

__all__ = ["MODELS", "count_parameters", "get_model", "list_models", "register_model"]


def get_model(name: str, **config: object) -> nn.Module:
    """Builds model ``name`` with ``config`` (keyword arguments of its builder; defaults for the rest).

    Args:
        name: registry key, one of ``list_models()``.
        **config: builder arguments, e.g. ``width=16`` for ``fcn``.

    Returns:
        A freshly initialized ``torch.nn.Module`` (initialization follows ``torch.manual_seed``).

    Raises:
        UnknownNameError: ``name`` is not registered.
        UnknownConfigKeyError: a key of ``config`` is not accepted by the builder.
        ValueError: a configuration value is invalid.
    """
    return MODELS.get(name, **config)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return MODELS.names()


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter values of ``model``; shared tensors count once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total

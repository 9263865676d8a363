"""Regression losses, reduced per realization.

Every loss takes predictions ``[..., B, O]`` and targets ``[..., B, P]`` and returns the mean over the last two
dimensions, shape ``[...]``: a scalar for one network, ``[R]`` for R stacked realizations. Summing the ``[R]``
losses gives each member exactly its own gradient, because members share no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

# Floor on the predicted standard deviation of the Gaussian NLL: keeps log(sigma) finite when a network
# drives its raw sigma output to -inf on a noiseless target.
MIN_SIGMA = 1e-6


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error ``mean((pred - target)^2)`` over [B, P] -> [...]. Paper 1's loss."""
    return (pred - target).square().mean(dim=(-2, -1))


def mae(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error ``mean(|pred - target|)`` over [B, P] -> [...]. Paper 2's generator loss."""
    return (pred - target).abs().mean(dim=(-2, -1))


def split_mean_sigma(pred: Tensor) -> tuple[Tensor, Tensor]:
    """Split a heteroscedastic output ``[..., B, 2P]`` into mean ``[..., B, P]`` and sigma ``[..., B, P]``.

    The first P outputs are the means; the last P are unconstrained and mapped to a standard deviation by
    ``sigma = softplus(raw) + MIN_SIGMA`` (softplus rather than exp: it grows linearly, so one large raw
    output cannot make the loss overflow).
    """
    if pred.shape[-1] % 2:
        raise ValueError(f"gaussian_nll needs two outputs per target (mean, sigma); got {pred.shape[-1]} outputs")
    num = pred.shape[-1] // 2
    return pred[..., :num], F.softplus(pred[..., num:]) + MIN_SIGMA


def gaussian_nll(pred: Tensor, target: Tensor) -> Tensor:
    """Heteroscedastic Gaussian negative log-likelihood per target value, averaged over [B, P] -> [...].

    ``nll = 0.5 * ((y - mu) / sigma)^2 + log(sigma) + 0.5 * log(2 pi)`` with ``(mu, sigma)`` from
    :func:`split_mean_sigma`; the constant keeps it a true NLL (for a known sigma it is exact).

    Args:
        pred: [..., B, 2P] network outputs (P means, then P raw sigmas).
        target: [..., B, P] targets.
    """
    mu, sigma = split_mean_sigma(pred)
    z = (target - mu) / sigma
    return (0.5 * z.square() + sigma.log()).mean(dim=(-2, -1)) + 0.5 * math.log(2 * math.pi)


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"mse": mse, "mae": mae, "gaussian_nll": gaussian_nll}


def get_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss function named ``name`` (mse, mae, gaussian_nll)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss '{name}' (known: {', '.join(LOSSES)})") from None


def outputs_per_target(name: str) -> int:
    """How many network outputs one target needs under this loss (2 for gaussian_nll: mean and sigma)."""
    get_loss(name)
    return 2 if name == "gaussian_nll" else 1


def point_prediction(name: str, pred: Tensor) -> Tensor:
    """The point estimate ``[..., B, P]`` of an output ``[..., B, O]`` trained with loss ``name``."""
    return split_mean_sigma(pred)[0] if name == "gaussian_nll" else pred

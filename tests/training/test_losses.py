"""Losses: closed forms, per-member reduction, the heteroscedastic Gaussian NLL."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scalinglab.training.losses import (
    MIN_SIGMA,
    gaussian_nll,
    get_loss,
    mae,
    mse,
    outputs_per_target,
    point_prediction,
    split_mean_sigma,
)


def test_mse_and_mae_match_torch_and_reduce_per_member():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 10, 2, generator=g), torch.randn(3, 10, 2, generator=g)
    assert mse(pred, target).shape == (3,)
    for r in range(3):
        torch.testing.assert_close(mse(pred, target)[r], F.mse_loss(pred[r], target[r]))
        torch.testing.assert_close(mae(pred, target)[r], F.l1_loss(pred[r], target[r]))
    assert mse(pred[0], target[0]).shape == ()


def test_gaussian_nll_is_the_normal_log_likelihood():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)
    mu, sigma = pred[:, :2], F.softplus(pred[:, 2:]) + MIN_SIGMA
    expected = -torch.distributions.Normal(mu, sigma).log_prob(target).mean()
    torch.testing.assert_close(gaussian_nll(pred, target), expected)


def test_gaussian_nll_minimized_at_sigma_equal_to_residual():
    """For a fixed residual e the NLL 0.5 e^2 / s^2 + log s has its minimum at s = |e| (d/ds = 0)."""
    e = 0.7
    sigma = torch.tensor(e)
    raw = torch.log(torch.expm1(sigma - MIN_SIGMA)).reshape(1, 1).requires_grad_(True)  # softplus^-1
    pred = torch.cat([torch.zeros(1, 1), raw], dim=1)
    loss = gaussian_nll(pred, torch.full((1, 1), e))
    (grad,) = torch.autograd.grad(loss, raw)
    assert abs(float(grad)) < 1e-5
    assert float(loss.detach()) == pytest.approx(0.5 + math.log(e) + 0.5 * math.log(2 * math.pi), rel=1e-5)


def test_output_helpers_and_errors():
    assert outputs_per_target("mse") == 1 and outputs_per_target("gaussian_nll") == 2
    pred = torch.arange(8.0).reshape(2, 4)
    assert torch.equal(point_prediction("gaussian_nll", pred), pred[:, :2])
    assert torch.equal(point_prediction("mae", pred), pred)
    assert (split_mean_sigma(torch.full((1, 2), -100.0))[1] >= MIN_SIGMA).all()
    with pytest.raises(ValueError, match="two outputs per target"):
        gaussian_nll(torch.zeros(2, 3), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="unknown loss 'huber'"):
        get_loss("huber")

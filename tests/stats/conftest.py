"""Synthetic scaling sweeps with known truth for the statistics tests."""

import numpy as np
import pytest


def _sweep(x, mean_loss, num_realizations, sigma, rng):
    """Per-point realization losses: mean_loss(x) times lognormal noise exp(sigma * N(0, 1))."""
    return [m * np.exp(sigma * rng.standard_normal(num_realizations)) for m in mean_loss(np.asarray(x))]


def _exact(x, mean_loss, num_realizations=4, eps=0.05):
    """Noise whose log-mean is exactly zero (symmetric +-eps), so log GM equals log mean_loss exactly."""
    signs = np.tile([1.0, -1.0], num_realizations // 2)
    return [m * np.exp(eps * signs) for m in mean_loss(np.asarray(x, dtype=float))]


@pytest.fixture
def synthetic_sweep():
    return _sweep


@pytest.fixture
def exact_sweep():
    return _exact

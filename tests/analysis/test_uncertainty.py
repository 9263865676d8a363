"""Ensemble spread, pulls and interval coverage on a synthetic heteroscedastic regression."""

import numpy as np
import pytest

from scalinglab.analysis.uncertainty import ensemble_spread, interval_coverage, pulls


def _heteroscedastic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    mean = np.stack([np.sin(3 * x[:, 0]), x[:, 0] * x[:, 1]], axis=1)  # the exact regression function
    sigma = np.stack([0.05 + 0.5 * x[:, 0], 0.2 * (1 + np.cos(4 * x[:, 1]))], axis=1) + 1e-3  # known, varies 40x
    true = mean + sigma * rng.normal(size=mean.shape)
    return mean, sigma, true


def test_coverage_at_nominal_with_true_sigma():
    mean, sigma, true = _heteroscedastic(50_000, seed=0)
    cov = interval_coverage(mean, sigma, true, levels=(0.68, 0.95))
    assert set(cov) == {0.68, 0.95} and cov[0.68].shape == (2,)
    for level, frac in cov.items():
        assert np.all(np.abs(frac - level) <= 0.03), (level, frac)  # measured within 0.4 points
    p = pulls(mean, sigma, true)
    assert np.allclose(p.mean(axis=0), 0, atol=0.02) and np.allclose(p.std(axis=0), 1, atol=0.02)


def test_coverage_detects_miscalibration():
    mean, sigma, true = _heteroscedastic(50_000, seed=1)
    over = interval_coverage(mean, 0.5 * sigma, true)  # overconfident: 68 % -> ~38 %
    assert np.all(over[0.68] < 0.45)
    homo = np.full_like(sigma, sigma.mean())  # right on average, wrong per sample: 95 % misses
    assert np.any(np.abs(interval_coverage(mean, homo, true)[0.95] - 0.95) > 0.01)


def test_ensemble_spread_recovers_sigma():
    rng = np.random.default_rng(2)
    num_realizations, n = 8, 20_000
    centre, sigma = rng.normal(size=(n, 3)), 0.1 + rng.random((n, 3))
    preds = centre + sigma * rng.normal(size=(num_realizations, n, 3))  # [R, n, P]
    mean, std = ensemble_spread(preds)
    assert np.allclose(mean, preds.mean(0)) and np.allclose(std, preds.std(0, ddof=1))
    # ddof = 1: E[std^2] = sigma^2
    assert abs(np.mean(std**2 / sigma**2) - 1) < 0.02
    with pytest.raises(ValueError, match="R >= 2"):
        ensemble_spread(preds[:1])


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        pulls(np.zeros((3, 2)), np.ones((3, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="negative"):
        interval_coverage(np.zeros(3), -np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        interval_coverage(np.zeros(3), np.ones(3), np.zeros(3), levels=(95,))

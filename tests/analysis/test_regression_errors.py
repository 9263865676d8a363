"""Regression metrics and binned MAE against direct computations (paper 2, Eq. 4, Figs. 3-4)."""

import numpy as np
import pytest

from scalinglab.analysis.regression_errors import binned_mae, binned_mean, percentage_errors, regression_summary


def test_summary_known_values():
    true = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.0]])
    pred = true * np.array([1.1, 1.0]) + np.array([0.0, 0.5])  # 10 % high in column 0; +0.5 in column 1
    s = regression_summary(pred, true, ["a", "b"])
    assert np.isclose(s["a"]["mape"], 10.0)
    assert np.isclose(s["a"]["mae"], 0.1 * 2.5)
    assert np.isclose(s["b"]["mae"], 0.5) and np.isclose(s["b"]["rmse"], 0.5)
    assert np.isclose(s["b"]["mape"], 100 * np.mean(0.5 / true[:, 1]))
    assert np.isclose(s["b"]["r2"], 1 - 4 * 0.25 / np.sum((true[:, 1] - 5.0) ** 2))
    assert s["a"]["num"] == 4
    perfect = regression_summary(true, true, ["a", "b"])
    assert perfect["a"]["r2"] == 1.0 and perfect["a"]["mae"] == 0.0
    assert np.isnan(percentage_errors([[1.0]], [[0.0]])[0, 0])
    with pytest.raises(ValueError, match="names"):
        regression_summary(pred, true, ["a"])
    with pytest.raises(ValueError, match="shapes differ"):
        regression_summary(pred[:, :1], true, ["a"])


def test_r2_of_noisy_linear_prediction():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(100_000, 1))
    pred = true + 0.5 * rng.normal(size=true.shape)
    # R^2 = 1 - var(noise) / var(true) = 0.75
    assert abs(regression_summary(pred, true, ["x"])["x"]["r2"] - 0.75) < 0.01


def test_binned_mean_matches_loop():
    rng = np.random.default_rng(1)
    v, a = rng.exponential(size=5000), rng.random(5000) * 1.2 - 0.1  # some outside [0, 1]
    v[::97] = np.nan  # NaN values are left out
    edges = np.linspace(0, 1, 8)
    b = binned_mean(v, a, edges)
    for i in range(7):
        sel = (a >= edges[i]) & ((a < edges[i + 1]) if i < 6 else (a <= edges[i + 1])) & np.isfinite(v)
        assert b.count[i] == sel.sum()
        assert np.isclose(b.mean[i], v[sel].mean())
        assert np.isclose(b.sem[i], v[sel].std(ddof=1) / np.sqrt(sel.sum()))
    assert np.allclose(b.centers, 0.5 * (edges[1:] + edges[:-1]))
    empty = binned_mean([1.0, 2.0], [0.1, 0.15], [0, 0.5, 1])
    assert np.isnan(empty.mean[1]) and empty.count[1] == 0 and np.isnan(binned_mean([1.0], [0.1], [0, 1]).sem[0])
    assert binned_mean([3.0], [1.0], [0, 0.5, 1]).count[1] == 1  # the right edge belongs to the last bin
    with pytest.raises(ValueError, match="increasing"):
        binned_mean(v, a, [0, 0])


def test_binned_mae_equals_direct_loop():
    rng = np.random.default_rng(2)
    n, m, num_p, num_q, num_bins = 3000, 9000, 3, 3, 10
    along = rng.random((n, num_q)) ** 2  # uneven: many samples at small values
    along[0, 0] = 1.0  # right edge
    abs_err = np.abs(rng.normal(size=(n, num_p))) * (1 + along[:, [1]])
    train = rng.random((m, num_q)) ** 0.5
    out = binned_mae(abs_err, along, train, num_bins=num_bins)
    assert out.mae.shape == (num_p, num_q, num_bins) and out.count_train.shape == (num_q, num_bins)
    edges = np.linspace(0, 1, num_bins + 1)
    for q in range(num_q):
        for b in range(num_bins):
            hi_ok = along[:, q] <= edges[b + 1] if b == num_bins - 1 else along[:, q] < edges[b + 1]
            sel = (along[:, q] >= edges[b]) & hi_ok
            thi = train[:, q] <= edges[b + 1] if b == num_bins - 1 else train[:, q] < edges[b + 1]
            assert out.count_test[q, b] == sel.sum()
            assert out.count_train[q, b] == ((train[:, q] >= edges[b]) & thi).sum()
            for p in range(num_p):
                assert np.isclose(out.mae[p, q, b], abs_err[sel, p].mean(), rtol=1e-12)
                assert np.isclose(out.sem[p, q, b], abs_err[sel, p].std(ddof=1) / np.sqrt(sel.sum()), rtol=1e-10)
    assert out.count_test.sum(axis=1).tolist() == [n] * num_q
    # the planted dependence: errors grow along q = 1 and not along q = 0
    assert out.mae[0, 1, -1] > 1.5 * out.mae[0, 1, 0]
    assert abs(out.mae[0, 0, -1] / out.mae[0, 0, 0] - 1) < 0.3


def test_binned_mae_bad_input():
    with pytest.raises(ValueError, match="samples"):
        binned_mae(np.zeros((5, 2)), np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="columns"):
        binned_mae(np.zeros((5, 2)), np.zeros((5, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        binned_mae(np.zeros(5), np.zeros((5, 2)), np.zeros((3, 2)))

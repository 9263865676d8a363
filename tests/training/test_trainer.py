"""Single-model trainer (known answers: least squares), early stopping, limits, metrics and FLOP counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scalinglab.training.config import TrainConfig
from scalinglab.training.flops import forward_flops, train_step_flops, training_flops
from scalinglab.training.metrics import regression_metrics, summarize
from scalinglab.training.trainer import TrainData, epoch_order, make_generators, train_model, validation_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _linear_problem(noise: float = 0.1, n: int = 512, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [0.0], [3.0]])
    y = x @ w + 0.7 + noise * torch.randn(n, 1, generator=g)
    perm = torch.randperm(n, generator=g)
    return TrainData(x, y, perm[: n * 7 // 8], perm[n * 7 // 8:]), w


def test_linear_regression_reaches_the_exact_solution():
    """Noise-free linear data: least squares recovers w exactly, and so must training."""
    data, w = _linear_problem(noise=0.0)
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    res = train_model(model, data, TrainConfig(epochs=100, batch_size=32, lr=2e-2, patience=None), shuffle_seed=1)
    torch.testing.assert_close(model.weight.detach().T, w, atol=1e-2, rtol=0)
    torch.testing.assert_close(model.bias.detach(), torch.tensor([0.7]), atol=1e-2, rtol=0)
    assert res.best_val_loss < 1e-4
    assert res.epochs_run == 100 and res.steps == 100 * 14


def test_early_stopping_restores_best_weights():
    data, _ = _linear_problem(noise=1.0, n=128)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 64), nn.ReLU(), nn.Linear(64, 1))  # overfits 112 noisy samples
    cfg = TrainConfig(epochs=200, batch_size=16, lr=1e-2, patience=5, schedule="constant")
    res = train_model(model, data, cfg, shuffle_seed=0)
    assert res.epochs_run < cfg.epochs
    assert res.epochs_run == res.best_epoch + cfg.patience
    assert res.best_epoch == int(np.argmin(res.val_history)) + 1
    assert res.steps == res.epochs_run * 7
    again = float(validation_loss(model, data, "mse", 4096, stacked=False)[0])
    assert again == pytest.approx(res.best_val_loss, rel=1e-6)  # the restored weights are the best ones


def test_step_limit_and_seeded_shuffling():
    data, _ = _linear_problem()
    cfg = TrainConfig(epochs=100, batch_size=64, max_steps=9, patience=None)
    results, weights = [], []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        model = nn.Linear(5, 1)
        results.append(train_model(model, data, cfg, shuffle_seed=seed))
        weights.append(model.weight.detach().clone())
    assert results[0].steps == 9 and results[0].epochs_run == 2  # 7 steps per epoch
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
    a = epoch_order(data, make_generators([5]))
    b = epoch_order(data, make_generators([5]))
    assert torch.equal(a, b) and torch.equal(a.sort().values, data.train_idx.sort().values)


def test_standardization_is_applied_per_member():
    data, _ = _linear_problem()
    x_mean = torch.full((1, 5), 2.0)
    x_std = torch.full((1, 5), 4.0)
    std = TrainData(data.x, data.y, data.train_idx, data.val_idx, x_mean=x_mean, x_std=x_std,
                    y_mean=torch.tensor([[1.0]]), y_std=torch.tensor([[0.5]]))
    rows = data.train_idx[:, :3]
    xb, yb = std.batch(rows)
    torch.testing.assert_close(xb[0], (data.x[rows[0]] - 2.0) / 4.0)
    torch.testing.assert_close(yb[0], (data.y[rows[0]] - 1.0) / 0.5)
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        TrainData(data.x, data.y, data.train_idx, data.val_idx, x_mean=x_mean, x_std=torch.zeros(1, 5))


def test_metrics_closed_forms():
    y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    pred = y + np.array([[0.5, -1.0], [-0.5, 1.0], [0.5, -1.0], [-0.5, 1.0]])
    m = regression_metrics(pred, y)
    np.testing.assert_allclose(m["mse"], [0.25, 1.0])
    np.testing.assert_allclose(m["mae"], [0.5, 1.0])
    np.testing.assert_allclose(m["mape"], [100 * np.mean(0.5 / y[:, 0]), 100 * np.mean(1.0 / y[:, 1])])
    np.testing.assert_allclose(m["r2"], [1 - 0.25 / 1.25, 1 - 1.0 / 125.0])
    np.testing.assert_allclose(regression_metrics(y, y)["r2"], [1.0, 1.0])
    assert summarize(m)["mse"] == pytest.approx(0.625)
    with pytest.raises(ValueError, match="differ in shape"):
        regression_metrics(pred[:, :1], y)


def test_flops_counted_match_the_matmul_count():
    """Linear(F,H) -> ReLU -> Linear(H,1): forward 2B(FH + H); backward 2B(FH + H) for the weight
    gradients plus 2BH for the gradient into the hidden layer (none into the inputs)."""
    B, F, H = 32, 20, 16
    model = nn.Sequential(nn.Linear(F, H), nn.ReLU(), nn.Linear(H, 1))
    x, y = torch.randn(B, F), torch.randn(B, 1)
    assert forward_flops(model, x) == 2 * B * (F * H + H)
    assert train_step_flops(model, x, y) == 4 * B * (F * H + H) + 2 * B * H
    assert all(p.grad is None for p in model.parameters())  # counted on a copy
    # 10 samples per epoch, batch 4: steps of 4, 4, 2 samples
    assert training_flops(7, 10, 4, full_step_flops=40, last_step_flops=20) == 2 * (40 + 40 + 20) + 40

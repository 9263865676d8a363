"""Schedules (closed forms), the stacked optimizer against torch.optim, masking, clipping, TrainConfig."""

from __future__ import annotations

import math

import pytest
import torch

from scalinglab.training.config import TrainConfig
from scalinglab.training.optim import (
    StackedOptimizer,
    clip_grad_norm_stacked,
    lr_at_epoch,
    make_torch_optimizer,
)


def test_schedules_closed_forms():
    cfg = TrainConfig()  # paper 1: 1e-3 x 0.98 per epoch
    assert lr_at_epoch(cfg, 0) == 1e-3
    assert lr_at_epoch(cfg, 10) == pytest.approx(1e-3 * 0.98**10, rel=1e-12)
    cos = TrainConfig(schedule="cosine", epochs=100, lr=1.0, min_lr=0.1)
    assert lr_at_epoch(cos, 0) == pytest.approx(1.0)
    assert lr_at_epoch(cos, 50) == pytest.approx(0.55)
    assert lr_at_epoch(cos, 100) == pytest.approx(0.1)
    step = TrainConfig(schedule="step", lr=1.0, step_epochs=3, step_gamma=0.5)
    assert [lr_at_epoch(step, e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert lr_at_epoch(TrainConfig(schedule="constant", lr=0.3), 99) == 0.3


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(optimizer="adam", lr=1e-2),
        TrainConfig(optimizer="adam", lr=1e-2, weight_decay=0.1),
        TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.1),
        TrainConfig(optimizer="sgd", lr=1e-2, momentum=0.9, weight_decay=0.01),
        TrainConfig(optimizer="sgd", lr=1e-2, momentum=0.0),
    ],
    ids=["adam", "adam_l2", "adamw", "sgd_momentum", "sgd_plain"],
)
def test_stacked_optimizer_matches_torch(cfg):
    g = torch.Generator().manual_seed(0)
    R, P = 3, 7
    init = torch.randn(R, P, generator=g)
    grads = [torch.randn(R, P, generator=g) for _ in range(6)]
    flat = init.clone()
    opt = StackedOptimizer(flat, cfg)
    active = torch.ones(R, 1)
    for k, gr in enumerate(grads):
        opt.step(gr.clone(), lr=cfg.lr * 0.9**k, active=active, all_active=True)
    for r in range(R):
        p = torch.nn.Parameter(init[r].clone())
        ref = make_torch_optimizer([p], cfg)
        for k, gr in enumerate(grads):
            for group in ref.param_groups:
                group["lr"] = cfg.lr * 0.9**k
            p.grad = gr[r].clone()
            ref.step()
        torch.testing.assert_close(flat[r], p.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_masked_members_do_not_change(optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    flat = torch.randn(4, 5, generator=g)
    opt = StackedOptimizer(flat, cfg)
    opt.step(torch.randn(4, 5, generator=g), 1e-2, torch.ones(4, 1), True)
    frozen_p = flat[1].clone()
    frozen_s = {k: v[1].clone() for k, v in opt.state.items()}
    moving = flat[0].clone()
    active = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    for _ in range(3):
        opt.step(torch.randn(4, 5, generator=g), 1e-2, active, False)
    assert torch.equal(flat[1], frozen_p)
    for k, v in opt.state.items():
        assert torch.equal(v[1], frozen_s[k])
    assert not torch.equal(flat[0], moving)


def test_masked_update_equals_unmasked_for_active_members():
    cfg = TrainConfig(optimizer="adam", lr=1e-2)
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 6, generator=g)
    b = a.clone()
    oa, ob = StackedOptimizer(a, cfg), StackedOptimizer(b, cfg)
    for _ in range(3):
        gr = torch.randn(3, 6, generator=g)
        oa.step(gr.clone(), 1e-2, torch.ones(3, 1), True)
        ob.step(gr.clone(), 1e-2, torch.tensor([[1.0], [0.0], [1.0]]), False)
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]], rtol=1e-6, atol=1e-8)


def test_block_update_equals_single_block(monkeypatch):
    import scalinglab.training.optim as optim

    cfg = TrainConfig(optimizer="adam", lr=1e-2)
    g = torch.Generator().manual_seed(3)
    a = torch.randn(5, 9, generator=g)
    b = a.clone()
    grads = [torch.randn(5, 9, generator=g) for _ in range(3)]
    oa = StackedOptimizer(a, cfg)
    for gr in grads:
        oa.step(gr.clone(), 1e-2, torch.ones(5, 1), True)
    monkeypatch.setattr(optim, "BLOCK_BYTES", 1)  # one member per block
    ob = StackedOptimizer(b, cfg)
    for gr in grads:
        ob.step(gr.clone(), 1e-2, torch.ones(5, 1), True)
    assert torch.equal(a, b)


def test_per_member_clipping_matches_torch():
    g = torch.Generator().manual_seed(4)
    grads = torch.randn(3, 10, generator=g) * torch.tensor([[0.01], [1.0], [100.0]])
    stacked = grads.clone()
    norms = clip_grad_norm_stacked(stacked, max_norm=1.0)
    for r in range(3):
        p = torch.nn.Parameter(torch.zeros(10))
        p.grad = grads[r].clone()
        ref = torch.nn.utils.clip_grad_norm_([p], 1.0)
        torch.testing.assert_close(norms[r], ref)
        torch.testing.assert_close(stacked[r], p.grad)
    assert torch.equal(stacked[0], grads[0])  # below the threshold: untouched
    assert float(torch.linalg.vector_norm(stacked[2])) == pytest.approx(1.0, rel=1e-5)


def test_train_config_defaults_round_trip_and_errors():
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.lr, cfg.lr_decay, cfg.epochs, cfg.patience, cfg.loss) == (
        "adam", 1e-3, 0.98, 200, 100, "mse")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({"betas": [0.8, 0.9]}).betas == (0.8, 0.9)
    with pytest.raises(ValueError, match="unknown training config key.*bogus") as exc:
        TrainConfig.from_dict({"bogus": 1, "lr": 1e-3})
    assert "\n" not in str(exc.value)
    for bad in ({"optimizer": "lbfgs"}, {"lr": -1.0}, {"schedule": "warmup"}, {"patience": 0},
                {"epochs": 0}, {"grad_clip": 0.0}, {"loss": "huber"}, {"path": "gpu"}):
        with pytest.raises(ValueError, match="invalid training config"):
            TrainConfig.from_dict(bad)
    assert math.isclose(cfg.replace(lr=0.5).lr, 0.5)

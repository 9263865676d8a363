"""Stop reasons, the relative-improvement stopping rule and the per-epoch progress callback of both trainers."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from scalinglab.models import get_model
from scalinglab.training.config import TrainConfig
from scalinglab.training.ensemble import train_ensemble
from scalinglab.training.trainer import EpochProgress, TrainData, stopping_improved, train_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(num_members: int = 3) -> TrainData:
    g = torch.Generator().manual_seed(0)
    n = 200
    x = torch.randn(n, 8, generator=g)
    y = x[:, :2].sum(1, keepdim=True) + 0.3 * torch.randn(n, 1, generator=g)
    train = torch.stack([torch.randperm(n, generator=g)[:64] for _ in range(num_members)])
    val = torch.stack([torch.randperm(n, generator=g)[:24] for _ in range(num_members)])
    return TrainData(x, y, train, val)


def _models(num: int) -> list[torch.nn.Module]:
    out = []
    for s in range(num):
        torch.manual_seed(100 + s)
        out.append(get_model("fcn", in_features=8, width=16, num_layers=2))
    return out


def _both(cfg: TrainConfig, num: int = 3, **kw):
    models = _models(num)
    alone = copy.deepcopy(models)
    data = _data(num)
    seeds = [7 + r for r in range(num)]
    res = train_ensemble(models, data, cfg, seeds, **kw)
    singles = [train_model(m, data.member(r), cfg, seeds[r]) for r, m in enumerate(alone)]
    return res, singles


def test_config_validates_min_rel_improvement():
    with pytest.raises(ValueError, match="min_rel_improvement"):
        TrainConfig(min_rel_improvement=1.5)
    with pytest.raises(ValueError, match="needs patience"):
        TrainConfig(min_rel_improvement=0.01, patience=None)
    with pytest.raises(ValueError, match="min_rel_improvement must be a number"):
        TrainConfig.from_dict({"min_rel_improvement": "a lot"})
    assert TrainConfig().min_rel_improvement is None  # off by default: stored specs keep their meaning
    cfg = TrainConfig.from_dict({"min_rel_improvement": 0.01, "patience": 5})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_stopping_improved_is_relative():
    cfg = TrainConfig(min_rel_improvement=0.1, patience=3)
    assert stopping_improved(0.89, 1.0, cfg) and not stopping_improved(0.95, 1.0, cfg)
    assert stopping_improved(5.0, math.inf, cfg)  # the first finite loss always counts
    assert not stopping_improved(math.nan, math.inf, cfg)
    assert stopping_improved(0.999, 1.0, TrainConfig(patience=3))  # off: any decrease


def test_stop_reasons_cap_and_early_stopping_agree_between_trainers():
    capped, singles = _both(TrainConfig(epochs=4, batch_size=16, lr=1e-2, patience=50))
    assert capped.stop_reason == ["epoch_cap"] * 3 == [s.stop_reason for s in singles]
    stopped, singles = _both(TrainConfig(epochs=60, batch_size=16, lr=3e-2, patience=2))
    assert "early_stopping" in stopped.stop_reason
    assert stopped.stop_reason == [s.stop_reason for s in singles]
    assert stopped.epochs_run == [s.epochs_run for s in singles]


def test_step_cap_is_its_own_reason():
    res, singles = _both(TrainConfig(epochs=50, batch_size=16, max_steps=10, patience=None), num=2)
    assert res.stop_reason == ["step_cap", "step_cap"] == [s.stop_reason for s in singles]


def test_min_rel_improvement_stops_a_slow_creep_earlier_and_matches_the_single_trainer():
    # a tiny learning rate decaying slowly: the validation loss keeps creeping down for many epochs
    base = dict(epochs=80, batch_size=16, lr=2e-4, lr_decay=0.99, patience=5)
    plain, _ = _both(TrainConfig(**base))
    rel, singles = _both(TrainConfig(**base, min_rel_improvement=0.02))
    assert plain.stop_reason.count("epoch_cap") >= 2  # plain patience: the creep postpones the stop
    assert all(r <= p for r, p in zip(rel.epochs_run, plain.epochs_run, strict=True))
    assert sum(rel.epochs_run) < sum(plain.epochs_run)
    assert rel.stop_reason.count("early_stopping") > plain.stop_reason.count("early_stopping")
    assert rel.epochs_run == [s.epochs_run for s in singles]
    assert rel.stop_reason == [s.stop_reason for s in singles]
    assert rel.best_epoch == [s.best_epoch for s in singles]
    # the restored weights are the best seen, not the last that counted for the stopping rule
    for r, s in enumerate(singles):
        assert rel.best_val_loss[r] == pytest.approx(min(s.val_history), rel=1e-6)


def test_zero_min_rel_improvement_is_plain_patience():
    base = dict(epochs=40, batch_size=16, lr=3e-2, patience=3)
    plain, _ = _both(TrainConfig(**base))
    zero, _ = _both(TrainConfig(**base, min_rel_improvement=0.0))
    assert plain.epochs_run == zero.epochs_run and plain.best_epoch == zero.best_epoch


def test_non_finite_validation_loss_stops_as_diverged():
    res, singles = _both(TrainConfig(epochs=30, batch_size=16, lr=1e6, patience=None), num=2)
    assert res.stop_reason == ["diverged", "diverged"] == [s.stop_reason for s in singles]
    assert max(res.epochs_run) < 30


def test_epoch_progress_callback_every_epoch_on_every_path():
    seen: list[EpochProgress] = []
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, patience=None)
    models = _models(3)
    train_ensemble(models, _data(3), cfg, [1, 2, 3], epoch_progress=seen.append)
    assert [p.epoch for p in seen] == [1, 2, 3, 4, 5, 6]
    assert all(p.epochs == 6 and p.members == 3 and p.active == 3 and p.member is None for p in seen)
    seq: list[EpochProgress] = []
    train_ensemble(_models(2), _data(2), cfg.replace(path="sequential"), [1, 2], epoch_progress=seq.append)
    assert [(p.member, p.epoch) for p in seq] == [(m, e) for m in (0, 1) for e in range(1, 7)]

"""The one-pass ensemble trainer reproduces training each realization alone (same seeds)."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn

import scalinglab.training.ensemble as ensemble_mod
from scalinglab.models import get_model
from scalinglab.training.config import TrainConfig
from scalinglab.training.ensemble import train_ensemble
from scalinglab.training.trainer import TrainData, train_model

R = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _feature_data(num_members: int = R, standardize: bool = False) -> TrainData:
    g = torch.Generator().manual_seed(0)
    n = 200
    x = torch.randn(n, 8, generator=g)
    y = x[:, :2].sum(1, keepdim=True) + 0.5 * torch.randn(n, 1, generator=g)
    train = torch.stack([torch.randperm(n, generator=g)[:64] for _ in range(num_members)])
    val = torch.stack([torch.randperm(n, generator=g)[:16] for _ in range(num_members)])
    stats = {}
    if standardize:  # per-member statistics, as fitted on each member's training rows
        xt, yt = x[train], y[train]
        stats = dict(x_mean=xt.mean(1), x_std=xt.std(1), y_mean=yt.mean(1), y_std=yt.std(1))
    return TrainData(x, y, train, val, **stats)


def _image_data() -> TrainData:
    g = torch.Generator().manual_seed(1)
    n = 96
    x = torch.randn(n, 1, 12, 12, generator=g)
    y = torch.stack([x.mean((1, 2, 3)), x.square().mean((1, 2, 3))], 1)
    train = torch.stack([torch.randperm(n, generator=g)[:48] for _ in range(3)])
    val = torch.stack([torch.randperm(n, generator=g)[:12] for _ in range(3)])
    x_mean = torch.stack([x[t].mean() for t in train])  # global input statistics, one per member
    x_std = torch.stack([x[t].std() for t in train])
    return TrainData(x, y, train, val, x_mean=x_mean, x_std=x_std)


def _models(name: str, num: int, **cfg) -> list[nn.Module]:
    out = []
    for s in range(num):
        torch.manual_seed(100 + s)
        out.append(get_model(name, **cfg))
    return out


def _train_both(models, data, cfg, **kw):
    alone = copy.deepcopy(models)
    seeds = [7 + r for r in range(len(models))]
    res = train_ensemble(models, data, cfg, seeds, **kw)
    singles = [train_model(m, data.member(r), cfg, seeds[r]) for r, m in enumerate(alone)]
    return res, singles, alone


def _assert_same_state(models_a, models_b, rtol=1e-4, atol=1e-5):
    for a, b in zip(models_a, models_b):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            torch.testing.assert_close(sa[k].float(), sb[k].float(), rtol=rtol, atol=atol, msg=k)


@pytest.mark.parametrize("activation", ["gelu", "prelu"])
def test_fcn_ensemble_equals_sequential_with_early_stopping(activation):
    data = _feature_data(standardize=True)
    cfg = TrainConfig(epochs=12, batch_size=16, lr=1e-2, patience=2)
    models = _models("fcn", R, in_features=8, width=16, num_layers=2, activation=activation)
    res, singles, alone = _train_both(models, data, cfg)
    assert res.trainer == "ensemble" and res.path == "stacked"
    assert res.epochs_run == [s.epochs_run for s in singles]
    assert res.best_epoch == [s.best_epoch for s in singles]
    assert res.steps == [s.steps for s in singles]
    if activation == "gelu":  # early stopping fires, at different epochs for different members
        assert len(set(res.epochs_run)) >= 3 and min(res.epochs_run) < cfg.epochs
    for r, s in enumerate(singles):
        assert res.best_val_loss[r] == pytest.approx(s.best_val_loss, rel=1e-4)
    _assert_same_state(models, alone)


@pytest.mark.parametrize("group_bytes", [None, 1], ids=["one_group", "one_member_per_group"])
def test_cnn_small_ensemble_equals_sequential_with_batch_norm(group_bytes, monkeypatch):
    if group_bytes is not None:
        monkeypatch.setattr(ensemble_mod, "GROUP_BYTES", group_bytes)
    data = _image_data()
    cfg = TrainConfig(epochs=5, batch_size=16, lr=1e-3, patience=2)
    models = _models("cnn_small", 3, in_channels=1, out_features=2)
    res, singles, alone = _train_both(models, data, cfg)
    assert res.trainer == "ensemble" and res.path == "vmap"
    assert res.epochs_run == [s.epochs_run for s in singles]
    assert res.best_epoch == [s.best_epoch for s in singles]
    _assert_same_state(models, alone)
    # batch norm: every member keeps its own running statistics
    means = [dict(m.named_buffers())["features.1.running_mean"] for m in models]
    assert not torch.allclose(means[0], means[1])
    assert all(int(dict(m.named_buffers())["features.1.num_batches_tracked"]) > 0 for m in models)


def test_member_groups_do_not_change_results(monkeypatch):
    """Processing members in groups (large inputs) gives the results of one group of all members."""
    data = _feature_data()
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, patience=2, grad_clip=0.5, weight_decay=1e-3)
    models = _models("fcn", R, in_features=8, width=8, num_layers=2)
    grouped = copy.deepcopy(models)
    train_ensemble(models, data, cfg, list(range(R)))
    monkeypatch.setattr(ensemble_mod, "GROUP_BYTES", 1)  # one member per group
    train_ensemble(grouped, data, cfg, list(range(R)))
    _assert_same_state(models, grouped, rtol=1e-5, atol=1e-6)


def test_group_size_tuning_runs_and_keeps_results(monkeypatch, caplog):
    data = _feature_data()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, patience=None)  # 12 steps: 8 of them time 2 candidates
    models = _models("fcn", R, in_features=8, width=8, num_layers=2)
    tuned = copy.deepcopy(models)
    train_ensemble(models, data, cfg, list(range(R)))
    monkeypatch.setattr(ensemble_mod, "GROUP_BYTES", 2 * 16 * 8 * 4)  # heuristic: 2 members per group
    monkeypatch.setattr(ensemble_mod, "TUNE_GROUP_SIZE", True)
    with caplog.at_level(logging.INFO, logger="scalinglab.training.ensemble"):
        train_ensemble(tuned, data, cfg, list(range(R)))
    assert "members per group (step times" in caplog.text
    _assert_same_state(models, tuned, rtol=1e-5, atol=1e-6)


def test_same_seeds_give_bit_identical_results():
    data = _feature_data()
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, patience=1)
    a = _models("fcn", R, in_features=8, width=8, num_layers=2)
    b = copy.deepcopy(a)
    train_ensemble(a, data, cfg, list(range(R)))
    train_ensemble(b, data, cfg, list(range(R)))
    _assert_same_state(a, b, rtol=0, atol=0)


def test_stopped_members_are_frozen_including_optimizer_state():
    data = _feature_data()
    cfg = TrainConfig(epochs=12, batch_size=16, lr=1e-2, patience=2)
    models = _models("fcn", R, in_features=8, width=16, num_layers=2)
    snapshots = []

    def record(state):
        snapshots.append((state.epoch, state.active.clone(), state.flat.clone(),
                          {k: v.clone() for k, v in state.opt_state.items()}))

    res = train_ensemble(models, data, cfg, list(range(R)), on_epoch_end=record)
    stopped = [r for r in range(R) if res.epochs_run[r] < len(snapshots)]
    assert stopped, "the scenario must stop some members before others"
    for r in stopped:
        e = res.epochs_run[r]  # the member was active through epoch e and frozen afterwards
        _, active, flat, opt = snapshots[e - 1]
        assert not bool(active[r])
        for _, _, later_flat, later_opt in snapshots[e:]:
            assert torch.equal(later_flat[r], flat[r])
            for k in opt:
                assert torch.equal(later_opt[k][r], opt[k][r])
    running = [r for r in range(R) if res.epochs_run[r] == len(snapshots)]
    assert running and not torch.equal(snapshots[-1][2][running[0]], snapshots[-2][2][running[0]])


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_other_optimizers_and_grad_clipping_match_sequential(optimizer):
    data = _feature_data(num_members=3)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=2e-2, optimizer=optimizer, weight_decay=1e-2,
                      grad_clip=0.5, schedule="cosine", patience=None)
    models = _models("fcn", 3, in_features=8, width=8, num_layers=2)
    res, singles, alone = _train_both(models, data, cfg)
    assert res.path == "stacked"
    _assert_same_state(models, alone)


def test_step_limit():
    data = _feature_data(num_members=2)
    cfg = TrainConfig(epochs=50, batch_size=16, max_steps=10, patience=None)
    models = _models("fcn", 2, in_features=8, width=8, num_layers=1)
    res, singles, alone = _train_both(models, data, cfg)
    assert res.steps == [10, 10] == [s.steps for s in singles]
    assert res.epochs_run == [3, 3]  # 4 steps per epoch: the limit falls in the third epoch
    _assert_same_state(models, alone)


class _Unstackable(nn.Module):
    """Data-dependent Python control flow: cannot run under vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)  # not a plain MLP: the stacked path does not apply, vmap is tried
        self.lin = nn.Linear(8, 1)

    def forward(self, x):
        h = self.lin(self.norm(x))
        if float(h.detach().sum()) > 1e9:
            return -h
        return h


def test_unstackable_model_falls_back_to_sequential_and_logs(caplog):
    data = _feature_data(num_members=2)
    cfg = TrainConfig(epochs=2, batch_size=32, patience=None)
    torch.manual_seed(0)
    models = [_Unstackable(), _Unstackable()]
    with caplog.at_level(logging.WARNING, logger="scalinglab.training.ensemble"):
        res, singles, alone = _train_both(models, data, cfg)
    assert res.trainer == "sequential" and res.path == "sequential"
    assert "sequentially" in caplog.text
    _assert_same_state(models, alone, rtol=0, atol=0)


def test_forced_paths_agree():
    """An MLP trained through vmap equals the same MLP trained through stacked bmm layers."""
    data = _feature_data(num_members=2)
    cfg = TrainConfig(epochs=2, batch_size=16, patience=None)
    a = _models("fcn", 2, in_features=8, width=8, num_layers=2)
    b = copy.deepcopy(a)
    assert train_ensemble(a, data, cfg, [1, 2]).path == "stacked"
    assert train_ensemble(b, data, cfg.replace(path="vmap"), [1, 2]).path == "vmap"
    _assert_same_state(a, b)
    with pytest.raises(ValueError, match="not a plain MLP"):
        train_ensemble(_models("cnn_small", 3, in_channels=1, out_features=2), _image_data(),
                       cfg.replace(path="stacked"), [1, 2, 3])


def test_mismatched_inputs_are_rejected():
    data = _feature_data(num_members=2)
    models = _models("fcn", 2, in_features=8, width=8, num_layers=1)
    with pytest.raises(ValueError, match="2 models, data for 2 members and 1 shuffle seeds"):
        train_ensemble(models, data, TrainConfig(epochs=1), [0])
    other = [models[0], get_model("fcn", in_features=8, width=4, num_layers=1)]
    with pytest.raises(ValueError, match="share one architecture"):
        train_ensemble(other, data, TrainConfig(epochs=1), [0, 1])

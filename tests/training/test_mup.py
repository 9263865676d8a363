"""muP in both trainers: each parameter trains at base lr x its ``lr_multipliers`` factor (paper 3 Eq. 21)."""

from __future__ import annotations

import copy

import pytest
import torch

from scalinglab.models import get_model
from scalinglab.training.config import TrainConfig
from scalinglab.training.ensemble import train_ensemble
from scalinglab.training.trainer import TrainData, train_model

R = 3
LR = 1e-3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _data(num_members: int = R) -> TrainData:
    g = torch.Generator().manual_seed(0)
    n = 160
    x = torch.randn(n, 6, generator=g)
    y = (x[:, :3].sin().sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g))
    train = torch.stack([torch.randperm(n, generator=g)[:64] for _ in range(num_members)])
    val = torch.stack([torch.randperm(n, generator=g)[:16] for _ in range(num_members)])
    return TrainData(x, y, train, val)


def _models(num: int, width: int = 32) -> list[torch.nn.Module]:
    out = []
    for s in range(num):
        torch.manual_seed(200 + s)
        out.append(get_model("mlp_invariants", in_features=6, width=width, num_layers=3))
    return out


def _check_first_step(before: torch.nn.Module, after: torch.nn.Module) -> None:
    """The first Adam step moves every element by lr x multiplier (|m_hat / sqrt(v_hat)| = 1)."""
    mult = before.lr_multipliers
    assert any(m != 1.0 for m in mult.values())  # the test must exercise a non-trivial multiplier
    pa, pb = dict(before.named_parameters()), dict(after.named_parameters())
    for name, p0 in pa.items():
        ratio = (pb[name].detach() - p0.detach()).abs() / (LR * mult[name])
        assert float(ratio.max()) <= 1 + 1e-3, name
        assert float(ratio.median()) >= 0.99, name


def test_single_trainer_first_adam_step_is_lr_times_multiplier():
    data = _data(1)
    model = _models(1)[0]
    before = copy.deepcopy(model)
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=64, lr=LR, schedule="constant", patience=None)
    train_model(model, data, cfg, shuffle_seed=3)
    _check_first_step(before, model)


@pytest.mark.parametrize("path", ["vmap", "sequential"])
def test_ensemble_first_adam_step_is_lr_times_multiplier(path):
    data = _data()
    models = _models(R)
    before = copy.deepcopy(models)
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=64, lr=LR, schedule="constant", patience=None,
                      path=path)
    train_ensemble(models, data, cfg, [5, 6, 7])
    for b, a in zip(before, models):
        _check_first_step(b, a)


def test_ensemble_equals_sequential_with_mup():
    data = _data()
    models = _models(R)
    alone = copy.deepcopy(models)
    cfg = TrainConfig(epochs=6, batch_size=16, lr=3e-3, patience=2, schedule="cosine")
    seeds = [11, 12, 13]
    res = train_ensemble(models, data, cfg, seeds)
    assert res.trainer == "ensemble"
    singles = [train_model(m, data.member(r), cfg, seeds[r]) for r, m in enumerate(alone)]
    assert res.best_epoch == [s.best_epoch for s in singles]
    for a, b in zip(models, alone):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(v.float(), b.state_dict()[k].float(), rtol=1e-4, atol=1e-5, msg=k)

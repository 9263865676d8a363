"""Log targets (paper 3): |M|^2-like targets learned as log(y) standardized; metrics in both unit systems."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.data.store import DatasetStore
from scalinglab.sweeps.spec import SpecError, parse_spec
from scalinglab.training.config import TrainConfig
from scalinglab.training.experiment import ExperimentSpec, run_experiment

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _store(path, n: int = 1200, sign: float = 1.0):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = sign * np.exp(3.0 * x[:, 0] + x[:, 1])  # spans e^-4 .. e^4: four orders of magnitude
    store = DatasetStore.create(path, input_shape=(3,), target_names=["amp2"], target_units=[""],
                                metadata={"producer": "test", "config": {}})
    store.append(x, y[:, None])
    store.close()
    return str(path)


def _spec(data, transform):
    return ExperimentSpec(data=data, model="fcn", model_config={"width": 32, "num_layers": 2}, target="amp2",
                          num_train=800, seeds=[1], test_size=300, target_transform=transform,
                          train=TrainConfig(epochs=40, batch_size=64, lr=3e-3, schedule="cosine", patience=None))


def test_log_target_learns_exponential_and_reports_relative_error(tmp_path):
    data = _store(tmp_path / "s.zarr")
    rec = run_experiment(_spec(data, "log"), progress=False)[0]
    raw = run_experiment(_spec(data, "none"), progress=False)[0]
    assert rec["target_transform"] == "log" and "target_transform" not in raw
    # log(y) is linear in x: learned to a small standardized MSE, and to a few % relative error in y
    assert rec["test_normalized"]["mse"] < 1e-2
    assert rec["test_relative_error"]["median"] < 0.05
    # paper 3 Eq. 23 from the stored predictions' own errors: between the median and a bound by the mean
    eps = rec["test_epsilon"]
    assert 0 < eps < rec["test_relative_error"]["q90"] * 3
    # the raw target is dominated by its largest values; its relative error on small y is far worse
    assert raw["test"]["mape"] > 3 * rec["test"]["mape"]


def test_log_target_rejects_non_positive_values(tmp_path):
    data = _store(tmp_path / "neg.zarr", sign=-1.0)
    with pytest.raises(ValueError, match="targets > 0"):
        run_experiment(_spec(data, "log"), progress=False)
    with pytest.raises(ValueError, match="target_transform 'sqrt' unknown"):
        run_experiment(_spec(data, "sqrt"), progress=False)


def test_sweep_key_target_transform():
    base = {"sweep": {"dataset": "x", "targets": ["amp2"], "data_sizes": [64, 128]},
            "models": [{"model": "fcn"}]}
    assert parse_spec(base).target_transform == "none"
    base["sweep"]["target_transform"] = "log"
    base["sweep"]["input_norm"] = "none"
    spec = parse_spec(base)
    assert spec.target_transform == "log" and spec.input_norm == "none"
    base["sweep"]["target_transform"] = "exp"
    with pytest.raises(SpecError, match="target_transform"):
        parse_spec(base)


def test_min_steps_raises_the_epochs_of_small_training_sets(tmp_path):
    from scalinglab.training.config import TrainConfig

    cfg = TrainConfig(epochs=10, batch_size=64, min_steps=200, patience=None)
    assert cfg.for_train_size(64).epochs == 200  # 1 step per epoch
    assert cfg.for_train_size(640).epochs == 20  # 10 steps per epoch
    assert cfg.for_train_size(6400).epochs == 10  # already 1000 steps: unchanged
    assert TrainConfig(epochs=10).for_train_size(64).epochs == 10  # off by default
    with pytest.raises(ValueError, match="min_steps"):
        TrainConfig(min_steps=0)
    data = _store(tmp_path / "s.zarr")
    spec = _spec(data, "log")
    spec = type(spec)(**{**spec.__dict__, "num_train": 128,
                         "train": TrainConfig(epochs=5, batch_size=64, lr=3e-3, schedule="cosine", patience=None,
                                              min_steps=60)})
    rec = run_experiment(spec, progress=False)[0]
    # 128 samples minus the validation eighth: 112 -> 2 steps per epoch -> 30 epochs for 60 steps
    assert rec["max_epochs"] == 30 and rec["epochs_run"] == 30 and rec["train_steps"] == 60

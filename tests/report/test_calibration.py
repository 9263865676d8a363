"""Heteroscedastic calibration: learned pulls on data with known input-dependent noise are ~N(0, 1)."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.data.store import DatasetStore
from scalinglab.report.calibration import calibration_figure, pooled_pulls
from scalinglab.training.config import TrainConfig
from scalinglab.training.experiment import ExperimentSpec, run_experiment

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _hetero_store(path, n: int = 6000):
    """y = sin(2 x0) + sigma(x) eps with sigma = 0.05 + 0.3 |x1|: the noise level varies 7x over the inputs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    sigma = 0.05 + 0.3 * np.abs(x[:, 1])
    y = np.sin(2 * x[:, 0]) + sigma * rng.normal(size=n)
    store = DatasetStore.create(path, input_shape=(2,), target_names=["y"], target_units=[""],
                                metadata={"producer": "test", "config": {}})
    store.append(x, y[:, None])
    store.close()
    return str(path)


def test_learned_pulls_are_unit_gaussian_and_figure_renders(tmp_path):
    data = _hetero_store(tmp_path / "h.zarr")
    spec = ExperimentSpec(data=data, model="fcn", model_config={"width": 32, "num_layers": 2}, target="y",
                          num_train=4000, seeds=[1, 2], test_size=1500,
                          train=TrainConfig(epochs=30, batch_size=128, lr=3e-3, schedule="cosine",
                                            patience=None, loss="gaussian_nll"))
    records = run_experiment(spec, progress=False)
    for rec in records:
        cal = rec["calibration"]
        assert abs(cal["pull_std"] - 1.0) < 0.2
        assert abs(cal["pull_mean"]) < 0.2
        q = cal["sigma_quantiles"]
        # the learned sigma follows the true spread: 5% vs 95% quantiles differ by a large factor (true ~5x)
        assert q["0.95"] / q["0.05"] > 2.5
        assert sum(cal["pull_counts"]) > 0.99 * 1500
    edges, density = pooled_pulls(records)
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
    out = calibration_figure(records, tmp_path / "cal.png")
    assert out.stat().st_size > 1000


def test_no_calibration_records_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        calibration_figure([{"num_train": 8}], tmp_path / "x.png")

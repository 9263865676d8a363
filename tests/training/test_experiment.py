"""run_experiment end to end on tiny stores built here; bad input gives one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.data.store import DatasetStore
from scalinglab.training.config import TrainConfig
from scalinglab.training.experiment import ExperimentSpec, run_experiment

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


def _feature_store(path, n: int = 320):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    J = 3.0 * x[:, 0] - x[:, 1] + 5.0  # linear: an FCN fits it well
    D = 0.1 + 0.05 * x[:, 2] ** 2
    store = DatasetStore.create(path, input_shape=(6,), target_names=["J", "D"], target_units=["meV", "meV"],
                                metadata={"producer": "test", "config": {}})
    store.append(x, np.stack([J, D], 1))
    store.close()
    return str(path)


def _image_store(path, n: int = 120):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    y = x.mean(axis=(1, 2, 3))[:, None] * 4 + 1
    store = DatasetStore.create(path, input_shape=(1, 8, 8), target_names=["m"], target_units=[""],
                                metadata={"producer": "test", "config": {}})
    store.append(x, y)
    store.close()
    return str(path)


FAST = TrainConfig(epochs=25, batch_size=32, lr=1e-2, patience=10)


def _spec(data, **kw):
    base = dict(data=data, model="fcn", model_config={"width": 16, "num_layers": 2}, target="J", num_train=192,
                seeds=[11, 12, 13], test_size=64, split_seed=0, train=FAST)
    base.update(kw)
    return ExperimentSpec(**base)


def test_end_to_end_records(tmp_path):
    data = _feature_store(tmp_path / "ds")
    records = run_experiment(_spec(data), progress=False)
    assert len(records) == 3
    json.dumps(records)  # JSON-serializable
    W, F, L = 16, 6, 2
    fwd = 2 * (F * W + (L - 1) * W * W + W)  # matmul FLOPs per sample, forward
    per_sample = 2 * fwd + 2 * ((L - 1) * W * W + W)  # + weight grads + grads into hidden layers
    for r, rec in enumerate(records):
        assert rec["realization"] == r and rec["seed"] == 11 + r
        assert rec["trainer"] == "ensemble" and rec["path"] == "stacked"
        assert rec["num_params"] == W * (F + (L - 1) * W + 1 + L) + 1  # paper 1's N_M
        assert 1 <= rec["best_epoch"] <= rec["epochs_run"] <= FAST.epochs
        assert rec["train_steps"] == rec["epochs_run"] * 6  # 168 training samples, batch 32
        assert rec["flops"] == rec["epochs_run"] * 168 * per_sample
        assert rec["test"]["r2"] > 0.9
        # units: an affine target transform scales errors by the target std and leaves R^2 unchanged
        assert rec["test"]["r2"] == pytest.approx(rec["test_normalized"]["r2"], rel=1e-9)
        ratio = rec["test"]["mse"] / rec["test_normalized"]["mse"]
        assert ratio == pytest.approx((rec["test"]["mae"] / rec["test_normalized"]["mae"]) ** 2, rel=1e-9)
        assert set(rec["seeds"]) == {"subset", "init", "shuffle"}
    assert len({rec["test"]["mse"] for rec in records}) == 3  # independent realizations


def test_a_realization_rerun_alone_gives_the_same_result(tmp_path):
    data = _feature_store(tmp_path / "ds")
    cfg = TrainConfig(epochs=6, batch_size=32, lr=1e-2, patience=None)
    together = run_experiment(_spec(data, train=cfg), progress=False)
    alone = run_experiment(_spec(data, train=cfg, seeds=[12]), progress=False)
    assert alone[0]["seeds"] == together[1]["seeds"]
    assert alone[0]["test"]["mse"] == pytest.approx(together[1]["test"]["mse"], rel=1e-4)


def test_multi_target_image_model_and_gaussian_nll(tmp_path):
    data = _image_store(tmp_path / "img")
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, patience=None, loss="gaussian_nll")
    spec = ExperimentSpec(data=data, model="cnn_small", target="m", num_train=64, seeds=[1, 2], test_size=24,
                          train=cfg, input_norm="global")
    records = run_experiment(spec, progress=False)
    assert [r["path"] for r in records] == ["vmap", "vmap"]
    assert all(np.isfinite(r["test"]["mse"]) and r["flops"] > 0 for r in records)
    data2 = _feature_store(tmp_path / "ds")
    rec = run_experiment(_spec(data2, target=["J", "D"], seeds=[5]), progress=False)[0]
    assert set(rec["test_per_target"]) == {"J", "D"}
    assert rec["test"]["mse"] == pytest.approx(np.mean([v["mse"] for v in rec["test_per_target"].values()]))


def _one_line_error(exc_type, spec, match):
    with pytest.raises(exc_type, match=match) as info:
        run_experiment(spec, progress=False)
    assert "\n" not in str(info.value)


def test_bad_input_errors(tmp_path):
    data = _feature_store(tmp_path / "ds")
    _one_line_error(ValueError, _spec(data, target="theta"), "target.*theta.*not in dataset")
    _one_line_error(ValueError, _spec(data, num_train=10_000), "num_train = 10000 is larger than the pool")
    _one_line_error(ValueError, _spec(data, model="nope"), "unknown model 'nope'")
    _one_line_error(ValueError, _spec(data, model_config={"widht": 3}), "widht")
    _one_line_error(ValueError, _spec(data, model="cnn_small", model_config={}), "does not accept inputs of shape")
    _one_line_error(FileNotFoundError, _spec(str(tmp_path / "missing")), "not found")
    _one_line_error(ValueError, _spec(data, input_norm="pixel"), "input_norm 'pixel' unknown")


def test_nan_in_inputs_is_reported(tmp_path):
    import zarr

    data = _feature_store(tmp_path / "ds")
    arr = zarr.open_array(str(tmp_path / "ds" / "inputs"), mode="r+")  # corrupt behind the store's back
    row = arr[:]
    row[7, 2] = np.nan
    arr[:] = row
    # the store's chunk checksums see the edit first ...
    _one_line_error(ValueError, _spec(data, num_train=310, test_size=10), "is damaged: array 'inputs' samples 0..")
    # ... and in a store written before checksums the experiment's own finiteness check names the sample
    store = DatasetStore.open(data)
    DatasetStore._write_commit_file(tmp_path / "ds", store.num_samples, store.state, None)
    _one_line_error(ValueError, _spec(data, num_train=310, test_size=10), "NaN or inf.*index 7")


def test_records_carry_status_stop_reason_and_the_mean_predictor_baseline(tmp_path):
    data = _feature_store(tmp_path / "ds")
    ok = run_experiment(_spec(data, train=FAST.replace(epochs=60, patience=3)), progress=False)
    for rec in ok:
        assert rec["status"] == "ok" and rec["stop_reason"] == "early_stopping" and rec["max_epochs"] == 60
        # standardized units: predicting the training mean costs about the target's variance, 1
        assert 0.7 < rec["mean_predictor_mse"] < 1.5 and rec["test_normalized"]["mse"] < 0.2
    capped = run_experiment(_spec(data, train=FAST.replace(epochs=3, patience=50)), progress=False)
    assert {r["status"] for r in capped} == {"at_epoch_cap"} and {r["stop_reason"] for r in capped} == {"epoch_cap"}
    blown = run_experiment(_spec(data, train=FAST.replace(lr=1e6, patience=None)), progress=False)
    assert {r["status"] for r in blown} == {"diverged"}
    json.dumps(blown)


def test_epoch_progress_reaches_run_experiment_callers(tmp_path):
    data = _feature_store(tmp_path / "ds")
    seen = []
    run_experiment(_spec(data, train=FAST.replace(epochs=4, patience=None)), progress=False,
                   epoch_progress=seen.append)
    assert [p.epoch for p in seen] == [1, 2, 3, 4] and seen[-1].members == 3

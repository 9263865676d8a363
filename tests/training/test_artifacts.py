"""Kept artifacts: checkpoints reproduce the recorded test predictions, generator mode, noise augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalinglab.data.store import DatasetStore
from scalinglab.training.checkpoint import load_checkpoint
from scalinglab.training.config import TrainConfig
from scalinglab.training.experiment import ExperimentSpec, run_experiment
from scalinglab.training.trainer import TrainData

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = TrainConfig(epochs=20, batch_size=32, lr=1e-2, patience=10)


def _pair_store(path, n: int = 200):
    """Two-channel 6x6 'images' whose pattern is set by two parameters (a tiny stand-in for CrI3 data)."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(1, 10, n), rng.uniform(0.01, 0.3, n)
    u = np.linspace(-1, 1, 6)
    xx, yy = np.meshgrid(u, u)
    top = np.tanh(a[:, None, None] * 0.2 * xx + b[:, None, None] * 5 * yy)
    bottom = np.cos(a[:, None, None] * 0.3 * yy) * (1 - b[:, None, None])
    x = np.stack([top, bottom], 1).astype(np.float32)
    store = DatasetStore.create(path, input_shape=(2, 6, 6), target_names=["J", "D"], target_units=["meV", "meV"],
                                aux_specs={"phase": ("int8", ())}, metadata={"producer": "test", "config": {}})
    store.append(x, np.stack([a, b], 1), aux={"phase": (a > 5).astype(np.int8) + 1})
    store.close()
    return str(path)


def _spec(data, tmp_path, **kw):
    base = dict(data=data, model="fcn", model_config={"width": 16, "num_layers": 2}, target="J", num_train=128,
                seeds=[5, 6], test_size=40, train=FAST, save=("models", "predictions"),
                save_dir=str(tmp_path / "art"))
    base.update(kw)
    return ExperimentSpec(**base)


def test_checkpoint_reproduces_saved_predictions(tmp_path):
    data = _pair_store(tmp_path / "ds")
    records = run_experiment(_spec(data, tmp_path), progress=False)
    store = DatasetStore.open(data)
    for rec in records:
        files = rec["artifacts"]
        pred = np.load(tmp_path / "art" / files["predictions"])
        idx = pred["test_indices"]
        assert len(idx) == 40 and pred["pred"].shape == (40, 1)
        np.testing.assert_allclose(pred["true"][:, 0], store.targets(["J"], indices=idx)[:, 0])
        # training and test rows never overlap
        assert not set(pred["train_indices"]) & set(idx) and not set(pred["val_indices"]) & set(idx)
        net = load_checkpoint(tmp_path / "art" / files["checkpoint"])
        again, sigma = net.predict(store.inputs(indices=idx))
        assert sigma is None
        np.testing.assert_allclose(again, pred["pred"], rtol=1e-5, atol=1e-5)
        mae = np.abs(again - pred["true"]).mean()
        assert mae == pytest.approx(rec["test"]["mae"], rel=1e-4)
    # weights_only loading is what load_checkpoint uses; a checkpoint is plain tensors and containers
    torch.load(tmp_path / "art" / "r0.pt", weights_only=True)


def test_heteroscedastic_checkpoint_predicts_sigma(tmp_path):
    data = _pair_store(tmp_path / "ds")
    spec = _spec(data, tmp_path, train=FAST.replace(loss="gaussian_nll"), seeds=[1])
    rec = run_experiment(spec, progress=False)[0]
    saved = np.load(tmp_path / "art" / rec["artifacts"]["predictions"])
    assert saved["sigma"].shape == (40, 1) and (saved["sigma"] > 0).all()
    store = DatasetStore.open(data)
    pred, sigma = load_checkpoint(tmp_path / "art" / "r0.pt").predict(store.inputs(indices=saved["test_indices"]))
    np.testing.assert_allclose(sigma, saved["sigma"], rtol=1e-5)
    np.testing.assert_allclose(pred, saved["pred"], rtol=1e-5, atol=1e-6)


def test_generator_mode_trains_and_generates(tmp_path):
    data = _pair_store(tmp_path / "ds")
    spec = _spec(data, tmp_path, model="generator_fcn", model_config={"hidden_widths": [32, 64]},
                 target=["J", "D"], mode="generate", train=FAST.replace(loss="mae", epochs=40))
    records = run_experiment(spec, progress=False)
    store = DatasetStore.open(data)
    rec = records[0]
    saved = np.load(tmp_path / "art" / rec["artifacts"]["predictions"])
    idx = saved["test_indices"]
    net = load_checkpoint(tmp_path / "art" / "r0.pt")
    assert net.mode == "generate" and net.input_names == ["J", "D"]
    images = net.generate(store.targets(["J", "D"], indices=idx))
    true = store.inputs(indices=idx)
    assert images.shape == true.shape
    per_layer = np.abs(images - true).reshape(len(idx), 2, -1).mean(-1)
    np.testing.assert_allclose(per_layer, saved["mae_per_layer"], rtol=1e-4, atol=1e-6)
    assert rec["test"]["mae"] == pytest.approx(per_layer.mean(), rel=1e-4)
    # it learned something: better than the mean image of the training set
    mean_image = store.inputs(indices=saved["train_indices"]).mean(0)
    assert rec["test"]["mae"] < 0.8 * np.abs(true - mean_image).mean()
    with pytest.raises(ValueError, match="generator"):
        net.predict(true)
    with pytest.raises(ValueError, match="parameters of shape \\[2\\]"):
        net.generate(np.zeros((3, 3)))


def test_bad_checkpoint_files_give_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable scalinglab checkpoint"):
        load_checkpoint(junk)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a scalinglab network checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_bad_save_settings(tmp_path):
    data = _pair_store(tmp_path / "ds")
    with pytest.raises(ValueError, match="unknown save kind"):
        run_experiment(_spec(data, tmp_path, save=("weights",)), progress=False)
    with pytest.raises(ValueError, match="save needs save_dir"):
        run_experiment(_spec(data, tmp_path, save_dir=None), progress=False)
    with pytest.raises(ValueError, match="cannot generate images"):
        run_experiment(_spec(data, tmp_path, mode="generate", target=["J", "D"]), progress=False)


def test_noise_augmentation_has_the_requested_snr():
    """Training minibatches get noise at an SNR uniform in dB (Eqs. 7-10); validation batches stay clean."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 30, 30, generator=g) + 0.5
    data = TrainData(x=x, y=torch.zeros(64, 1), train_idx=torch.arange(48), val_idx=torch.arange(48, 64),
                     noise_snr_db=(10.0, 10.0), noise_seed=1)
    rows = torch.arange(48).reshape(1, 48)
    clean, _ = data.batch(rows)
    noisy, _ = data.batch(rows, augment=True)
    torch.testing.assert_close(clean[0], x[:48])
    signal = clean.reshape(48, -1).pow(2).mean(1)
    noise = (noisy - clean).reshape(48, -1).pow(2).mean(1)
    snr_db = 10 * torch.log10(signal / noise)
    assert (snr_db - 10.0).abs().max() < 0.5  # 1800 pixels per image
    # a range draws per-sample SNRs spread over it; a fraction leaves the rest clean
    spread = TrainData(x=x, y=torch.zeros(64, 1), train_idx=torch.arange(48), val_idx=torch.arange(48, 64),
                       noise_snr_db=(-10.0, 20.0), noise_fraction=0.5, noise_seed=2)
    out, _ = spread.batch(rows, augment=True)
    diff = (out - clean).reshape(48, -1).pow(2).mean(1)
    clean_rows = diff == 0
    assert 10 <= int(clean_rows.sum()) <= 38
    snr = 10 * torch.log10(signal[~clean_rows] / diff[~clean_rows])
    assert snr.min() > -11 and snr.max() < 21 and snr.max() - snr.min() > 15
    # same seed, same noise
    again = TrainData(x=x, y=torch.zeros(64, 1), train_idx=torch.arange(48), val_idx=torch.arange(48, 64),
                      noise_snr_db=(-10.0, 20.0), noise_fraction=0.5, noise_seed=2)
    torch.testing.assert_close(again.batch(rows, augment=True)[0], out)


def test_noise_config_validation():
    with pytest.raises(ValueError, match="noise_snr_db"):
        TrainConfig(noise_snr_db=(20.0, -10.0))
    with pytest.raises(ValueError, match="noise_fraction"):
        TrainConfig(noise_fraction=0.0)
    assert TrainConfig.from_dict({"noise_snr_db": [-10, 20]}).noise_snr_db == (-10.0, 20.0)

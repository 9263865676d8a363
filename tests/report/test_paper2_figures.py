"""Paper 2 figure functions: each writes a non-empty PNG from synthetic arrays; bad shapes raise ValueError."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from scalinglab.analysis import (
    binned_mae,
    boundary_points,
    distance_to_boundary,
    error_pca,
    image_mae,
    interval_coverage,
    magnetization_errors,
    normalize_parameters,
    pulls,
)
from scalinglab.analysis.normalization import CRI3_RANGES
from scalinglab.report import paper2

# two parameters keep the test fast (every function is shape-agnostic; the CLI draws three)
NAMES, UNITS = ["J", "D"], ["meV", "meV"]
RANGES = [CRI3_RANGES[k] for k in NAMES]


@pytest.fixture(scope="module")
def synth():
    rng = np.random.default_rng(0)
    n = 600
    lo, hi = np.array(RANGES).T
    t = rng.normal(size=n)
    true = lo + (hi - lo) * rng.random((n, 2))
    pred = true + (hi - lo) * np.stack([-0.02 * t, 0.025 * t], 1) + 0.002 * rng.normal(size=(n, 2))
    tn, pn = normalize_parameters(true, RANGES), normalize_parameters(pred, RANGES)
    phase = np.where(tn[:, 1] < 0.2, 0, np.where(tn[:, 0] + tn[:, 1] < 1.0, 1, 2))  # FM / NCD / MD
    return {"rng": rng, "true": true, "pred": pred, "tn": tn, "pn": pn, "phase": phase}


def _check_png(path):
    assert path.exists() and path.stat().st_size > 5000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.02  # not a blank canvas


def test_pred_vs_true(synth, tmp_path):
    _check_png(paper2.fig_pred_vs_true(synth["true"], synth["pred"], NAMES, UNITS, tmp_path / "f3.png"))
    with pytest.raises(ValueError, match="differ"):
        paper2.fig_pred_vs_true(synth["true"], synth["pred"][:, :1], NAMES, UNITS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="names"):
        paper2.fig_pred_vs_true(synth["true"], synth["pred"], NAMES[:1], UNITS, tmp_path / "x.png")


def test_binned_mae(synth, tmp_path):
    train = synth["rng"].random((2000, 2)) ** 0.7
    b = binned_mae(np.abs(synth["pn"] - synth["tn"]), synth["tn"], train)
    _check_png(paper2.fig_binned_mae(b, NAMES, tmp_path / "f4.png"))
    with pytest.raises(ValueError, match="names"):
        paper2.fig_binned_mae(b, NAMES[:1], tmp_path / "x.png")


def test_error_pca(synth, tmp_path):
    e = synth["pn"] - synth["tn"]
    _check_png(paper2.fig_error_pca(e, error_pca(e), NAMES, tmp_path / "f5.png"))
    with pytest.raises(ValueError, match="components"):
        paper2.fig_error_pca(e[:, :1], error_pca(e), NAMES[:1], tmp_path / "x.png")


def test_mae_vs_distance(synth, tmp_path):
    tn, ph = synth["tn"], synth["phase"]
    d = {"FM-NCD": distance_to_boundary(tn, boundary_points(tn, ph, [0], [1])),
         "NCD-MD": distance_to_boundary(tn, boundary_points(tn, ph, [1], [2]))}
    err = np.abs(synth["pn"] - tn)
    _check_png(paper2.fig_mae_vs_distance(d, err, NAMES, tmp_path / "f6.png"))
    _check_png(paper2.fig_mae_vs_distance(d, err[:, 0], ["image"], tmp_path / "f9.png"))
    with pytest.raises(ValueError, match="samples"):
        paper2.fig_mae_vs_distance({"FM-NCD": d["FM-NCD"][:-1]}, err, NAMES, tmp_path / "x.png")


def test_noise(synth, tmp_path):
    snr = np.arange(20, -11, -5.0)
    base = np.array([2.0, 3.0])
    mape = {"trained clean": base * (1 + 10 ** (-snr[:, None] / 10)),
            "trained with noise": base * (1 + 0.3 * 10 ** (-snr[:, None] / 10))}
    pvt = {"trained clean": (synth["true"], synth["pred"], -10.0),
           "trained with noise": (synth["true"], 0.5 * (synth["true"] + synth["pred"]), -10.0)}
    _check_png(paper2.fig_noise(snr, mape, NAMES, tmp_path / "f7.png", pred_vs_true=pvt, units=UNITS))
    with pytest.raises(ValueError, match=r"\[S="):
        paper2.fig_noise(snr[:-1], mape, NAMES, tmp_path / "x.png")


def _images(n, rng, size=24):
    yy, xx = np.mgrid[0:size, 0:size] / size
    ph = rng.random((n, 1, 1))
    top = np.tanh(5 * np.sin(2 * np.pi * (2 * xx + ph)) * np.cos(2 * np.pi * 2 * yy))
    bottom = np.tanh(3 * np.cos(2 * np.pi * (3 * yy + ph))) * 0.5 + 0.4
    return np.stack([top, bottom], axis=1)


def test_generator_errors_and_gallery_and_magnetization(synth, tmp_path):
    rng = synth["rng"]
    n = len(synth["tn"])
    true = _images(n, rng)
    gen = np.clip(true + 0.05 * rng.normal(size=true.shape), -1, 1)
    mae = image_mae(gen, true).mean(axis=1)
    keep = synth["phase"] > 0  # FM states are not in the image data set
    _check_png(paper2.fig_generator_errors(mae[keep], synth["phase"][keep], {1: "NCD", 2: "MD"}, synth["tn"][keep],
                                           NAMES, tmp_path / "f8.png"))
    titles = [f"theta=1.25 deg, J={t[0]:.1f} meV, D={t[1]:.2f} meV" for t in synth["true"][:3]]
    _check_png(paper2.fig_gallery(true[:3], gen[:3], titles, tmp_path / "gallery.png"))
    m = magnetization_errors(gen, true)
    tn, ph = synth["tn"], synth["phase"]
    d = {"FM-NCD": distance_to_boundary(tn, boundary_points(tn, ph, [0], [1])),
         "NCD-MD": distance_to_boundary(tn, boundary_points(tn, ph, [1], [2]))}
    _check_png(paper2.fig_magnetization(m["ape"], synth["true"], NAMES, UNITS, tmp_path / "f10.png",
                                        distances=d, abs_err=m["abs"]))
    with pytest.raises(ValueError, match="phase"):
        paper2.fig_generator_errors(mae, synth["phase"][:-1], {}, synth["tn"], NAMES, tmp_path / "x.png")
    with pytest.raises(ValueError, match="differ"):
        paper2.fig_gallery(true[:3], gen[:2], titles, tmp_path / "x.png")
    with pytest.raises(ValueError, match="abs_err"):
        paper2.fig_magnetization(m["ape"], synth["true"], NAMES, UNITS, tmp_path / "x.png", distances=d)


def test_calibration(synth, tmp_path):
    rng = synth["rng"]
    mean = rng.normal(size=(2000, 2))
    sigma = 0.1 + rng.random((2000, 2))
    true = mean + sigma * rng.normal(size=mean.shape)
    cov = interval_coverage(mean, sigma, true, levels=(0.5, 0.68, 0.9, 0.95))
    _check_png(paper2.fig_calibration(pulls(mean, sigma, true), cov, NAMES, tmp_path / "cal.png"))
    with pytest.raises(ValueError, match="coverage"):
        paper2.fig_calibration(pulls(mean, sigma, true), {0.68: np.ones(3)}, NAMES, tmp_path / "x.png")

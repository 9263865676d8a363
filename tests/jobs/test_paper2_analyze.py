"""``scalinglab analyze`` / ``generate`` end to end on a tiny synthetic CrI3-like dataset with phase labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data.store import DatasetStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AUX = {"phase": ("int8", ())}


def _cri3_like(path, n: int = 260, seed: int = 0):
    """theta, J, D in paper 2's ranges; 2 x 8 x 8 images that depend on them; phases from a known rule:
    FM for D > 0.25 (to the FM side store), MD for J > 6, NCD otherwise."""
    rng = np.random.default_rng(seed)
    theta = rng.choice(np.linspace(1.1, 3.8, 8), n)
    J, D = rng.uniform(1, 10, n), rng.uniform(0.01, 0.3, n)
    u = np.linspace(0, 2 * np.pi, 8)
    xx, yy = np.meshgrid(u, u)
    top = np.tanh(np.cos(theta[:, None, None] * xx) * J[:, None, None] / 5 + 10 * D[:, None, None] - 1.5)
    bottom = np.tanh(np.sin(theta[:, None, None] * yy) * (1 + 10 * D[:, None, None]) - J[:, None, None] / 10)
    x = np.stack([top, bottom], 1).astype(np.float32)
    y = np.stack([theta, J, D], 1)
    phase = np.where(D > 0.25, 0, np.where(J > 6, 2, 1)).astype(np.int8)
    fm = phase == 0
    kw = dict(target_names=["theta", "J", "D"], target_units=["deg", "meV", "meV"], aux_specs=AUX,
              metadata={"producer": "test", "config": {}})
    main_store = DatasetStore.create(path, input_shape=(2, 8, 8), **kw)
    main_store.append(x[~fm], y[~fm], aux={"phase": phase[~fm]})
    side = DatasetStore.create(path.with_name(path.stem + "_fm" + path.suffix), input_shape=(2,), **kw)
    side.append(x[fm].mean(axis=(2, 3)), y[fm], aux={"phase": phase[fm]})
    return str(path)


def _train(data, out, target, *extra):
    assert main(["train", "--data", data, "--model", "two_branch_fcn", "--set", "image_size=[8,8]",
                 "--set", "branch_widths=[16,8]", "--set", "trunk_widths=[8]", "--target", target,
                 "--num-train", "150", "--realizations", "2", "--epochs", "15", "--batch-size", "32",
                 "--test-size", "40", "--out", str(out), *extra]) == 0


def test_analyze_writes_every_figure(tmp_path, capsys):
    data = _cri3_like(tmp_path / "cri3.zarr")
    _train(data, tmp_path / "reg", "theta,J,D", "--train-set", "loss=gaussian_nll")
    out = tmp_path / "ana"
    assert main(["analyze", str(tmp_path / "reg"), "--out", str(out), "--snr", "20,0,-10", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "MAPE" in printed and "error PCA" in printed
    for name in ("fig3_pred_vs_true_two_branch_fcn.png", "fig4_binned_mae_two_branch_fcn.png",
                 "fig5_error_pca_two_branch_fcn.png", "fig6_mae_vs_boundary_two_branch_fcn.png",
                 "fig7_noise_robustness.png", "calibration_spread_two_branch_fcn.png",
                 "calibration_head_two_branch_fcn.png", "index.html", "regression_metrics_two_branch_fcn.csv",
                 "noise_robustness.csv", "error_pca_two_branch_fcn.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "analysis.json").read_text())
    reg = summary["regression"]["two_branch_fcn"]
    assert reg["num_realizations"] == 2 and reg["num_test"] == 40
    assert set(summary["boundary_points"]) == {"FM-NCD", "NCD-MD"}
    # the metrics recomputed here equal the ones the training recorded
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())["records"]
    mae_j = np.mean([r["test_per_target"]["J"]["mae"] for r in metrics])
    assert reg["metrics"]["J"]["mae"][0] == pytest.approx(mae_j, rel=1e-6)
    # noise hurts: MAPE at -10 dB above MAPE at 20 dB for J
    mape = summary["noise"]["trained clean"]["mape"]["J"]
    assert mape[-1] > mape[0]
    page = (out / "index.html").read_text()
    assert "Noise robustness" in page and "data:image/png;base64" in page


def test_generator_train_generate_and_analyze(tmp_path, capsys):
    data = _cri3_like(tmp_path / "cri3.zarr")
    out = tmp_path / "gen"
    assert main(["train", "--data", data, "--model", "generator_fcn", "--set", "hidden_widths=[32,64]",
                 "--mode", "generate", "--target", "theta,J,D", "--train-set", "loss=mae", "--num-train", "150",
                 "--epochs", "20", "--test-size", "40", "--out", str(out)]) == 0
    assert main(["analyze", str(out), "--out", str(tmp_path / "ga"), "--snr", "0", "--quiet"]) == 0
    for name in ("fig8_generator_errors.png", "fig9_generator_mae_vs_boundary.png", "fig10_magnetization.png",
                 "generator_gallery.png", "generator_errors.csv"):
        assert (tmp_path / "ga" / name).is_file(), name
    assert main(["generate", str(out / "r0.pt"), "--theta", "2.0", "--J", "4", "--D", "0.1",
                 "--out", str(tmp_path / "one.npz")]) == 0
    images = np.load(tmp_path / "one.npz")["images"]
    assert images.shape == (1, 2, 8, 8)
    (tmp_path / "p.csv").write_text("theta,J,D\n2.0,4,0.1\n3.0,8,0.2\n")
    assert main(["generate", str(out / "r0.pt"), "--params", str(tmp_path / "p.csv"),
                 "--out", str(tmp_path / "two.png")]) == 0
    assert (tmp_path / "two.png").stat().st_size > 0
    capsys.readouterr()


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    data = _cri3_like(tmp_path / "cri3.zarr")
    _train(data, tmp_path / "reg", "J")
    # a dataset with other image shapes
    other = DatasetStore.create(tmp_path / "other.zarr", input_shape=(2, 6, 6), target_names=["theta", "J", "D"],
                                target_units=["deg", "meV", "meV"], aux_specs=AUX,
                                metadata={"producer": "test", "config": {}})
    other.append(np.zeros((4, 2, 6, 6), np.float32), np.ones((4, 3)), aux={"phase": np.ones(4, np.int8)})
    assert main(["analyze", str(tmp_path / "reg"), "--data", str(tmp_path / "other.zarr"), "--quiet"]) == 2
    assert "images of shape [2, 8, 8]" in capsys.readouterr().err
    # a dataset without the trained target
    notarget = DatasetStore.create(tmp_path / "nt.zarr", input_shape=(2, 8, 8), target_names=["theta", "D"],
                                   target_units=["deg", "meV"], metadata={"producer": "test", "config": {}})
    notarget.append(np.zeros((4, 2, 8, 8), np.float32), np.ones((4, 2)))
    assert main(["analyze", str(tmp_path / "reg"), "--data", str(tmp_path / "nt.zarr"), "--quiet"]) == 2
    assert "target(s) J" in capsys.readouterr().err
    # a missing FM side store
    assert main(["analyze", str(tmp_path / "reg"), "--fm-store", str(tmp_path / "nope.zarr"), "--quiet"]) == 2
    assert "FM side store" in capsys.readouterr().err
    # generate: a regressor is not a generator; unknown CSV column
    assert main(["generate", str(tmp_path / "reg" / "r0.pt"), "--theta", "2", "--J", "3", "--D", "0.1",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "not a generator" in capsys.readouterr().err


def test_sweep_report_links_analysis_pages(tmp_path):
    from scalinglab.report.build import analysis_links

    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "analysis.json").write_text("{}")
    (tmp_path / "analysis" / "index.html").write_text("<html></html>")
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "analysis.json").write_text("{}")  # no page: not linked
    links = analysis_links(tmp_path, tmp_path / "report")
    assert links == [("paper 2 error analyses: analysis/index.html", "../analysis/index.html")]


def test_generator_against_the_simulator(tmp_path, capsys):
    """A generator trained on real (tiny) moire images, compared with fresh ground states of other parameters."""
    from scalinglab.simulators.moire.campaign import run_campaign
    from scalinglab.simulators.moire.lattice import twist_angle

    data = tmp_path / "cri3.zarr"
    run_campaign(data, 40, profile="quick", seed=0, quiet=True, grid=8, m_values=(8, 9)).close()
    out = tmp_path / "gen"
    assert main(["train", "--data", str(data), "--model", "generator_fcn", "--set", "hidden_widths=[16,32]",
                 "--mode", "generate", "--target", "theta,J,D", "--train-set", "loss=mae", "--num-train", "32",
                 "--epochs", "10", "--test-size", "8", "--out", str(out)]) == 0
    capsys.readouterr()
    params = tmp_path / "p.csv"
    params.write_text(f"theta,J,D\n{twist_angle(8)},3.0,0.05\n{twist_angle(9)},7.5,0.12\n")
    assert main(["generate", str(out / "r0.pt"), "--params", str(params), "--compare-simulator",
                 "--out", str(tmp_path / "cmp.npz")]) == 0
    printed = capsys.readouterr().out
    assert "generator vs simulator" in printed and "faster" in printed
    res = np.load(tmp_path / "cmp.npz")
    assert res["generated"].shape == res["simulated"].shape == (2, 2, 8, 8)
    np.testing.assert_allclose(res["mae"], np.abs(res["generated"] - res["simulated"]).mean(axis=(1, 2, 3)),
                               rtol=1e-5)
    assert (tmp_path / "cmp.csv").read_text().count("\n") == 3 and (tmp_path / "cmp.png").is_file()
    # a twist angle that is not commensurate cannot be simulated
    params.write_text("theta,J,D\n2.0,3.0,0.05\n")
    assert main(["generate", str(out / "r0.pt"), "--params", str(params), "--compare-simulator",
                 "--out", str(tmp_path / "bad.npz")]) == 2
    assert "not a commensurate angle" in capsys.readouterr().err

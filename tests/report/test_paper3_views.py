"""Paper 3's views of amplitude sweeps on synthetic records with known truth: App. C (X_c, alpha, K) tables,
alpha_C vs n_f, calibration split by compute, the Eq. 23 error and the intrinsic dimension per model size."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import StepPatch

from scalinglab.report import build_report
from scalinglab.report.amplitudes import (
    compute_exponents,
    dimension_label,
    epsilon_figure,
    epsilon_scaling,
    exponents_vs_nf_figure,
    intrinsic_dimension_series,
    paper3_table_html,
    paper3_table_rows,
)
from scalinglab.report.analysis import ReportOptions, analyze
from scalinglab.report.calibration import calibration_by_compute, draw_calibration, largest_compute_records
from scalinglab.report.loader import load_results

sys.path.insert(0, str(Path(__file__).parent))
from report_synthetic import write_results  # noqa: E402

OPTIONS = ReportOptions(num_bootstrap=200, num_choice_bootstrap=200, num_saturating_bootstrap=60)
#: L(N_D) = (X_c / N_D)^alpha + K per width: two pure power laws (K = 0) and one with a floor.
DATA_TRUTH = {4: (60.0, 1.8, 0.0), 16: (45.0, 1.6, 0.0), 64: (40.0, 1.5, 3e-5)}
DATA_SIZES = (100, 300, 1000, 3000, 10000, 30000, 100000)
#: Eq. 23 error eps = EPS_A N_D^EPS_SLOPE.
EPS_A, EPS_SLOPE = 0.5, -0.5
#: compute sweep: L(N_D, C) = (D_C / N_D)^A_D + (C_C / C)^A_C, C = 1e11 FLOPs per epoch.
D_C, A_D, C_C, A_C = 100.0, 1.5, 3e11, 2.0
EPOCHS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
COMPUTE_SIZES = (1000, 10000, 100000)
NOISE = 0.05


def _base(task_id: str, width: int, n: int, r: int, loss: float) -> dict:
    return {"task_id": task_id, "family": "mlp_i", "model": "mlp_invariants", "model_label": f"mlp_i width={width}",
            "size_axis": "width", "size_value": width, "num_params": 100 * width, "target": "amp2", "target_unit": "",
            "num_train": n, "realization": r, "seed": r, "wall_time_s": 0.1, "n_f": 3, "phase_space_dim": 5,
            "test": {"mse": loss}, "test_normalized": {"mse": loss}}


def _write(root: Path, recs: list[dict]) -> Path:
    (root / "records").mkdir(parents=True)
    by_task: dict[str, list] = {}
    for r in recs:
        by_task.setdefault(r["task_id"], []).append(r)
    for tid, rs in by_task.items():
        (root / "records" / f"{tid}.json").write_text(json.dumps({"task_id": tid, "task": {}, "records": rs}))
    (root / "resolved_spec.json").write_text(json.dumps({"spec": {"name": root.name, "targets": ["amp2"]}}))
    return root


def _data_sweep(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    recs = []
    for width, (x_c, alpha, floor) in DATA_TRUTH.items():
        for n in DATA_SIZES:
            for r in range(5):
                loss = ((x_c / n) ** alpha + floor) * np.exp(NOISE * rng.normal())
                recs.append(dict(_base(f"w{width}n{n}", width, n, r, float(loss)), flops=1e6 * width * n,
                                 test_epsilon=float(EPS_A * n**EPS_SLOPE * np.exp(NOISE * rng.normal())),
                                 intrinsic_dimension=float(5 + 0.3 * rng.normal())))
    return _write(root, recs)


def _calibration(rng, width: float) -> dict:
    edges = np.linspace(-5, 5, 41)
    counts, _ = np.histogram(width * rng.normal(size=2000), bins=edges)
    return {"pull_bins": edges.tolist(), "pull_counts": counts.tolist(), "pull_mean": 0.0, "pull_std": width,
            "sigma_quantiles": {"0.05": 0.01 * width, "0.5": 0.05 * width, "0.95": 0.2 * width}}


def _compute_sweep(root: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    recs = []
    for n in COMPUTE_SIZES:
        for cv in EPOCHS:
            flops = 1e11 * cv
            for r in range(5):
                loss = ((D_C / n) ** A_D + (C_C / flops) ** A_C) * np.exp(NOISE * rng.normal())
                recs.append(dict(_base(f"n{n}e{cv}", 16, n, r, float(loss)), flops=flops, compute_key="epochs",
                                 compute_value=cv, calibration=_calibration(rng, 1.0 + 1.0 / cv)))
    return _write(root, recs)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper3")
    data, comp = _data_sweep(root / "data"), _compute_sweep(root / "compute")
    return {"data": data, "compute": comp, "data_analysis": analyze(load_results(data), OPTIONS),
            "compute_analysis": analyze(load_results(comp), OPTIONS)}


def test_table_recovers_x_c_alpha_and_floor(sweeps):
    rows = paper3_table_rows(sweeps["data_analysis"])
    data = {int(r["second_value"]) // 100: r for r in rows if r["axis"] == "data"}
    assert sorted(data) == sorted(DATA_TRUTH)
    for width, (x_c, alpha, floor) in DATA_TRUTH.items():
        r = data[width]
        assert r["param"] == "N_D" and r["second_param"] == "N_M"
        assert r["alpha_lo"] <= alpha <= r["alpha_hi"], (width, r["alpha_lo"], r["alpha_hi"])
        assert x_c / 1.5 < r["x_c"] < x_c * 1.5 and r["x_c_lo"] <= r["x_c"] <= r["x_c_hi"]
        if floor == 0.0:  # the deviance test keeps the power law: K ~ 0, X_c = A^(1/alpha)
            assert r["law"] == "power_law" and r["floor_zero"]
        else:
            assert r["law"] == "saturating" and not r["floor_zero"]
            assert floor / 2 < r["floor"] < 2 * floor and r["floor_lo"] <= floor <= r["floor_hi"]
    model = [r for r in rows if r["axis"] == "model"]
    # one row per fitted model curve (at N_D = 1e5 the losses sit at float32 resolution: no fit, no row)
    fitted = [c for c in sweeps["data_analysis"].model_curves if c.exponent_fit() is not None]
    assert len(model) == len(fitted) >= len(DATA_SIZES) - 1 and all(r["second_param"] == "N_D" for r in model)
    html = paper3_table_html(rows)
    assert html.count("<tr>") == len(rows) + 1 and "~0" in html and "n_f = 3, d = 5" in html


def test_compute_rows_and_alpha_c(sweeps, tmp_path):
    an = sweeps["compute_analysis"]
    rows = [r for r in paper3_table_rows(an) if r["axis"] == "compute"]
    assert sorted(int(r["second_value"]) for r in rows) == list(COMPUTE_SIZES)
    for r in rows:
        assert r["law"] == "saturating" and r["param"].startswith("C")
        assert r["alpha_lo"] <= A_C <= r["alpha_hi"]
        assert C_C / 1.5 < r["x_c"] < C_C * 1.5
        floor = (D_C / r["second_value"]) ** A_D
        assert floor / 2 < r["floor"] < 2 * floor
    # data curves of a compute-axis sweep: only those at the largest compute value enter the table
    assert [r["compute_value"] for r in paper3_table_rows(an) if r["axis"] == "data"] == [EPOCHS[-1]]
    records = load_results(sweeps["compute"]).records
    (alpha_c,) = compute_exponents(an.compute_curves, records)
    assert alpha_c["axis"] == "compute" and alpha_c["num_train"] == COMPUTE_SIZES[-1]
    assert (alpha_c["n_f"], alpha_c["d"]) == (3, 5) and alpha_c["bound"] == pytest.approx(0.8)
    assert alpha_c["ci95"][0] <= A_C <= alpha_c["ci95"][1] and abs(alpha_c["exponent"] - A_C) < 0.15
    every = compute_exponents(an.compute_curves, records, all_sizes=True)
    assert [r["num_train"] for r in every] == list(COMPUTE_SIZES)
    assert [r["largest_num_train"] for r in every] == [False, False, True]
    data_row = {"n_f": 3, "d": 5, "exponent": 1.5, "ci95": [1.4, 1.6], "axis": "data"}
    assert exponents_vs_nf_figure([data_row, alpha_c], tmp_path / "a.png").stat().st_size > 1000


def test_calibration_split_by_compute(sweeps, tmp_path):
    records = load_results(sweeps["compute"]).records
    entries = calibration_by_compute(records, tmp_path)
    assert [e["num_train"] for e in entries] == list(COMPUTE_SIZES)
    for e in entries:
        assert e["compute_values"] == list(EPOCHS) and e["path"].stat().st_size > 1000
        assert e["path"].name == f"calibration_compute_ND{e['num_train']}.png"
    at_n = [r for r in records if r["num_train"] == COMPUTE_SIZES[0]]
    fig, ax_pull, ax_sigma = draw_calibration(at_n, "compute_value", label="epochs")
    assert sum(isinstance(p, StepPatch) for p in ax_pull.patches) == len(EPOCHS)
    assert len(ax_sigma.lines) == len(EPOCHS)
    assert ax_pull.get_legend().get_texts()[1].get_text().startswith("epochs=1 ")
    # the per-N_D figure of a compute-axis sweep: only the largest compute value, one line per N_D
    top = largest_compute_records(records)
    assert {r["compute_value"] for r in top} == {EPOCHS[-1]} and len(top) == 5 * len(COMPUTE_SIZES)
    fig, ax_pull, _ = draw_calibration(top)
    assert sum(isinstance(p, StepPatch) for p in ax_pull.patches) == len(COMPUTE_SIZES)


def test_epsilon_slope_and_figure(sweeps, tmp_path):
    series = epsilon_scaling(load_results(sweeps["data"]).records, num_bootstrap=300)
    assert len(series) == len(DATA_TRUTH)
    for s in series:
        lo, hi = s["slope_interval"]
        assert lo <= EPS_SLOPE <= hi and abs(s["slope"] - EPS_SLOPE) < 0.05
        assert np.all(s["lo"] <= s["geometric_mean"]) and np.all(s["geometric_mean"] <= s["hi"])
    assert epsilon_figure(series, tmp_path / "eps.png").stat().st_size > 1000
    assert epsilon_scaling(load_results(sweeps["compute"]).records) == []  # no test_epsilon recorded


def test_intrinsic_dimension_lines_per_model_size(sweeps):
    series = intrinsic_dimension_series(load_results(sweeps["data"]).records)
    assert [s["num_params"] for s in series] == [100.0 * w for w in sorted(DATA_TRUTH)]
    assert all(s["d"] == [5] and list(s["sizes"]) == list(DATA_SIZES) for s in series)
    assert "hadronic" in dimension_label(3, 5) and "fixed sqrt(s)" in dimension_label(3, 4)
    assert dimension_label(3, 5).startswith("d = 5")


def test_report_has_paper3_views_and_cri3_has_none(sweeps, tmp_path, capsys):
    from scalinglab.cli import main

    index = build_report(sweeps["data"], tmp_path / "rep", options=OPTIONS, quiet=True)
    html = index.read_text()
    for text in ("Scaling parameters (X_c, alpha_X, K_X)", "Tables 2-13", "Relative amplitude error eps",
                 "Eq. 23", "Intrinsic dimension", "alpha_D vs n_f", "paper3_table.csv"):
        assert text in html, text
    assert html.index("Scaling parameters") < html.index("<h2>All fits</h2>")
    with open(index.parent / "paper3_table.csv") as fh:
        table = list(csv.DictReader(fh))
    assert {r["axis"] for r in table} == {"data", "model"} and (index.parent / "epsilon_vs_nd.png").is_file()

    index = build_report(sweeps["compute"], tmp_path / "rep_c", options=OPTIONS, quiet=True)
    html = index.read_text()
    assert "alpha_D and alpha_C vs n_f" in html and "Calibration vs compute at N_D = 1000" in html
    assert all((index.parent / f"calibration_compute_ND{n}.png").is_file() for n in COMPUTE_SIZES)

    cri3 = write_results(tmp_path / "cri3", data_sizes=(256, 512, 1024, 2048), num_realizations=3,
                         compute_values=(10, 20, 40, 80), exponents={"theta": (1.4, 1.8)})
    index = build_report(cri3, tmp_path / "rep_cri3", options=OPTIONS, quiet=True)
    html = index.read_text()
    assert "Scaling parameters" not in html and "alpha_C" not in html and "Calibration" not in html
    names = {p.name for p in index.parent.iterdir()}
    assert not names & {"paper3_table.csv", "alpha_vs_nf.png", "epsilon_vs_nd.png", "intrinsic_dimension.png"}

    out = tmp_path / "figs"
    assert main(["amplitude-figures", str(sweeps["data"]), str(sweeps["compute"]), "--out", str(out),
                 "--bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert "alpha_C = " in printed and "alpha_D = " in printed
    rows = json.loads((out / "alpha_vs_nf.json").read_text())
    assert [r["axis"] for r in rows].count("compute") == 1 and [r["axis"] for r in rows].count("data") == 4
    with open(out / "paper3_table.csv") as fh:
        table = list(csv.DictReader(fh))
    assert {r["results"] for r in table} == {str(sweeps["data"]), str(sweeps["compute"])}
    assert (out / "epsilon_vs_nd.png").is_file() and (out / "intrinsic_dimension.png").is_file()

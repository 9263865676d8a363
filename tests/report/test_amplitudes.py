"""Amplitude figures: alpha_D recovered from synthetic records with a known exponent; figures render."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab.report.amplitudes import (
    data_exponent,
    exponent_bound,
    exponents_vs_nf_figure,
    intrinsic_dimension_figure,
    record_dimension,
)
from scalinglab.stats import fit_power_law


def _records(n_f: int, alpha: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for n in [256, 512, 1024, 2048, 4096, 8192]:
        for r in range(5):
            loss = 3.0 * n ** -alpha * np.exp(0.1 * rng.normal())
            out.append({"n_f": n_f, "phase_space_dim": 3 * n_f - 4, "num_train": n, "realization": r,
                        "test_normalized": {"mse": loss}, "intrinsic_dimension": 3 * n_f - 4 + 0.3 * rng.normal()})
    return out


def test_bound_and_dimension():
    assert record_dimension({"n_f": 3, "phase_space_dim": 5}) == 5
    # records written before the sampling was recorded: fixed sqrt(s), d = 3 n_f - 5
    assert record_dimension({"n_f": 3}) == 4 and record_dimension({"n_f": 2}) == 1
    assert exponent_bound(5) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="n_f"):
        record_dimension({"n_f": 1})


def test_data_exponent_recovers_known_alpha_and_figures_render(tmp_path):
    rows = []
    for n_f, alpha in [(2, 2.0), (3, 1.2)]:
        row = data_exponent(_records(n_f, alpha, n_f), num_bootstrap=300)
        assert row["ci95"][0] < alpha < row["ci95"][1]
        assert abs(row["exponent"] - alpha) < 0.1
        rows.append(row)
    assert exponents_vs_nf_figure(rows, tmp_path / "a.png").stat().st_size > 1000
    recs = _records(2, 2.0, 0) + _records(3, 1.2, 1)
    assert intrinsic_dimension_figure(recs, tmp_path / "d.png").stat().st_size > 1000


def test_mixed_nf_is_an_error():
    with pytest.raises(ValueError, match="one n_f"):
        data_exponent(_records(2, 2.0, 0) + _records(3, 1.0, 1))
    mixed = _records(3, 1.0, 1) + [dict(r, phase_space_dim=4) for r in _records(3, 1.0, 2)]
    with pytest.raises(ValueError, match="one phase-space dimension"):
        data_exponent(mixed)


def test_bound_uses_the_recorded_dimension():
    had = data_exponent(_records(3, 1.2, 0), num_bootstrap=100)
    fixed = data_exponent([dict(r, phase_space_dim=4) for r in _records(3, 1.2, 0)], num_bootstrap=100)
    assert had["d"] == 5 and had["bound"] == pytest.approx(0.8)
    assert fixed["d"] == 4 and fixed["bound"] == pytest.approx(1.0)


def _write_results(root, n_f, alpha, seed):
    """A results directory (one task file) holding synthetic amplitude records."""
    import json

    recs = [dict(r, model_label="mlp_i", family="mlp_i", model="mlp_invariants", size_axis=None, size_value=None,
                 num_params=1000, target="amp2", target_unit="", seed=0, flops=1.0, wall_time_s=0.1,
                 test={"mse": r["test_normalized"]["mse"]}, task_id=f"t{n // 256}")
            for r, n in ((r, r["num_train"]) for r in _records(n_f, alpha, seed))]
    (root / "records").mkdir(parents=True)
    by_task: dict[str, list] = {}
    for r in recs:
        by_task.setdefault(r["task_id"], []).append(r)
    for tid, rs in by_task.items():
        (root / "records" / f"{tid}.json").write_text(json.dumps({"task_id": tid, "task": {}, "records": rs}))
    (root / "resolved_spec.json").write_text(json.dumps({"spec": {"name": f"nf{n_f}", "targets": ["amp2"]}}))
    return root


def test_amplitude_figures_cli_and_report_wiring(tmp_path, capsys):
    from scalinglab.cli import main
    from scalinglab.report import build_report

    a = _write_results(tmp_path / "nf2", 2, 2.0, 1)
    b = _write_results(tmp_path / "nf3", 3, 1.2, 2)
    assert main(["amplitude-figures", str(a), str(b), "--out", str(tmp_path / "figs"), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "n_f = 2" in out and "n_f = 3" in out
    assert (tmp_path / "figs" / "alpha_vs_nf.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "intrinsic_dimension.png").is_file()
    index = build_report(b, tmp_path / "rep", quiet=True)
    html = index.read_text()
    assert "alpha_D vs n_f" in html and "Intrinsic dimension" in html
    assert main(["amplitude-figures", str(tmp_path / "rep"), "--out", str(tmp_path / "x")]) == 2


def test_data_exponent_quotes_the_floored_law_when_the_data_demand_it():
    """Like the report: (X_c / N)^alpha + K with a clear floor gives the saturating law and the true alpha."""
    rng = np.random.default_rng(7)
    recs = [{"n_f": 3, "phase_space_dim": 5, "num_train": n, "realization": r,
             "test_normalized": {"mse": ((50.0 / n) ** 1.5 + 2e-4) * np.exp(0.05 * rng.normal())}}
            for n in [256, 512, 1024, 2048, 4096, 8192, 16384] for r in range(5)]
    row = data_exponent(recs, num_bootstrap=200)
    assert row["law"] == "saturating"
    assert row["ci95"][0] < 1.5 < row["ci95"][1]
    # a plain power law through the same points reads a flatter slope: the floor biases it low
    assert fit_power_law([256, 512, 1024, 2048, 4096, 8192, 16384],
                         [[r["test_normalized"]["mse"] for r in recs if r["num_train"] == n]
                          for n in [256, 512, 1024, 2048, 4096, 8192, 16384]], num_bootstrap=50,
                         fit_range="all").exponent_ < 1.42

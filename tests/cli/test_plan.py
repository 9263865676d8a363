"""`scalinglab plan` inverts the fitted laws of a synthetic sweep with known truth."""

import importlib.util
import json
from pathlib import Path

import pytest

from scalinglab.cli import main
from scalinglab.cli.plan import plan_rows

_spec = importlib.util.spec_from_file_location(
    "report_synthetic", Path(__file__).parents[1] / "report" / "report_synthetic.py")
report_synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_synthetic)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan") / "res"
    report_synthetic.write_results(root, noise=0.1, seed=3)
    return root


def test_plan_recovers_the_true_inverse(results):
    # truth for J at width 64: eps = A_w N^-1.3 with A_w = 5 / sqrt(64 / 4)
    a_w, alpha = 5.0 / 4.0, 1.3
    target = 1e-5
    truth = (a_w / target) ** (1 / alpha)
    rows = plan_rows(str(results), target, "data", target="J", model="64", law="power_law", num_bootstrap=300)
    assert len(rows) == 1
    r = rows[0]
    assert r["defined"] and r["law"] == "power_law"
    lo, hi = r["interval"]
    assert lo < truth < hi
    assert 0.5 < r["needed"] / truth < 2.0
    assert r["extrapolation_factor"] > 1  # beyond the measured N_D = 8192


def test_plan_cli_table_json_and_errors(results, capsys):
    assert main(["plan", str(results), "--target-loss", "1e-4", "--target", "D", "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert "needed N_D" in out and "fcn_l3" in out
    assert main(["plan", str(results), "--target-loss", "1e-4", "--json", "--bootstrap", "100",
                 "--num-final", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and all(r["conservative"]["exponent_bound"] == pytest.approx(0.8) for r in rows)
    assert main(["plan", str(results), "--target-loss", "-1"]) == 2
    assert "positive" in capsys.readouterr().err
    assert main(["plan", str(results), "--target-loss", "1e-3", "--target", "nope"]) == 2
    assert "no data-axis curve matches" in capsys.readouterr().err


def test_num_final_refuses_an_anti_conservative_plan(results):
    """A target above the anchor's loss: the 4/d recipe would print less than the fitted law; refused."""
    rows = plan_rows(str(results), 1.0, "data", target="J", model="64", law="power_law", num_final=3,
                     num_bootstrap=100)
    cons = rows[0]["conservative"]
    assert not cons["defined"] and cons["needed"] is None and "anchor loss" in cons["reason"]


def test_plan_compute_needs_a_joint_fit(results, capsys):
    # the synthetic sweep has 2 widths: no joint law, so no allocation, and the error says why
    assert main(["plan", str(results), "--compute", "1e12", "--bootstrap", "50"]) == 2
    assert "no joint fit" in capsys.readouterr().err
    assert main(["plan", str(results), "--bootstrap", "50"]) == 2
    assert "--target-loss" in capsys.readouterr().err


def test_plan_compute_allocates_a_budget(tmp_path, capsys):
    res = report_synthetic.write_results(tmp_path / "r", widths=(4, 16, 64), data_sizes=(256, 512, 1024, 2048),
                                         num_realizations=3, noise=0.1, exponents={"J": (1.0,)})
    assert main(["plan", str(res), "--compute", "1e13", "--json", "--bootstrap", "50"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["defined"] and row["budget"] == 1e13
    lo, hi = row["n_model_opt_interval"]
    assert lo <= row["n_model_opt"] <= hi
    assert row["n_data_opt"] == pytest.approx(1e13 / (6 * row["n_model_opt"]), rel=1e-9)
    assert main(["plan", str(res), "--compute", "1e13", "--bootstrap", "50"]) == 0
    assert "N_opt" in capsys.readouterr().out


def test_plan_auto_uses_the_reports_automatic_law_choice(results):
    from scalinglab.report import ReportOptions, analyze, load_results
    from scalinglab.stats import plan_scaling_curve

    rows = plan_rows(str(results), 1e-5, "data", target="J", model="64", num_bootstrap=300, seed=4)
    assert rows[0]["law"].startswith("auto: ")
    curve = next(c for c in analyze(load_results(results), ReportOptions(num_bootstrap=300, seed=4)).data_curves
                 if c.target == "J" and "64" in str(c.model_label))
    expected = plan_scaling_curve(curve.quoted, 1e-5)
    assert rows[0]["law"] == expected.law and rows[0]["needed"] == pytest.approx(expected.needed)
    assert rows[0]["interval"] == pytest.approx(list(expected.interval))


def test_conservative_plan_reads_the_dimension_from_the_records(tmp_path, capsys):
    """Amplitude records carry d (here a fixed-sqrt(s) n_f = 3 dataset: d = 4, bound 1.0, not 4/5)."""
    res = report_synthetic.write_results(tmp_path / "amp", noise=0.1, seed=3)
    for f in (res / "records").glob("*.json"):
        doc = json.loads(f.read_text())
        doc["records"] = [dict(r, n_f=3, phase_space_dim=4) for r in doc["records"]]
        f.write_text(json.dumps(doc))
    assert main(["plan", str(res), "--target-loss", "1e-4", "--json", "--bootstrap", "50", "--conservative"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["conservative"]["intrinsic_dimension"] == 4 for r in rows)
    assert all(r["conservative"]["exponent_bound"] == pytest.approx(1.0) for r in rows)
    assert main(["plan", str(res), "--target-loss", "1e-4", "--bootstrap", "50", "--num-final", "2"]) == 2
    assert "contradicts the sweep's dataset (n_f = 3)" in capsys.readouterr().err
    assert main(["plan", str(res), "--target-loss", "1e-4", "--bootstrap", "50"]) == 0
    assert "conservative" not in capsys.readouterr().out  # only on request

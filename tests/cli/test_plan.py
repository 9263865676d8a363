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

"""Report guards: epoch-cap and no-skill warnings, unconstrained model-size exponents, --exclude, several
results directories in one report, --x train, and the compute-optimal rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from scalinglab.report import ReportOptions, analyze, build_report, load_results
from scalinglab.report.analysis import fit_rows, parse_exclusions
from scalinglab.report.build import report_notes
from scalinglab.report.loader import load_many

sys.path.insert(0, str(Path(__file__).parent))
from report_synthetic import CHROMIUM, render_in_chromium, write_results  # noqa: E402

FAST = ReportOptions(num_bootstrap=200, num_saturating_bootstrap=20, num_choice_bootstrap=50)


def _rewrite(root: Path, change) -> None:
    """Apply ``change(record)`` to every record of a results directory."""
    for path in (root / "records").glob("*.json"):
        doc = json.loads(path.read_text())
        for rec in doc["records"]:
            change(rec)
        path.write_text(json.dumps(doc))


def test_epoch_cap_and_no_skill_are_warned(tmp_path):
    res = write_results(tmp_path / "r", widths=(8,), data_sizes=(256, 512, 1024, 2048), num_realizations=3,
                        exponents={"J": (1.0,)})
    spec = json.loads((res / "resolved_spec.json").read_text())
    spec["spec"]["train"] = {"epochs": 50}  # the synthetic records ran 50 epochs: all at the cap
    (res / "resolved_spec.json").write_text(json.dumps(spec))

    def no_skill(rec):
        if rec["num_train"] == 256 and rec["realization"] == 0:
            rec["test_normalized"]["r2"] = -0.1
    _rewrite(res, no_skill)
    notes = report_notes(analyze(load_results(res), FAST))
    cap = next(n for n in notes if "full epoch budget" in n)
    assert cap.startswith("WARNING: 12 realization(s)")
    skill = next(n for n in notes if "predicting the mean" in n)
    assert skill.startswith("WARNING: 1 realization(s)") and "N_D=256: 1/3" in skill


def test_no_warning_without_a_cap_or_in_a_compute_sweep(tmp_path):
    res = write_results(tmp_path / "r", widths=(8,), data_sizes=(256, 512, 1024), num_realizations=3,
                        compute_values=(5, 10, 20, 40), exponents={"J": (1.0,)})
    notes = report_notes(analyze(load_results(res), FAST))
    assert not any("epoch budget" in n or "predicting the mean" in n for n in notes)


def test_model_size_that_barely_varies_gets_no_exponent(tmp_path):
    """A depth sweep whose parameter count moves by 0.7 %: no alpha_M, and the report says why."""
    res = write_results(tmp_path / "r", widths=(4, 8, 16), data_sizes=(256, 512, 1024, 2048), num_realizations=4,
                        exponents={"J": (1.0,)})
    params = {4: 1_000_000, 8: 1_003_500, 16: 1_007_000}
    _rewrite(res, lambda rec: rec.update(num_params=params[rec["size_value"]]))
    analysis = analyze(load_results(res), FAST)
    assert analysis.model_curves and all(c.exponent_fit() is None for c in analysis.model_curves)
    assert all(c.error.startswith("unconstrained: N_M varies by only x1.007") for c in analysis.model_curves)
    notes = report_notes(analysis)
    assert any(n.startswith("FLAG: no model-scaling exponent") for n in notes)
    assert not any(r["axis"] == "model" and r.get("exponent") is not None for r in fit_rows(analysis))


def test_exclude_leaves_points_out_of_the_fits(tmp_path):
    res = write_results(tmp_path / "r", widths=(8,), num_realizations=4, exponents={"J": (1.0,)})
    options = ReportOptions(num_bootstrap=200, num_saturating_bootstrap=20, num_choice_bootstrap=50,
                            exclude=parse_exclusions(["N_D=8192,target=J"]))
    analysis = analyze(load_results(res), options)
    (curve,) = analysis.data_curves
    assert curve.x.max() == 4096 and [p.num_train for p in curve.excluded_points] == [8192]
    assert curve.power_law.x_.max() == 4096 and curve.quoted.x_.max() == 4096
    assert any("left out of every fit by --exclude" in n for n in report_notes(analysis))
    for bad, msg in ((["N_D"], "KEY=VALUE"), (["depth=3"], "unknown key")):
        with pytest.raises(ValueError, match=msg):
            parse_exclusions(bad)


def test_train_axis_scales_x_not_the_exponent(tmp_path):
    res = write_results(tmp_path / "r", widths=(8,), num_realizations=4, exponents={"J": (1.2,)})
    total = analyze(load_results(res), FAST).data_curves[0]
    train = analyze(load_results(res), ReportOptions(num_bootstrap=200, num_saturating_bootstrap=20,
                                                     num_choice_bootstrap=50, data_x="train")).data_curves[0]
    np.testing.assert_allclose(train.x, total.x * 7 / 8)
    assert train.power_law.exponent_ == pytest.approx(total.power_law.exponent_, rel=1e-9)
    # A x^-alpha with x = 7/8 N: the prefactor absorbs (7/8)^alpha
    assert train.power_law.prefactor_ == pytest.approx(total.power_law.prefactor_ * (7 / 8) ** 1.2, rel=0.05)
    with pytest.raises(ValueError, match="data_x"):
        ReportOptions(data_x="validation")


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    a = write_results(root / "fcn", widths=(4, 64), num_realizations=4, exponents={"J": (1.0, 1.3)}, seed=1)
    b = write_results(root / "vit", widths=(16,), num_realizations=4, exponents={"J": (1.5,)}, seed=2)
    _rewrite(b, lambda rec: rec.update(family="vit", model_label="vit width=16"))
    c = write_results(root / "fcn_again", widths=(4,), num_realizations=4, exponents={"J": (0.9,)}, seed=3)
    return a, b, c


def test_several_results_directories_in_one_report(two_sweeps, tmp_path):
    a, b, c = two_sweeps
    merged = load_many([a, b])
    assert {r["family"] for r in merged.records} == {"fcn_l3", "vit"}
    assert {r["source"] for r in merged.records} == {"fcn", "vit"}
    # the same family in two directories stays two curves
    renamed = load_many([a, c])
    assert {r["family"] for r in renamed.records} == {"fcn/fcn_l3", "fcn_again/fcn_l3"}
    index = build_report([a, b], tmp_path / "out", options=FAST, quiet=True)
    doc = json.loads((index.parent / "fits.json").read_text())
    models = {r["model"] for r in doc["fits"] if r["axis"] == "data" and r["law"] == "auto"}
    assert models == {"fcn_l3 width=4", "fcn_l3 width=64", "vit width=16"}
    assert "vit width=16" in index.read_text() and "fcn_l3 width=64" in index.read_text()
    with pytest.raises(ValueError, match="twice"):
        load_many([a, a])


def test_joint_fit_of_single_run_points_and_its_compute_optimum(tmp_path):
    """One realization per point no longer drops the joint fit; --compute adds the allocation."""
    res = write_results(tmp_path / "r", widths=(4, 16, 64), data_sizes=(256, 512, 1024, 2048), num_realizations=1,
                        noise=0.05, exponents={"J": (1.0,)})
    options = ReportOptions(num_bootstrap=200, num_saturating_bootstrap=50, num_choice_bootstrap=50,
                            compute_budget=1e12)
    analysis = analyze(load_results(res), options)
    (joint,) = analysis.joint_fits
    assert joint.fit is not None and joint.fit.resampling_ == "points"
    assert joint.optimum is not None and joint.optimum.budget == 1e12
    rows = fit_rows(analysis)
    opt = next(r for r in rows if r["law"] == "joint optimum")
    assert opt["n_model_opt_lo"] <= opt["n_model_opt"] <= opt["n_model_opt_hi"]
    assert all(r["resampling"] == "points" for r in rows if r["law"] == "auto")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_multi_directory_report_renders_in_headless_chromium(two_sweeps, tmp_path):
    a, b, _ = two_sweeps
    index = build_report([a, b], tmp_path / "out", options=FAST, quiet=True)
    size, ink, colors, stderr = render_in_chromium(index, tmp_path)
    assert size == (1400, 3000), stderr
    assert ink > 0.02 and colors > 50, (ink, colors)


def test_a_poor_fit_is_flagged_in_the_report(tmp_path):
    """A compute curve that is a plateau and then a drop: no law fits it, and the page says so in red."""
    res = write_results(tmp_path / "r", widths=(8,), data_sizes=(1024,), num_realizations=5,
                        compute_values=(5, 10, 20, 40, 80, 160), exponents={"J": (1.0,)})
    rng = np.random.default_rng(0)

    def plateau_then_drop(rec):
        rec["test_normalized"]["mse"] = float((0.5 if rec["compute_value"] <= 40 else 5e-3)
                                              * np.exp(0.05 * rng.standard_normal()))
    _rewrite(res, plateau_then_drop)
    index = build_report(res, tmp_path / "out", options=FAST, quiet=True)
    doc = json.loads((index.parent / "fits.json").read_text())
    compute_rows = [r for r in doc["fits"] if r["axis"] == "compute" and r.get("exponent") is not None]
    assert compute_rows and all("poor fit" in (r.get("flags") or "") for r in compute_rows)
    assert all(r["gof_p_value"] < 1e-3 for r in compute_rows)
    html = index.read_text()
    assert "<p class='flag'>FLAG: " in html and "poor fit" in html

"""Record status flags in the report: flagged realizations left out of the fits with a count, the options that
include them or leave at-cap ones out, old records without a status, and records.csv."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

from scalinglab.report import ReportOptions, analyze, build_report, load_results
from scalinglab.report.build import report_notes

sys.path.insert(0, str(Path(__file__).parent))
from report_synthetic import write_results  # noqa: E402

FAST = ReportOptions(num_bootstrap=200, num_saturating_bootstrap=20, num_choice_bootstrap=50)
FLAGS = {(256, 0): "diverged", (512, 1): "not_better_than_mean", (1024, 2): "at_epoch_cap"}


def _flagged_results(root: Path, with_status: bool = True) -> Path:
    res = write_results(root, widths=(8,), data_sizes=(256, 512, 1024, 2048), num_realizations=4,
                        exponents={"J": (1.0,)})
    for path in (res / "records").glob("*.json"):
        doc = json.loads(path.read_text())
        for rec in doc["records"]:
            flag = FLAGS.get((rec["num_train"], rec["realization"]), "ok")
            if flag == "diverged":
                rec["test_normalized"]["mse"] = math.nan
            if flag == "not_better_than_mean":
                rec["test_normalized"]["mse"] = 1.3  # far above the power law: it would pull the fit
            if with_status:
                rec["status"] = flag
        path.write_text(json.dumps(doc))
    return res


def _sizes(analysis) -> dict[int, int]:
    return {p.num_train: int(p.losses.size) for p in analysis.points}


def test_flagged_realizations_are_excluded_and_counted(tmp_path):
    res = _flagged_results(tmp_path / "r")
    analysis = analyze(load_results(res), FAST)
    assert _sizes(analysis) == {256: 3, 512: 3, 1024: 4, 2048: 4}  # at_epoch_cap kept
    notes = report_notes(analysis)
    count = next(n for n in notes if "excluded from the fits by their status" in n)
    assert count.startswith("2 of 16 realizations excluded from the fits by their status: 1 diverged, "
                            "1 not better than predicting the training mean")
    assert "--include-flagged" in count
    cap = next(n for n in notes if "full epoch budget" in n)
    assert cap.startswith("WARNING: 1 realization(s)") and "N_D=1024: 1/4" in cap and "kept in the fits" in cap
    assert not any("predicting the mean (status" in n for n in notes)  # no-skill ones are out, not warned


def test_options_include_flagged_and_exclude_at_cap(tmp_path):
    res = _flagged_results(tmp_path / "r")
    loaded = load_results(res)
    both = analyze(loaded, ReportOptions(**{**FAST.__dict__, "include_flagged": True}))
    # the NaN loss still cannot enter a log-log fit; the no-skill realization now does, and is warned about
    assert _sizes(both) == {256: 3, 512: 4, 1024: 4, 2048: 4}
    assert any(n.startswith("WARNING: 1 realization(s) are no better") for n in report_notes(both))
    strict = analyze(loaded, ReportOptions(**{**FAST.__dict__, "exclude_at_cap": True}))
    assert _sizes(strict) == {256: 3, 512: 3, 1024: 3, 2048: 4}
    assert any(n.startswith("3 of 16 realizations excluded") and "1 at the epoch cap" in n
               for n in report_notes(strict))
    # the excluded no-skill point moves the quoted exponent: the flag matters for the fit
    default = analyze(loaded, FAST)
    assert default.data_curves[0].exponent_fit().exponent_ != both.data_curves[0].exponent_fit().exponent_


def test_old_records_without_status_load_and_stay_in_the_fits(tmp_path):
    res = _flagged_results(tmp_path / "r", with_status=False)
    analysis = analyze(load_results(res), FAST)
    assert _sizes(analysis) == {256: 3, 512: 4, 1024: 4, 2048: 4}  # only the NaN loss drops out
    notes = report_notes(analysis)
    assert any(n.startswith("16 of 16 records carry no status flag") for n in notes)
    assert not any("excluded from the fits by their status" in n for n in notes)


def test_report_writes_records_csv(tmp_path):
    res = _flagged_results(tmp_path / "r")
    index = build_report(res, tmp_path / "rep", options=FAST, quiet=True)
    with open(index.parent / "records.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16  # one row per task x realization
    for col in ("model_label", "num_params", "target", "num_train", "realization", "status", "epochs_run",
                "best_epoch", "loss", "test_mse", "test_normalized_mse", "used_in_fits"):
        assert col in rows[0], col
    by = {(int(r["num_train"]), int(r["realization"])): r for r in rows}
    assert by[(256, 0)]["status"] == "diverged" and by[(256, 0)]["used_in_fits"] == "False"
    assert by[(512, 1)]["used_in_fits"] == "False" and by[(1024, 2)]["used_in_fits"] == "True"
    assert by[(2048, 3)]["status"] == "ok" and float(by[(2048, 3)]["loss"]) > 0
    assert "records.csv" in (index.parent / "index.html").read_text()
    page = (index.parent / "index.html").read_text()
    assert "2 of 16 realizations excluded from the fits by their status" in page

"""Tables of a report: ``fits.csv``, ``fits.json``, ``points.csv`` and ``records.csv`` (one row per realization)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from scalinglab.report.analysis import Analysis, fit_rows, point_rows, record_rows

#: Column order of fits.csv (rows may lack some; they are written empty).
FIT_COLUMNS = [
    "axis", "law", "family", "model", "size_value", "num_params", "target", "num_train", "compute_value", "x",
    "num_points", "realizations", "exponent", "exponent_stderr", "exponent_lo", "exponent_hi", "confidence",
    "prefactor", "prefactor_lo", "prefactor_hi", "exponent_model", "exponent_model_lo", "exponent_model_hi",
    "scale_model", "floor", "floor_lo", "floor_hi", "slope_a", "slope_a_stderr",
    "slope_a_lo", "slope_a_hi", "intercept_b", "intercept_b_stderr", "intercept_b_lo", "intercept_b_hi", "n0",
    "chi2", "dof", "chi2_dof", "gof_p_value", "rms_log_residual", "flags", "chosen_law", "floor_detected",
    "saturating_share", "resampling", "fit_min", "fit_max", "num_points_in_fit", "flagged_precision", "dropped",
    "excluded_x", "curvature_p_value", "range_rule", "note",
]
POINT_COLUMNS = [
    "family", "model", "size_value", "num_params", "target", "num_train", "compute_value", "flops",
    "realizations", "excluded_realizations", "mean", "mean_stderr", "geometric_mean", "geometric_mean_stderr",
    "geometric_mean_lo", "geometric_mean_hi", "median", "median_mad", "near_float32_resolution", "wall_time_s",
]

#: Leading columns of records.csv (then test_<metric> and test_normalized_<metric> as recorded).
RECORD_COLUMNS = [
    "source", "task_id", "family", "model", "model_label", "size_axis", "size_value", "num_params", "target",
    "target_unit", "num_train", "compute_key", "compute_value", "realization", "seed", "status", "stop_reason",
    "used_in_fits", "loss", "epochs_run", "max_epochs", "best_epoch", "best_val_loss", "train_steps", "flops",
    "wall_time_s", "mean_predictor_mse",
]


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN/inf become None, numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _integral(value: Any) -> Any:
    """Dataset sizes come back from the fits as floats; 4096.0 reads better as 4096."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """CSV of ``rows``: ``columns`` first, then any other keys in first-seen order; NaN, inf and None empty."""
    extra = [k for r in rows for k in r if k not in columns]
    header = columns + list(dict.fromkeys(extra))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if _clean(row.get(k)) is None else _clean(row.get(k))) for k in header})


def write_tables(analysis: Analysis, out_dir: Path) -> dict[str, Path]:
    """Write ``fits.csv``, ``fits.json``, ``points.csv`` and ``records.csv``.

    ``fits.json`` holds ``fits`` (one row per fit, the columns of fits.csv), ``points`` (aggregates per design
    point), ``power_law`` (the data-scaling fits alone: model, target, exponent, exponent_ci95 at
    ``confidence``, fit_range) and the loss definition, confidence, bootstrap size and seed.

    Returns:
        ``{"fits_csv": ..., "fits_json": ..., "points_csv": ..., "records_csv": ...}`` paths.

    ``records.csv`` has one row per trained realization (task x realization): model, sizes, target, seed,
    status and stop reason, whether it entered the fits, epochs run, best epoch, best validation loss, the
    scaling loss and every recorded test metric (``test_<metric>`` physical, ``test_normalized_<metric>``
    standardized units).
    """
    out_dir = Path(out_dir)
    fits = [{k: _clean(v) for k, v in r.items()} for r in fit_rows(analysis)]
    points = [{k: _clean(v) for k, v in r.items()} for r in point_rows(analysis)]
    paths = {"fits_csv": out_dir / "fits.csv", "fits_json": out_dir / "fits.json",
             "points_csv": out_dir / "points.csv", "records_csv": out_dir / "records.csv"}
    write_csv(paths["fits_csv"], fits, FIT_COLUMNS)
    write_csv(paths["points_csv"], points, POINT_COLUMNS)
    write_csv(paths["records_csv"], record_rows(analysis), RECORD_COLUMNS)
    doc = {
        "sweep": analysis.results.name,
        "loss": f"test_normalized.{analysis.results.loss_key} (standardized target units), geometric mean over "
                "realizations",
        "confidence": analysis.options.confidence,
        "num_bootstrap": analysis.options.num_bootstrap,
        "seed": analysis.options.seed,
        "fits": fits,
        "points": points,
        # the data-scaling power laws alone, in the shape the main job prints (scalinglab.cli.run)
        "power_law": [
            {"model": r["model"], "family": r["family"], "target": r["target"], "compute_value": r["compute_value"],
             "num_params": r["num_params"], "exponent": r["exponent"], "exponent_stderr": r["exponent_stderr"],
             "exponent_ci95": [r["exponent_lo"], r["exponent_hi"]], "prefactor": r["prefactor"],
             "fit_range": [_integral(r["fit_min"]), _integral(r["fit_max"])],
             "flagged_precision": r["flagged_precision"]}
            for r in fits if r["axis"] == "data" and r["law"] == "power_law" and r.get("exponent") is not None
        ],
    }
    paths["fits_json"].write_text(json.dumps(doc, indent=1, default=str))
    return paths

"""``scalinglab fit FILE --loss COL --x COL [--x2 COL] --out DIR``: scaling-law fits of measurements made anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalinglab.cli._args import add_fit_options

#: fits.json columns printed by ``--json`` (the fitted parameters with their intervals, and the flags).
_JSON_KEYS = (
    "axis", "law", "chosen_law", "model", "target", "num_train", "exponent", "exponent_lo", "exponent_hi",
    "exponent_stderr", "prefactor", "prefactor_lo", "prefactor_hi", "exponent_model", "exponent_model_lo",
    "exponent_model_hi", "scale_model", "floor", "floor_lo", "floor_hi", "floor_detected", "compute_budget",
    "n_model_opt", "n_model_opt_lo", "n_model_opt_hi", "n_data_opt", "n_data_opt_lo", "n_data_opt_hi",
    "loss_at_optimum", "chi2", "dof", "chi2_dof", "gof_p_value", "rms_log_residual", "resampling", "confidence",
    "flags",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit scaling laws to your own measurements (CSV / JSON / Parquet table) and write the report",
        description="One table row per trained run: a loss and the resource(s) it used. Rows with the same group "
        "and resource values are realizations of one point (one run per point is fine: the bootstrap then "
        "resamples points). Writes the same report as `scalinglab report`: automatic power-law / floored-law "
        "exponents with honest intervals, goodness of fit and flags, a joint fit L = (A/N)^a + (B/D)^b + K with "
        "--x2, and the compute-optimal allocation with --compute.",
    )
    p.add_argument("table", help="measurements: .csv, .json (list of rows or object of columns) or .parquet")
    p.add_argument("--loss", required=True, help="column of the loss (> 0)")
    p.add_argument("--x", required=True, help="column of the resource (with --x2: the model size N, parameters)")
    p.add_argument("--x2", default=None, help="column of the second resource: the data size D (samples / tokens)")
    p.add_argument("--axis", choices=["data", "model", "compute"], default="data",
                   help="what --x measures when there is no --x2 (default data)")
    p.add_argument("--group", nargs="+", default=[], metavar="COL",
                   help="column(s) naming separate curves (architecture, dataset, ...)")
    p.add_argument("--runs", default=None, metavar="COL", help="run-id column (a repeated id at a point is an error)")
    p.add_argument("--weight", default=None, metavar="COL", help="column of point weights (>= 0)")
    p.add_argument("--status", default=None, metavar="COL",
                   help="column of run status flags (ok, diverged, at_epoch_cap, not_better_than_mean; default: the "
                   "column 'status' when the table has one): diverged and not_better_than_mean runs are left out "
                   "of the fits unless --include-flagged")
    p.add_argument("--out", required=True, help="report directory")
    add_fit_options(p)
    p.add_argument("--flops-per-param-sample", type=float, default=6.0,
                   help="c in the FLOP model C = c N D (default 6)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--confidence", type=float, default=0.95, help="coverage of every interval (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print the fitted parameters with their intervals as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def fit_table(args) -> Path:
    """Read the table, build the records, write the report; returns the path of index.html."""
    from scalinglab.report import ReportOptions, build_report
    from scalinglab.report.analysis import parse_exclusions
    from scalinglab.report.measurements import measurement_results, read_table
    from scalinglab.stats.compute_optimal import FlopModel

    if args.compute is not None and args.x2 is None:
        raise ValueError("--compute needs --x2: the compute-optimal allocation splits C between N (--x) and D (--x2)")
    if args.huber_delta is not None and not args.huber_delta > 0:
        raise ValueError(f"--huber-delta must be > 0 (log-loss units), got {args.huber_delta}")
    table = Path(args.table)
    results = measurement_results(read_table(table), loss=args.loss, x=args.x, x2=args.x2, groups=tuple(args.group),
                                  runs=args.runs, weight=args.weight, axis=args.axis, name=table.stem,
                                  root=table.parent, status=args.status)
    options = ReportOptions(num_bootstrap=args.bootstrap, num_saturating_bootstrap=max(args.bootstrap // 2, 10),
                            num_choice_bootstrap=max(args.bootstrap // 2, 10), confidence=args.confidence,
                            seed=args.seed, exclude=parse_exclusions(args.exclude), huber_delta=args.huber_delta,
                            compute_budget=args.compute,
                            flop_model=FlopModel(coefficient=args.flops_per_param_sample),
                            include_flagged=args.include_flagged, exclude_at_cap=args.exclude_at_cap)
    return build_report(results, args.out, options=options, quiet=args.quiet or args.json)


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _JSON_KEYS if row.get(k) not in (None, "")}


def _run(args) -> int:
    index = fit_table(args)
    doc = json.loads((index.parent / "fits.json").read_text())
    fits = [r for r in doc["fits"] if r.get("exponent") is not None or r.get("n_model_opt") is not None]
    if args.json:
        print(json.dumps({"confidence": doc["confidence"], "fits": [_compact(r) for r in fits]}, indent=1))
        return 0
    for r in fits:
        if r["law"] in ("auto", "joint", "joint optimum"):
            where = f" at N_D={r['num_train']}" if r["axis"] == "model" and r.get("num_train") else ""
            line = f"{r['axis']:>16} {r['law']:<13} {r.get('model')}{where}: exponent {r['exponent']:.4g} " \
                   f"[{r['exponent_lo']:.4g}, {r['exponent_hi']:.4g}]"
            if r["law"] == "joint":
                line += f", a_M {r['exponent_model']:.4g} [{r['exponent_model_lo']:.4g}, {r['exponent_model_hi']:.4g}]"
            if r["law"] == "joint optimum":
                line += f"; N_opt {r['n_model_opt']:.4g}, D_opt {r['n_data_opt']:.4g}, loss {r['loss_at_optimum']:.4g}"
            if r.get("flags"):
                line += f"  FLAG: {r['flags']}"
            print(line)
    print(f"report: {index}")
    return 0

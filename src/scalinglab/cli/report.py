"""``scalinglab report RESULTS --out DIR``: figures, fit tables and one self-contained index.html."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scalinglab.cli._args import add_fit_options


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write the scaling-study report (figures, fit tables, index.html) of a sweep",
        description="Aggregate the realizations of every design point, fit power laws (and saturating laws on a "
        "compute axis) with bootstrap intervals, draw paper 1's Figs. 1 and 3-7 as the sweep allows, and write "
        "fits.csv, fits.json, points.csv, records.csv (one row per realization) and a self-contained index.html. "
        "Realizations flagged diverged or not better than the mean are left out of the fits (counted on the page). "
        "Reads records only; never trains.",
    )
    p.add_argument("results", nargs="+",
                   help="sweep results directory (written by `scalinglab sweep`); several directories are drawn "
                   "in the same figures and tables (e.g. FCN, ResNet-18 and ViT sweeps, paper 1 Fig. 1)")
    p.add_argument("--out", default=None, help="report directory (default: RESULTS/report of the first one)")
    add_fit_options(p)
    p.add_argument("--x", dest="data_x", choices=["total", "train"], default="total",
                   help="x of the data-scaling figures and fits: total N_D (default) or the training part 7/8 N_D")
    p.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap replicates for point intervals and power-law fits (default 2000)")
    p.add_argument("--confidence", type=float, default=0.95, help="coverage of every interval (default 0.95)")
    p.add_argument("--fit-range", choices=["auto", "all"], default="auto",
                   help="auto: drop points near float32 resolution and where the curvature test rejects a "
                   "power law (default); all: fit every point")
    p.add_argument("--seed", type=int, default=0, help="root seed of the bootstrap streams (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

    a = subparsers.add_parser(
        "amplitude-figures",
        help="alpha_D and alpha_C vs n_f, TwoNN dimension, Eq. 23 error and App. C tables across amplitude sweeps "
        "(paper 3 Figs. 3, 10, Tables 2-13)",
        description="Fit alpha_D of each amplitude sweep (one per process; at the largest compute value of a "
        "compute-axis sweep) and alpha_C (the report's quoted compute-curve exponent at the largest N_D), draw "
        "them against the bound alpha >= 4/d, the TwoNN dimension of the last hidden layer vs N_D, the Eq. 23 "
        "error eps vs N_D, and write the (X_c, alpha, K) table of every curve (paper3_table.csv).",
    )
    a.add_argument("results", nargs="+", help="sweep results directories of amplitude datasets (records carry n_f)")
    a.add_argument("--out", required=True, help="output directory for alpha_vs_nf.png (+ .json), "
                   "intrinsic_dimension.png, epsilon_vs_nd.png and paper3_table.csv")
    a.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap replicates of each power-law fit (default 2000; the automatic law choice and "
                   "the saturating fits use at most 400 and 200, as the report)")
    a.set_defaults(func=_run_amplitudes)


def print_exponents(fits_json: str | Path, console: Console | None = None) -> None:
    """Print the data-scaling exponents alpha_D (with intervals) of a report's fits.json as a table."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)  # no wrapping when piped
    doc = json.loads(Path(fits_json).read_text())
    # the quoted exponents (automatic power-law / floored-law choice) where made, else the power laws
    quoted = [r for r in doc["fits"] if r["axis"] == "data" and r["law"] == "auto"]
    rows = quoted or [r for r in doc["fits"] if r["axis"] == "data" and r["law"] == "power_law"]
    with_compute = any(r.get("compute_value") is not None for r in rows)
    table = Table(title="data-scaling exponents alpha_D (eps ~ N_D^-alpha_D)")
    columns = ["model", "target", *(["compute"] if with_compute else []), "alpha_D",
               f"{doc['confidence']:.0%} interval", "fit range N_D", "law", "flags"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "target") else "right", no_wrap=True)
    for r in rows:
        compute = ["" if r.get("compute_value") is None else str(r["compute_value"])] if with_compute else []
        if r.get("exponent") is None:
            table.add_row(str(r["model"]), r["target"], *compute, "-", "", r.get("note", ""), "", "")
            continue
        table.add_row(
            str(r["model"]), r["target"], *compute, f"{r['exponent']:.3f}",
            f"[{r['exponent_lo']:.3f}, {r['exponent_hi']:.3f}]", f"{r['fit_min']:g} .. {r['fit_max']:g}",
            str(r.get("chosen_law") or r["law"]), "yes" if r.get("flags") else "",
        )
    console.print(table)


def _run(args) -> int:
    from scalinglab.report import ReportOptions, build_report
    from scalinglab.report.analysis import parse_exclusions

    out = Path(args.out) if args.out else Path(args.results[0]) / "report"
    options = ReportOptions(num_bootstrap=args.bootstrap, confidence=args.confidence, fit_range=args.fit_range,
                            seed=args.seed, exclude=parse_exclusions(args.exclude), data_x=args.data_x,
                            huber_delta=args.huber_delta, compute_budget=args.compute,
                            include_flagged=args.include_flagged, exclude_at_cap=args.exclude_at_cap)
    index = build_report(args.results, out, options=options, quiet=args.quiet)
    if _is_patch_study(args.results[0]):
        from scalinglab.report.loader import load_many, load_results
        from scalinglab.report.patches import format_table, median_mae_table

        results = load_many(args.results) if len(args.results) > 1 else load_results(args.results[0])
        print("median test MAE over repeats (Table II):")
        print(format_table(*median_mae_table(results.records)))
        print(f"table: {index.parent / 'median_mae.csv'}")
    else:
        print_exponents(index.parent / "fits.json")
    print(f"report: {index}")
    return 0


def _is_patch_study(results: str | Path) -> bool:
    """Whether a results directory holds a patch study (``[sweep] mode = "patches"``)."""
    path = Path(results) / "resolved_spec.json"
    if not path.is_file():
        return False
    return (json.loads(path.read_text()).get("spec") or {}).get("mode") == "patches"


def _run_amplitudes(args) -> int:
    from scalinglab.report.amplitudes import (
        at_largest_compute,
        compute_exponents,
        data_exponent,
        epsilon_figure,
        epsilon_scaling,
        exponents_vs_nf_figure,
        intrinsic_dimension_figure,
        paper3_table_rows,
        write_paper3_table,
    )
    from scalinglab.report.analysis import ReportOptions, analyze
    from scalinglab.report.loader import load_results

    out = Path(args.out)
    # the automatic law choice and the saturating fits refit per replicate: at most the report's defaults
    options = ReportOptions(num_bootstrap=args.bootstrap, num_choice_bootstrap=min(400, args.bootstrap),
                            num_saturating_bootstrap=min(200, args.bootstrap))
    rows, records, table = [], [], []
    for res in args.results:
        results = load_results(res)
        recs = [r for r in results.records if r.get("n_f") is not None]
        if not recs:
            raise ValueError(f"{res} has no records with n_f: not an amplitude sweep")
        records += [dict(r, source=str(res)) for r in recs]
        top = at_largest_compute(recs)  # a compute-axis sweep: alpha_D at its largest compute value
        for label in sorted({r["model_label"] for r in top}):
            row = data_exponent([r for r in top if r["model_label"] == label], num_bootstrap=args.bootstrap)
            rows.append(dict(row, label=label, results=str(res), axis="data"))
            lo, hi = row["ci95"]
            print(f"{res}: {label}: n_f = {row['n_f']}  d = {row['d']}  alpha_D = {row['exponent']:.2f} "
                  f"[{lo:.2f}, {hi:.2f}] ({row['law'].replace('_', ' ')})  bound 4/d = {row['bound']:.2f}")
        analysis = analyze(results, options)
        for row in compute_exponents(analysis.compute_curves, results.records):
            rows.append(dict(row, results=str(res)))
            lo, hi = row["ci95"]
            print(f"{res}: {row['label']}: n_f = {row['n_f']}  d = {row['d']}  alpha_C = {row['exponent']:.2f} "
                  f"[{lo:.2f}, {hi:.2f}] ({row['law']}, N_D = {row['num_train']})  bound 4/d = {row['bound']:.2f}")
        table += [dict(r, results=str(res)) for r in paper3_table_rows(analysis)]
    print(f"figure: {exponents_vs_nf_figure(rows, out / 'alpha_vs_nf.png')}")
    if any(r.get("intrinsic_dimension") is not None for r in records):
        print(f"figure: {intrinsic_dimension_figure(records, out / 'intrinsic_dimension.png')}")
    eps = epsilon_scaling(records, num_bootstrap=args.bootstrap)
    if eps:
        print(f"figure: {epsilon_figure(eps, out / 'epsilon_vs_nd.png')}")
    if table:
        print(f"table: {write_paper3_table(table, out / 'paper3_table.csv')}")
    (out / "alpha_vs_nf.json").write_text(json.dumps(rows, indent=1))
    return 0

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
        "amplitude-figures", help="alpha_D vs n_f and TwoNN dimension across amplitude sweeps (paper 3 Figs. 3, 10)",
        description="Fit alpha_D of each amplitude sweep (one per process) and draw the exponents against the "
        "bound alpha >= 4/(3 n_f - 4), and the TwoNN dimension of the last hidden layer vs N_D.",
    )
    a.add_argument("results", nargs="+", help="sweep results directories of amplitude datasets (records carry n_f)")
    a.add_argument("--out", required=True, help="output directory for alpha_vs_nf.png, intrinsic_dimension.png")
    a.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates of each fit (default 2000)")
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
    print_exponents(index.parent / "fits.json")
    print(f"report: {index}")
    return 0


def _run_amplitudes(args) -> int:
    from scalinglab.report.amplitudes import data_exponent, exponents_vs_nf_figure, intrinsic_dimension_figure
    from scalinglab.report.loader import load_results

    out = Path(args.out)
    rows, records = [], []
    for res in args.results:
        recs = [r for r in load_results(res).records if r.get("n_f") is not None]
        if not recs:
            raise ValueError(f"{res} has no records with n_f: not an amplitude sweep")
        records += recs
        for label in sorted({r["model_label"] for r in recs}):
            row = data_exponent([r for r in recs if r["model_label"] == label], num_bootstrap=args.bootstrap)
            rows.append(dict(row, label=label, results=str(res)))
            lo, hi = row["ci95"]
            print(f"{res}: {label}: n_f = {row['n_f']}  d = {row['d']}  alpha_D = {row['exponent']:.2f} "
                  f"[{lo:.2f}, {hi:.2f}]  bound 4/d = {row['bound']:.2f}")
    print(f"figure: {exponents_vs_nf_figure(rows, out / 'alpha_vs_nf.png')}")
    if any(r.get("intrinsic_dimension") is not None for r in records):
        print(f"figure: {intrinsic_dimension_figure(records, out / 'intrinsic_dimension.png')}")
    (out / "alpha_vs_nf.json").write_text(json.dumps(rows, indent=1))
    return 0

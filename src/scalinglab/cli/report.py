"""``scalinglab report RESULTS --out DIR``: figures, fit tables and one self-contained index.html."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write the scaling-study report (figures, fit tables, index.html) of a sweep",
        description="Aggregate the realizations of every design point, fit power laws (and saturating laws on a "
        "compute axis) with bootstrap intervals, draw paper 1's Figs. 1 and 3-7 as the sweep allows, and write "
        "fits.csv, fits.json, points.csv and a self-contained index.html. Reads records only; never trains.",
    )
    p.add_argument("results", help="sweep results directory (written by `scalinglab sweep`)")
    p.add_argument("--out", default=None, help="report directory (default: RESULTS/report)")
    p.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap replicates for point intervals and power-law fits (default 2000)")
    p.add_argument("--confidence", type=float, default=0.95, help="coverage of every interval (default 0.95)")
    p.add_argument("--fit-range", choices=["auto", "all"], default="auto",
                   help="auto: drop points near float32 resolution and where the curvature test rejects a "
                   "power law (default); all: fit every point")
    p.add_argument("--seed", type=int, default=0, help="root seed of the bootstrap streams (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def print_exponents(fits_json: str | Path, console: Console | None = None) -> None:
    """Print the data-scaling exponents alpha_D (with intervals) of a report's fits.json as a table."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)  # no wrapping when piped
    doc = json.loads(Path(fits_json).read_text())
    rows = [r for r in doc["fits"] if r["axis"] == "data" and r["law"] == "power_law"]
    with_compute = any(r.get("compute_value") is not None for r in rows)
    table = Table(title="data-scaling exponents alpha_D (eps ~ N_D^-alpha_D)")
    columns = ["model", "target", *(["compute"] if with_compute else []), "alpha_D",
               f"{doc['confidence']:.0%} interval", "fit range N_D"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "target") else "right", no_wrap=True)
    for r in rows:
        compute = ["" if r.get("compute_value") is None else str(r["compute_value"])] if with_compute else []
        if r.get("exponent") is None:
            table.add_row(str(r["model"]), r["target"], *compute, "-", "", r.get("note", ""))
            continue
        table.add_row(
            str(r["model"]), r["target"], *compute, f"{r['exponent']:.3f}",
            f"[{r['exponent_lo']:.3f}, {r['exponent_hi']:.3f}]", f"{r['fit_min']:g} .. {r['fit_max']:g}",
        )
    console.print(table)


def _run(args) -> int:
    from scalinglab.report import ReportOptions, build_report

    out = Path(args.out) if args.out else Path(args.results) / "report"
    options = ReportOptions(num_bootstrap=args.bootstrap, confidence=args.confidence, fit_range=args.fit_range,
                            seed=args.seed)
    index = build_report(args.results, out, options=options, quiet=args.quiet)
    print_exponents(index.parent / "fits.json")
    print(f"report: {index}")
    return 0

"""``scalinglab plan RESULTS --target-loss X``: invert the fitted scaling laws for a target loss."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

_AXIS_NAMES = {"data": "N_D", "model": "N_M", "compute": "FLOPs"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="how much data / model / compute reaches a target test loss (inverts the fitted laws)",
        description="Fit the sweep's scaling curves (as the report does) and invert them for a target test loss "
        "(the sweep's loss, standardized target units: a test MSE of 1e-3 is 0.1%% of the target's variance). "
        "Prints the needed N with a bootstrap interval per curve; targets below a fitted floor are reported "
        "as unreachable. --num-final adds paper 3's conservative estimate with the bound alpha >= 4/d.",
    )
    p.add_argument("results", help="sweep results directory")
    p.add_argument("--target-loss", type=float, required=True, help="target test loss (standardized units)")
    p.add_argument("--axis", choices=["data", "model", "compute"], default="data",
                   help="which resource to solve for (default: data = N_D)")
    p.add_argument("--target", default=None, help="only curves of this regression target (e.g. J)")
    p.add_argument("--model", default=None, help="only curves whose model label contains this text")
    p.add_argument("--law", choices=["auto", "power_law", "saturating"], default="auto",
                   help="auto: the saturating law where one was fitted (it knows the floor), else the power law")
    p.add_argument("--num-final", type=int, default=None,
                   help="final-state multiplicity n_f of an amplitude process: add paper 3's conservative plan "
                   "anchored at the largest measured point with alpha = 4/(3 n_f - 4)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates of the fits (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run)


def plan_rows(results_dir: str, target_loss: float, axis: str = "data", *, target: str | None = None,
              model: str | None = None, law: str = "auto", num_final: int | None = None,
              num_bootstrap: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per fitted curve on ``axis``: the resource needed for ``target_loss`` with its interval."""
    from scalinglab.report.analysis import ReportOptions, analyze
    from scalinglab.report.loader import load_results
    from scalinglab.stats import conservative_plan, plan

    if not (math.isfinite(target_loss) and target_loss > 0):
        raise ValueError(f"--target-loss must be a positive number, got {target_loss}")
    analysis = analyze(load_results(results_dir), ReportOptions(num_bootstrap=num_bootstrap, seed=seed))
    curves = {"data": analysis.data_curves, "model": analysis.model_curves, "compute": analysis.compute_curves}[axis]
    curves = [c for c in curves if (target is None or c.target == target)
              and (model is None or model in str(c.model_label))]
    if not curves:
        known = sorted({(c.target, str(c.model_label)) for c in analysis.all_curves()})
        raise ValueError(f"no {axis}-axis curve matches (target={target}, model={model}); curves: {known}")
    rows = []
    for c in curves:
        row: dict[str, Any] = {
            "model": c.model_label, "target": c.target, "axis": axis, "x_name": _AXIS_NAMES[axis],
            "num_train": c.num_train, "x_measured": [float(c.x.min()), float(c.x.max())],
        }
        fit = None
        if law in ("auto", "saturating") and c.saturating is not None:
            fit = c.saturating
        elif law in ("auto", "power_law") and c.power_law is not None:
            fit = c.power_law
        if fit is None:
            row.update(law=law, defined=False, reason=c.error or c.saturating_error or f"no {law} fit on this curve")
            rows.append(row)
            continue
        row.update(plan(fit, target_loss).summary())
        if num_final is not None:
            gm = c.points[-1].summary.geometric_mean if c.points[-1].summary else float("nan")
            floor = getattr(fit, "floor_", 0.0)  # saturating fits know their floor K; power laws have none
            cons = conservative_plan(target_loss, float(c.x[-1]), float(gm), num_final, floor=floor,
                                     exponent=fit.exponent_)
            row["conservative"] = {"needed": cons.needed, "exponent_bound": cons.exponent_bound,
                                   "intrinsic_dimension": cons.intrinsic_dimension, "defined": cons.defined,
                                   "reason": cons.reason}
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if v == "inf":
        return "inf"
    return f"{float(v):.3g}"


def _run(args) -> int:
    rows = plan_rows(args.results, args.target_loss, args.axis, target=args.target, model=args.model, law=args.law,
                     num_final=args.num_final, num_bootstrap=args.bootstrap, seed=args.seed)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    name = _AXIS_NAMES[args.axis]
    table = Table(title=f"{name} needed for test loss {args.target_loss:g} (standardized units)")
    for col in ("model", "target", "law", f"measured {name}", f"needed {name}", "95% interval", "note"):
        table.add_column(col)
    for r in rows:
        lo, hi = r["x_measured"]
        if r.get("defined"):
            note = f"extrapolates x{r['extrapolation_factor']:.1f}" if (r.get("extrapolation_factor") or 0) > 1 else ""
            if "conservative" in r and r["conservative"]["defined"]:
                note += f" conservative (alpha=4/{r['conservative']['intrinsic_dimension']}): " \
                        f"{_fmt(r['conservative']['needed'])}"
            table.add_row(str(r["model"]), r["target"], r["law"], f"{lo:.3g}..{hi:.3g}", _fmt(r["needed"]),
                          f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]", note.strip())
        else:
            table.add_row(str(r["model"]), r["target"], r.get("law", "-"), f"{lo:.3g}..{hi:.3g}", "undefined", "",
                          r.get("reason", ""))
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # no wrapping when piped
    return 0

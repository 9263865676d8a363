"""``scalinglab plan RESULTS --target-loss X``: invert the fitted scaling laws for a target loss."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from scalinglab.cli._args import add_status_options

_AXIS_NAMES = {"data": "N_D", "model": "N_M", "compute": "FLOPs"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="how much data / model / compute reaches a target test loss (inverts the fitted laws)",
        description="Fit the sweep's scaling curves (as the report does) and invert them for a target test loss "
        "(the sweep's loss, standardized target units: a test MSE of 1e-3 is 0.1%% of the target's variance). "
        "Prints the needed N with a bootstrap interval per curve; targets below a fitted floor are reported "
        "as unreachable. --conservative adds paper 3's conservative estimate with the bound alpha >= 4/d, d the "
        "phase-space dimension recorded by the sweep's amplitude dataset.",
    )
    p.add_argument("results", help="sweep results directory")
    p.add_argument("--target-loss", type=float, default=None,
                   help="target test loss (standardized units); required unless --compute is given")
    p.add_argument("--compute", type=float, default=None, metavar="C",
                   help="compute budget in FLOPs: print the compute-optimal N_opt(C), D_opt(C) and the loss there "
                   "from each joint fit (C = 6 N D unless --flops-per-param-sample says otherwise)")
    p.add_argument("--flops-per-param-sample", type=float, default=6.0,
                   help="c in the FLOP model C = c N D of --compute (default 6: forward + backward pass)")
    p.add_argument("--axis", choices=["data", "model", "compute"], default="data",
                   help="which resource to solve for (default: data = N_D)")
    p.add_argument("--target", default=None, help="only curves of this regression target (e.g. J)")
    p.add_argument("--model", default=None, help="only curves whose model label contains this text")
    p.add_argument("--law", choices=["auto", "power_law", "saturating"], default="auto",
                   help="auto: the law the report quotes (power law or floored law, chosen by the deviance test "
                   "and re-chosen in every bootstrap replicate; the power law on curves of 3 points); power_law / "
                   "saturating: that fit (saturating only where the report made one)")
    p.add_argument("--conservative", action="store_true",
                   help="add paper 3's conservative plan anchored at the largest measured point with alpha = 4/d, "
                   "d as the sweep's dataset records it (3 n_f - 4 hadronic, 3 n_f - 5 at fixed sqrt(s))")
    p.add_argument("--num-final", type=int, default=None,
                   help="implies --conservative; checked against the dataset's n_f; for a sweep whose records carry "
                   "no n_f, d = 3 n_f - 4 (a hadron-collider sample) is assumed")
    add_status_options(p)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates of the fits (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run)


def plan_rows(results_dir: str, target_loss: float, axis: str = "data", *, target: str | None = None,
              model: str | None = None, law: str = "auto", num_final: int | None = None,
              conservative: bool = False, num_bootstrap: int = 1000, seed: int = 0,
              include_flagged: bool = False, exclude_at_cap: bool = False) -> list[dict[str, Any]]:
    """One row per fitted curve on ``axis``: the resource needed for ``target_loss`` with its interval."""
    from scalinglab.report.analysis import ReportOptions, analyze
    from scalinglab.report.loader import load_results
    from scalinglab.stats import conservative_plan, plan

    if not (math.isfinite(target_loss) and target_loss > 0):
        raise ValueError(f"--target-loss must be a positive number, got {target_loss}")
    results = load_results(results_dir)
    dimension = None
    if conservative or num_final is not None:
        dimension = sweep_dimension(results.records, num_final)
    analysis = analyze(results, ReportOptions(num_bootstrap=num_bootstrap, seed=seed,
                                              include_flagged=include_flagged, exclude_at_cap=exclude_at_cap))
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
        if law == "auto":
            # the report's automatic choice (fit_scaling_curve); a 3-point curve has none: its power law
            fit = c.quoted if c.quoted is not None else c.power_law
            if c.quoted is None and c.quoted_error:
                row["note"] = f"automatic law choice not made ({c.quoted_error}): power law"
        elif law == "saturating":
            fit = c.saturating
        elif law == "power_law":
            fit = c.power_law
        if fit is None:
            row.update(law=law, defined=False,
                       reason=c.error or c.quoted_error or c.saturating_error or f"no {law} fit on this curve")
            rows.append(row)
            continue
        row.update(plan(fit, target_loss).summary())
        if dimension is not None:
            gm = c.points[-1].summary.geometric_mean if c.points[-1].summary else float("nan")
            floor = getattr(fit, "floor_", 0.0)  # saturating fits know their floor K; power laws have none
            cons = conservative_plan(target_loss, float(c.x[-1]), float(gm), dimension=dimension, floor=floor,
                                     exponent=fit.exponent_)
            defined, reason = cons.defined, cons.reason
            if defined and row.get("defined") and cons.needed < float(row["needed"]):
                # a recipe meant as an upper bound that undercuts the fitted law is refused, not printed
                defined = False
                reason = (f"anti-conservative: the 4/d recipe gives {cons.needed:.3g}, less than the fitted law's "
                          f"{float(row['needed']):.3g} (the fitted exponent {fit.exponent_:.3g} is below the bound "
                          f"{cons.exponent_bound:.3g}); refused")
            row["conservative"] = {"needed": cons.needed if defined else None, "exponent_bound": cons.exponent_bound,
                                   "intrinsic_dimension": cons.intrinsic_dimension, "defined": defined,
                                   "reason": reason}
        rows.append(row)
    return rows


def sweep_dimension(records: list[dict[str, Any]], num_final: int | None = None) -> int:
    """The phase-space dimension d of a sweep's amplitude dataset, read from its records.

    Raises:
        ValueError: records of several dimensions, an n_f that contradicts ``num_final``, or no amplitude records
            and no ``num_final``.
    """
    from scalinglab.report.amplitudes import record_dimension

    amp = [r for r in records if r.get("n_f") is not None]
    if not amp:
        if num_final is None:
            raise ValueError("--conservative needs an amplitude sweep (records with n_f) or --num-final")
        if isinstance(num_final, bool) or num_final < 2:
            raise ValueError(f"--num-final must be an integer >= 2, got {num_final}")
        return 3 * int(num_final) - 4  # no dataset record: a hadron-collider sample is assumed (stated in help)
    nfs = {int(r["n_f"]) for r in amp}
    if num_final is not None and nfs != {int(num_final)}:
        raise ValueError(f"--num-final {num_final} contradicts the sweep's dataset (n_f = "
                         f"{', '.join(map(str, sorted(nfs)))}); drop it: d is read from the records")
    dims = {record_dimension(r) for r in amp}
    if len(dims) != 1:
        raise ValueError(f"the sweep's records have several phase-space dimensions {sorted(dims)}")
    return dims.pop()


def compute_rows(results_dir: str, budget: float, *, target: str | None = None, model: str | None = None,
                 flops_per_param_sample: float = 6.0, num_bootstrap: int = 1000, seed: int = 0,
                 include_flagged: bool = False, exclude_at_cap: bool = False) -> list[dict[str, Any]]:
    """One row per joint fit: the compute-optimal allocation of ``budget`` FLOPs with its intervals."""
    from scalinglab.report.analysis import ReportOptions, analyze
    from scalinglab.report.loader import load_results
    from scalinglab.stats.compute_optimal import FlopModel

    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"--compute must be a positive number of FLOPs, got {budget}")
    options = ReportOptions(num_bootstrap=num_bootstrap, seed=seed, compute_budget=budget,
                            flop_model=FlopModel(coefficient=flops_per_param_sample),
                            include_flagged=include_flagged, exclude_at_cap=exclude_at_cap)
    analysis = analyze(load_results(results_dir), options)
    entries = [j for j in analysis.joint_fits if (target is None or j.target == target)
               and (model is None or model in j.family)]
    if not entries:
        raise ValueError("no joint fit to allocate compute with: a joint law needs >= 3 model sizes and >= 3 "
                         "training set sizes per family (and target)")
    rows = []
    for j in entries:
        row: dict[str, Any] = {"model": j.family, "target": j.target}
        if j.optimum is None:
            row.update(defined=False, reason=j.error or "no joint fit")
        else:
            row.update(defined=True, **j.optimum.summary(), flags=list(j.fit.flags_))
        rows.append(row)
    return rows


def _run_compute(args) -> int:
    rows = compute_rows(args.results, args.compute, target=args.target, model=args.model,
                        flops_per_param_sample=args.flops_per_param_sample, num_bootstrap=args.bootstrap,
                        seed=args.seed, include_flagged=args.include_flagged, exclude_at_cap=args.exclude_at_cap)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    table = Table(title=f"compute-optimal allocation of C = {args.compute:g} FLOPs")
    for col in ("model", "target", "N_opt", "95% interval", "D_opt", "95% interval ", "loss", "a, b", "warnings"):
        table.add_column(col)
    for r in rows:
        if not r["defined"]:
            table.add_row(r["model"], r["target"], "undefined", "", "", "", "", "", r["reason"])
            continue
        iv = lambda v: f"[{_fmt(v[0])}, {_fmt(v[1])}]"
        table.add_row(r["model"], r["target"], _fmt(r["n_model_opt"]), iv(r["n_model_opt_interval"]),
                      _fmt(r["n_data_opt"]), iv(r["n_data_opt_interval"]), _fmt(r["loss_at_optimum"]),
                      f"{r['exponent_model']:.3f}, {r['exponent_data']:.3f}",
                      "; ".join(r["extrapolation"] + r["flags"]))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if v == "inf":
        return "inf"
    return f"{float(v):.3g}"


def _run(args) -> int:
    if args.compute is not None:
        return _run_compute(args)
    if args.target_loss is None:
        raise ValueError("give --target-loss (the loss to reach) or --compute (a FLOP budget to allocate)")
    rows = plan_rows(args.results, args.target_loss, args.axis, target=args.target, model=args.model, law=args.law,
                     num_final=args.num_final, conservative=args.conservative, num_bootstrap=args.bootstrap,
                     seed=args.seed,
                     include_flagged=args.include_flagged, exclude_at_cap=args.exclude_at_cap)
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
            if r.get("note"):
                note = f"{r['note']}; {note}" if note else r["note"]
            if "conservative" in r and r["conservative"]["defined"]:
                note += f" conservative (alpha=4/{r['conservative']['intrinsic_dimension']}): " \
                        f"{_fmt(r['conservative']['needed'])}"
            elif "conservative" in r:
                note += f" WARNING conservative plan refused: {r['conservative']['reason']}"
            table.add_row(str(r["model"]), r["target"], r["law"], f"{lo:.3g}..{hi:.3g}", _fmt(r["needed"]),
                          f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]", note.strip())
        else:
            table.add_row(str(r["model"]), r["target"], r.get("law", "-"), f"{lo:.3g}..{hi:.3g}", "undefined", "",
                          r.get("reason", ""))
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # no wrapping when piped
    return 0

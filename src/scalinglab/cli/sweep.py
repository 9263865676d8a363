"""``scalinglab sweep SPEC.toml --out DIR``: run, resume or grow a scaling sweep; ``--dry-run`` plans it;
``scalinglab sweep status DIR`` says how far a results directory is."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a data/model/compute scaling sweep from a TOML spec",
        description="Expand a sweep spec into tasks (model x N_D x target), train R realizations per task with the "
        "ensemble trainer, and store one durable record per task. Killed runs continue with --resume; a "
        "resume may also grow the sweep (more N_D, sizes, targets or realizations). "
        "'scalinglab sweep status DIR' reports finished and pending tasks of a results directory.",
    )
    p.add_argument("spec", help="sweep specification (TOML; see configs/), or the word 'status'")
    p.add_argument("dir", nargs="?", default=None, help="with 'status': the results directory")
    p.add_argument("--out", default=None, help="results directory (required to run)")
    p.add_argument("--dry-run", action="store_true",
                   help="check everything and print the task table with the estimated cost; train nothing")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: in-process (default); ray: Ray tasks on a local instance or --address")
    p.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a locally started Ray instance")
    p.add_argument("--resume", action="store_true", help="continue a results directory made by the same spec")
    p.add_argument("--max-tasks", type=int, default=None, help="stop after this many tasks (resume later)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def print_summary(results, loss_key: str = "mse", console: Console | None = None) -> None:
    """A table of AM / GM / median test loss per design point."""
    from scalinglab.sweeps.runner import summary_rows

    console = console or Console()
    rows = summary_rows(results, loss_key)
    patches = any(r.get("mode") == "patches" for r in results.records())
    table = Table(title="test MAE (physical units) per model, target and N_data" if patches
                  else f"test {loss_key} (standardized target units) per design point")
    for col in ("model", "target", "N_D", "compute", "R", "arith. mean", "geo. mean", "median"):
        table.add_column(col, justify="right" if col not in ("model", "target") else "left")
    for r in rows:
        table.add_row(r["model"], r["target"], str(r["num_train"]), "" if r["compute"] is None else str(r["compute"]),
                      str(r["realizations"]), f"{r['arith_mean']:.3e}", f"{r['geo_mean']:.3e}", f"{r['median']:.3e}")
    console.print(table)


def _dry_run(args) -> int:
    from scalinglab.sweeps.results import ResultsStore
    from scalinglab.sweeps.runner import check_tasks, estimated_flops, pending_tasks, plan_sweep
    from scalinglab.sweeps.spec import load_spec

    spec = load_spec(args.spec)
    tasks, common, _ = plan_sweep(spec, args.out or ".")
    params = check_tasks(spec, tasks, common, args.executor)
    results = ResultsStore(args.out) if args.out else None
    pending = pending_tasks(tasks, results)[0] if results is not None and results.exists() else tasks
    todo = {p.point_key: p for p in pending}  # a grown point trains only its new realizations
    table = Table(title=f"sweep {spec.name}: {len(tasks)} tasks x {spec.realizations} realizations (dry run)")
    for col in ("model", "size", "N_D", "target", "compute", "params", "est. FLOPs", "state"):
        table.add_column(col, justify="left" if col in ("model", "target", "state") else "right")
    total = 0.0
    for t in tasks:
        left = todo.get(t.point_key)
        flops = estimated_flops(left, params[t.task_id]) if left is not None else 0.0
        total += flops
        state = "finished" if left is None else ("to train" if left.first_realization == 0
                                                 else f"realizations {left.first_realization}.. to train")
        table.add_row(t.family, str(t.size_value), str(t.num_train), t.target,
                      "" if t.compute_value is None else str(t.compute_value), f"{params[t.task_id]:,}",
                      f"{flops:.2e}", state)  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # a log file gets the whole table
    print(f"to train: {sum(t.point_key in todo for t in tasks)} of {len(tasks)} tasks, about {total:.2e} FLOPs "
          "(6 per parameter per training sample per epoch; early stopping only lowers it)")  # fmt: skip
    return 0


def _status(args) -> int:
    from scalinglab.sweeps.status import sweep_status

    if not args.dir:
        raise ValueError("usage: scalinglab sweep status DIR")
    print(sweep_status(args.dir).format())
    return 0


def _run(args) -> int:
    from pathlib import Path

    from scalinglab.sweeps.runner import run_sweep
    from scalinglab.sweeps.spec import load_spec

    if args.spec == "status" and not Path(args.spec).is_file():
        return _status(args)
    if args.dir is not None:
        raise ValueError(f"unexpected argument {args.dir!r} (the results directory goes after --out)")
    if args.dry_run:
        return _dry_run(args)
    if args.out is None:
        raise ValueError("--out DIR is required: the results directory of the sweep")
    spec = load_spec(args.spec)
    results = run_sweep(args.spec, args.out, executor=args.executor, address=args.address, resume=args.resume,
                        quiet=args.quiet, max_tasks=args.max_tasks, num_cpus=args.num_cpus)
    print_summary(results, spec.loss_key)
    print(f"results: {results.root}")
    return 0

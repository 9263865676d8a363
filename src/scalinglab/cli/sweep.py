"""``scalinglab sweep SPEC.toml --out DIR``: run or resume a scaling sweep."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a data/model/compute scaling sweep from a TOML spec",
        description="Expand a sweep spec into tasks (model x N_D x target), train R realizations per task with the "
        "ensemble trainer, and store one durable record per task. Killed runs continue with --resume.",
    )
    p.add_argument("spec", help="sweep specification (TOML); see configs/ for examples")
    p.add_argument("--out", required=True, help="results directory")
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
    table = Table(title=f"test {loss_key} (standardized target units) per design point")
    for col in ("model", "target", "N_D", "compute", "R", "arith. mean", "geo. mean", "median"):
        table.add_column(col, justify="right" if col not in ("model", "target") else "left")
    for r in rows:
        table.add_row(r["model"], r["target"], str(r["num_train"]), "" if r["compute"] is None else str(r["compute"]),
                      str(r["realizations"]), f"{r['arith_mean']:.3e}", f"{r['geo_mean']:.3e}", f"{r['median']:.3e}")
    console.print(table)


def _run(args) -> int:
    from scalinglab.sweeps.runner import run_sweep
    from scalinglab.sweeps.spec import load_spec

    spec = load_spec(args.spec)
    results = run_sweep(args.spec, args.out, executor=args.executor, address=args.address, resume=args.resume,
                        quiet=args.quiet, max_tasks=args.max_tasks, num_cpus=args.num_cpus)
    print_summary(results, spec.loss_key)
    print(f"results: {results.root}")
    return 0

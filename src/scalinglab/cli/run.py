"""``scalinglab run JOB``: named end-to-end jobs. ``quickstart`` is the main job (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run a named end-to-end job (quickstart: simulate -> sweep -> fit -> report)",
        description="Run a named job. quickstart: generate (or reuse) CrI3 domain images with the moire simulator's "
        "quick profile, run an FCN data-scaling sweep for theta, J and D, fit power laws, write the HTML report.",
    )
    p.add_argument("job", choices=["quickstart"], help="the job to run")
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="output directory")
    p.add_argument("--cache-dir", type=Path, default=Path("cache"), help="where simulated datasets are cached")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="executor for simulation and sweep")
    p.add_argument("--realizations", type=int, default=5, help="realizations per design point (>= 5)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epoch budget per realization (default: the job's, QuickstartConfig.epochs; the stopping "
                   "rule ends most realizations before it)")
    p.add_argument("--seed", type=int, default=0, help="root seed of the whole job")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from scalinglab.cli.report import print_exponents
    from scalinglab.jobs.quickstart import QuickstartConfig, run_quickstart

    if args.realizations < 1:
        raise ValueError(f"--realizations must be >= 1, got {args.realizations}")
    # only what was given overrides the job's defaults (a CLI default of its own once hid the job's epoch budget)
    given = {} if args.epochs is None else {"epochs": args.epochs}
    cfg = QuickstartConfig(out=args.out, cache_dir=args.cache_dir, executor=args.executor,
                           realizations=args.realizations, seed=args.seed, quiet=args.quiet, **given)
    summary = run_quickstart(cfg)
    print_exponents(Path(summary["index_html"]).parent / "fits.json")
    print(f"\nreport: {summary['index_html']}")
    print(f"total time: {summary['wall_time_s'] / 60:.1f} min")
    return 0

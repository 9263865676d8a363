"""``scalinglab simulate tdgl``: thin-film TDGL hysteresis patterns (paper 4) into a dataset store."""

from __future__ import annotations

import argparse

from scalinglab.cli._args import int_list_type


def _parse_pair(text: str) -> tuple[float, float]:
    try:
        d, j = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected D,J (two numbers separated by a comma), got {text!r}") from None
    return d, j


_parse_seeds = int_list_type("seeds", "1..12 or 1,2,5")


def _parse_k0(text: str) -> str:
    from scalinglab.simulators.tdgl.kernel import parse_convention

    try:
        parse_convention(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tdgl", help="thin-film TDGL domain patterns over a (D, J) grid (paper 4)",
        description="Simulate hysteresis loops of paper 4 Eq. 1-2 and store the binarized pattern at the second "
                    "zero crossing of the mean magnetization. Diverging or non-reversing runs are excluded and "
                    "reported. Resumable: rerun the same command to continue.",
    )
    p.add_argument("--out", required=True, help="dataset store directory (created or resumed)")
    p.add_argument("--profile", choices=["quick", "paper"], default="quick",
                   help="quick: 64x64, fast ramp, 5x5 grid, seeds 1-2 (minutes on 2 CPU cores); "
                        "paper: 256x256, T=1e5, 20x20 grid, seeds 1..12")
    p.add_argument("--grid", nargs="+", type=_parse_pair, metavar="D,J",
                   help="(D, J) pairs to simulate instead of the profile's grid, e.g. --grid 1.0,2.0 0.5,1.5")
    p.add_argument("--table-iii", action="store_true",
                   help="use exactly the (D, J) pairs of paper 4 Table III instead of the profile's grid")
    p.add_argument("--seeds", type=_parse_seeds, help="simulation seeds, e.g. 1..12 (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="simulations advanced together (default: the profile's)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--size", type=int, help="grid side length overriding the profile's (square grid)")
    p.add_argument("--ramp-time", type=float, help="ramp time T of Eq. 2 overriding the profile's")
    p.add_argument("--k0", type=_parse_k0, metavar="CONVENTION",
                   help="dipolar convention (default absorbed_x1.5+demag2: local part of the 1/r^3 sum absorbed "
                        "into A0, field 1.5*gamma, a demagnetizing field -2*gamma*mean(m) on the mean; also "
                        "absorbed_x2.5 (the default before 2026-12-01), absorbed, lattice (the default before that), "
                        "zero, and absorbed_x<factor>[+demag<c>], e.g. absorbed+demagC; see "
                        "simulators/tdgl/kernel.py). Stored with the campaign; resume a store with its own value")
    p.add_argument("--maps", action="store_true",
                   help="simulate spatially varying D instead (inner region D_in, outer frame D=1.0, J=2.0; "
                        "paper 4 Fig. 5)")
    p.add_argument("--d-in", type=float, nargs="+", default=[0.1, 0.4, 0.7, 1.0, 1.3, 1.6, 1.9],
                   help="inner-region D values for --maps (default: 0.1..1.9 step 0.3)")
    p.add_argument("--patterns-figure", metavar="PNG",
                   help="after the campaign, write a figure of the seed-1 patterns over the (D, J) grid")
    p.add_argument("--survey", metavar="DIR",
                   help="after the campaign, survey it against paper 4: Table III agreement, chord length trends "
                        "in J and D, share of saturated pixels, coercive fields (survey.csv / .json / .png)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1: on a shared or small machine extra threads mostly "
                        "contend; run several processes with different --seeds to use more cores)")
    p.add_argument("--executor", default="local", metavar="{local,ray}",
                   help="local (default): batches one after the other in this process; ray: every batch is a Ray "
                        "task (one CPU, one torch thread; with --device cuda, --ray-gpus GPUs) and this process "
                        "appends the results in the local order, so the store is the same either way")
    p.add_argument("--ray-gpus", type=float, metavar="N",
                   help="GPUs per Ray task with --executor ray --device cuda (default 1; 0.5 puts two batches of "
                        "--batch-size members on each GPU)")
    p.add_argument("--ray-cpus", type=int, metavar="N",
                   help="CPUs of the Ray instance started for --executor ray (default: all; ignored when Ray is "
                        "already running in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)


def handler(args) -> int:
    import torch

    from scalinglab.simulators.tdgl.campaign import check_executor, run_campaign, run_map_campaign, table_iii_grid

    check_executor(args.executor)
    if args.survey and args.maps:
        raise ValueError("--survey reads a uniform-parameter campaign; drop --maps")
    if args.maps and args.executor != "local":
        raise ValueError("--maps runs with the local executor only (one large map at a time); drop --executor")
    if args.ray_cpus is not None and args.ray_cpus < 1:
        raise ValueError(f"--ray-cpus must be >= 1, got {args.ray_cpus}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    overrides: dict = {"device": args.device}
    if args.size is not None:
        if args.size < 8:
            raise ValueError(f"--size must be at least 8, got {args.size}")
        overrides["size"] = (args.size, args.size)
    if args.ramp_time is not None:
        overrides["ramp_time"] = args.ramp_time
    if args.k0 is not None:
        overrides["k0"] = args.k0
    if args.maps:
        size = overrides.pop("size", None)
        rep = run_map_campaign(args.out, profile=args.profile, D_in=args.d_in, seeds=args.seeds or [1],
                               size=size, solver_overrides=overrides, quiet=args.quiet)
    else:
        grid = table_iii_grid() if args.table_iii else args.grid
        rep = run_campaign(args.out, profile=args.profile, grid=grid, seeds=args.seeds,
                           batch_size=args.batch_size, solver_overrides=overrides, quiet=args.quiet,
                           executor=args.executor, ray_num_gpus=args.ray_gpus, ray_num_cpus=args.ray_cpus)
    print(f"stored {rep.stored} new patterns in {args.out} ({rep.skipped_done} tasks already done)")
    if rep.excluded:
        print(f"excluded {len(rep.excluded)} runs (never stored as patterns):")
        for e in rep.excluded:
            print("  " + ", ".join(f"{k}={v}" for k, v in e.items()))
    if args.patterns_figure and not args.maps:
        from scalinglab.simulators.tdgl.figures import patterns_figure

        patterns_figure(args.out, args.patterns_figure)
        print(f"wrote {args.patterns_figure}")
    if args.survey:
        from scalinglab.simulators.tdgl.survey import summary_lines, survey, write_survey

        result = survey(args.out)
        paths = write_survey(result, args.survey)
        for line in summary_lines(result):
            print(line)
        print(f"wrote {paths['csv']}, {paths['json']}, {paths['png']}")
    return 0



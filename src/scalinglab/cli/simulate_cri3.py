"""``scalinglab simulate cri3`` and ``scalinglab simulate cri3-phase-diagram``: twisted bilayer CrI3 (papers 1-2)."""

from __future__ import annotations

import argparse

from scalinglab.cli._args import int_list_type

_angles = int_list_type("commensurate indices", "8,10,12 or 8..12")
_PROFILE_HELP = ("quick: m=8..12, 4 structured starts, tol 1e-2 meV, no refinement (minutes on 2 cores); "
                 "standard: m=8..32, 4 structured + 2 random starts, competitors refined to 1e-3..1e-5 meV; "
                 "paper: m=8..32, 4 structured + 50 random starts, refined to 1e-4..1e-6 meV (for CUDA / Ray GPUs)")


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range lo,hi like 1,10, got {text!r}") from None
    return lo, hi


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cri3", help="twisted bilayer CrI3 domain images (papers 1-2)",
        description="Sample (theta, J, D) in the papers' ranges (theta over the commensurate angles), find each ground "
                    "state by batched relaxation of several starts, and store two-channel m_z images (top, bottom) "
                    "with targets theta (deg), J (meV), D (meV). FM samples go to a sibling store <name>_fm. "
                    "With --params FILE.csv every row (theta or m, J, D) becomes a sample, FM rows included. "
                    "Per sample the store records the phase, the runner-up phase, the energy gap, its uncertainty "
                    "and a resolved flag. Resumable: rerun the same command to continue.",
    )
    p.add_argument("--num-samples", type=int,
                   help="number of stored (non-FM) samples wanted in the dataset (required unless --params)")
    p.add_argument("--out", required=True, help="dataset store directory (created or resumed)")
    p.add_argument("--profile", choices=["quick", "standard", "paper"], default="quick", help=_PROFILE_HELP)
    p.add_argument("--params", metavar="FILE.csv",
                   help="explicit parameter sets: CSV with a header theta (deg; a commensurate angle to 1e-3) or m, "
                        "and J, D (meV); every row becomes a sample (FM rows included in the main store)")
    p.add_argument("--J-range", type=_range, metavar="LO,HI", help="range of the random J draws (meV; default 1,10)")
    p.add_argument("--D-range", type=_range, metavar="LO,HI",
                   help="range of the random D draws (meV; default 0.01,0.3)")
    p.add_argument("--device", default="cpu",
                   help="torch device of the relaxation: cpu (default) or cuda[:k] (float64); with --executor ray "
                        "and cuda each task takes one GPU")
    p.add_argument("--seed", type=int, default=0, help="root seed of the parameter draws and random starts")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: in-process (default); ray: chunks as Ray tasks, the driver writes the store")
    p.add_argument("--chunk-size", type=int, help="draws per chunk (store append / Ray task); default 256")
    p.add_argument("--angles", type=_angles, metavar="M_LIST",
                   help="commensurate indices m to sample instead of the profile's, e.g. 8..32 or 8,16,32")
    p.add_argument("--interlayer", choices=["relaxed", "rigid"], help="DFT stacking table (default relaxed)")
    p.add_argument("--num-random", type=int, help="random starts per parameter set (default: the profile's)")
    p.add_argument("--tol", type=float, help="max-torque tolerance in meV (default: the profile's)")
    p.add_argument("--max-iter", type=int, help="iteration cap per replica (default: the profile's)")
    p.add_argument("--grid", type=int, help="image pixels per side of the 100 nm field of view (default 100)")
    p.add_argument("--quadrant", action="store_true",
                   help="keep only the first quadrant (paper 2: --grid 200 --quadrant gives 100x100)")
    p.add_argument("--include-fm", action="store_true", help="also store FM samples in the main dataset")
    p.add_argument("--no-recombine", action="store_true",
                   help="do not add the composite states of the three domain regions to the starts (the search "
                        "then relies on the starts alone; see README 'Ground states')")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads of the local executor (default 1: on small busy machines one thread "
                        "is fastest; use --executor ray to occupy several cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)

    q = subparsers.add_parser(
        "cri3-phase-diagram", help="FM / NCD / MD phase diagram of twisted bilayer CrI3 over (J, D), as a PNG",
        description="Relax a regular J x D grid at a few twist angles and plot the FM / NCD / MD phases.",
    )
    q.add_argument("--out", required=True, help="output PNG path")
    q.add_argument("--angles", type=_angles, default=[8, 10, 12], metavar="M_LIST",
                   help="commensurate indices m of the panels (default 8,10,12: 3.89, 3.15, 2.65 deg)")
    q.add_argument("--num-j", type=int, default=8, help="grid points along J in [1, 10] meV (default 8)")
    q.add_argument("--num-d", type=int, default=8, help="grid points along D in [0.01, 0.3] meV (default 8)")
    q.add_argument("--profile", choices=["quick", "standard", "paper"], default="quick",
                   help="search settings to use (default quick): " + _PROFILE_HELP)
    q.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:k]")
    q.add_argument("--interlayer", choices=["relaxed", "rigid"], help="DFT stacking table (default relaxed)")
    q.add_argument("--seed", type=int, default=0, help="seed of the starts")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=phase_handler)


def handler(args) -> int:
    import numpy as np

    from scalinglab.simulators.moire.campaign import fm_store_path, read_params_csv, run_campaign
    from scalinglab.simulators.moire.phases import NUM_PHASES, PHASE_NAMES

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    params = read_params_csv(args.params) if args.params else None
    if params is None and args.num_samples is None:
        raise ValueError("--num-samples is required unless --params is given")
    if params is not None and (args.J_range or args.D_range or args.angles):
        raise ValueError("--params fixes every parameter: drop --angles, --J-range and --D-range")
    overrides = {"chunk_size": args.chunk_size, "m_values": args.angles, "interlayer": args.interlayer,
                 "num_random": args.num_random, "tol": args.tol, "max_iter": args.max_iter, "grid": args.grid,
                 "recombine": False if args.no_recombine else None,
                 "J_range": args.J_range, "D_range": args.D_range, "device": args.device, "params": params}
    if args.quadrant:
        overrides["quadrant"] = True
        if args.grid is None:
            overrides["grid"] = 200
    if args.include_fm:
        overrides["include_fm"] = True
    store = run_campaign(args.out, args.num_samples, profile=args.profile, seed=args.seed, executor=args.executor,
                         quiet=args.quiet, threads=args.threads, **overrides)
    try:
        n = store.num_samples
        phases = np.bincount(store.aux("phase"), minlength=NUM_PHASES) if n else np.zeros(NUM_PHASES, int)
        nonconv = int(np.count_nonzero(~store.aux("converged"))) if n else 0
        unresolved = int(np.count_nonzero(~store.aux("resolved"))) if n else 0
        counts = ", ".join(f"{PHASE_NAMES[k]} {phases[k]}" for k in range(NUM_PHASES))
        print(f"{store.path}: {n} samples ({counts}; {nonconv} not converged, {unresolved} unresolved ordering); "
              f"FM samples recorded in {fm_store_path(args.out)}")
    finally:
        store.close()
    return 0


def phase_handler(args) -> int:
    import numpy as np

    from scalinglab.simulators.moire.phase_diagram import phase_diagram
    from scalinglab.simulators.moire.phases import NUM_PHASES, PHASE_NAMES

    overrides = {"interlayer": args.interlayer} if args.interlayer else {}
    grids = phase_diagram(args.out, args.angles, args.num_j, args.num_d, profile=args.profile, seed=args.seed,
                          quiet=args.quiet, device=args.device, **overrides)
    for m, g in grids.items():
        counts = ", ".join(f"{PHASE_NAMES[k]} {int((g['phase'] == k).sum())}" for k in range(NUM_PHASES))
        print(f"m={m}: {counts}; unresolved {int(np.count_nonzero(~g['resolved']))}, "
              f"not converged {int(np.count_nonzero(~g['converged']))}")
    print(f"wrote {args.out}")
    return 0

"""``scalinglab simulate cri3`` and ``scalinglab simulate cri3-phase-diagram``: twisted bilayer CrI3 (papers 1-2)."""

from __future__ import annotations

from scalinglab.cli._args import int_list_type

_angles = int_list_type("commensurate indices", "8,10,12 or 8..12")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cri3", help="twisted bilayer CrI3 domain images (papers 1-2)",
        description="Sample (theta, J, D) in the papers' ranges (theta over the commensurate angles), find each ground "
                    "state by batched relaxation of several starts, and store two-channel m_z images (top, bottom) "
                    "with targets theta (deg), J (meV), D (meV). FM samples go to a sibling store <name>_fm. "
                    "Resumable: rerun the same command to continue.",
    )
    p.add_argument("--num-samples", type=int, required=True,
                   help="number of stored (non-FM) samples wanted in the dataset")
    p.add_argument("--out", required=True, help="dataset store directory (created or resumed)")
    p.add_argument("--profile", choices=["quick", "paper"], default="quick",
                   help="quick: m=8..12, 4 structured starts, tol 1e-2 meV (minutes on 2 cores); "
                        "paper: m=8..32, 4 structured + 50 random starts, tol 1e-4 meV")
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
    q.add_argument("--profile", choices=["quick", "paper"], default="quick",
                   help="search settings to use (default quick)")
    q.add_argument("--interlayer", choices=["relaxed", "rigid"], help="DFT stacking table (default relaxed)")
    q.add_argument("--seed", type=int, default=0, help="seed of the starts")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=phase_handler)


def handler(args) -> int:
    from scalinglab.simulators.moire.campaign import fm_store_path, run_campaign

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    overrides = {"chunk_size": args.chunk_size, "m_values": args.angles, "interlayer": args.interlayer,
                 "num_random": args.num_random, "tol": args.tol, "max_iter": args.max_iter, "grid": args.grid}
    if args.quadrant:
        overrides["quadrant"] = True
        if args.grid is None:
            overrides["grid"] = 200
    if args.include_fm:
        overrides["include_fm"] = True
    store = run_campaign(args.out, args.num_samples, profile=args.profile, seed=args.seed, executor=args.executor,
                         quiet=args.quiet, threads=args.threads, **overrides)
    try:
        import numpy as np

        phases = np.bincount(store.aux("phase"), minlength=3) if store.num_samples else np.zeros(3, int)
        nonconv = int(np.count_nonzero(~store.aux("converged"))) if store.num_samples else 0
        print(f"{store.path}: {store.num_samples} samples (FM {phases[0]}, NCD {phases[1]}, MD {phases[2]}; "
              f"{nonconv} not converged); FM samples recorded in {fm_store_path(args.out)}")
    finally:
        store.close()
    return 0


def phase_handler(args) -> int:
    from scalinglab.simulators.moire.phase_diagram import phase_diagram

    overrides = {"interlayer": args.interlayer} if args.interlayer else {}
    grids = phase_diagram(args.out, args.angles, args.num_j, args.num_d, profile=args.profile, seed=args.seed,
                          quiet=args.quiet, **overrides)
    for m, g in grids.items():
        counts = [int((g["phase"] == k).sum()) for k in range(3)]
        print(f"m={m}: FM {counts[0]}, NCD {counts[1]}, MD {counts[2]}")
    print(f"wrote {args.out}")
    return 0

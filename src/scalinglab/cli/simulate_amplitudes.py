"""``scalinglab simulate amplitudes``: RAMBO events and exact tree-level |M|^2 into a dataset store."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    from scalinglab.simulators.amplitudes.processes import list_processes

    parser = subparsers.add_parser(
        "amplitudes",
        help="phase-space points and exact tree-level |M|^2 for a scattering process",
        description="Generate RAMBO phase-space points in the centre-of-mass frame and their tree-level squared "
        "matrix elements (summed over helicities and colours, couplings = 1) into a dataset store: inputs = "
        "momenta [N, 4n] (E, px, py, pz per particle, incoming first), target 'amp2'. Re-running the same "
        "command resumes; a larger --num-samples extends the store. Processes: " + "; ".join(list_processes()),
    )
    parser.add_argument("--process", required=True, help='process string, e.g. "g g > g g g"')
    parser.add_argument("--num-samples", type=int, required=True, help="number of samples the store should hold")
    parser.add_argument("--sqrt-s", type=float, required=True, help="centre-of-mass energy in GeV")
    parser.add_argument("--out", required=True, help="dataset store directory (created or resumed)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--min-invariant", type=float, default=0.0,
                        help="minimal s_ij = (p_i + p_j)^2 between final-state massless particles, GeV^2 (default 0)")
    parser.add_argument("--min-pt", type=float, default=0.0,
                        help="minimal transverse momentum of final-state massless particles, GeV (default 0)")
    parser.add_argument("--min-delta-r", type=float, default=0.0,
                        help="minimal Delta R between final-state massless particles (default 0)")
    parser.add_argument("--max-abs-eta", type=float, default=0.0,
                        help="maximal |pseudorapidity| of final-state massless particles (default 0 = no cut)")
    parser.add_argument("--method", choices=["auto", "closed", "bg"], default="auto",
                        help="closed forms, Berends-Giele, or auto (closed form where one exists)")
    parser.add_argument("--batch-size", type=int, default=4096, help="events per batch and commit (default 4096)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from scalinglab.simulators.amplitudes.campaign import simulate_amplitudes
    from scalinglab.simulators.amplitudes.phase_space import Cuts

    cuts = Cuts(min_invariant=args.min_invariant, min_pt=args.min_pt, min_delta_r=args.min_delta_r,
                max_abs_eta=args.max_abs_eta)
    with simulate_amplitudes(args.out, args.process, args.num_samples, args.sqrt_s, seed=args.seed, cuts=cuts,
                             method=args.method, batch_size=args.batch_size, quiet=args.quiet) as store:
        print(json.dumps({"path": str(store.path), "num_samples": store.num_samples,
                          "process": store.metadata["config"]["process"]}))
    return 0

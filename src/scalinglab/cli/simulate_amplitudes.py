"""``scalinglab simulate amplitudes``: phase-space events (hadron collider or fixed sqrt(s)) and exact tree-level
|M|^2 into a dataset store."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    from scalinglab.simulators.amplitudes.processes import list_processes

    parser = subparsers.add_parser(
        "amplitudes",
        help="phase-space points and exact tree-level |M|^2 for a scattering process",
        description="Generate phase-space points and their tree-level squared matrix elements (summed over "
        "helicities and colours, couplings = 1) into a dataset store: inputs = momenta [N, 4n] (E, px, py, pz per "
        "particle, incoming first), target 'amp2'. --collider-energy: unweighted events of a proton-proton "
        "collider (partonic sqrt(s_hat) from the shipped Duke-Owens 1 PDFs; |M|^2 depends on 3 n_f - 4 "
        "variables, as in paper 3); --sqrt-s: flat RAMBO events at one centre-of-mass energy (3 n_f - 5 "
        "variables). Re-running the same command resumes; a larger --num-samples extends the store. "
        "Processes: " + "; ".join(list_processes()),
    )
    parser.add_argument("--process", required=True, help='process string, e.g. "g g > g g g"')
    parser.add_argument("--num-samples", type=int, required=True, help="number of samples the store should hold")
    energy = parser.add_mutually_exclusive_group(required=True)
    energy.add_argument("--collider-energy", type=float, metavar="SQRT_S",
                        help="proton-proton collision energy in GeV (e.g. 13000): unweighted hadronic events")
    energy.add_argument("--sqrt-s", type=float, help="fixed partonic centre-of-mass energy in GeV (weighted events)")
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
    parser.add_argument("--batch-size", type=int, default=4096,
                        help="events per batch and commit (hadronic: weighted events before unweighting; default 4096)")
    parser.add_argument("--pdf", default="duke-owens-1", help="PDF set (hadronic; default duke-owens-1, shipped)")
    parser.add_argument("--scale-factor", type=float, default=0.5,
                        help="factorization scale mu_F = factor x sqrt(s_hat) (hadronic; default 0.5)")
    parser.add_argument("--min-sqrt-s-hat", type=float, default=0.0,
                        help="lower bound on the partonic sqrt(s_hat) in GeV (hadronic; default: from masses and cuts)")
    parser.add_argument("--calibration-events", type=int, default=50_000,
                        help="weighted events whose largest weight sets the unweighting w_max (hadronic; "
                        "default 50000)")
    parser.add_argument("--wmax-quantile", type=float, default=1.0,
                        help="hadronic: w_max = this quantile of the calibration weights (default 1: their maximum); "
                        "e.g. 0.9999 raises the efficiency of g g > g g g 3-5x; the events above w_max are kept with "
                        "probability 1, under-representing the share of the cross section printed as "
                        "sigma_share_above_wmax (3%% there)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from scalinglab.simulators.amplitudes.campaign import simulate_amplitudes
    from scalinglab.simulators.amplitudes.phase_space import Cuts

    cuts = Cuts(min_invariant=args.min_invariant, min_pt=args.min_pt, min_delta_r=args.min_delta_r,
                max_abs_eta=args.max_abs_eta)
    with simulate_amplitudes(args.out, args.process, args.num_samples, args.sqrt_s,
                             collider_energy=args.collider_energy, seed=args.seed, cuts=cuts, method=args.method,
                             batch_size=args.batch_size, pdf=args.pdf, scale_factor=args.scale_factor,
                             min_sqrt_s_hat=args.min_sqrt_s_hat, calibration_events=args.calibration_events,
                             wmax_quantile=args.wmax_quantile, quiet=args.quiet) as store:
        meta, state = store.metadata, store.state
        summary = {"path": str(store.path), "num_samples": store.num_samples, "process": meta["config"]["process"],
                   "sampling": meta["sampling"], "phase_space_dimension": meta["phase_space_dimension"]}
        if meta["sampling"] == "hadronic":
            summary.update({"unweighting_efficiency": state.get("efficiency"),
                            "overweight_events": state.get("overweight"),
                            "cut_acceptance": meta["unweighting"]["cut_acceptance"],
                            "sigma_share_above_wmax": meta["unweighting"].get("sigma_share_above_wmax")})
        print(json.dumps(summary))
    return 0

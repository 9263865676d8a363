"""Benchmark: scalinglab's batched relaxer vs Spirit 2.2.0 (VP_OSO, LBFGS_OSO) on the same CrI3 bilayer.

Same Hamiltonian (exported with ``spirit_io.write_spirit_input``; energies of identical states checked to agree),
same random starts, same tolerance: max torque max_i |S_i x H_i| < tol (meV). Spirit's VP/VP_OSO test that torque
times dt gamma / mu_B, so their threshold is scaled to mean the same torque (``spirit_io.spirit_convergence``);
LBFGS_OSO tests the torque itself. Spirit evaluates its criterion at the state before its last rotation; the torque
of the state it returns, recomputed here with scalinglab's Hamiltonian, is printed (column ``torque``).

One sample = one parameter set (J, D) with ``--starts`` random starts. scalinglab relaxes all starts of a sample in
one batch with the step fused by ``torch.compile`` (``compile=True``; the one-off compilations, of the batched and
of the size-1 kernel, are excluded and printed separately, as a campaign pays them once per process); Spirit
relaxes one start at a time. Two scalinglab rows:
``scalinglab bb`` relaxes every start to tol (the same work as Spirit), ``scalinglab search`` is the ground-state
search a campaign runs on the same starts (``ground_state.search_ground_states``: all starts to a loose tolerance,
the composite states of the three domain regions, then the winner and the best states of the other phases refined
to tol); its winner must be as low as the lowest start relaxed fully (``energy_vs_full_relaxation_rel``, negative
when the composites found a lower state). Spirit's threshold is tightened until its returned states meet tol
(``run_spirit_to_tol``; ``--spirit-nominal`` keeps the nominal one). Both run on one thread
here (Spirit's PyPI build has no OpenMP), and both parallelize over samples on two cores by running two processes,
so the two-core time per sample is half the one-thread time for both and the ratio is the same. Reported:
``ratio_m<m>`` = Spirit's best solver's seconds per sample / scalinglab's best method's. Spirit's per-sample time is
its mean seconds per start (over ``--spirit-starts`` starts, a subset to keep VP_OSO affordable) times ``--starts``. The
machine is shared: all codes are timed in one process, one after the other.

Usage: python benchmarks/moire_spirit.py [--quick] [--m 12 20 32] [--starts 50] [--spirit-starts 3]
       [--chunk-spins auto 0 15000] [--no-single]
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from scalinglab.simulators.moire.campaign import _hamiltonian
from scalinglab.simulators.moire.ground_state import SearchConfig, search_ground_states
from scalinglab.simulators.moire.lattice import twist_angle
from scalinglab.simulators.moire.relax import DEFAULT_METHOD, relax
from scalinglab.simulators.moire.spirit_io import set_spirit_spins, spirit_energy, write_spirit_input
from scalinglab.simulators.moire.starts import random_states


def run_scalinglab(ham, x0: np.ndarray, J: float, D: float, tol: float, method: str, max_iter: int,
                   chunk_spins="auto") -> dict:
    """All starts of one sample in one call (in chunks of ``chunk_spins`` spins): seconds, iterations, energies."""
    x = torch.as_tensor(x0)
    kw = {"method": method, "compile": True, "chunk_spins": chunk_spins}
    t = time.perf_counter()
    relax(ham, x, J, D, tol=tol, max_iter=2, **kw)  # warm-up: compilation (once per process) ...
    relax(ham, x[:1], J, D, tol=tol, max_iter=2, **kw)  # ... and the size-1 kernel of the last replica
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    r = relax(ham, x, J, D, tol=tol, max_iter=max_iter, **kw)
    el = time.perf_counter() - t
    return {"seconds_per_sample": el, "compile_seconds": compile_s, "iterations": r.iterations.numpy(),
            "energy": r.energy.numpy(), "max_torque": float(r.max_torque.max()),
            "converged": float(r.converged.double().mean())}


def run_search(ham, seed: int, starts: int, J: float, D: float, tol: float, loose_tol: float) -> dict:
    """The ground-state search on the same random starts (``seed``): loose stage, recombination, refinement to tol.

    ``initial_states(..., structured=(), num_random=starts, seed=seed)`` draws exactly the states
    ``random_states(starts, N, default_rng(seed))`` that the other rows relax.
    """
    cfg = SearchConfig(structured=(), num_random=starts, tol=loose_tol, max_iter=100000, refine_tol=tol,
                       refine_levels=0, refine_max_iter=100000, candidates_per_phase=2)
    search_ground_states(ham, [J], [D], [seed], SearchConfig(structured=(), num_random=2, tol=1.0, max_iter=2,
                                                             recombine=False))  # warm-up (compilation) ...
    x1 = torch.as_tensor(random_states(1, ham.num_sites, np.random.default_rng(seed)))
    relax(ham, x1, J, D, tol=1.0, max_iter=2, compile=True)  # ... and the size-1 kernel (once per process)
    t = time.perf_counter()
    gs = search_ground_states(ham, [J], [D], [seed], cfg)
    el = time.perf_counter() - t
    return {"seconds_per_sample": el, "iterations": int(gs.total_iterations[0]), "energy": float(gs.energy[0]),
            "max_torque": float(gs.max_torque[0]), "resolved": bool(gs.resolved[0]),
            "phase": int(gs.phase[0])}


def run_scalinglab_single(ham, x0: np.ndarray, J: float, D: float, tol: float, method: str, max_iter: int) -> float:
    """Median seconds for one start relaxed alone."""
    times = []
    relax(ham, torch.as_tensor(x0[:1]), J, D, tol=tol, max_iter=2, method=method)
    for s in x0:
        t = time.perf_counter()
        relax(ham, torch.as_tensor(s[None]), J, D, tol=tol, max_iter=max_iter, method=method)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run_spirit_to_tol(ham, x0: np.ndarray, J: float, D: float, tol: float, solver: str, max_iter: int,
                      workdir: str, tries: int = 4) -> dict:
    """Spirit with its stopping threshold tightened until the states it returns have a true max torque <= tol.

    Spirit tests its criterion before its last step and (LBFGS_OSO) on its own force measure, so at the nominal
    threshold its states can end above tol (measured 1.1e-4 .. 4.3e-4 for tol = 1e-4 at m = 12..32); the same
    tolerance means the same torque of the returned state, so the threshold is scaled by 0.8 tol / torque and the
    run repeated (``spirit_threshold`` in the row). The time reported is that of the last run.
    """
    thr = tol
    for _ in range(tries):
        r = run_spirit(ham, x0, J, D, thr, solver, max_iter, workdir)
        r["spirit_threshold"] = thr
        if r["max_torque"] <= tol:
            break
        thr *= 0.8 * tol / r["max_torque"]
    return r


def run_spirit(ham, x0: np.ndarray, J: float, D: float, tol: float, solver: str, max_iter: int, workdir: str) -> dict:
    """One start at a time in Spirit: seconds and iterations per start, recomputed torque and energy."""
    from spirit import simulation, state, system

    cfg = write_spirit_input(ham, J, D, os.path.join(workdir, f"{solver}_{ham.lat.m}_{tol:.3g}"), tol=tol,
                             solver=solver, max_iter=max_iter)
    h = ham.with_parameters(J, D)
    secs, iters, torques, energies = [], [], [], []
    with state.State(cfg, quiet=True) as p:
        for s in x0:
            set_spirit_spins(p, s)
            t = time.perf_counter()
            info = simulation.start(p, simulation.METHOD_LLG, getattr(simulation, f"SOLVER_{solver}"))
            secs.append(time.perf_counter() - t)
            iters.append(info.total_iterations)
            out = torch.as_tensor(system.get_spin_directions(p).copy()[None])
            torques.append(float(h.torque(out).max()))
            energies.append(spirit_energy(p))
    return {"seconds_per_start": float(np.mean(secs)), "iterations": np.array(iters), "max_torque": max(torques),
            "energy": np.array(energies)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="m = 12 only, 8 starts, 2 Spirit starts, no VP_OSO")
    ap.add_argument("--m", type=int, nargs="+", default=[12, 20, 32])
    ap.add_argument("--starts", type=int, default=50, help="random starts per sample (papers: 50)")
    ap.add_argument("--spirit-starts", type=int, default=3, help="starts relaxed by Spirit (per solver and m)")
    ap.add_argument("--J", type=float, default=5.0, help="intralayer exchange (meV)")
    ap.add_argument("--D", type=float, default=0.1, help="anisotropy (meV)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max-torque tolerance (meV)")
    ap.add_argument("--methods", nargs="+", default=[DEFAULT_METHOD, "lbfgs"], help="scalinglab methods")
    ap.add_argument("--solvers", nargs="+", default=["LBFGS_OSO", "VP_OSO"], help="Spirit solvers")
    ap.add_argument("--max-iter", type=int, default=100000)
    ap.add_argument("--chunk-spins", nargs="+", default=["auto"],
                    help="relax(chunk_spins=...) values to time per method: 'auto' (relax's default), 0 (one batch) "
                         "or a number of spins per chunk")
    ap.add_argument("--no-single", action="store_true", help="skip timing one start relaxed alone")
    ap.add_argument("--spirit-nominal", action="store_true",
                    help="run Spirit once at the nominal threshold, even if its states end above tol")
    ap.add_argument("--search-loose-tol", type=float, default=1e-2,
                    help="loose tolerance of the 'scalinglab search' row (meV); 0 skips the row")
    args = ap.parse_args()
    if args.quick:
        args.m, args.starts, args.spirit_starts, args.solvers = [12], 8, 2, ["LBFGS_OSO"]
    torch.set_num_threads(1)
    try:
        import spirit  # noqa: F401

        have_spirit = True
    except ImportError:
        have_spirit = False
        print("spirit is not importable (pip install spirit): scalinglab rows only")

    rows, summary = [], {"benchmark": "moire_spirit", "quick": args.quick, "J": args.J, "D": args.D, "tol": args.tol,
                         "starts": args.starts, "threads": 1}
    workdir = tempfile.mkdtemp(prefix="moire_spirit_")
    print(f"J = {args.J} meV, D = {args.D} meV, tol = {args.tol} meV max torque, {args.starts} random starts per "
          f"sample, one thread")
    hdr = (f"  {'m':>3}{'theta':>7}{'spins':>7}  {'code':<30}{'it/start':>9}{'it max':>8}{'s/start':>9}"
           f"{'s/sample':>10}{'torque':>10}{'E_min/N':>12}")
    print(hdr)
    for m in args.m:
        ham = _hamiltonian(m, "relaxed", "float64")
        seed = 1000 + m
        x0 = random_states(args.starts, ham.num_sites, np.random.default_rng(seed))
        per_sample = {}
        full_min = None
        for method, chunk in [(mt, c) for mt in args.methods for c in args.chunk_spins]:
            chunk_spins = chunk if chunk == "auto" else int(chunk)
            r = run_scalinglab(ham, x0, args.J, args.D, args.tol, method, args.max_iter, chunk_spins)
            single = (float("nan") if args.no_single else
                      run_scalinglab_single(ham, x0[:1], args.J, args.D, args.tol, method, args.max_iter))
            name = f"scalinglab {method}" + ("" if chunk == "auto" else f" chunk{chunk}")
            per_sample[name] = r["seconds_per_sample"]
            rows.append({"m": m, "code": name, "iterations_median": float(np.median(r["iterations"])),
                         "iterations_max": int(r["iterations"].max()), "seconds_per_start_alone": single,
                         "seconds_per_start_batched": r["seconds_per_sample"] / args.starts,
                         "seconds_per_sample": r["seconds_per_sample"], "max_torque": r["max_torque"],
                         "energy_min_per_site": float(r["energy"].min() / ham.num_sites),
                         "converged": r["converged"], "compile_seconds": r["compile_seconds"]})
            print(f"  {m:>3}{twist_angle(m):>7.2f}{ham.num_sites:>7}  {name:<30}{np.median(r['iterations']):>9.0f}"
                  f"{r['iterations'].max():>8}{single:>9.3f}{r['seconds_per_sample']:>10.2f}{r['max_torque']:>10.1e}"
                  f"{r['energy'].min() / ham.num_sites:>12.6f}", flush=True)
            full_min = min(full_min if full_min is not None else np.inf, float(r["energy"].min()))
        if args.search_loose_tol > 0:
            r = run_search(ham, seed, args.starts, args.J, args.D, args.tol, args.search_loose_tol)
            name = "scalinglab search"
            per_sample[name] = r["seconds_per_sample"]
            # The search refines only the candidates to tol; its winner must be as low as the lowest start relaxed
            # fully (recombination may find a lower one).
            dev = (r["energy"] - full_min) / abs(full_min) if full_min is not None else float("nan")
            rows.append({"m": m, "code": name, "loose_tol": args.search_loose_tol,
                         "iterations_total": r["iterations"], "seconds_per_sample": r["seconds_per_sample"],
                         "max_torque": r["max_torque"], "energy_min_per_site": r["energy"] / ham.num_sites,
                         "energy_vs_full_relaxation_rel": dev, "resolved": r["resolved"], "phase": r["phase"]})
            summary[f"search_energy_vs_full_relaxation_rel_m{m}"] = dev
            label = f"{name} (loose {args.search_loose_tol:g})"
            print(f"  {m:>3}{twist_angle(m):>7.2f}{ham.num_sites:>7}  {label:<30}"
                  f"{r['iterations'] / args.starts:>9.0f}{'':>8}{'':>9}{r['seconds_per_sample']:>10.2f}"
                  f"{r['max_torque']:>10.1e}{r['energy'] / ham.num_sites:>12.6f}  (E - E_full)/|E| = {dev:.1e}",
                  flush=True)
        if have_spirit:
            for solver in args.solvers:
                if args.spirit_nominal:
                    r = run_spirit(ham, x0[:args.spirit_starts], args.J, args.D, args.tol, solver, args.max_iter,
                                   workdir)
                    r["spirit_threshold"] = args.tol
                else:
                    r = run_spirit_to_tol(ham, x0[:args.spirit_starts], args.J, args.D, args.tol, solver,
                                          args.max_iter, workdir)
                name = f"spirit {solver}"
                sps = r["seconds_per_start"] * args.starts
                per_sample[name] = sps
                rows.append({"m": m, "code": name, "iterations_median": float(np.median(r["iterations"])),
                             "iterations_max": int(r["iterations"].max()),
                             "seconds_per_start_alone": r["seconds_per_start"], "seconds_per_sample": sps,
                             "max_torque": r["max_torque"], "spirit_threshold": r["spirit_threshold"],
                             "energy_min_per_site": float(r["energy"].min() / ham.num_sites)})
                print(f"  {m:>3}{twist_angle(m):>7.2f}{ham.num_sites:>7}  {name:<30}"
                      f"{np.median(r['iterations']):>9.0f}{r['iterations'].max():>8}{r['seconds_per_start']:>9.3f}"
                      f"{sps:>10.2f}{r['max_torque']:>10.1e}{r['energy'].min() / ham.num_sites:>12.6f}", flush=True)
        for k, v in per_sample.items():
            summary[f"seconds_per_sample_{k.replace(' ', '_')}_m{m}"] = round(v, 4)
        best_name, ours = min(((k, v) for k, v in per_sample.items() if k.startswith("scalinglab")),
                              key=lambda kv: kv[1])
        summary[f"seconds_per_sample_scalinglab_m{m}"] = round(ours, 4)
        spirit_best = min((v for k, v in per_sample.items() if k.startswith("spirit")), default=None)
        if spirit_best is not None:
            summary[f"seconds_per_sample_spirit_m{m}"] = round(spirit_best, 4)
            summary[f"ratio_m{m}"] = round(spirit_best / ours, 3)
            print(f"  m = {m}: Spirit's best {spirit_best:.2f} s / {best_name} {ours:.2f} s per sample = "
                  f"{spirit_best / ours:.2f}x (goal >= 3x)")
    summary["rows"] = rows
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

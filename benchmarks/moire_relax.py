"""Benchmark: batched relaxation of twisted bilayer CrI3 spin states vs one replica at a time.

Measures (1) spin-iterations per second of the batched relaxer (many replicas and parameter sets of one angle in one
batch, compiled step) against the same minimization run one replica at a time (the straightforward baseline), at
m >= 20 (target >= 1e7 spin-iterations/s on a 2-core CPU), and (2) wall seconds per parameter set of the ground-state
search of the ``quick`` and ``paper`` campaign profiles over the angle range.

The relaxer's method is ``relax.DEFAULT_METHOD`` (L-BFGS-OSO since issue 10) unless ``--method`` is given; the
ground-state search always uses the default. Comparison against Spirit: ``benchmarks/moire_spirit.py``.

Usage: python benchmarks/moire_relax.py [--quick] [--threads 1] [--method lbfgs]
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from scalinglab.simulators.moire.campaign import PROFILES, CampaignConfig, _hamiltonian
from scalinglab.simulators.moire.ground_state import search_ground_states
from scalinglab.simulators.moire.lattice import twist_angle
from scalinglab.simulators.moire.relax import DEFAULT_METHOD, METHODS, relax
from scalinglab.simulators.moire.starts import initial_states


def throughput(m: int, num_replicas: int, iters: int, sequential: bool, method: str = DEFAULT_METHOD) -> float:
    """Spin-iterations per second for a fixed number of iterations (tolerance unreachable)."""
    ham = _hamiltonian(m, "relaxed", "float64")
    st, _ = initial_states(ham.lat, ham.interlayer, ("md_top", "md_bottom", "ncd"), num_replicas - 3, seed=0)
    x0 = torch.as_tensor(st)
    J = torch.linspace(1.0, 10.0, num_replicas, dtype=torch.float64)
    D = torch.linspace(0.01, 0.3, num_replicas, dtype=torch.float64)
    if sequential:
        relax(ham, x0[:1], J[:1], D[:1], tol=1e-12, max_iter=2, method=method)  # warm-up
        t = time.perf_counter()
        for b in range(num_replicas):
            relax(ham, x0[b:b + 1], J[b:b + 1], D[b:b + 1], tol=1e-12, max_iter=iters, method=method)
        el = time.perf_counter() - t
    else:
        relax(ham, x0, J, D, tol=1e-12, max_iter=2, method=method)  # warm-up (compilation)
        t = time.perf_counter()
        relax(ham, x0, J, D, tol=1e-12, max_iter=iters, method=method)
        el = time.perf_counter() - t
    return num_replicas * iters * ham.num_sites / el


def seconds_per_set(profile: str, m: int, num_sets: int, overrides: dict) -> tuple[float, float, float]:
    """(seconds per parameter set, fraction converged, spin-iterations/s) of the profile's ground-state search."""
    cfg = CampaignConfig.from_profile(profile, 0, **overrides)
    ham = _hamiltonian(m, cfg.interlayer, cfg.dtype)
    rng = np.random.default_rng(m)
    J = rng.uniform(*cfg.J_range, num_sets)
    D = rng.uniform(*cfg.D_range, num_sets)
    search_ground_states(ham, J[:1], D[:1], [0], dataclasses.replace(cfg.search(), max_iter=2))  # warm-up
    t = time.perf_counter()
    gs = search_ground_states(ham, J, D, np.arange(num_sets), cfg.search())
    el = time.perf_counter() - t
    return el / num_sets, float(gs.converged.mean()), float(gs.total_iterations.sum() * ham.num_sites / el)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD, help="relax method (throughput part)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    m_tp = 20
    reps, iters, seq_reps = (48, 30, 3) if args.quick else (128, 60, 8)
    batched = throughput(m_tp, reps, iters, sequential=False, method=args.method)
    single = throughput(m_tp, seq_reps, iters, sequential=True, method=args.method)
    num_spins = 4 * (3 * m_tp**2 + 3 * m_tp + 1)
    print(f"spin-iterations/s at m={m_tp} (theta={twist_angle(m_tp):.2f} deg, {num_spins} spins), "
          f"{args.threads} thread(s), method {args.method}")
    print(f"  {'mode':<28}{'spin-it/s':>12}")
    print(f"  {'batched (' + str(reps) + ' replicas)':<28}{batched:>12.3e}")
    print(f"  {'one replica at a time':<28}{single:>12.3e}")
    verdict = "met" if batched >= 1e7 else "not met"
    print(f"  ratio {batched / single:.1f}x   target >= 1e7 spin-it/s batched: {verdict}")

    rows = []
    if args.quick:
        plan = [("quick", 8, 16, {}), ("quick", 12, 16, {}), ("paper", 8, 2, {"num_random": 6})]
    else:
        plan = [("quick", m, 32, {}) for m in PROFILES["quick"]["m_values"]]
        plan += [("paper", m, 1, {}) for m in (8, 20, 32)]  # m = 32: several minutes
    print("\nseconds per parameter set (ground-state search only)")
    print(f"  {'profile':<8}{'m':>4}{'theta':>8}{'spins':>7}{'starts':>7}{'s/set':>9}{'conv':>6}{'spin-it/s':>11}")
    for profile, m, nsets, over in plan:
        cfg = CampaignConfig.from_profile(profile, 0, **over)
        sps, conv, rate = seconds_per_set(profile, m, nsets, over)
        rows.append({"profile": profile, "m": m, "theta": twist_angle(m), "seconds_per_set": sps, "converged": conv,
                     "num_starts": cfg.search().num_starts, "spin_it_per_s": rate})
        print(f"  {profile:<8}{m:>4}{twist_angle(m):>8.2f}{4 * (3 * m * m + 3 * m + 1):>7}"
              f"{cfg.search().num_starts:>7}{sps:>9.3f}{conv:>6.2f}{rate:>11.2e}")
    print(json.dumps({"benchmark": "moire_relax", "ratio": round(batched / single, 2), "m": m_tp,
                      "spin_iterations_per_s_batched": batched, "spin_iterations_per_s_single": single,
                      "target_spin_iterations_per_s": 1e7, "threads": args.threads, "method": args.method,
                      "quick": args.quick,
                      "seconds_per_parameter_set": rows}))


if __name__ == "__main__":
    main()

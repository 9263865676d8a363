"""Throughput of the tree-level |M|^2 generator: events per second per process, and unweighted hadronic events.

Fast path: ``squared_amplitude(process, momenta)`` on a whole batch (closed form where one exists, otherwise the
batched Berends-Giele recursion). Baseline: the same Berends-Giele code called event by event (what a
straightforward per-event generator does). Target (issue 6): >= 1e5 events/s for ``g g > g g g``.

Hadronic sampling (issue 13): for every process with partons in the initial state, the expected unweighting
efficiency against the largest weight (and against its 0.9999 quantile) of a weighted sample at a 13 TeV
proton-proton collider, and the end-to-end rate of unweighted events (partonic sampling, cuts, |M|^2,
hit-or-miss), with pT > 20 GeV, |eta| < 2.5, Delta R > 0.4 on massless final-state particles.

    python benchmarks/amplitudes.py [--quick]

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalinglab.simulators.amplitudes import Cuts, generate_events, get_process, list_processes, squared_amplitude
from scalinglab.simulators.amplitudes.campaign import _weighted_batch
from scalinglab.simulators.amplitudes.hadronic import HadronicSampler

# the cuts of the quick gluon configs: pT > 20 GeV, |eta| < 2.5, Delta R > 0.4 on massless final-state particles
HADRONIC_CUTS = Cuts(min_pt=20.0, max_abs_eta=2.5, min_delta_r=0.4)


def _rate(fn, num_events: int, repeats: int) -> float:
    """Median events per second over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return num_events / float(np.median(times))


def _hadronic(proc, num_weighted: int) -> dict | None:
    """Unweighting efficiency and unweighted events/s of one process at 13 TeV (None for lepton beams).

    ``num_weighted`` weighted events (partonic sampling, cuts, |M|^2: timed) give the expected hit-or-miss
    efficiency sum(min(w, w_max)) / (N w_max) for w_max = their maximum (exact) and for w_max = their 0.9999
    quantile (``--wmax-quantile 0.9999``, with the share of the cross section above it); unweighted events/s =
    weighted events/s x efficiency.
    """
    try:
        sampler = HadronicSampler(proc.incoming, proc.masses[2:], 13000.0, cuts=HADRONIC_CUTS)
    except ValueError:
        return None
    rng = np.random.default_rng(1)
    weights, made = [], 0
    t0 = time.perf_counter()
    while made < num_weighted:
        _, _, w, _, npass = _weighted_batch(sampler, proc, "auto", 4096, rng)
        weights.append(np.concatenate([w, np.zeros(4096 - npass)]))  # events cut away weigh 0
        made += 4096
    rate = made / (time.perf_counter() - t0)
    w = np.concatenate(weights)
    out = {"weighted_events_per_s": rate}
    for key, w_max in (("exact", w.max()), ("q9999", np.quantile(w, 0.9999))):
        eff = float(np.minimum(w, w_max).sum() / (w.size * w_max))
        out[key] = {"efficiency": eff, "unweighted_events_per_s": rate * eff,
                    "sigma_share_above_wmax": float(np.maximum(w - w_max, 0).sum() / w.sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and repeats (< 1 minute)")
    args = parser.parse_args()
    repeats = 3
    rows = []
    for name in list_processes():
        proc = get_process(name)
        nf = proc.num_final
        # batch sizes that keep each measurement near a second on a laptop core
        n_fast = (100_000 if proc.closed_form else {3: 4096, 4: 1024, 5: 512}.get(nf, 4096))
        n_base = {2: 200, 3: 50, 4: 20, 5: 10}.get(nf, 20)
        if args.quick:
            n_fast, n_base = max(n_fast // 4, 128), max(n_base // 4, 4)
        p = generate_events(n_fast, 1000.0, proc.masses[2:], seed=0, cuts=Cuts(min_invariant=100.0)).momenta
        squared_amplitude(proc, p[:8], method="bg")  # warm up caches (colour matrices)
        fast = _rate(lambda p=p, proc=proc: squared_amplitude(proc, p), n_fast, repeats)
        pbg = p[: min(n_fast, 4096)]
        bg = _rate(lambda pbg=pbg, proc=proc: squared_amplitude(proc, pbg, method="bg"),
                   pbg.shape[0], repeats) if proc.closed_form else fast
        pb = p[:n_base]

        def per_event(pb=pb, proc=proc):
            for i in range(pb.shape[0]):
                squared_amplitude(proc, pb[i : i + 1], method="bg")

        base = _rate(per_event, n_base, 1 if args.quick else repeats)
        method = "closed" if proc.closed_form else "bg"
        rows.append({"process": name, "n_f": nf, "fast_method": method, "fast_events_per_s": fast,
                     "bg_batched_events_per_s": bg, "bg_per_event_events_per_s": base, "ratio": fast / base})
    print(f"{'process':<22}{'fast':>8}{'fast ev/s':>13}{'BG batch ev/s':>15}{'BG per-event':>14}{'ratio':>9}")
    for r in rows:
        print(f"{r['process']:<22}{r['fast_method']:>8}{r['fast_events_per_s']:>13.3g}"
              f"{r['bg_batched_events_per_s']:>15.3g}{r['bg_per_event_events_per_s']:>14.3g}{r['ratio']:>9.1f}")
    hadronic = {}
    n_w = 16384 if args.quick else 200_000
    for name in list_processes():
        proc = get_process(name)
        if proc.num_final >= 4 and args.quick:
            continue  # the slow 2 -> 4 recursions: full run only
        h = _hadronic(proc, n_w if proc.num_final < 4 else n_w // 10)
        if h is not None:
            hadronic[name] = h
    print(f"\n{'hadronic (13 TeV)':<22}{'weighted ev/s':>14}{'eff (max)':>11}{'unw ev/s':>10}"
          f"{'eff (q.9999)':>13}{'unw ev/s':>10}{'sigma>wmax':>11}")
    for name, h in hadronic.items():
        e, q = h["exact"], h["q9999"]
        print(f"{name:<22}{h['weighted_events_per_s']:>14.3g}{e['efficiency']:>11.2e}"
              f"{e['unweighted_events_per_s']:>10.3g}{q['efficiency']:>13.2e}{q['unweighted_events_per_s']:>10.3g}"
              f"{q['sigma_share_above_wmax']:>11.3f}")
    ggg = next(r for r in rows if r["process"] == "g g > g g g")
    print(json.dumps({
        "benchmark": "amplitudes",
        "ratio": round(ggg["ratio"], 1),
        "gg_ggg_events_per_s": round(ggg["fast_events_per_s"]),
        "target_events_per_s": 100000,
        "meets_target": bool(ggg["fast_events_per_s"] >= 1e5),
        "per_process_events_per_s": {r["process"]: round(r["fast_events_per_s"]) for r in rows},
        "unweighting_efficiency": {k: float(f"{h['exact']['efficiency']:.3g}") for k, h in hadronic.items()},
        "unweighted_events_per_s": {k: float(f"{h['exact']['unweighted_events_per_s']:.3g}")
                                    for k, h in hadronic.items()},
        "unweighting_efficiency_q9999": {k: float(f"{h['q9999']['efficiency']:.3g}") for k, h in hadronic.items()},
        "quick": args.quick,
    }))


if __name__ == "__main__":
    main()

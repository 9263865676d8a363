"""Amplitude datasets: phase-space events and exact |M|^2 appended to a dataset store, resumable.

Two samplings (``simulate_amplitudes``):

- **hadronic** (``collider_energy`` given, the paper's kind of data): partonic sqrt(s_hat) from parton
  luminosities at a proton-proton collider, RAMBO, cuts in the laboratory frame, hit-or-miss unweighting against
  the maximum weight of a calibration sample (``hadronic``); the events follow the physical distribution
  ``dsigma``; |M|^2 depends on ``d = 3 n_f - 4`` variables;
- **fixed** (``sqrt_s`` given): flat RAMBO at one centre-of-mass energy, weighted (the weights are stored);
  ``d = 3 n_f - 5``.

Store layout:

- ``inputs``: [N, 4 n] float64 momenta, particle-major ``(E, px, py, pz)`` per particle, incoming first in the
  order of the process string (GeV; hadronic: laboratory frame);
- ``targets``: ``amp2`` [N, 1] float64, |M|^2 summed over helicities and colours with couplings = 1
  (unit ``GeV^(8-2n)``);
- ``aux/weight``: [N] fixed: RAMBO phase-space weights (GeV^(2 n_f - 4)); hadronic: the event weight before
  unweighting (GeV^-2); hadronic also ``aux/sqrt_s_hat`` [N] (GeV);
- metadata: ``producer = "amplitudes"``, ``config`` (the resolved options, checked on resume), the conventions
  (particles, masses, n_f, ``sampling``, ``phase_space_dimension`` d, averaging factor) and, hadronic, the
  ``unweighting`` record (w_max, calibration size, expected efficiency, cut acceptance).

Batch ``k`` is drawn from ``derive_seed(seed, "amplitudes", k)`` (hadronic: ``"amplitudes-hadronic"``), so the
samples do not depend on where a run was interrupted: the commit state says where to continue, and the partly
stored batch is regenerated in full and its stored part skipped.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np

from scalinglab.progress import progress_bar
from scalinglab.seeding import derive_seed
from scalinglab.simulators.amplitudes.hadronic import HadronicSampler, unweight
from scalinglab.simulators.amplitudes.phase_space import Cuts, generate_events
from scalinglab.simulators.amplitudes.processes import get_process, squared_amplitude
from scalinglab.stats.planning import intrinsic_dimension

CALIBRATION_EVENTS = 50_000  # weighted events whose largest weight is the unweighting w_max


def amplitude_store_config(process: str, sqrt_s: float | None, seed: int, cuts: Cuts, method: str,
                           batch_size: int, hadronic: dict | None = None) -> dict:
    """The resolved configuration stored in (and checked against) the dataset metadata.

    ``hadronic`` (collider_energy, pdf, scale_factor, min_sqrt_s_hat, calibration_events) replaces ``sqrt_s``;
    the fixed-sqrt(s) configuration has the same keys as before the hadronic sampler, so older stores resume.
    """
    cfg = {"process": get_process(process).name}
    if hadronic is None:
        cfg["sqrt_s"] = float(sqrt_s)
    else:
        cfg.update({k: (v if isinstance(v, str) else float(v) if k != "calibration_events" else int(v))
                    for k, v in hadronic.items()})
    cfg.update({"seed": int(seed), "cuts": asdict(cuts), "method": method, "batch_size": int(batch_size)})
    return cfg


def simulate_amplitudes(
    out: str | os.PathLike,
    process: str,
    num_samples: int,
    sqrt_s: float | None = None,
    *,
    collider_energy: float | None = None,
    seed: int = 0,
    cuts: Cuts | None = None,
    method: str = "auto",
    batch_size: int = 4096,
    pdf: str = "duke-owens-1",
    scale_factor: float = 0.5,
    min_sqrt_s_hat: float = 0.0,
    calibration_events: int = CALIBRATION_EVENTS,
    wmax_quantile: float = 1.0,
    quiet: bool = False,
):
    """Generate ``num_samples`` events of ``process`` with their |M|^2 into the store at ``out`` (resumable).

    Args:
        out: dataset store directory (created, or resumed if it holds the same configuration).
        process: process string, e.g. ``"q q~ > t t~ H"``.
        num_samples: total number of samples the store should hold when done.
        sqrt_s: fixed centre-of-mass energy (GeV): flat, weighted RAMBO events (give this or collider_energy).
        collider_energy: proton-proton collision energy sqrt(S) (GeV): unweighted hadronic events.
        seed: root seed.
        cuts: acceptance cuts (default none; a massless final state needs a pT or invariant cut, since |M|^2 is
            singular in soft/collinear limits).
        method: ``auto``, ``closed`` or ``bg`` (see ``squared_amplitude``).
        batch_size: events per generated batch (hadronic: weighted events per batch, before unweighting).
        pdf, scale_factor, min_sqrt_s_hat: hadronic sampling options (see ``HadronicSampler``).
        calibration_events: hadronic: weighted events of the calibration sample that sets w_max.
        wmax_quantile: hadronic: w_max is this quantile of the calibration weights (1 = their maximum, exact
            hit-or-miss up to the events above it). Below 1, the events above w_max (about a fraction
            1 - quantile) are kept with probability 1 and so under-represented by w / w_max: faster (the
            efficiency is set by rare large weights) at the price of that bias, which the overweight count shows.
        quiet: no progress bar.

    Returns:
        The DatasetStore (open for appending; close it or use it as a context manager).
    """
    from scalinglab.data.store import DatasetStore

    if (sqrt_s is None) == (collider_energy is None):
        raise ValueError("give exactly one of sqrt_s (fixed centre-of-mass energy) and collider_energy "
                         "(hadron collider)")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if method not in ("auto", "closed", "bg"):
        raise ValueError(f"unknown method '{method}' (known: auto, closed, bg)")
    proc = get_process(process)
    cuts = cuts or Cuts()
    if method == "closed" and proc.closed_form is None:
        raise ValueError(f"no closed form for '{proc.name}': use method 'bg' or 'auto'")
    sampler, hadronic = None, None
    if collider_energy is not None:
        if calibration_events < 100:
            raise ValueError(f"calibration_events must be >= 100, got {calibration_events}")
        if not 0.5 <= wmax_quantile <= 1.0:
            raise ValueError(f"wmax_quantile must lie in [0.5, 1], got {wmax_quantile}")
        # every check (partons, energy, cuts) before the store exists: a bad option writes nothing
        sampler = HadronicSampler(proc.incoming, proc.masses[2:], collider_energy, cuts=cuts, pdf=pdf,
                                  scale_factor=scale_factor, min_sqrt_s_hat=min_sqrt_s_hat)
        hadronic = {"collider_energy": collider_energy, "pdf": pdf, "scale_factor": scale_factor,
                    "min_sqrt_s_hat": min_sqrt_s_hat, "calibration_events": calibration_events}
        if wmax_quantile != 1.0:  # only when set, so stores made before the option resume
            hadronic["wmax_quantile"] = wmax_quantile
    else:
        if not sqrt_s > proc.masses[2:].sum():
            raise ValueError(f"sqrt_s = {sqrt_s} GeV is below the threshold {proc.masses[2:].sum()} GeV of "
                             f"{proc.name}")
        cuts.check_feasible(sqrt_s, proc.masses[2:])  # before the store exists: an impossible cut writes nothing
    n = len(proc.particles)
    config = amplitude_store_config(proc.name, sqrt_s, seed, cuts, method, batch_size, hadronic)
    sampling = "fixed" if sampler is None else "hadronic"
    dim = intrinsic_dimension(proc.num_final, sampling)
    metadata = {
        "producer": "amplitudes",
        "config": config,
        "particles": list(proc.particles),
        "masses_gev": proc.masses.tolist(),
        "num_final": proc.num_final,
        "sampling": sampling,
        "phase_space_dimension": dim,
        "intrinsic_dimension": dim,
        "input_layout": "momenta [N, 4n]: (E, px, py, pz) per particle in GeV, incoming first"
                        + ("" if sampler is None else ", laboratory frame"),
        "amp2_convention": "tree-level |M|^2 summed over helicities and colours, couplings = 1",
        "average_factor": proc.average_factor,
    }
    aux = {"weight": ("float64", ())}
    if sampler is not None:
        aux["sqrt_s_hat"] = ("float64", ())
        if not os.path.exists(out):  # w_max is part of the store: computed once, read back on resume
            metadata["unweighting"] = _calibrate(sampler, proc, method, calibration_events, seed, batch_size,
                                                 wmax_quantile)
    store = DatasetStore.open_or_create(
        out,
        input_shape=(4 * n,),
        target_names=["amp2"],
        target_units=[f"GeV^{8 - 2 * n}"],
        aux_specs=aux,
        metadata=metadata,
        input_dtype="float64",
    )
    try:
        if sampler is None:
            _fill_fixed(store, proc, num_samples, sqrt_s, seed, cuts, method, batch_size, quiet)
        else:
            _fill_hadronic(store, proc, sampler, num_samples, seed, method, batch_size, quiet)
    except BaseException:
        store.close()
        raise
    return store


def _fill_fixed(store, proc, num_samples, sqrt_s, seed, cuts, method, batch_size, quiet) -> None:
    n = len(proc.particles)
    done = int(store.state.get("num_done", store.num_samples))
    if done != store.num_samples:
        raise ValueError(f"store {store.path} is inconsistent: state says {done} samples, {store.num_samples} stored")
    with progress_bar(num_samples, f"amplitudes {proc.name}", quiet=quiet, completed=min(done, num_samples)) as bar:
        while done < num_samples:
            batch, offset = divmod(done, batch_size)
            sample = generate_events(batch_size, sqrt_s, proc.masses[2:],
                                     seed=derive_seed(seed, "amplitudes", batch), cuts=cuts)
            take = min(batch_size - offset, num_samples - done)
            p = sample.momenta[offset : offset + take]
            amp2 = squared_amplitude(proc, p, method=method)
            done = store.append(p.reshape(take, 4 * n), amp2[:, None],
                                aux={"weight": sample.weights[offset : offset + take]},
                                state={"num_done": done + take,
                                       "acceptance_last_batch": sample.metadata["acceptance"]})
            bar.advance(take)


def _weighted_batch(sampler: HadronicSampler, proc, method: str, num: int, rng: np.random.Generator):
    """Weighted events passing the cuts, with |M|^2 and the full event weight."""
    ev = sampler.sample(num, rng)
    ok = ev["passed"]
    p = ev["momenta"][ok]
    amp2 = squared_amplitude(proc, p, method=method, rtol=1e-8)
    weight = ev["weight"][ok] * amp2 * proc.average_factor
    return p, amp2, weight, ev["sqrt_s_hat"][ok], int(ok.sum())


def _calibrate(sampler, proc, method, num_events, seed, batch_size, quantile: float = 1.0) -> dict:
    """w_max (the largest weight, or a quantile, of a calibration sample of its own seed) and the expected
    efficiency."""
    rng = np.random.default_rng(derive_seed(seed, "amplitudes-wmax"))
    weights, passed, made = [], 0, 0
    while made < num_events:
        k = min(batch_size, num_events - made)
        _, _, w, _, npass = _weighted_batch(sampler, proc, method, k, rng)
        weights.append(w)
        passed += npass
        made += k
    w = np.concatenate(weights)
    if w.size == 0 or not np.max(w) > 0:
        raise ValueError(f"no calibration event of {proc.name} passed the cuts ({num_events} tried): loosen the "
                         "cuts or raise the collider energy")
    # zero weights of events cut away count in the quantile like in production (they are never kept)
    w_max = float(np.max(w)) if quantile == 1.0 else float(np.quantile(np.concatenate(
        [w, np.zeros(num_events - w.size)]), quantile))
    if not w_max > 0:
        raise ValueError(f"w_max quantile {quantile} of the calibration weights is 0: fewer than "
                         f"{100 * (1 - quantile):.3g}% of the events pass the cuts")
    return {"w_max": w_max, "quantile": quantile, "calibration_events": int(num_events),
            "cut_acceptance": passed / num_events,
            "expected_efficiency": float(np.sum(np.minimum(w, w_max)) / (num_events * w_max)),
            "overweight_fraction": float(np.count_nonzero(w > w_max) / num_events),
            # the bias of a quantile w_max: the share of the cross section the kept overweights under-represent
            "sigma_share_above_wmax": float(np.sum(np.maximum(w - w_max, 0.0)) / np.sum(w)),
            "mean_weight_gev-2": float(np.sum(w) / num_events)}


def _fill_hadronic(store, proc, sampler, num_samples, seed, method, batch_size, quiet) -> None:
    n = len(proc.particles)
    w_max = float(store.metadata["unweighting"]["w_max"])
    st = store.state
    done = int(st.get("num_done", store.num_samples))
    if done != store.num_samples:
        raise ValueError(f"store {store.path} is inconsistent: state says {done} samples, {store.num_samples} stored")
    batch, offset = int(st.get("batch", 0)), int(st.get("offset", 0))
    counts = {k: int(st.get(k, 0)) for k in ("generated", "passed_cuts", "accepted", "overweight")}
    with progress_bar(num_samples, f"amplitudes {proc.name} (unweighted)", quiet=quiet,
                      completed=min(done, num_samples)) as bar:
        while done < num_samples:
            rng = np.random.default_rng(derive_seed(seed, "amplitudes-hadronic", batch))
            p, amp2, w, rs, npass = _weighted_batch(sampler, proc, method, batch_size, rng)
            keep, over = unweight(w, w_max, rng)
            if offset == 0:  # a batch's counts enter once, when it is first opened
                counts["generated"] += batch_size
                counts["passed_cuts"] += npass
                counts["accepted"] += int(keep.sum())
                counts["overweight"] += over
            idx = np.flatnonzero(keep)[offset:]
            take = min(idx.size, num_samples - done)
            idx = idx[:take]
            if take == idx.size and offset + take >= int(keep.sum()):
                next_batch, next_offset = batch + 1, 0
            else:
                next_batch, next_offset = batch, offset + take
            state = {"num_done": done + take, "batch": next_batch, "offset": next_offset, **counts,
                     "efficiency": counts["accepted"] / max(counts["generated"], 1)}
            if take:
                done = store.append(p[idx].reshape(take, 4 * n), amp2[idx, None],
                                    aux={"weight": w[idx], "sqrt_s_hat": rs[idx]}, state=state)
                bar.advance(take)
            batch, offset = next_batch, next_offset

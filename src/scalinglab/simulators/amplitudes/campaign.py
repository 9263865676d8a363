"""Amplitude datasets: RAMBO events and exact |M|^2 appended to a dataset store, resumable.

Store layout written by :func:`simulate_amplitudes`:

- ``inputs``: [N, 4 n] float64 momenta, particle-major ``(E, px, py, pz)`` per particle, incoming first in the
  order of the process string (GeV);
- ``targets``: ``amp2`` [N, 1] float64, |M|^2 summed over helicities and colours with couplings = 1
  (unit ``GeV^(8-2n)``);
- ``aux/weight``: [N] RAMBO phase-space weights (GeV^(2 n_f - 4));
- metadata: ``producer = "amplitudes"``, ``config`` (process, sqrt_s, seed, cuts, method, batch_size) and
  the conventions (particles, masses, n_f, intrinsic dimension 3 n_f - 4, averaging factor, cut acceptance).

Batch ``k`` of ``batch_size`` events is drawn from ``derive_seed(seed, "amplitudes", k)``, so the samples do not
depend on where a run was interrupted: the commit state ``{"num_done": n}`` says where to continue, and the
partly stored batch is regenerated in full and its stored part skipped.
"""

from __future__ import annotations

import os
from dataclasses import asdict

from scalinglab.progress import progress_bar
from scalinglab.seeding import derive_seed
from scalinglab.simulators.amplitudes.phase_space import Cuts, generate_events
from scalinglab.simulators.amplitudes.processes import get_process, squared_amplitude


def amplitude_store_config(process: str, sqrt_s: float, seed: int, cuts: Cuts, method: str,
                           batch_size: int) -> dict:
    """The resolved configuration stored in (and checked against) the dataset metadata."""
    return {
        "process": get_process(process).name,
        "sqrt_s": float(sqrt_s),
        "seed": int(seed),
        "cuts": asdict(cuts),
        "method": method,
        "batch_size": int(batch_size),
    }


def simulate_amplitudes(
    out: str | os.PathLike,
    process: str,
    num_samples: int,
    sqrt_s: float,
    *,
    seed: int = 0,
    cuts: Cuts | None = None,
    method: str = "auto",
    batch_size: int = 4096,
    quiet: bool = False,
):
    """Generate ``num_samples`` events of ``process`` with their |M|^2 into the store at ``out`` (resumable).

    Args:
        out: dataset store directory (created, or resumed if it holds the same configuration).
        process: process string, e.g. ``"g g > g g g"``.
        num_samples: total number of samples the store should hold when done.
        sqrt_s: centre-of-mass energy (GeV).
        seed: root seed.
        cuts: acceptance cuts (default: none; for massless final states a minimal invariant or pT cut is
            advisable, since |M|^2 is singular in soft/collinear limits).
        method: ``auto``, ``closed`` or ``bg`` (see ``squared_amplitude``).
        batch_size: events per generated batch (and per commit).
        quiet: no progress bar.

    Returns:
        The DatasetStore (open for appending; close it or use it as a context manager).
    """
    from scalinglab.data.store import DatasetStore

    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if method not in ("auto", "closed", "bg"):
        raise ValueError(f"unknown method '{method}' (known: auto, closed, bg)")
    proc = get_process(process)
    cuts = cuts or Cuts()
    if not sqrt_s > proc.masses[2:].sum():
        raise ValueError(f"sqrt_s = {sqrt_s} GeV is below the threshold {proc.masses[2:].sum()} GeV of {proc.name}")
    cuts.check_feasible(sqrt_s, proc.masses[2:])  # before the store exists: an impossible cut writes nothing
    if method == "closed" and proc.closed_form is None:
        raise ValueError(f"no closed form for '{proc.name}': use method 'bg' or 'auto'")
    n = len(proc.particles)
    config = amplitude_store_config(proc.name, sqrt_s, seed, cuts, method, batch_size)
    metadata = {
        "producer": "amplitudes",
        "config": config,
        "particles": list(proc.particles),
        "masses_gev": proc.masses.tolist(),
        "num_final": proc.num_final,
        "intrinsic_dimension": 3 * proc.num_final - 4,
        "input_layout": "momenta [N, 4n]: (E, px, py, pz) per particle in GeV, incoming first",
        "amp2_convention": "tree-level |M|^2 summed over helicities and colours, couplings = 1",
        "average_factor": proc.average_factor,
    }
    store = DatasetStore.open_or_create(
        out,
        input_shape=(4 * n,),
        target_names=["amp2"],
        target_units=[f"GeV^{8 - 2 * n}"],
        aux_specs={"weight": ("float64", ())},
        metadata=metadata,
        input_dtype="float64",
    )
    try:
        done = int(store.state.get("num_done", store.num_samples))
        if done != store.num_samples:
            raise ValueError(f"store {out} is inconsistent: state says {done} samples, {store.num_samples} stored")
        with progress_bar(num_samples, f"amplitudes {proc.name}", quiet=quiet, completed=min(done, num_samples)) as bar:
            while done < num_samples:
                batch, offset = divmod(done, batch_size)
                sample = generate_events(batch_size, sqrt_s, proc.masses[2:],
                                         seed=derive_seed(seed, "amplitudes", batch), cuts=cuts)
                take = min(batch_size - offset, num_samples - done)
                p = sample.momenta[offset : offset + take]
                amp2 = squared_amplitude(proc, p, method=method)
                done = store.append(p.reshape(take, 4 * n), amp2[:, None], aux={"weight": sample.weights[offset:
                                    offset + take]}, state={"num_done": done + take,
                                                            "acceptance_last_batch": sample.metadata["acceptance"]})
                bar.advance(take)
    except BaseException:
        store.close()
        raise
    return store

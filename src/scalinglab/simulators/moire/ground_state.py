"""Ground-state search: many initial states per parameter set, relaxed together, lowest energy kept.

Parameter sets that share theta share the lattice and the interlayer couplings, so their replicas (structured and
random starts) are relaxed in one batch ([P * R] states, J and D per replica), split into sub-batches of at most
``max_batch_spins`` spins to bound memory. The winner of a parameter set is its lowest-energy replica; the sample
is flagged ``converged = False`` when that replica did not reach the torque tolerance.

Reference:
    Paper 2, Appendix A (50 random starts, lowest energy kept); DESIGN.md "Twisted bilayer CrI3" (structured starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.relax import relax
from scalinglab.simulators.moire.starts import STRUCTURED_STARTS, initial_states


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the ground-state search.

    Attributes:
        structured: structured start kinds (see ``starts.STRUCTURED_STARTS``).
        num_random: random starts per parameter set (paper 2: 50).
        tol: max-torque tolerance (meV).
        max_iter: iteration cap per replica.
        max_batch_spins: largest number of spins (replicas x sites) relaxed in one batch (memory bound:
            ~200 bytes per spin in float64).
        check_every: torque check interval of the relaxer.
    """

    structured: tuple[str, ...] = STRUCTURED_STARTS
    num_random: int = 50
    tol: float = 1e-4
    max_iter: int = 20000
    max_batch_spins: int = 2_000_000
    check_every: int = 4

    def __post_init__(self) -> None:
        bad = [k for k in self.structured if k not in STRUCTURED_STARTS]
        if bad:
            raise ValueError(f"unknown structured start(s) {bad}; choose from {list(STRUCTURED_STARTS)}")
        if self.num_random < 0 or len(self.structured) + self.num_random == 0:
            raise ValueError("need at least one start (structured or random) and num_random >= 0")
        if not self.tol > 0 or self.max_iter < 1 or self.max_batch_spins < 1 or self.check_every < 1:
            raise ValueError("tol must be > 0 and max_iter, max_batch_spins, check_every >= 1")

    @property
    def num_starts(self) -> int:
        return len(self.structured) + self.num_random


@dataclass
class GroundStates:
    """Winners of a ground-state search over P parameter sets.

    Attributes:
        spins: [P, N, 3] lowest-energy states.
        energy: [P] energies (meV).
        max_torque: [P] max torque of the winner (meV).
        iterations: [P] iterations of the winner.
        total_iterations: [P] iterations summed over all replicas of the parameter set.
        start: [P] index of the winning start in ``start_names``.
        converged: [P] bool.
        start_names: names of the starts.
    """

    spins: np.ndarray
    energy: np.ndarray
    max_torque: np.ndarray
    iterations: np.ndarray
    total_iterations: np.ndarray
    start: np.ndarray
    converged: np.ndarray
    start_names: list[str] = field(default_factory=list)


def search_ground_states(ham: MoireHamiltonian, J, D, seeds, config: SearchConfig = SearchConfig()) -> GroundStates:
    """Find the ground state of P parameter sets on one lattice.

    Args:
        ham: Hamiltonian of the lattice (its J, D are ignored).
        J: [P] intralayer exchange (meV).
        D: [P] anisotropy (meV).
        seeds: [P] integer seeds (noise of structured starts and random starts of each parameter set, so a sample
            does not depend on which others share its batch).
        config: search settings.

    Returns:
        GroundStates.
    """
    J, D = np.atleast_1d(np.asarray(J, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float))
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.int64))
    if not (J.shape == D.shape == seeds.shape) or J.ndim != 1:
        raise ValueError(f"J, D and seeds must be 1-D of equal length, got {J.shape}, {D.shape}, {seeds.shape}")
    lat, pairs = ham.lat, ham.interlayer
    num_p, r, n = len(J), config.num_starts, lat.num_sites
    per_batch = max(1, config.max_batch_spins // (r * n))  # parameter sets per sub-batch
    out = GroundStates(np.empty((num_p, n, 3)), np.empty(num_p), np.empty(num_p), np.empty(num_p, dtype=np.int64),
                       np.empty(num_p, dtype=np.int64), np.empty(num_p, dtype=np.int64),
                       np.empty(num_p, dtype=bool))
    for lo in range(0, num_p, per_batch):
        sel = np.arange(lo, min(num_p, lo + per_batch))
        states = []
        for p in sel:
            st, names = initial_states(lat, pairs, config.structured, config.num_random, int(seeds[p]))
            states.append(st)
        out.start_names = names
        x0 = torch.as_tensor(np.concatenate(states), dtype=ham.dtype, device=ham.device)  # [p * R, N, 3]
        jr = torch.as_tensor(np.repeat(J[sel], r), dtype=ham.dtype, device=ham.device)
        dr = torch.as_tensor(np.repeat(D[sel], r), dtype=ham.dtype, device=ham.device)
        res = relax(ham, x0, jr, dr, tol=config.tol, max_iter=config.max_iter, check_every=config.check_every)
        e = res.energy.cpu().numpy().reshape(len(sel), r)
        best = e.argmin(1)
        flat = np.arange(len(sel)) * r + best
        out.spins[sel] = res.spins[torch.as_tensor(flat)].cpu().numpy()
        out.energy[sel] = e[np.arange(len(sel)), best]
        out.max_torque[sel] = res.max_torque.cpu().numpy()[flat]
        out.iterations[sel] = res.iterations.cpu().numpy()[flat]
        out.total_iterations[sel] = res.iterations.cpu().numpy().reshape(len(sel), r).sum(1)
        out.start[sel] = best
        out.converged[sel] = res.converged.cpu().numpy()[flat]
    return out

"""Ground-state search that resolves what it labels: many starts, loose relaxation, refinement of the competitors.

Parameter sets that share theta share the lattice and the interlayer couplings, so their replicas (structured and
random starts) are relaxed in one batch ([P * R] states, J and D per replica), split into sub-batches of at most
``max_batch_spins`` spins. The search per parameter set:

1. **Loose stage.** Every start is relaxed to the torque tolerance ``tol`` and classified (``phases.py``). The
   replicas fall into groups: FM, NCD, MD with domains in the bottom layer, MD with domains in the top layer, MD2.
   **Recombination** (``recombine``, on by default): the cell holds three equivalent, nearly independent domain
   regions (``regions.py``), and each relaxed replica may have a different texture in each; the best part of each
   region, and the best part of each texture copied into all three regions by the C3 symmetry, make five composite
   states per parameter set, relaxed to ``tol`` and added as replicas. Without this, a few starts rarely put the
   best texture into all three regions at once: at m = 20 two seeds of the search disagreed at 9 of 64 points.
2. **Candidates.** The winner is the lowest-energy replica; the runner-up the lowest replica of another *phase*
   (MD-top and MD-bottom are one phase, MD). Each candidate gets an energy-error estimate eps (below).
3. **Refinement** (when ``refine_tol`` is set). The winner, the ``candidates_per_phase`` lowest replicas of every
   other group whose ordering against the winner is not yet resolved, and the MD partner of an MD winner (the best
   replica with domains in the other layer) are relaxed on to ``refine_tol``, re-classified, and the winner and
   runner-up recomputed. Parameter sets still unresolved repeat this for their winner and runner-up with the
   tolerance divided by 10, at most ``refine_levels`` more times.
4. **Report.** ``resolved = gap > resolve_k * gap_uncertainty`` with gap = E_runner-up - E_winner and
   gap_uncertainty = eps_winner + eps_runner-up; unresolved samples keep their lowest-energy label but are flagged.
   When no start ended in another phase, ``runner_up_phase = -1``, ``energy_gap = -1`` and the sample counts as
   resolved (nothing found to compete with; basins no start reached are unknowable to any multi-start search).

Energy-error estimate of a relaxed state (meV). Near a local minimum S* the energy is quadratic in the tangent
displacement, E(S) - E(S*) = 1/2 g^T Hess^-1 g + O(|g|^3), with g the tangent field (|g_i| = |S_i x H_i|) and Hess
the Riemannian Hessian on the product of spheres, v^T Hess v = -v.A v + sum_i (S_i.H_i) |v_i|^2 (E = -1/2 S.A S,
H = A S). We evaluate this Newton estimate with ``cg_steps`` conjugate-gradient steps on Hess x = g (batched, one
field evaluation per step): the CG values 1/2 g.x_k increase monotonically towards 1/2 g^T Hess^-1 g (k = 1 is the
exact line-search gain 1/2 |g|^4 / g^T Hess g), so eps_CG is a lower estimate that soft modes can leave short. A
refined state has a second, independent estimate from its own convergence: if the slowest modes dominate, the
remaining error is proportional to |g|^2, so after an energy drop dE while |g|^2 fell by the factor r the geometric
tail left is eps_tail = dE r / (1 - r) (r clipped to 0.9). We report eps = max(eps_CG, eps_tail). A direction of
negative curvature (a saddle) makes eps infinite, hence unresolved.

Layer-swap check: where the Hamiltonian has an exact layer-exchange symmetry (``symmetry.py``), an MD-top state and
its MD-bottom partner are degenerate, and their refined energies must agree; ``partner_gap`` records the difference
(for the default local-stacking model the symmetry is broken by the stacking table, so it is a physical gap there).

Reference:
    Paper 2, Appendix A (50 random starts, lowest energy kept); DESIGN.md "Twisted bilayer CrI3" (structured starts).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.phases import MD, classify_spins, domain_layer
from scalinglab.simulators.moire.regions import COMPOSITES, domain_regions, recombine
from scalinglab.simulators.moire.relax import relax
from scalinglab.simulators.moire.starts import STRUCTURED_STARTS, initial_states

#: Internal group of MD states with domains in the bottom (2) / top (5) layer, and each one's partner group.
_PARTNER = {2: 5, 5: 2}
#: Sentinel of ``runner_up_phase`` / ``energy_gap`` / ``partner_gap`` when there is nothing to compare with.
NONE = -1


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the ground-state search.

    Attributes:
        structured: structured start kinds (see ``starts.STRUCTURED_STARTS``).
        num_random: random starts per parameter set (paper 2: 50).
        tol: max-torque tolerance of the loose stage (meV).
        max_iter: iteration cap per replica in the loose stage.
        max_batch_spins: largest number of spins (replicas x sites) relaxed in one batch (memory bound:
            ~200 bytes per spin in float64).
        check_every: torque check interval of the relaxer.
        refine_tol: tolerance of the refinement of the candidates (meV); None: no refinement (the gap and its
            uncertainty then come from the loose states).
        refine_max_iter: iteration cap per candidate and refinement level.
        refine_levels: further levels (tolerance / 10 each) for parameter sets still unresolved.
        candidates_per_phase: lowest replicas of each competing group that are refined.
        resolve_k: resolved when gap > resolve_k * gap_uncertainty.
        cg_steps: conjugate-gradient steps of the energy-error estimate.
        recombine: after the loose stage, add the composite states of ``regions.recombine`` (the best texture of
            each kind copied into all three domain regions, and the best part of each region) as extra replicas.
    """

    structured: tuple[str, ...] = STRUCTURED_STARTS
    num_random: int = 50
    tol: float = 1e-4
    max_iter: int = 20000
    max_batch_spins: int = 2_000_000
    check_every: int = 4
    refine_tol: float | None = None
    refine_max_iter: int = 20000
    refine_levels: int = 2
    candidates_per_phase: int = 1
    resolve_k: float = 3.0
    cg_steps: int = 16
    recombine: bool = True

    def __post_init__(self) -> None:
        bad = [k for k in self.structured if k not in STRUCTURED_STARTS]
        if bad:
            raise ValueError(f"unknown structured start(s) {bad}; choose from {list(STRUCTURED_STARTS)}")
        if self.num_random < 0 or len(self.structured) + self.num_random == 0:
            raise ValueError("need at least one start (structured or random) and num_random >= 0")
        if not self.tol > 0 or self.max_iter < 1 or self.max_batch_spins < 1 or self.check_every < 1:
            raise ValueError("tol must be > 0 and max_iter, max_batch_spins, check_every >= 1")
        if self.refine_tol is not None and not 0 < self.refine_tol <= self.tol:
            raise ValueError(f"refine_tol must be in (0, tol={self.tol}], got {self.refine_tol}")
        if self.refine_max_iter < 1 or self.refine_levels < 0 or self.candidates_per_phase < 1:
            raise ValueError("refine_max_iter >= 1, refine_levels >= 0 and candidates_per_phase >= 1 required")
        if not self.resolve_k > 0 or self.cg_steps < 1:
            raise ValueError(f"resolve_k must be > 0 and cg_steps >= 1, got {self.resolve_k}, {self.cg_steps}")

    @property
    def num_starts(self) -> int:
        return len(self.structured) + self.num_random

    @property
    def num_replicas(self) -> int:
        """Replicas per parameter set: the starts and, with ``recombine``, the composite states."""
        return self.num_starts + (len(COMPOSITES) if self.recombine else 0)


@dataclass
class GroundStates:
    """Winners of a ground-state search over P parameter sets.

    Attributes:
        spins: [P, N, 3] lowest-energy states.
        energy: [P] energies (meV).
        max_torque: [P] max torque of the winner (meV).
        iterations: [P] iterations of the winner (loose stage + refinement).
        total_iterations: [P] iterations summed over all replicas of the parameter set.
        start: [P] index of the winning start in ``start_names``.
        converged: [P] bool: the winner reached the tolerance of the last stage it was relaxed in.
        phase: [P] int8 phase codes (``phases.py``), and the classification inputs m_top, m_bottom, rev_top,
            rev_bottom [P].
        energy_uncertainty: [P] eps of the winner (meV/site).
        runner_up_phase: [P] int8 phase of the lowest state of another phase (-1: none found).
        energy_gap: [P] E_runner-up - E_winner (meV/site; -1: none found).
        gap_uncertainty: [P] eps_winner + eps_runner-up (meV/site; inf where a candidate sits at a saddle).
        resolved: [P] bool, energy_gap > resolve_k * gap_uncertainty (True when no runner-up was found).
        partner_gap: [P] for MD winners, E(best MD state with domains in the other layer) - E_winner (meV/site);
            -1 when not MD or no such state was found.
        start_names: names of the starts.
    """

    spins: np.ndarray
    energy: np.ndarray
    max_torque: np.ndarray
    iterations: np.ndarray
    total_iterations: np.ndarray
    start: np.ndarray
    converged: np.ndarray
    phase: np.ndarray = None
    m_top: np.ndarray = None
    m_bottom: np.ndarray = None
    rev_top: np.ndarray = None
    rev_bottom: np.ndarray = None
    energy_uncertainty: np.ndarray = None
    runner_up_phase: np.ndarray = None
    energy_gap: np.ndarray = None
    gap_uncertainty: np.ndarray = None
    resolved: np.ndarray = None
    partner_gap: np.ndarray = None
    start_names: list[str] = field(default_factory=list)


def energy_error_estimate(ham: MoireHamiltonian, spins: torch.Tensor, J: torch.Tensor, D: torch.Tensor,
                          cg_steps: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton estimate of E(S) - E(S*) for relaxed states, by conjugate gradients on the Riemannian Hessian.

    Args:
        ham: the Hamiltonian.
        spins: [B, N, 3] unit spins near local minima.
        J, D: [B] parameters (meV).
        cg_steps: CG steps (one field evaluation each).

    Returns:
        (eps [B] float64 meV, inf where a direction of non-positive curvature was met; g2 [B] float64 sum_i
        |S_i x H_i|^2, meV^2).
    """
    f64 = torch.float64
    x = spins.permute(1, 2, 0).contiguous()  # [N, 3, B]
    h = ham.field_site_major(x, J, D)
    sh = (x * h).sum(1, keepdim=True)  # [N, 1, B]
    g = h - sh * x  # tangent field = -gradient
    g2 = (g * g).sum((0, 1)).to(f64)

    def hess(v: torch.Tensor) -> torch.Tensor:
        hv = -ham.field_site_major(v, J, D) + sh * v
        return hv - (x * hv).sum(1, keepdim=True) * x  # project onto the tangent planes

    sol = torch.zeros_like(g)
    r, p = g.clone(), g.clone()
    rr = (r * r).sum((0, 1)).to(f64)
    bad = torch.zeros(g.shape[-1], dtype=torch.bool, device=g.device)
    done = rr <= 0
    for _ in range(int(cg_steps)):
        hp = hess(p)
        php = (p * hp).sum((0, 1)).to(f64)
        bad |= (php <= 0) & ~done
        alpha = torch.where((php > 0) & ~done, rr / php.clamp_min(1e-300), torch.zeros_like(rr))
        sol = sol + p * alpha.to(g.dtype)
        r = r - hp * alpha.to(g.dtype)
        rr_new = (r * r).sum((0, 1)).to(f64)
        done = done | (rr_new <= 1e-30 * g2.clamp_min(1e-300))
        beta = torch.where(rr > 0, rr_new / rr.clamp_min(1e-300), torch.zeros_like(rr))
        p = r + p * beta.to(g.dtype)
        rr = rr_new
    eps = 0.5 * (g * sol).sum((0, 1)).to(f64)
    eps = torch.where(bad, torch.full_like(eps, float("inf")), eps.clamp_min(0.0))
    return eps.cpu(), g2.cpu()


class _Batch:
    """Replica states of one sub-batch, their classification and error estimates (numpy bookkeeping)."""

    def __init__(self, ham, x: torch.Tensor, J: np.ndarray, D: np.ndarray, res, cg_steps: int) -> None:
        self.ham, self.cg_steps = ham, cg_steps
        self.J, self.D = J, D
        self.spins = res.spins  # [M, N, 3] torch
        self.energy = res.energy.cpu().numpy().astype(float)
        self.torque = res.max_torque.cpu().numpy().astype(float)
        self.iters = res.iterations.cpu().numpy().astype(np.int64)
        self.conv = res.converged.cpu().numpy().astype(bool)
        self.eps = np.full(len(J), np.nan)  # estimated on demand (candidates only)
        self.g2 = np.full(len(J), np.nan)
        self._classify(np.arange(len(J)))

    def append(self, res, J: np.ndarray, D: np.ndarray) -> np.ndarray:
        """Add relaxed replicas (a RelaxResult) with their parameters; returns their indices."""
        first = len(self.J)
        self.J, self.D = np.concatenate([self.J, J]), np.concatenate([self.D, D])
        self.spins = torch.cat([self.spins, res.spins])
        for name, new in (("energy", res.energy.cpu().numpy().astype(float)),
                          ("torque", res.max_torque.cpu().numpy().astype(float)),
                          ("iters", res.iterations.cpu().numpy().astype(np.int64)),
                          ("conv", res.converged.cpu().numpy().astype(bool)),
                          ("eps", np.full(len(J), np.nan)), ("g2", np.full(len(J), np.nan)),
                          ("phase", np.zeros(len(J), np.int8))):
            setattr(self, name, np.concatenate([getattr(self, name), new]))
        self.cls = {k: np.concatenate([v, np.zeros(len(J))]) for k, v in self.cls.items()}
        idx = np.arange(first, len(self.J))
        self._classify(idx)
        return idx

    def site_energy(self, idx: np.ndarray) -> np.ndarray:
        """[len(idx), N] site energies -1/2 S_i.H_i (meV; they sum to the energy)."""
        ti = torch.as_tensor(idx, device=self.spins.device)
        s = self.spins[ti]
        h = self.ham.field(s, self._t(self.J[idx]), self._t(self.D[idx]))
        return (-0.5 * (s * h).sum(-1)).cpu().numpy().astype(float)

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=self.ham.dtype, device=self.ham.device)

    def _classify(self, idx: np.ndarray) -> None:
        c = classify_spins(self.spins[torch.as_tensor(idx, device=self.spins.device)], self.ham.lat.layer)
        if not hasattr(self, "phase"):
            m = len(self.J)
            self.phase = np.zeros(m, np.int8)
            self.cls = {k: np.zeros(m) for k in ("m_top", "m_bottom", "rev_top", "rev_bottom")}
        self.phase[idx] = c["phase"]
        for k in self.cls:
            self.cls[k][idx] = c[k]

    def group(self, idx) -> np.ndarray:
        """Group per replica: the phase code, with MD split by domain layer (MD-bottom 2, MD-top 5)."""
        g = self.phase[idx].astype(np.int64)
        md = g == MD
        top = domain_layer(self.cls["m_top"][idx], self.cls["m_bottom"][idx]) == 1
        g[md & top] = 5
        return g

    def estimate(self, idx: np.ndarray) -> None:
        """Fill eps (max with any tail estimate already there) and g2 for replicas ``idx`` lacking it."""
        idx = np.asarray([i for i in idx if np.isnan(self.g2[i])], dtype=np.int64)
        if not len(idx):
            return
        ti = torch.as_tensor(idx, device=self.spins.device)
        eps, g2 = energy_error_estimate(self.ham, self.spins[ti], self._t(self.J[idx]), self._t(self.D[idx]),
                                        self.cg_steps)
        base = np.nan_to_num(self.eps[idx], nan=0.0)
        self.eps[idx] = np.maximum(base, eps.numpy())
        self.g2[idx] = g2.numpy()

    def refine(self, idx: np.ndarray, tol: float, max_iter: int, check_every: int) -> None:
        """Relax replicas ``idx`` further to ``tol``; update states, energies, eps (CG and geometric tail)."""
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        if not len(idx):
            return
        self.estimate(idx)
        e0, g0 = self.energy[idx].copy(), self.g2[idx].copy()
        ti = torch.as_tensor(idx, device=self.spins.device)
        res = relax(self.ham, self.spins[ti], self._t(self.J[idx]), self._t(self.D[idx]), tol=tol,
                    max_iter=max_iter, check_every=check_every)
        self.spins[ti] = res.spins
        self.energy[idx] = res.energy.cpu().numpy()
        self.torque[idx] = res.max_torque.cpu().numpy()
        self.iters[idx] += res.iterations.cpu().numpy()
        self.conv[idx] = res.converged.cpu().numpy()
        self._classify(idx)
        self.g2[idx] = np.nan
        self.eps[idx] = np.nan
        self.estimate(idx)
        r = np.clip(self.g2[idx] / np.maximum(g0, 1e-300), 0.0, 0.9)
        tail = np.maximum(e0 - self.energy[idx], 0.0) * r / (1.0 - r)
        self.eps[idx] = np.maximum(self.eps[idx], tail)


def _orderings(b: _Batch, rows: list[np.ndarray], k: float) -> list[tuple[int, int, float, bool]]:
    """(winner, runner-up or -1, gap uncertainty (meV), resolved) per parameter set (replica indices ``rows``)."""
    pairs = []
    for rw in rows:
        w = rw[int(np.argmin(b.energy[rw]))]
        other = rw[b.phase[rw] != b.phase[w]]
        pairs.append((w, other[int(np.argmin(b.energy[other]))] if len(other) else NONE))
    b.estimate(np.array([i for wr in pairs for i in wr if i != NONE], dtype=np.int64))
    out = []
    for w, r in pairs:
        if r == NONE:
            out.append((w, NONE, float(b.eps[w]), True))
        else:
            unc = b.eps[w] + b.eps[r]
            out.append((w, r, float(unc), bool(b.energy[r] - b.energy[w] > k * unc)))
    return out


def _add_composites(b: _Batch, rows: list[np.ndarray], J: np.ndarray, D: np.ndarray,
                    config: SearchConfig) -> list[np.ndarray]:
    """Relax the composite states (``regions.recombine``) of every parameter set and add them to its replicas."""
    ham = b.ham
    try:
        regions = domain_regions(ham.lat, ham.interlayer)
    except ValueError as exc:  # e.g. a user table without three AFM regions: search with the starts alone
        warnings.warn(f"no recombination: {exc}", RuntimeWarning, stacklevel=3)
        return rows
    up = torch.zeros((len(rows), ham.num_sites, 3), dtype=ham.dtype, device=ham.device)
    up[..., 2] = 1.0
    h = ham.field(up, b._t(J), b._t(D))
    reference = (-0.5 * (up * h).sum(-1)).cpu().numpy().astype(float)  # [P, N] site energies of the FM state
    every = np.concatenate(rows)
    spins = b.spins[torch.as_tensor(every, device=b.spins.device)].cpu().numpy()
    site = b.site_energy(every)  # one field evaluation for all parameter sets
    bounds = np.cumsum([0] + [len(rw) for rw in rows])
    comps = [recombine(spins[lo:hi], site[lo:hi], reference[q], regions, ham.lat.layer)
             for q, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
    k = len(COMPOSITES)
    jc, dc = np.repeat(J, k), np.repeat(D, k)
    x = torch.as_tensor(np.concatenate(comps), dtype=ham.dtype, device=ham.device)
    res = relax(ham, x, b._t(jc), b._t(dc), tol=config.tol, max_iter=config.max_iter, check_every=config.check_every)
    idx = b.append(res, jc, dc)
    return [np.concatenate([rw, idx[q * k:(q + 1) * k]]) for q, rw in enumerate(rows)]


def search_ground_states(ham: MoireHamiltonian, J, D, seeds, config: SearchConfig = SearchConfig()) -> GroundStates:
    """Find the ground state of P parameter sets on one lattice, with the energy ordering resolved or flagged.

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
    per_batch = max(1, config.max_batch_spins // (config.num_replicas * n))  # parameter sets per sub-batch
    f = lambda dt=float: np.empty(num_p, dtype=dt)  # noqa: E731
    out = GroundStates(np.empty((num_p, n, 3)), f(), f(), f(np.int64), f(np.int64), f(np.int64), f(bool),
                       f(np.int8), f(), f(), f(), f(), f(), f(np.int8), f(), f(), f(bool), f())
    for lo in range(0, num_p, per_batch):
        sel = np.arange(lo, min(num_p, lo + per_batch))
        states = []
        for p in sel:
            st, names = initial_states(lat, pairs, config.structured, config.num_random, int(seeds[p]))
            states.append(st)
        out.start_names = names
        x0 = torch.as_tensor(np.concatenate(states), dtype=ham.dtype, device=ham.device)  # [p * R, N, 3]
        jr, dr = np.repeat(J[sel], r), np.repeat(D[sel], r)
        res = relax(ham, x0, torch.as_tensor(jr, dtype=ham.dtype, device=ham.device),
                    torch.as_tensor(dr, dtype=ham.dtype, device=ham.device), tol=config.tol,
                    max_iter=config.max_iter, check_every=config.check_every)
        b = _Batch(ham, x0, jr, dr, res, config.cg_steps)
        rows = [np.arange(q * r, (q + 1) * r) for q in range(len(sel))]
        if config.recombine:
            rows = _add_composites(b, rows, J[sel], D[sel], config)
            out.start_names = names + list(COMPOSITES)
        final_tol = np.full(len(sel), config.tol)
        if config.refine_tol is not None:
            # Level 0: the winner, the unresolved competitors of every other group, the MD partner.
            cands = []  # per parameter set: (winner, [(best replicas of a group, is the MD partner group)])
            for rw in rows:
                w = rw[int(np.argmin(b.energy[rw]))]
                groups = b.group(rw)
                gw = int(b.group(np.array([w]))[0])
                comp = []
                for gcode in np.unique(groups):
                    if gcode != gw:
                        members = rw[groups == gcode]
                        best = members[np.argsort(b.energy[members], kind="stable")[:config.candidates_per_phase]]
                        comp.append((best, _PARTNER.get(gw) == gcode))
                cands.append((w, comp))
            b.estimate(np.concatenate([[w] + [c for best, _ in comp for c in best] for w, comp in cands]))
            todo = []
            for w, comp in cands:
                todo.append(w)
                for best, partner in comp:
                    for c in best:
                        if partner or not b.energy[c] - b.energy[w] > config.resolve_k * (b.eps[c] + b.eps[w]):
                            todo.append(c)
            b.refine(np.array(todo), config.refine_tol, config.refine_max_iter, config.check_every)
            final_tol[:] = config.refine_tol
            tol_l = config.refine_tol
            for _ in range(config.refine_levels):
                tol_l /= 10.0
                todo, qs = [], []
                for q, (w, ru, _, ok) in enumerate(_orderings(b, rows, config.resolve_k)):
                    if not ok:
                        todo += [w, ru]
                        qs.append(q)
                if not todo:
                    break
                b.refine(np.array(todo), tol_l, config.refine_max_iter, config.check_every)
                final_tol[qs] = tol_l
        for q, (p, rw, (w, ru, unc, ok)) in enumerate(zip(sel, rows, _orderings(b, rows, config.resolve_k))):
            out.spins[p] = b.spins[w].cpu().numpy()
            out.energy[p] = b.energy[w]
            out.max_torque[p] = b.torque[w]
            out.iterations[p] = b.iters[w]
            out.total_iterations[p] = b.iters[rw].sum()
            out.start[p] = int(np.nonzero(rw == w)[0][0])  # position in start_names
            out.converged[p] = b.torque[w] < final_tol[q]
            out.phase[p] = b.phase[w]
            for k in ("m_top", "m_bottom", "rev_top", "rev_bottom"):
                getattr(out, k)[p] = b.cls[k][w]
            out.energy_uncertainty[p] = b.eps[w] / n
            out.runner_up_phase[p] = NONE if ru == NONE else b.phase[ru]
            out.energy_gap[p] = NONE if ru == NONE else (b.energy[ru] - b.energy[w]) / n
            out.gap_uncertainty[p] = unc / n
            out.resolved[p] = ok
            out.partner_gap[p] = NONE
            if b.phase[w] == MD:
                gw = b.group(np.array([w]))[0]
                groups = b.group(rw)
                mates = rw[groups == _PARTNER[int(gw)]]
                if len(mates):
                    out.partner_gap[p] = (b.energy[mates].min() - b.energy[w]) / n
    return out

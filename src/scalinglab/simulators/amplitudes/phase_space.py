"""RAMBO phase space for 2 -> n collisions in the centre-of-mass frame, massless and massive, with cuts.

The weight of an event is its phase-space density relative to flat sampling, normalised so that the mean weight
is the Lorentz-invariant phase-space volume

    Phi_n(s) = int prod_i d^3p_i / ((2 pi)^3 2 E_i)  (2 pi)^4 delta^4(P - sum_i p_i),

in GeV^(2n-4). For massless particles every event has the same weight, the analytic volume
``(2 pi)^(4-3n) (pi/2)^(n-1) s^(n-2) / ((n-1)! (n-2)!)``.

Reference: R. Kleiss, W. J. Stirling, S. D. Ellis, "A new Monte Carlo treatment of multiparticle phase space at
high energies", Comput. Phys. Commun. 40 (1986) 359 (massless algorithm, Eqs. 2.9-2.13; massive rescaling,
Eqs. 4.1-4.6).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from scalinglab.simulators.amplitudes.kinematics import pairwise_dots


def massless_volume(num_particles: int, s: float) -> float:
    """Analytic volume of massless n-body phase space (GeV^(2n-4)).

    Args:
        num_particles: number of final-state particles n >= 2.
        s: squared centre-of-mass energy (GeV^2), a number or an array.

    Reference: Kleiss, Stirling, Ellis, CPC 40 (1986) 359, Eq. (2.4).
    """
    n = int(num_particles)
    if n < 2:
        raise ValueError(f"phase space needs at least 2 final-state particles, got {n}")
    return (
        (2 * math.pi) ** (4 - 3 * n)
        * (math.pi / 2) ** (n - 1)
        * s ** (n - 2)
        / (math.factorial(n - 1) * math.factorial(n - 2))
    )


def rambo_massless(num_events: int, sqrt_s: float | np.ndarray, num_particles: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed massless momenta with total momentum (sqrt_s, 0, 0, 0).

    Args:
        num_events: B.
        sqrt_s: centre-of-mass energy (GeV), one value or [B].
        num_particles: n >= 2.
        rng: random generator (the only source of randomness).

    Returns:
        [B, n, 4] float64 momenta (GeV).

    Reference: Kleiss, Stirling, Ellis, CPC 40 (1986) 359, Eqs. (2.9)-(2.13).
    """
    n, b = int(num_particles), int(num_events)
    r = rng.random((b, n, 4))
    cos_t = 2.0 * r[..., 0] - 1.0
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi = 2.0 * np.pi * r[..., 1]
    # 1 - r keeps the argument of log strictly positive (rng.random is in [0, 1)).
    q0 = -np.log((1.0 - r[..., 2]) * (1.0 - r[..., 3]))
    q = np.stack([q0, q0 * sin_t * np.cos(phi), q0 * sin_t * np.sin(phi), q0 * cos_t], axis=-1)  # [B, n, 4]
    big_q = q.sum(axis=1)  # [B, 4]
    mass = np.sqrt(big_q[:, 0] ** 2 - np.sum(big_q[:, 1:] ** 2, axis=1))
    bvec = -big_q[:, 1:] / mass[:, None]  # [B, 3]
    gamma = big_q[:, 0] / mass
    a = 1.0 / (1.0 + gamma)
    x = sqrt_s / mass
    bq = np.einsum("bk,bnk->bn", bvec, q[..., 1:])  # [B, n]
    p0 = x[:, None] * (gamma[:, None] * q[..., 0] + bq)
    pv = x[:, None, None] * (q[..., 1:] + bvec[:, None, :] * (q[..., 0:1] + a[:, None, None] * bq[..., None]))
    return np.concatenate([p0[..., None], pv], axis=-1)


def _massive_rescale(p: np.ndarray, masses: np.ndarray, sqrt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Give massless CM momenta their masses by a common rescaling of the 3-momenta; return momenta, weight factor.

    Solves ``sum_i sqrt(m_i^2 + xi^2 |p_i|^2) = sqrt_s`` for xi by Newton's method (monotonic, converges from
    xi = sqrt(1 - (sum m / sqrt_s)^2) in a few steps).
    """
    e0 = p[..., 0]  # [B, n] massless energies = |p|
    m2 = masses**2
    xi = np.broadcast_to(np.sqrt(np.maximum(1.0 - (masses.sum() / sqrt_s) ** 2, 1e-12)), p.shape[:1]).copy()
    for _ in range(60):
        e = np.sqrt(m2 + (xi[:, None] * e0) ** 2)
        f = e.sum(axis=1) - sqrt_s
        df = np.sum(xi[:, None] * e0**2 / e, axis=1)
        step = f / df
        xi = xi - step
        if np.max(np.abs(step / xi)) < 1e-15:
            break
    e = np.sqrt(m2 + (xi[:, None] * e0) ** 2)
    k = np.concatenate([e[..., None], xi[:, None, None] * p[..., 1:]], axis=-1)
    kabs = xi[:, None] * e0  # [B, n] |k_i|
    n = p.shape[1]
    # weight factor relative to the massless weight (Kleiss et al. Eq. 4.6)
    factor = (
        (kabs.sum(axis=1) / sqrt_s) ** (2 * n - 3)
        * np.prod(kabs / e, axis=1)
        * sqrt_s
        / np.sum(kabs**2 / e, axis=1)
    )
    return k, factor


def rambo(
    num_events: int, sqrt_s: float | np.ndarray, masses: list[float] | np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """RAMBO final-state momenta in the centre-of-mass frame, massless or massive.

    Args:
        num_events: B.
        sqrt_s: centre-of-mass energy (GeV), larger than the sum of the masses: one value, or [B] values (one per
            event, as for partonic collisions of a hadronic sample).
        masses: [n] final-state masses (GeV).
        rng: random generator.

    Returns:
        momenta [B, n, 4] (GeV) and weights [B] (GeV^(2n-4)); the mean weight estimates the phase-space volume.
    """
    masses = np.asarray(masses, dtype=np.float64)
    n = masses.size
    if n < 2:
        raise ValueError(f"phase space needs at least 2 final-state particles, got {n}")
    if not np.all(np.asarray(sqrt_s) > masses.sum()):
        raise ValueError(f"sqrt_s = {np.min(sqrt_s)} GeV is below the production threshold {masses.sum()} GeV")
    p = rambo_massless(num_events, sqrt_s, n, rng)
    w0 = massless_volume(n, np.asarray(sqrt_s, dtype=np.float64) ** 2)
    if np.all(masses == 0):
        return p, np.broadcast_to(w0, (num_events,)).astype(np.float64)
    k, factor = _massive_rescale(p, masses, sqrt_s)
    return k, w0 * factor


@dataclass(frozen=True)
class Cuts:
    """Acceptance cuts on the final state that regulate soft and collinear singularities.

    Attributes:
        min_invariant: minimum of ``s_ij = (p_i + p_j)^2`` over pairs of final-state massless coloured particles
            (GeV^2); 0 disables.
        min_pt: minimum transverse momentum of every final-state massless particle (GeV); 0 disables.
        min_delta_r: minimum Delta R = sqrt(Delta eta^2 + Delta phi^2) between final-state massless particles;
            0 disables.
        max_abs_eta: maximum |pseudorapidity| of every final-state massless particle; 0 disables.
    """

    min_invariant: float = 0.0
    min_pt: float = 0.0
    min_delta_r: float = 0.0
    max_abs_eta: float = 0.0

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"cut {key} must be a finite non-negative number, got {value}")

    def active(self) -> bool:
        return any(v > 0 for v in asdict(self).values())

    def check_feasible(self, sqrt_s: float, final_masses, cut_mask=None) -> None:
        """Raise a one-line ValueError when no event can pass the pT or invariant-mass cut (kinematic bound).

        Necessary conditions, for the k particles S the cuts act on and M the summed masses of the others:
        sum_S pT_i <= sum_S E_i <= sqrt_s - M, so k * min_pt < sqrt_s - M; and, since
        sum_{i<j in S} 2 p_i.p_j <= m_S^2 <= (sqrt_s - M)^2, k (k - 1) / 2 * min_invariant < (sqrt_s - M)^2.
        Without this check an impossible cut is reported only after max_tries batches (minutes).

        Args:
            sqrt_s: centre-of-mass energy (GeV).
            final_masses: [n] final-state masses (GeV).
            cut_mask: [n] which final-state particles the cuts act on (default: the massless ones).
        """
        k, heavy = self._cut_particles(final_masses, cut_mask)
        budget = float(sqrt_s) - heavy  # energy left for the cut particles (GeV)
        if self.min_pt > 0 and k >= 1 and k * self.min_pt >= budget:
            raise ValueError(
                f"cut min_pt = {self.min_pt:g} GeV can never be met at sqrt_s = {sqrt_s:g} GeV: the {k} cut "
                f"particle(s) share at most {budget:.6g} GeV of transverse momentum, less than {k} x {self.min_pt:g}")
        pairs = k * (k - 1) // 2
        if self.min_invariant > 0 and pairs and pairs * self.min_invariant >= budget**2:
            raise ValueError(
                f"cut min_invariant = {self.min_invariant:g} GeV^2 can never be met at sqrt_s = {sqrt_s:g} GeV: "
                f"the {pairs} pair invariants of the {k} cut particles sum to at most {budget**2:.6g} GeV^2")

    @staticmethod
    def _cut_particles(final_masses, cut_mask=None) -> tuple[int, float]:
        """(number of particles the cuts act on, summed mass of the others in GeV)."""
        masses = np.asarray(final_masses, dtype=np.float64)
        mask = (masses == 0) if cut_mask is None else np.asarray(cut_mask, dtype=bool)
        return int(mask.sum()), float(masses[~mask].sum())

    def min_sqrt_s(self, final_masses, cut_mask=None) -> float:
        """The smallest centre-of-mass energy (GeV) at which the final state can pass the cuts: the bounds of
        :meth:`check_feasible` solved for sqrt_s (a hadron collider's lowest partonic sqrt(s_hat))."""
        k, heavy = self._cut_particles(final_masses, cut_mask)
        bound = float(np.sum(final_masses))
        if k and self.min_pt > 0:
            bound = max(bound, heavy + k * self.min_pt)
        pairs = k * (k - 1) // 2
        if pairs and self.min_invariant > 0:
            bound = max(bound, heavy + float(np.sqrt(pairs * self.min_invariant)))
        return bound

    def passes(self, final: np.ndarray, massless: np.ndarray) -> np.ndarray:
        """Boolean mask [B] of events passing all cuts.

        Args:
            final: [B, n_f, 4] final-state momenta (GeV).
            massless: [n_f] bool, which final-state particles the cuts act on.
        """
        ok = np.ones(final.shape[0], dtype=bool)
        idx = np.flatnonzero(massless)
        if idx.size == 0:
            return ok
        p = final[:, idx]
        pt = np.hypot(p[..., 1], p[..., 2])
        pabs = np.linalg.norm(p[..., 1:], axis=-1)
        # eta = atanh(pz/|p|), clipped so exactly collinear-with-beam momenta give a large finite value
        eta = np.arctanh(np.clip(p[..., 3] / np.maximum(pabs, 1e-300), -1 + 1e-15, 1 - 1e-15))
        if self.min_pt > 0:
            ok &= np.all(pt >= self.min_pt, axis=1)
        if self.max_abs_eta > 0:
            ok &= np.all(np.abs(eta) <= self.max_abs_eta, axis=1)
        if idx.size >= 2 and (self.min_invariant > 0 or self.min_delta_r > 0):
            iu, ju = np.triu_indices(idx.size, k=1)
            if self.min_invariant > 0:
                dots = pairwise_dots(p)[:, iu, ju]
                ok &= np.all(2.0 * dots >= self.min_invariant, axis=1)  # massless: s_ij = 2 p_i.p_j
            if self.min_delta_r > 0:
                phi = np.arctan2(p[..., 2], p[..., 1])
                dphi = np.angle(np.exp(1j * (phi[:, iu] - phi[:, ju])))
                dr = np.hypot(eta[:, iu] - eta[:, ju], dphi)
                ok &= np.all(dr >= self.min_delta_r, axis=1)
        return ok


@dataclass
class PhaseSpaceSample:
    """Events of a 2 -> n process.

    Attributes:
        momenta: [B, 2 + n, 4] float64 (GeV); incoming along +z and -z first.
        weights: [B] phase-space weights (GeV^(2n-4)); with cuts, the volume inside the cuts is
            ``mean(weights) * metadata["acceptance"]``.
        metadata: sqrt_s, masses, cuts, acceptance (fraction of generated events that passed), generator.
    """

    momenta: np.ndarray
    weights: np.ndarray
    metadata: dict = field(default_factory=dict)


def generate_events(
    num_events: int,
    sqrt_s: float,
    final_masses: list[float] | np.ndarray,
    seed: int | np.random.Generator,
    cuts: Cuts | None = None,
    cut_mask: list[bool] | np.ndarray | None = None,
    max_tries: int = 10_000,
) -> PhaseSpaceSample:
    """Collision events ``p1 p2 -> k_1 ... k_n`` in the CM frame with massless beams, passing cuts.

    Args:
        num_events: number of accepted events B.
        sqrt_s: centre-of-mass energy (GeV).
        final_masses: [n] final-state masses (GeV).
        seed: integer seed or numpy Generator (the only source of randomness; same seed, same events).
        cuts: optional acceptance cuts; events failing them are regenerated.
        cut_mask: [n] which final-state particles the cuts act on (default: the massless ones).
        max_tries: give up after this many batches (an impossible cut would otherwise loop forever).

    Returns:
        PhaseSpaceSample with momenta [B, 2 + n, 4].
    """
    if num_events < 1:
        raise ValueError(f"num_events must be >= 1, got {num_events}")
    if not (np.isfinite(sqrt_s) and sqrt_s > 0):
        raise ValueError(f"sqrt_s must be a positive number of GeV, got {sqrt_s}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    masses = np.asarray(final_masses, dtype=np.float64)
    cuts = cuts or Cuts()
    mask = (masses == 0) if cut_mask is None else np.asarray(cut_mask, dtype=bool)
    cuts.check_feasible(sqrt_s, masses, mask)
    kept_p, kept_w = [], []
    generated, accepted, passed = 0, 0, 0
    for _ in range(max_tries):
        need = num_events - accepted
        if need <= 0:
            break
        # oversample by the running acceptance so that few extra rounds are needed
        acc = passed / generated if generated else 1.0
        batch = int(min(max(need / max(acc, 1e-3) * 1.1, 64), 4 * num_events + 1024))
        p, w = rambo(batch, sqrt_s, masses, rng)
        generated += batch
        if cuts.active():
            ok = cuts.passes(p, mask)
            p, w = p[ok], w[ok]
        passed += p.shape[0]
        take = min(need, p.shape[0])
        kept_p.append(p[:take])
        kept_w.append(w[:take])
        accepted += take
    if accepted < num_events:
        raise ValueError(f"cuts {asdict(cuts)} accept too few events (acceptance < {max(passed, 1) / generated:.1e})")
    final = np.concatenate(kept_p)
    e = 0.5 * sqrt_s
    beams = np.broadcast_to(np.array([[e, 0, 0, e], [e, 0, 0, -e]]), (num_events, 2, 4))
    momenta = np.concatenate([beams, final], axis=1)
    meta = {
        "generator": "rambo",
        "sqrt_s": float(sqrt_s),
        "final_masses": masses.tolist(),
        "cuts": asdict(cuts),
        "cut_particles": mask.tolist(),
        "acceptance": passed / generated if cuts.active() else 1.0,
    }
    return PhaseSpaceSample(momenta=np.ascontiguousarray(momenta), weights=np.concatenate(kept_w), metadata=meta)

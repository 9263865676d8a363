"""Hadron-collider event samples: partonic sqrt(s_hat) from parton luminosities, RAMBO, cuts, unweighting.

For a process ``a b > f_1 ... f_n`` at a proton-proton collider of energy sqrt(S),

    sigma = sum_channels int dx1 dx2 f_a(x1, mu) f_b(x2, mu) / (2 s_hat) |M|^2_avg dPhi_n(s_hat),  s_hat = x1 x2 S.

Weighted events sample ``tau = x1 x2`` with ``ln tau`` uniform in ``[ln tau_min, 0)`` and the rapidity
``y = ln(x1 / x2) / 2`` uniform in ``(ln tau / 2, -ln tau / 2)`` (so ``dx1 dx2 = dtau dy``), then RAMBO in the partonic
centre-of-mass frame at sqrt(s_hat), boosted along the beam to the laboratory frame, where the cuts act. The
event weight is ``L(x1, x2) / (x1 x2) tau ln(1/tau_min) ln(1/tau) w_RAMBO / (2 s_hat) |M|^2_avg`` (GeV^-2, with the
project's unit couplings). Unweighting keeps an event with probability ``min(1, w / w_max)`` (hit-or-miss);
``w_max`` is the largest weight of a calibration sample of its own seed, and events above it ("overweights")
are kept with probability 1 and counted.

Channels: ``q`` stands for each light quark u, d, s, c (paired with its own antiquark in ``q q~``), flavoured
quarks (``u``, ``d~``...) for themselves, ``g`` for the gluon; a process whose two incoming partons differ is
sampled in both orientations (parton a from either beam). |M|^2 depends on the flavour only through couplings,
which the project sets to 1, so a channel is drawn in proportion to its luminosity and the momenta carry no
flavour label.

Phase-space dimension: with sqrt(s_hat) varying, the |M|^2 of ``n_f`` final-state particles depends on
``3 n_f - 4`` variables (``3 n_f`` momenta minus 4 conservation constraints plus sqrt(s_hat), minus the azimuth
around the beam); at one fixed sqrt(s) it is ``3 n_f - 5`` (``stats.intrinsic_dimension(n_f, sampling)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scalinglab.simulators.amplitudes.pdf import get_pdf
from scalinglab.simulators.amplitudes.phase_space import Cuts, rambo

_LIGHT_QUARKS = ("u", "d", "s", "c")
_HADRONIC_PARTONS = {"g", "q", "q~"} | set(_LIGHT_QUARKS) | {f + "~" for f in _LIGHT_QUARKS}


def parton_channels(incoming: tuple[str, str]) -> list[tuple[str, str]]:
    """The (flavour of parton a, flavour of parton b) pairs summed in the luminosity of ``a b``.

    Raises:
        ValueError: a non-partonic incoming particle (e.g. leptons: sample those at a fixed sqrt(s)).
    """
    a, b = incoming
    for p in (a, b):
        if p not in _HADRONIC_PARTONS:
            raise ValueError(f"'{p}' is not a parton of the proton: a process with incoming '{a} {b}' cannot be "
                             "sampled at a hadron collider (use a fixed sqrt(s) instead)")
    if (a, b) in (("q", "q~"), ("q~", "q")):
        return [(f, f + "~") if a == "q" else (f + "~", f) for f in _LIGHT_QUARKS]
    expand = {"q": _LIGHT_QUARKS, "q~": tuple(f + "~" for f in _LIGHT_QUARKS)}
    return [(fa, fb) for fa in expand.get(a, (a,)) for fb in expand.get(b, (b,))]


@dataclass
class HadronicSampler:
    """Weighted partonic events of one process at a proton-proton collider.

    Attributes:
        incoming: the two incoming parton names of the process (e.g. ``("q", "q~")``).
        final_masses: [n_f] final-state masses (GeV).
        collider_energy: sqrt(S) of the proton-proton collision (GeV).
        cuts: acceptance cuts, applied in the laboratory frame.
        pdf: name of the PDF set (``duke-owens-1``).
        scale_factor: factorization scale mu_F = scale_factor x sqrt(s_hat).
        min_sqrt_s_hat: lower bound on sqrt(s_hat) (GeV); 0 = the kinematic and cut bound.
    """

    incoming: tuple[str, str]
    final_masses: np.ndarray
    collider_energy: float
    cuts: Cuts = field(default_factory=Cuts)
    pdf: str = "duke-owens-1"
    scale_factor: float = 0.5
    min_sqrt_s_hat: float = 0.0

    def __post_init__(self) -> None:
        self.final_masses = np.asarray(self.final_masses, dtype=np.float64)
        self.channels = parton_channels(tuple(self.incoming))
        self.symmetric = self.incoming[0] == self.incoming[1]
        self._pdf = get_pdf(self.pdf)
        if not (np.isfinite(self.collider_energy) and self.collider_energy > 0):
            raise ValueError(f"collider energy must be a positive number of GeV, got {self.collider_energy}")
        if not self.scale_factor > 0:
            raise ValueError(f"scale_factor must be > 0, got {self.scale_factor}")
        bound = max(self.cuts.min_sqrt_s(self.final_masses), float(self.min_sqrt_s_hat))
        if bound <= 0:
            raise ValueError("a massless final state needs a cut (min_pt or min_invariant) or min_sqrt_s_hat at a "
                             "hadron collider: |M|^2 / s_hat diverges as s_hat -> 0")
        if not bound < self.collider_energy:
            raise ValueError(f"the final state needs sqrt(s_hat) >= {bound:.6g} GeV, above the collider energy "
                             f"{self.collider_energy:g} GeV")
        self.tau_min = (bound / self.collider_energy) ** 2

    def luminosities(self, x1: np.ndarray, x2: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """[C, B] products ``x1 f_a(x1) x2 f_b(x2)`` per channel and orientation (a from beam 1, then beam 2)."""
        xf1 = {f: self._pdf.xf(f, x1, q2) for f in {c for pair in self.channels for c in pair}}
        xf2 = {f: self._pdf.xf(f, x2, q2) for f in xf1}
        lums = [xf1[a] * xf2[b] for a, b in self.channels]
        if not self.symmetric:
            lums += [xf2[a] * xf1[b] for a, b in self.channels]  # parton a from beam 2
        return np.stack(lums)

    def sample(self, num: int, rng: np.random.Generator) -> dict:
        """``num`` weighted events (before cuts).

        Returns:
            dict with ``momenta`` [B, 2 + n_f, 4] (laboratory frame, parton a first), ``weight`` [B] (GeV^-2,
            without |M|^2: multiply by the averaged |M|^2), ``passed`` [B] bool (cuts), ``x1``, ``x2``,
            ``sqrt_s_hat`` [B].
        """
        u = rng.random((3, num))
        log_tau_min = np.log(self.tau_min)
        log_tau = log_tau_min * (1.0 - u[0])  # in (ln tau_min, 0]
        tau = np.exp(log_tau)
        y = (u[1] - 0.5) * (-log_tau)
        x1, x2 = np.sqrt(tau) * np.exp(y), np.sqrt(tau) * np.exp(-y)
        x1 = np.minimum(x1, 1.0 - 1e-15)
        x2 = np.minimum(x2, 1.0 - 1e-15)
        s_hat = tau * self.collider_energy**2
        sqrt_s_hat = np.sqrt(s_hat)
        lum = self.luminosities(x1, x2, (self.scale_factor * sqrt_s_hat) ** 2)  # [C, B]
        total = lum.sum(axis=0)
        # the channel (only its orientation matters for the momenta) drawn in proportion to its luminosity
        cum = np.cumsum(lum, axis=0) / np.where(total > 0, total, 1.0)
        channel = np.minimum((u[2][None] > cum).sum(axis=0), lum.shape[0] - 1)
        backward = channel >= len(self.channels)
        final, w_ps = rambo(num, sqrt_s_hat, self.final_masses, rng)
        e_a = np.where(backward, x2, x1) * 0.5 * self.collider_energy
        e_b = np.where(backward, x1, x2) * 0.5 * self.collider_energy
        sign = np.where(backward, -1.0, 1.0)
        zeros = np.zeros(num)
        beams = np.stack([np.stack([e_a, zeros, zeros, sign * e_a], -1),
                          np.stack([e_b, zeros, zeros, -sign * e_b], -1)], axis=1)
        # boost the partonic CM frame along z with rapidity y (beam 1 along +z)
        ch, sh = np.cosh(y)[:, None], np.sinh(y)[:, None]
        e, pz = final[..., 0], final[..., 3]
        final = final.copy()
        final[..., 0], final[..., 3] = ch * e + sh * pz, sh * e + ch * pz
        momenta = np.concatenate([beams, final], axis=1)
        jac = tau * (-log_tau_min) * (-log_tau)
        weight = total / (x1 * x2) * jac * w_ps / (2.0 * s_hat)
        massless = self.final_masses == 0
        passed = self.cuts.passes(final, massless) if self.cuts.active() else np.ones(num, dtype=bool)
        return {"momenta": momenta, "weight": weight, "passed": passed, "x1": x1, "x2": x2,
                "sqrt_s_hat": sqrt_s_hat}


def unweight(weights: np.ndarray, w_max: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Hit-or-miss: keep event i with probability min(1, w_i / w_max); returns (kept mask, overweight count)."""
    if not w_max > 0:
        raise ValueError(f"w_max must be > 0, got {w_max}")
    r = rng.random(weights.shape[0])
    return r * w_max < weights, int(np.count_nonzero(weights > w_max))

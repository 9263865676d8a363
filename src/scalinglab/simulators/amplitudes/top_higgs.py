"""``q q~ > t t~ H`` at tree level (QCD production, Higgs radiated off the top line), massive top quark.

Process ``"q q~ > t t~ H"``: momenta ``[B, 5, 4]`` ordered (q, q~, t, t~, H), incoming first, GeV. The light quarks
are massless and do not couple to the Higgs. Two diagrams: ``q q~ > g* > t t~`` with the Higgs emitted from the
top or from the antitop leg.

Feynman rules (Peskin & Schroeder conventions, Feynman gauge unless ``xi`` is given; the same colour normalisation
as ``berends_giele``):

- quark-gluon vertex ``i g_s gamma^mu t^a`` with ``t^a = T^a / sqrt2 = lambda^a / 2`` (the colour-ordered
  ``(i/sqrt2) gamma^mu T^a`` of ``berends_giele``), ``g_s = 1``;
- top Yukawa vertex ``-i y`` with ``y = 1``;
- gluon propagator ``-i [g^{mu nu} - (1 - xi) k^mu k^nu / k^2] / k^2`` (``xi = 1``: Feynman gauge);
- massive fermion propagator ``i (pslash + m_t) / (p^2 - m_t^2)``, p along the fermion arrow.

The amplitude is ``M = g_s^2 y (t^a)_{i2 i1} (t^a)_{i3 i4} A`` with

    A = -(1/s) J_mu H^mu,   J^mu = vbar(p2) gamma^mu u(p1),
    H^mu = ubar(p3) [ (P1slash + m) gamma^mu / D1 + gamma^mu (P2slash + m) / D2 ] v(p4),

``P1 = p3 + p5``, ``P2 = -(p4 + p5)``, ``D1 = P1^2 - m^2``, ``D2 = P2^2 - m^2`` (the two diagrams carry the same
product of vertex and propagator factors of i, so they add with a relative plus sign; overall phases are
dropped). Summed over colours, ``sum |(t^a)_{i2 i1} (t^a)_{i3 i4}|^2 = Tr(t^a t^b) Tr(t^a t^b) = (N^2 - 1)/4 = 2``.

Coupling factors to restore: the value is ``sum |M|^2`` for ``g_s = 1`` and ``y = 1``; multiply by
``g_s^4 y^2``. In the Standard Model ``L > -(m_t / v) H tbar t``, i.e. ``y = m_t / v = y_t / sqrt2`` with the
usual Yukawa coupling ``y_t = sqrt2 m_t / v`` (``v = 246.22 GeV``, ``m_t / v = 0.7009``): multiply by
``g_s^4 m_t^2 / v^2 = g_s^4 y_t^2 / 2``. The Higgs mass enters only through the momenta (``p5^2``).

Summed over spins and colours, not averaged (``average=True`` of ``squared_amplitude`` divides by 36); no
symmetry factor.

Massive spinors (chiral basis, Peskin Eq. 3.50 and 3.62, spin basis ``xi, eta = (1,0), (0,1)``, i.e. spin along z
in the rest frame): ``u(p) = (sqrt(p.sigma) xi, sqrt(p.sigmabar) xi)``, ``v(p) = (sqrt(p.sigma) eta,
-sqrt(p.sigmabar) eta)`` with ``sqrt(p.sigma) = (p.sigma + m) / sqrt(2 (E + m))``, so that ``sum_s u ubar =
pslash + m`` and ``sum_s v vbar = pslash - m``; for m = 0 they reduce to ``berends_giele.u_spinors/v_spinors``.

References: Z. Kunszt, Nucl. Phys. B247 (1984) 339 (tree-level ttH); W. Beenakker et al., Nucl. Phys. B653 (2003)
151 (NLO, LO conventions); R. K. Ellis, W. J. Stirling, B. R. Webber, "QCD and Collider Physics", Table 10.1
(``q q~ > t t~``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from scalinglab.simulators.amplitudes import colour
from scalinglab.simulators.amplitudes.berends_giele import (
    _pauli_dot,
    bar,
    slash,
    u_spinors,
    v_spinors,
    vector_current,
)
from scalinglab.simulators.amplitudes.kinematics import mdot

_DIAGRAMS = ("both", "top", "antitop")


def massive_u_spinors(p: np.ndarray, mass: float) -> np.ndarray:
    """Basis of Dirac spinors u(p) for mass m (chiral basis, xi = (1,0), (0,1)).

    Args:
        p: [B, 4] on-shell momenta (p^2 = m^2, positive energy).
        mass: the fermion mass (GeV).

    Returns:
        [2, B, 4] complex128 with ``sum_s u_s ubar_s = pslash + m``.
    """
    norm = 1.0 / np.sqrt(2.0 * (p[..., 0] + mass))[..., None, None]
    eye = np.eye(2) * mass
    ps, psb = (_pauli_dot(p, 1.0) + eye) * norm, (_pauli_dot(p, -1.0) + eye) * norm
    return np.stack([np.concatenate([ps[..., :, s], psb[..., :, s]], axis=-1) for s in range(2)])


def massive_v_spinors(p: np.ndarray, mass: float) -> np.ndarray:
    """Basis of Dirac spinors v(p) = (sqrt(p.sigma) eta, -sqrt(p.sigmabar) eta).

    Returns:
        [2, B, 4] complex128 with ``sum_s v_s vbar_s = pslash - m``.
    """
    norm = 1.0 / np.sqrt(2.0 * (p[..., 0] + mass))[..., None, None]
    eye = np.eye(2) * mass
    ps, psb = (_pauli_dot(p, 1.0) + eye) * norm, (_pauli_dot(p, -1.0) + eye) * norm
    return np.stack([np.concatenate([ps[..., :, s], -psb[..., :, s]], axis=-1) for s in range(2)])


def colour_factor() -> float:
    """``sum_colours |(t^a)_{i2 i1} (t^a)_{i3 i4}|^2 = sum_ab |Tr(t^a t^b)|^2`` with ``t^a = T^a / sqrt2`` (= 2)."""
    t = colour.generators() / np.sqrt(2.0)
    tr = np.einsum("aij,bji->ab", t, t)
    return float(np.sum(np.abs(tr) ** 2))


def light_quark_current(momenta: np.ndarray) -> np.ndarray:
    """``J^mu = vbar(p2) gamma^mu u(p1)`` of the incoming massless q (p1), q~ (p2): [2 (q~ spin), 2 (q spin), B, 4]."""
    return vector_current(bar(v_spinors(momenta[:, 1]))[:, None], u_spinors(momenta[:, 0])[None, :])


def top_higgs_current(momenta: np.ndarray, mass_t: float, diagrams: str = "both") -> np.ndarray:
    """Heavy-line current ``H^mu`` (see the module docstring): [2 (t spin), 2 (t~ spin), B, 4].

    Args:
        momenta: [B, 5, 4] (q, q~, t, t~, H).
        mass_t: top mass (GeV).
        diagrams: ``"both"`` (the physical current), or only the emission from the ``"top"`` or ``"antitop"`` leg
            (each alone is not conserved: used to show that the gauge checks can fail).
    """
    if diagrams not in _DIAGRAMS:
        raise ValueError(f"unknown diagrams '{diagrams}' (known: {', '.join(_DIAGRAMS)})")
    p3, p4, p5 = momenta[:, 2], momenta[:, 3], momenta[:, 4]
    u3, v4 = massive_u_spinors(p3, mass_t), massive_v_spinors(p4, mass_t)
    out = 0.0
    if diagrams in ("both", "top"):
        q1 = p3 + p5
        d1 = mdot(q1, q1) - mass_t**2
        # ubar3 (P1slash + m) = bar((P1slash + m) u3): P1slash + m is self-adjoint under the Dirac bar
        left = bar(slash(q1[None], u3) + mass_t * u3)
        out = out + vector_current(left[:, None], v4[None, :]) / d1[:, None]
    if diagrams in ("both", "antitop"):
        q2 = -(p4 + p5)
        d2 = mdot(q2, q2) - mass_t**2
        right = slash(q2[None], v4) + mass_t * v4
        out = out + vector_current(bar(u3)[:, None], right[None, :]) / d2[:, None]
    return out


def helicity_amplitudes(momenta: np.ndarray, mass_t: float, xi: float = 1.0, diagrams: str = "both") -> np.ndarray:
    """``A = -(1/s) [J.H - (1 - xi) (J.k)(H.k) / k^2]`` for all spins: [2, 2, 2, 2, B] (q~, q, t, t~).

    Args:
        momenta: [B, 5, 4] (q, q~, t, t~, H).
        mass_t: top mass (GeV).
        xi: gauge parameter of the internal gluon. The ``k^mu k^nu`` term drops out already because the massless
            light-quark current is conserved (``J.k = 0``); the conservation of the heavy current (``H.k = 0``,
            which needs both diagrams) is the non-trivial gauge check (see the tests).
        diagrams: see ``top_higgs_current``.
    """
    j = light_quark_current(momenta)[:, :, None, None]  # [2, 2, 1, 1, B, 4]
    h = top_higgs_current(momenta, mass_t, diagrams)[None, None]  # [1, 1, 2, 2, B, 4]
    k = momenta[:, 0] + momenta[:, 1]
    s = mdot(k, k)
    amp = mdot(j, h)
    if xi != 1.0:
        amp = amp - (1.0 - xi) * mdot(j, k) * mdot(h, k) / s
    return -amp / s


def bg_qq_tth(momenta: np.ndarray, mass_t: float, xi: float = 1.0, diagrams: str = "both") -> np.ndarray:
    """``q q~ > t t~ H`` summed over spins and colours (g_s = y = 1), by explicit spinor currents.

    Args:
        momenta: [B, 5, 4] (q, q~, t, t~, H) physical momenta (GeV).
        mass_t: top mass (GeV); the Higgs mass is read from the momenta.
        xi: gluon gauge parameter (gauge-invariance checks).
        diagrams: ``"both"`` (physical), ``"top"`` or ``"antitop"`` (single diagrams, for checks only).

    Returns:
        [B] sum |M|^2 in GeV^-2.
    """
    amp = helicity_amplitudes(momenta, mass_t, xi, diagrams)
    return colour_factor() * np.sum(np.abs(amp) ** 2, axis=(0, 1, 2, 3))


def qq_tt(momenta: np.ndarray, mass_t: float) -> np.ndarray:
    """Closed form of ``q q~ > t t~`` (g_s = 1), summed over spins and colours, momenta [B, 4, 4] (q, q~, t, t~).

    ``sum |M|^2 = 64 [(p1.p3)(p2.p4) + (p1.p4)(p2.p3) + m^2 (p1.p2)] / s^2 = 16 (tau1^2 + tau2^2 + rho/2)`` with
    ``tau_i = 2 p_i.p3 / s``, ``rho = 4 m^2 / s``: colour 2 x Tr[gamma^mu p1slash gamma^nu p2slash] x
    Tr[gamma_mu (p4slash - m) gamma_nu (p3slash + m)] / s^2 (ESW Table 10.1 times 36 for the summed value).
    Used for the soft-Higgs limit of ``q q~ > t t~ H``.
    """
    p1, p2, p3, p4 = (momenta[:, i] for i in range(4))
    s = mdot(p1 + p2, p1 + p2)
    return 64.0 * (mdot(p1, p3) * mdot(p2, p4) + mdot(p1, p4) * mdot(p2, p3) + mass_t**2 * mdot(p1, p2)) / s**2


def processes() -> list:
    """The Process entries of this module (registered in ``processes._make_processes``)."""
    from scalinglab.simulators.amplitudes.processes import MASS_T, Process, _chunk_call

    return [Process("q q~ > t t~ H", ("q", "q~"), ("t", "t~", "H"), None,
                    partial(_chunk_call, partial(bg_qq_tth, mass_t=MASS_T), 4096))]

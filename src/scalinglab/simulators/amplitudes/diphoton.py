"""``q q~ > a a + n g`` (n = 0, 1, 2) at tree level: two photons and n gluons off one massless quark line.

A tree-level stand-in for the jet-associated di-photon process of the paper (App. A.3), whose physical channel
``g g > gamma gamma + n g`` is loop induced (a quark box); here the photons couple directly to the incoming
quark line instead, so the amplitudes share the external states (two photons plus gluons) but not the loop.

Processes ``"q q~ > a a"``, ``"q q~ > a a g"``, ``"q q~ > a a g g"``; momenta ``[B, 4 + n, 4]`` ordered
(q, q~, a, a, g...), incoming first, GeV.

Feynman rules (Peskin & Schroeder conventions, Feynman gauge; colour-ordered rules and colour basis of
``berends_giele`` / ``colour``, ``Tr(T^a T^b) = delta^ab``):

- quark-photon vertex ``-i gamma^mu`` (unit charge, ``e = 1``), quark-gluon vertex ``(i/sqrt2) gamma^mu`` with
  colour ``T^a``, gluon self-couplings and propagators as in ``berends_giele``;
- massless quark propagator ``i Pslash / P^2``.

The photons are emitted anywhere along the line (all positions relative to the gluons and to each other); the
gluons are emitted in colour order, ``M = sum_sigma (T^{a_sigma(1)} ... T^{a_sigma(n)})_{i2 i1} A(sigma)``, and
the colour sum uses ``colour.quark_line_matrix(n)`` (for n = 0 the colour sum is ``N = 3``).

Coupling factors to restore: the value is ``sum |M|^2`` with ``e = g_s = 1`` and unit quark charge; multiply by
``e^4 Q_q^4 g_s^(2n)``. Summed over helicities and colours, not averaged (``average=True`` divides by 36); no
symmetry factor for the identical photons or gluons (it belongs to the phase-space integral).

Closed forms (summed, couplings 1; ``a_i = p1.k_i``, ``b_i = p2.k_i``):

- ``q q~ > a a``: ``8 N (u/t + t/u)`` (the QED ``e+ e- > gamma gamma`` result ``2 e^4 (u/t + t/u)`` averaged
  over 4 spin states, times N for colour);
- ``q q~ > a a g``: ``8 N C_F (p1.p2) sum_{i=3}^{5} a_i b_i (a_i^2 + b_i^2) / prod_{i=3}^{5} a_i b_i``, the
  QED ``e+ e- > 3 gamma`` form with one photon replaced by a gluon (only one gluon: no self-coupling, colour
  ``Tr(t^a t^a) = N C_F = 4``); its normalisation follows from the soft limit onto ``q q~ > a a``.

References: F. A. Berends, W. T. Giele, Nucl. Phys. B306 (1988) 759 (recursion); M. E. Peskin, D. V. Schroeder,
Sec. 5.5 (``e+ e- > 2 gamma``); F. A. Berends, R. Kleiss, Nucl. Phys. B186 (1981) 22 and F. A. Berends et al.,
Phys. Lett. B103 (1981) 124 (``e+ e- > 3 gamma``, massless limit).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from scalinglab.simulators.amplitudes import colour
from scalinglab.simulators.amplitudes.berends_giele import (
    SQRT_HALF,
    GluonCurrents,
    bar,
    gluon_polarizations,
    slash,
    u_spinors,
    v_spinors,
)
from scalinglab.simulators.amplitudes.closed_forms import C_F, N_C
from scalinglab.simulators.amplitudes.kinematics import mdot


class PhotonQuarkLine:
    """Spinor currents of one massless quark line with ordered gluon clusters and P colour-neutral photons.

    Like ``berends_giele.QuarkLine`` (which carries at most one colour-neutral boson), but the photons may sit
    anywhere along the line: an off-shell spinor is labelled by the colour-ordered suffix of gluons already
    emitted and the set (bit mask) of photons already emitted. Array layout ``[S, h_1, ..., h_P, H_g, B, 4]``:
    start-spinor basis, one helicity axis per photon (length 1 while that photon has not been emitted), the
    gluon helicities flattened (first gluon of the suffix most significant), events, spinor index.

    Args:
        gluons: GluonCurrents of the gluons on this line.
        start: [S, B, 4] basis of start spinors (u of the incoming quark).
        start_momentum: [B, 4] momentum flowing into the line along the fermion arrow at the start (GeV).
        photons: [P, h, B, 4] polarisation vectors (or other wave functions) of the photons.
        photon_momenta: [P, B, 4] their outgoing momenta (GeV).
    """

    def __init__(self, gluons: GluonCurrents, start: np.ndarray, start_momentum: np.ndarray,
                 photons: np.ndarray | list[np.ndarray], photon_momenta: np.ndarray) -> None:
        self.g = gluons
        self.num_photons = len(photons)
        self.start = start.reshape(start.shape[:1] + (1,) * (self.num_photons + 1) + start.shape[1:])
        self.p0 = start_momentum
        self.kph = photon_momenta
        # photon i's wave functions with its helicity on axis 1 + i of the layout
        self.eps = []
        for i, e in enumerate(photons):
            shape = [1] * (self.num_photons + 2) + list(e.shape[1:])
            shape[1 + i] = e.shape[0]
            self.eps.append(np.asarray(e).reshape(shape))
        self._psi: dict[tuple[tuple[int, ...], int], np.ndarray] = {}

    def _line_momentum(self, emitted: tuple[int, ...], mask: int) -> np.ndarray:
        p = self.p0 - (self.g.momentum(emitted) if emitted else 0.0)
        for i in range(self.num_photons):
            if mask >> i & 1:
                p = p - self.kph[i]
        return p

    def _emit(self, suffix: tuple[int, ...], mask: int) -> np.ndarray:
        """i x (sum over the last vertex before the propagator) for the state (suffix, mask)."""
        total = None
        for m in range(1, len(suffix) + 1):
            c, rest = suffix[:m], suffix[m:]
            j = self.g.current(c)  # [hc, B, 4]
            psi = self.psi(rest, mask)  # [S, *ph, hr, B, 4]
            head, hr = psi.shape[: 1 + self.num_photons], psi.shape[1 + self.num_photons]
            jj = j.reshape((1,) * (1 + self.num_photons) + (j.shape[0], 1) + j.shape[1:])
            # i x (i/sqrt2) Jslash = -(1/sqrt2) Jslash
            v = slash(jj, psi[..., None, :, :, :]) * (-SQRT_HALF)
            v = v.reshape(head + (j.shape[0] * hr,) + v.shape[-2:])
            total = v if total is None else total + v
        for i in range(self.num_photons):
            if mask >> i & 1:
                # i x (-i) epsslash = epsslash
                v = slash(self.eps[i], self.psi(suffix, mask & ~(1 << i)))
                total = v if total is None else total + v
        return total

    def psi(self, suffix: tuple[int, ...], mask: int) -> np.ndarray:
        """Off-shell spinor after emitting the gluons in ``suffix`` and the photons in ``mask``, with propagator."""
        key = (suffix, mask)
        if key in self._psi:
            return self._psi[key]
        if not suffix and not mask:
            out = self.start
        else:
            p = self._line_momentum(suffix, mask)
            out = slash(p, self._emit(suffix, mask)) / mdot(p, p)[..., None]
        self._psi[key] = out
        return out

    def amplitude(self, order: tuple[int, ...], end_bar: np.ndarray) -> np.ndarray:
        """Colour-ordered amplitude for gluon order ``order``: [S', S, h_1..h_P] + [2]*m + [B] (label order)."""
        gam = self._emit(tuple(order), (1 << self.num_photons) - 1)  # [S, *ph, 2^m, B, 4]
        eb = end_bar.reshape(end_bar.shape[:1] + (1,) * (gam.ndim - 2) + end_bar.shape[1:])
        amp = np.sum(eb * gam[None], axis=-1)  # [S', S, *ph, 2^m, B]
        m = len(order)
        lead = 2 + self.num_photons
        amp = amp.reshape(amp.shape[:lead] + (2,) * m + amp.shape[-1:])
        return np.transpose(amp, (*range(lead), *(lead + np.argsort(order)), lead + m))


def bg_qq_photons_gluons(momenta: np.ndarray, overrides: dict | None = None,
                         photon_overrides: dict | None = None) -> np.ndarray:
    """``q q~ > a a + m g`` summed over helicities and colours (e = g_s = 1, unit charge).

    Args:
        momenta: [B, 4 + m, 4] (q, q~, a, a, g_1..g_m) physical momenta (GeV).
        overrides: {gluon index (0-based among the gluons): [2, B, 4]} replacement gluon wave functions.
        photon_overrides: {photon index 0 or 1: [h, B, 4]} replacement photon wave functions (Ward tests).

    Returns:
        [B] sum |M|^2.
    """
    m = momenta.shape[1] - 4
    b = momenta.shape[0]
    pg = np.transpose(momenta[:, 4:], (1, 0, 2))  # [m, B, 4] outgoing
    pols = np.stack([gluon_polarizations(x) for x in pg]) if m else np.zeros((0, 2, b, 4))
    cur = GluonCurrents(pg, pols, overrides)
    photon_overrides = photon_overrides or {}
    photons = [photon_overrides.get(i, gluon_polarizations(momenta[:, 2 + i])) for i in range(2)]
    line = PhotonQuarkLine(cur, u_spinors(momenta[:, 0]), momenta[:, 0], photons,
                           np.transpose(momenta[:, 2:4], (1, 0, 2)))
    end = bar(v_spinors(momenta[:, 1]))
    amps = [line.amplitude(o, end) for o in colour.quark_line_orderings(m)]
    cmat = colour.quark_line_matrix(m)
    a = np.stack([x.reshape(-1, b) for x in amps])  # [K, H, B]
    ca = np.tensordot(cmat, a, axes=(1, 0))
    return np.einsum("khb,khb->b", a.conj(), ca).real


def _dots(momenta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p1.p2`` [B] and ``a_i = p1.k_i``, ``b_i = p2.k_i`` [B, n_f]."""
    p1, p2, k = momenta[:, 0], momenta[:, 1], momenta[:, 2:]
    return mdot(p1, p2), mdot(p1[:, None], k), mdot(p2[:, None], k)


def qq_aa(momenta: np.ndarray) -> np.ndarray:
    """Closed form ``q q~ > a a``: ``8 N (u/t + t/u)``, ``t = (p1 - k1)^2 = -2 a_1``, ``u = -2 a_2``."""
    _, a, _ = _dots(momenta)
    t, u = -2.0 * a[:, 0], -2.0 * a[:, 1]
    return 8.0 * N_C * (u / t + t / u)


def qq_aag(momenta: np.ndarray) -> np.ndarray:
    """Closed form ``q q~ > a a g``: ``8 N C_F (p1.p2) sum_i a_i b_i (a_i^2 + b_i^2) / prod_i a_i b_i``."""
    p12, a, b = _dots(momenta)
    num = np.sum(a * b * (a**2 + b**2), axis=1)
    return 8.0 * N_C * C_F * p12 * num / np.prod(a * b, axis=1)


def processes() -> list:
    """The Process entries of this module (registered in ``processes._make_processes``)."""
    from scalinglab.simulators.amplitudes.processes import Process, _chunk_call

    closed = {0: qq_aa, 1: qq_aag, 2: None}
    return [Process("q q~ > a a" + " g" * n, ("q", "q~"), ("a", "a") + ("g",) * n, closed[n],
                    partial(_chunk_call, bg_qq_photons_gluons, chunk))
            for n, chunk in zip(range(3), (4096, 2048, 1024))]

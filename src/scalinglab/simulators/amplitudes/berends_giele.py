"""Berends-Giele recursion for colour-ordered tree amplitudes (numpy, complex128, vectorised over events).

Feynman rules (Peskin & Schroeder conventions, Feynman gauge, all couplings set to 1) decomposed in the colour
basis of ``colour`` (``Tr(T^a T^b) = delta^ab``), i.e. the colour-ordered rules of L. Dixon, "Calculating scattering
amplitudes efficiently", hep-ph/9601359, Fig. 6:

- three-gluon vertex for cyclic order (a, b, c), momenta k, p, q incoming:
  ``-(i/sqrt2) [g^{mu nu}(k-p)^rho + g^{nu rho}(p-q)^mu + g^{rho mu}(q-k)^nu]``
- four-gluon vertex for cyclic order (a, b, c, d): ``(i/2) [2 g^{mu rho} g^{nu sigma} - g^{mu nu} g^{rho sigma}
  - g^{mu sigma} g^{nu rho}]``
- quark-gluon vertex ``(i/sqrt2) gamma^mu``, quark-(colour-neutral vector) vertex ``-i gamma^mu``
- propagators ``-i g_{mu nu} / P^2`` (gluon) and ``i Pslash / P^2`` (massless quark).

Off-shell gluon currents (F. A. Berends, W. T. Giele, Nucl. Phys. B306 (1988) 759, Eq. 2.5) are memoised per
ordered tuple of gluons and carry every helicity configuration of their gluons at once: an array
``[2^k, B, 4]`` whose first axis enumerates the helicities of the k gluons (first gluon = most significant bit).
Quark lines are built as spinor currents (the fermion analogue of the recursion) acting on a basis of external
spinors, so helicity and spin sums are explicit sums over basis states.

Metric mostly minus; momenta in the recursion are *all outgoing* (incoming particles carry minus their physical
momentum); external wave functions are evaluated at the physical momentum.
"""

from __future__ import annotations

import numpy as np

from scalinglab.simulators.amplitudes.kinematics import mdot

SQRT_HALF = np.sqrt(0.5)


# ----------------------------------------------------------------------------------------------- wave functions


def _angles(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cos/sin of polar and azimuthal angles of 3-momenta [..., 4] (z axis for a zero 3-momentum)."""
    kt = np.hypot(k[..., 1], k[..., 2])
    kabs = np.sqrt(kt**2 + k[..., 3] ** 2)
    safe = np.where(kabs > 0, kabs, 1.0)
    cos_t = np.where(kabs > 0, k[..., 3] / safe, 1.0)
    sin_t = np.where(kabs > 0, kt / safe, 0.0)
    safe_t = np.where(kt > 0, kt, 1.0)
    cos_p = np.where(kt > 0, k[..., 1] / safe_t, 1.0)
    sin_p = np.where(kt > 0, k[..., 2] / safe_t, 0.0)
    return cos_t, sin_t, cos_p, sin_p


def transverse_basis(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two real unit space-like vectors orthogonal to k and to each other.

    Args:
        k: [B, 4] momenta.

    Returns:
        e1, e2: [B, 4] with e1 = (0, cos t cos p, cos t sin p, -sin t), e2 = (0, -sin p, cos p, 0).
    """
    ct, st, cp, sp = _angles(k)
    zero = np.zeros_like(ct)
    e1 = np.stack([zero, ct * cp, ct * sp, -st], axis=-1)
    e2 = np.stack([zero, -sp, cp, zero], axis=-1)
    return e1, e2


def gluon_polarizations(k: np.ndarray) -> np.ndarray:
    """Helicity polarisation vectors of an outgoing massless vector boson, ``eps^*(k, lambda)``.

    Args:
        k: [B, 4] physical momentum (positive energy).

    Returns:
        [2, B, 4] complex128 for lambda = -1, +1 (``eps^*(k, lambda) = (-lambda e1 + i e2)/sqrt2``).
        For an incoming boson, ``eps(k, h) = -eps^*(k, -h)``, so the same two vectors serve (with helicity labels
        read in the all-outgoing convention).
    """
    e1, e2 = transverse_basis(k)
    return np.stack([(e1 + 1j * e2) * SQRT_HALF, (-e1 + 1j * e2) * SQRT_HALF])


def massive_polarizations(k: np.ndarray, mass: float) -> np.ndarray:
    """Three polarisation vectors of an outgoing massive vector boson (helicity -1, +1, 0).

    Args:
        k: [B, 4] on-shell momentum with k^2 = mass^2.
        mass: the boson mass (GeV).

    Returns:
        [3, B, 4] complex128; ``sum_pol eps^mu eps^*nu = -g^{mu nu} + k^mu k^nu / mass^2``.
    """
    pols = gluon_polarizations(k)
    ct, st, cp, sp = _angles(k)
    kabs = np.linalg.norm(k[..., 1:], axis=-1)
    khat = np.stack([st * cp, st * sp, ct], axis=-1)
    long = np.concatenate([(kabs / mass)[..., None], (k[..., 0] / mass)[..., None] * khat], axis=-1)
    return np.concatenate([pols, long[None].astype(np.complex128)])


def _pauli_dot(p: np.ndarray, sign: float) -> np.ndarray:
    """``E - sign * p.sigma`` as [B, 2, 2] (sign=+1: p_mu sigma^mu; sign=-1: p_mu sigmabar^mu)."""
    e, x, y, z = (p[..., i].astype(np.complex128) for i in range(4))
    out = np.empty(p.shape[:-1] + (2, 2), dtype=np.complex128)
    out[..., 0, 0] = e - sign * z
    out[..., 0, 1] = -sign * (x - 1j * y)
    out[..., 1, 0] = -sign * (x + 1j * y)
    out[..., 1, 1] = e + sign * z
    return out


def u_spinors(p: np.ndarray) -> np.ndarray:
    """Basis of massless Dirac spinors u(p) in the chiral basis (Peskin Eq. 3.53, xi = (1,0), (0,1)).

    Args:
        p: [B, 4] massless momenta with positive energy.

    Returns:
        [2, B, 4] complex128 with ``sum_s u_s ubar_s = pslash``.
    """
    norm = 1.0 / np.sqrt(2.0 * p[..., 0])[..., None, None]
    ps, psb = _pauli_dot(p, 1.0) * norm, _pauli_dot(p, -1.0) * norm  # sqrt(p.sigma), sqrt(p.sigmabar)
    # column s of the 2x2 matrices is sqrt(.) xi_s
    return np.stack([np.concatenate([ps[..., :, s], psb[..., :, s]], axis=-1) for s in range(2)])


def v_spinors(p: np.ndarray) -> np.ndarray:
    """Basis of massless spinors v(p) = (sqrt(p.sigma) eta, -sqrt(p.sigmabar) eta): [2, B, 4]."""
    norm = 1.0 / np.sqrt(2.0 * p[..., 0])[..., None, None]
    ps, psb = _pauli_dot(p, 1.0) * norm, _pauli_dot(p, -1.0) * norm
    return np.stack([np.concatenate([ps[..., :, s], -psb[..., :, s]], axis=-1) for s in range(2)])


def bar(spinors: np.ndarray) -> np.ndarray:
    """Dirac adjoint ``psi^dagger gamma^0`` as row components (chiral basis swaps the two Weyl halves)."""
    return np.concatenate([spinors[..., 2:].conj(), spinors[..., :2].conj()], axis=-1)


def slash(a: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``gamma^mu a_mu psi`` in the chiral basis for a contravariant vector a.

    Args:
        a: [..., 4] (complex) vectors, broadcast against psi.
        psi: [..., 4] Dirac spinors (L0, L1, R0, R1).

    Returns:
        [..., 4] spinors.
    """
    a0, a1, a2, a3 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    l0, l1, r0, r1 = psi[..., 0], psi[..., 1], psi[..., 2], psi[..., 3]
    ap, am = a1 + 1j * a2, a1 - 1j * a2
    return np.stack(
        [
            (a0 - a3) * r0 - am * r1,
            -ap * r0 + (a0 + a3) * r1,
            (a0 + a3) * l0 + am * l1,
            ap * l0 + (a0 - a3) * l1,
        ],
        axis=-1,
    )


def vector_current(left_bar: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``psibar_L gamma^mu psi_R`` as a contravariant vector [..., 4]."""
    out = []
    for mu, sign in enumerate((1.0, -1.0, -1.0, -1.0)):
        e = np.zeros(4)
        e[mu] = sign  # a^mu with a_nu = delta_nu^mu picks gamma^mu
        out.append(np.sum(left_bar * slash(e, right), axis=-1))
    return np.stack(out, axis=-1)


# ------------------------------------------------------------------------------------------------ gluon currents


class GluonCurrents:
    """Memoised colour-ordered off-shell gluon currents for one batch of events.

    Args:
        momenta: [N_g, B, 4] all-outgoing momenta of the gluons (GeV).
        polarizations: [N_g, 2, B, 4] complex polarisation vectors (helicity -, +) per gluon.
        overrides: optional {gluon: [h, B, 4]} replacement wave functions (e.g. the momentum, for Ward tests).
    """

    def __init__(self, momenta: np.ndarray, polarizations: np.ndarray, overrides: dict | None = None) -> None:
        self.p = momenta
        self.eps = polarizations
        self.overrides = overrides or {}
        self._j: dict[tuple[int, ...], np.ndarray] = {}
        self._k: dict[tuple[int, ...], np.ndarray] = {}
        self._mom: dict[tuple[int, ...], np.ndarray] = {}

    def momentum(self, t: tuple[int, ...]) -> np.ndarray:
        """Sum of the outgoing momenta of the gluons in t: [B, 4]."""
        if t not in self._mom:
            self._mom[t] = self.p[t[0]] if len(t) == 1 else self.momentum(t[:-1]) + self.p[t[-1]]
        return self._mom[t]

    def vertex_sum(self, t: tuple[int, ...]) -> np.ndarray:
        """-i x (sum of the vertices attached to the off-shell leg of cluster t), without its propagator.

        Returns:
            [2^len(t), B, 4] complex. The current is ``J(t) = vertex_sum(t) / P_t^2``.
        """
        if t in self._k:
            return self._k[t]
        n = len(t)
        total = None
        # three-vertex: off-shell leg e, left cluster x = t[:m], right cluster y = t[m:], cyclic order (e, x, y)
        for m in range(1, n):
            jx, jy = self.current(t[:m]), self.current(t[m:])
            px, py = self.momentum(t[:m]), self.momentum(t[m:])
            hx, hy = jx.shape[0], jy.shape[0]
            jx_, jy_ = jx[:, None], jy[None, :]  # [hx, 1, B, 4], [1, hy, B, 4]
            # incoming momenta k = px + py, p = -px, q = -py: (k-p) = 2px+py, (p-q) = py-px, (q-k) = -px-2py
            v = (
                jx_ * mdot(2 * px + py, jy_)[..., None]
                + mdot(jx_, jy_)[..., None] * (py - px)
                - jy_ * mdot(px + 2 * py, jx_)[..., None]
            )
            # -i x (-(i/sqrt2) V) = -V/sqrt2: real coefficients, so J = (-i/P^2)(vertices) = vertex_sum / P^2
            term = (-SQRT_HALF) * v.reshape((hx * hy,) + v.shape[2:])
            total = term if total is None else total + term
        # four-vertex: clusters x, y, z in cyclic order (e, x, y, z)
        for a in range(1, n - 1):
            for b in range(a + 1, n):
                jx, jy, jz = self.current(t[:a]), self.current(t[a:b]), self.current(t[b:])
                hx, hy, hz = jx.shape[0], jy.shape[0], jz.shape[0]
                jx_, jy_, jz_ = jx[:, None, None], jy[None, :, None], jz[None, None, :]
                v = (
                    2.0 * jy_ * mdot(jx_, jz_)[..., None]
                    - jx_ * mdot(jy_, jz_)[..., None]
                    - jz_ * mdot(jx_, jy_)[..., None]
                )
                term = 0.5 * v.reshape((hx * hy * hz,) + v.shape[3:])
                total = term if total is None else total + term
        self._k[t] = total
        return total

    def current(self, t: tuple[int, ...]) -> np.ndarray:
        """Colour-ordered off-shell current J^mu(t) [2^len(t), B, 4] (Berends-Giele Eq. 2.5)."""
        if t in self._j:
            return self._j[t]
        if len(t) == 1:
            g = t[0]
            out = self.overrides.get(g, self.eps[g])
        else:
            p = self.momentum(t)
            out = self.vertex_sum(t) / mdot(p, p)[..., None]
        self._j[t] = out
        return out


def gluon_amplitude(cur: GluonCurrents, order: tuple[int, ...]) -> np.ndarray:
    """Colour-ordered amplitude A(order) for all helicities, gluon order[0] closing the current.

    Returns:
        [2]*n + [B] complex, axis g = helicity of gluon g (0 = minus, 1 = plus). The common overall phase of
        all orderings is dropped.
    """
    first, rest = order[0], tuple(order[1:])
    k = cur.vertex_sum(rest)  # [2^(n-1), B, 4]
    eps0 = cur.overrides.get(first, cur.eps[first])  # [h0, B, 4]
    amp = mdot(eps0[:, None], k[None])  # [h0, 2^(n-1), B]
    n = len(order)
    amp = amp.reshape((eps0.shape[0],) + (2,) * (n - 1) + amp.shape[-1:])
    return np.transpose(amp, (*np.argsort(order), n))


# ---------------------------------------------------------------------------------------------- quark line


class QuarkLine:
    """Spinor currents of one massless quark line with ordered gluon clusters and one colour-neutral vector.

    The line reads ``end_bar . Gamma . start``: the start spinor (u of an incoming quark, or v of an outgoing
    antiquark) sits on the right; clusters of gluons are emitted in colour order from left to right, so the
    colour factor is ``(T^{sigma_1} ... T^{sigma_m})_{end, start}``; the vector boson can be emitted anywhere.

    Args:
        gluons: GluonCurrents of the gluons on this line.
        start: [S, B, 4] basis of start spinors.
        start_momentum: [B, 4] momentum flowing into the line along the fermion arrow at the start (GeV).
        boson: [Z, B, 4] polarisation vectors (or currents) of the colour-neutral vector, or None.
        boson_momentum: [B, 4] its all-outgoing momentum (GeV).
    """

    def __init__(self, gluons: GluonCurrents, start: np.ndarray, start_momentum: np.ndarray,
                 boson: np.ndarray | None, boson_momentum: np.ndarray | None) -> None:
        self.g = gluons
        self.start = start[:, None, None]  # [S, 1, 1, B, 4]
        self.p0 = start_momentum
        self.boson = boson
        self.kz = boson_momentum
        self._psi: dict[tuple[tuple[int, ...], int], np.ndarray] = {}

    def _line_momentum(self, emitted: tuple[int, ...], z: int) -> np.ndarray:
        p = self.p0 - (self.g.momentum(emitted) if emitted else 0.0)
        return p - self.kz if z else p

    def _emit(self, suffix: tuple[int, ...], z: int) -> np.ndarray:
        """Sum over the last vertex before the propagator: [S, Hz, 2^len, B, 4], times i (real coefficients)."""
        total = None
        for m in range(1, len(suffix) + 1):
            c, rest = suffix[:m], suffix[m:]
            j = self.g.current(c)  # [hc, B, 4]
            psi = self.psi(rest, z)  # [S, Hz, hr, B, 4]
            s, hz, hr = psi.shape[:3]
            # i x (i/sqrt2) Jslash = -(1/sqrt2) Jslash
            v = slash(j[None, None, :, None], psi[:, :, None, :]) * (-SQRT_HALF)
            v = v.reshape((s, hz, j.shape[0] * hr) + v.shape[4:])
            total = v if total is None else total + v
        if z:
            psi = self.psi(suffix, 0)  # [S, 1, h, B, 4]
            # i x (-i) epsslash = epsslash
            v = slash(self.boson[None, :, None], psi)
            total = v if total is None else total + v
        return total

    def psi(self, suffix: tuple[int, ...], z: int) -> np.ndarray:
        """Off-shell spinor after emitting the gluons in ``suffix`` (and the boson if z), with propagator."""
        key = (suffix, z)
        if key in self._psi:
            return self._psi[key]
        if not suffix and not z:
            out = self.start
        else:
            p = self._line_momentum(suffix, z)
            # propagator i Pslash / P^2 times the vertices (-i x emit): Pslash emit / P^2
            out = slash(p[None, None, None], self._emit(suffix, z)) / mdot(p, p)[..., None]
        self._psi[key] = out
        return out

    def amplitude(self, order: tuple[int, ...], end_bar: np.ndarray) -> np.ndarray:
        """Colour-ordered amplitude for gluon order ``order`` (labels of GluonCurrents).

        Args:
            order: gluon labels in colour order.
            end_bar: [S', B, 4] barred end spinors.

        Returns:
            [S', S, Hz] + [2]*m + [B] complex, gluon helicity axes in label order.
        """
        gam = self._emit(tuple(order), 1 if self.boson is not None else 0)  # [S, Hz, 2^m, B, 4]
        amp = np.sum(end_bar[:, None, None, None] * gam[None], axis=-1)  # [S', S, Hz, 2^m, B]
        m = len(order)
        amp = amp.reshape(amp.shape[:3] + (2,) * m + amp.shape[-1:])
        return np.transpose(amp, (0, 1, 2, *(3 + np.argsort(order)), 3 + m))

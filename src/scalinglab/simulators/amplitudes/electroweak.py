"""Electroweak multi-boson production at tree level: ``u d~ > W+ Z + n g`` (n = 0, 1, 2) and ``u u~ > W+ W- Z``.

Processes (momenta ``[B, n, 4]``, (E, px, py, pz) in GeV, incoming first, then the outgoing ones in the order of
the name, as everywhere in ``processes``):

- ``"u d~ > W+ Z"``, ``"u d~ > W+ Z g"``, ``"u d~ > W+ Z g g"``: (u, d~, W+, Z, g...);
- ``"u u~ > W+ W- Z"``: (u, u~, W+, W-, Z).

The value is ``sum |M|^2`` over all helicities (3 per W/Z, 2 per quark and gluon) and colours, not averaged, no
symmetry factor. Massless quarks, no CKM mixing (``V_ud = 1``), zero widths.

Couplings and the factor to restore
-----------------------------------
Standard electroweak couplings in the on-shell scheme with the electric charge set to one, ``e = 1``, and
``g_s = 1``: ``c_W = M_W / M_Z``, ``s_W^2 = 1 - M_W^2 / M_Z^2`` (= 0.22320 for the masses of ``processes``),
``g = e / s_W``. Every diagram of ``q q~ > V_1 ... V_k + n g`` carries ``e^k g_s^n`` (each vertex with a Higgs
line carries ``g M_V``, which is ``e`` times a mass ratio), so

    physical sum |M|^2 = value x e^(2k) x g_s^(2n),   e^2 = 4 pi alpha,

i.e. ``e^4 g_s^(2n)`` for ``W Z + n g`` and ``e^6`` for ``W W Z``. (The unit-coupling convention of the older
processes, a pure vector ``gamma^mu`` Z coupling, is *not* used here: the Z and W couplings are the physical ones
in units of e.)

Feynman rules (Peskin & Schroeder conventions: metric (+,-,-,-), ``D_mu = d_mu - i g W^a_mu T^a - i g' Y B_mu``,
``W^a_{mu nu} = d_mu W^a_nu - d_nu W^a_mu + g eps^{abc} W^b_mu W^c_nu``, ``W^3 = c_W Z + s_W A``,
``W^+- = (W^1 -+ i W^2)/sqrt2``, ``e = g s_W``):

- quark - photon ``i Q_f gamma^mu`` (Q_u = 2/3, Q_d = -1/3);
- quark - Z ``i gamma^mu (g_L P_L + g_R P_R) / (s_W c_W)`` with ``g_L = T3_f - Q_f s_W^2``, ``g_R = -Q_f s_W^2``
  (``P_L = (1 - gamma5)/2``; equivalently ``g_V = T3/2 - Q s_W^2``, ``g_A = T3/2`` in
  ``gamma^mu (g_V - g_A gamma5)``);
- quark - W (``u <-> d``) ``i gamma^mu P_L / (sqrt2 s_W)``;
- quark - gluon ``i g_s gamma^mu t^a`` (colour-ordered ``(i/sqrt2) gamma^mu`` with ``Tr(T^a T^b) = delta^ab``, as
  in ``berends_giele``); gluons couple only to the quark line and to each other (``berends_giele.GluonCurrents``);
- triple gauge vertex, legs (W^+ field: mu, k+), (W^- field: nu, k-), (V = A or Z: rho, kV), all momenta
  incoming: ``-i g_V [g^{mu nu}(k+ - k-)^rho + g^{nu rho}(k- - kV)^mu + g^{rho mu}(kV - k+)^nu]``,
  ``g_A = e = 1``, ``g_Z = g c_W = c_W / s_W``. The W^+ *field* leg absorbs charge +1: an outgoing W^+ sits on the
  W^- field leg;
- quartic vertex (W^+ field: mu, W^- field: nu, V1: rho, V2: sigma):
  ``-i g_{V1} g_{V2} [2 g^{mu nu} g^{rho sigma} - g^{mu rho} g^{nu sigma} - g^{mu sigma} g^{nu rho}]``
  (``WWZZ``: ``g^2 c_W^2``, ``WWZA``: ``g^2 c_W s_W = e g c_W``); the WWWW vertex never occurs in these processes;
- Higgs: ``H W+ W-``: ``i g M_W g^{mu nu}``, ``H Z Z``: ``i g M_Z / c_W g^{mu nu}``; no Higgs-quark coupling
  (massless quarks); ``HHVV`` and ``HHH`` never occur at this order;
- propagators: quark ``i pslash / p^2``; W and Z in **unitary gauge** ``-i (g^{mu nu} - k^mu k^nu / M^2) /
  (k^2 - M^2)``; photon ``-i [g^{mu nu} - (1 - xi) k^mu k^nu / k^2] / k^2`` (``xi = 1``, Feynman gauge, by default;
  the result does not depend on xi, which the tests check); Higgs ``i / (k^2 - M_H^2)``.

These come from one Lagrangian, so the relative signs of the fermion, triple, quartic and Higgs couplings are
fixed (they are what makes the longitudinal amplitudes cancel, see the tests); the WWV and WWVV coefficients
are the SU(2) structure constants ``eps^{abc}`` rotated to the (W^+, W^-, W^3) basis (``_check_su2_structure``
recomputes them from ``eps^{abc}``).

Gauge and diagrams
------------------
Unitary gauge for W and Z: there are no Goldstone bosons, the physical Higgs is the only scalar. The diagrams of
``u u~ > W+ W- Z`` (one quark line, no Higgs-quark coupling) are therefore: three bosons emitted from the quark
line (internal quarks, d between W+ and W- emissions); a boson pair from an internal ``gamma*/Z*`` (``W+ W-``),
``W+*`` (``W+ Z``) or ``W-*`` (``W- Z``) with the third boson on the line; and s-channel ``gamma*/Z* > W W Z``
built from ``gamma*/Z* > W+ W-*``, ``W- W+*`` (triple vertices twice), the quartic ``WWZZ``/``WWZA`` vertices and
``Z* > Z H*, H* > W+ W-``. The ``k^mu k^nu / M^2`` terms of internal W/Z lines are kept everywhere (they vanish
where the line ends on the conserved massless quark current, but not where it ends on a quark propagator or on a
boson self-coupling). In Feynman gauge the same result needs Goldstone diagrams (``Z* > Z H*`` with Goldstones,
``W phi Z`` and ``W phi A`` vertices); we do not use it.

No width is needed: every internal W, Z, photon or Higgs line carries the sum of at least two final-state bosons
(gluons never attach to electroweak bosons), so its virtuality is at least ``(M_W + M_Z)^2`` or ``(2 M_W)^2``,
above ``M_W^2``, ``M_Z^2`` and ``M_H^2`` (``2 M_W = 160.7 GeV > M_H``); every internal quark line carries
``p_in - K`` with K a non-empty proper subset of the final state, which is space-like (negative virtuality) for
massive final states or non-collinear gluons. Hence zero widths, and exact gauge invariance.

Implementation
--------------
Numeric helicity amplitudes (vectorised over events, complex128): off-shell electroweak boson currents are built
recursively over subsets of the external W/Z bosons (``BosonCurrents``, Berends-Giele style: external
polarisation vectors, triple/quartic/Higgs vertices, propagators); one quark line (``ElectroweakLine``) absorbs,
in every order, these currents (with chiral couplings and flavour changes ``u <-> d`` tracked by the charge) and
the colour-ordered gluon clusters of ``berends_giele.GluonCurrents``; the colour sum uses
``colour.quark_line_matrix``. Every helicity of every boson has its own array axis, so the sum over helicities is
exact and explicit. All factors of i are kept (overall phases cancel in |M|^2).

References: K. O. Mikaelian, M. A. Samuel, D. Sahdev, Phys. Rev. Lett. 43 (1979) 746 and R. W. Brown, D. Sahdev,
K. O. Mikaelian, Phys. Rev. D 20 (1979) 1164 (``q q~' > W Z``); M. E. Peskin, D. V. Schroeder, "An Introduction
to Quantum Field Theory", Ch. 16, 20, 21 (rules and conventions); J. C. Romao, J. P. Silva, Int. J. Mod. Phys.
A27 (2012) 1230025 (sign conventions of the SM Feynman rules); V. Hankele, D. Zeppenfeld, Phys. Lett. B661
(2008) 103 (``W W Z`` production, diagram classes); C. H. Llewellyn Smith, Phys. Lett. B46 (1973) 233 and
J. M. Cornwall, D. N. Levin, G. Tiktopoulos, Phys. Rev. D10 (1974) 1145 (tree unitarity: the cancellation of the
growing longitudinal amplitudes).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial

import numpy as np

from scalinglab.simulators.amplitudes import colour
from scalinglab.simulators.amplitudes.berends_giele import (
    SQRT_HALF,
    GluonCurrents,
    bar,
    gluon_polarizations,
    massive_polarizations,
    slash,
    u_spinors,
    v_spinors,
)
from scalinglab.simulators.amplitudes.kinematics import mdot

# quark flavours by charge in units of e/3: (name, charge Q, weak isospin T3)
_FLAVOURS = {2: ("u", 2.0 / 3.0, 0.5), -1: ("d", -1.0 / 3.0, -0.5)}
# external bosons: kind -> (charge in units of e/3, current type)
_BOSONS = {"W+": (3, "W"), "W-": (-3, "W"), "Z": (0, "Z"), "a": (0, "a")}


@dataclass(frozen=True)
class EWParams:
    """Masses (GeV), the photon gauge parameter and switches that drop diagram classes (for checks only).

    Attributes:
        mass_w, mass_z, mass_h: boson masses (GeV); ``s_W^2 = 1 - M_W^2 / M_Z^2``.
        xi_photon: gauge parameter of internal photon lines (physical results do not depend on it).
        tgc: keep the triple gauge vertices WWZ, WWA.
        quartic: keep the quartic vertices WWZZ, WWZA.
        higgs: keep the Higgs exchange.
        line: keep the couplings of the electroweak bosons to the quark line that are not through a single
            s-channel boson (False keeps only diagrams in which the line emits exactly one electroweak current).
    """

    mass_w: float
    mass_z: float
    mass_h: float
    xi_photon: float = 1.0
    tgc: bool = True
    quartic: bool = True
    higgs: bool = True
    line: bool = True

    @property
    def cw(self) -> float:
        return self.mass_w / self.mass_z

    @property
    def sw(self) -> float:
        return float(np.sqrt(1.0 - self.cw**2))

    @property
    def g(self) -> float:
        """SU(2) coupling ``g = e / s_W`` (e = 1)."""
        return 1.0 / self.sw

    def neutral_coupling(self, kind: str) -> float:
        """``g_V`` of the W^3 component: photon ``g s_W = e = 1``, Z ``g c_W``."""
        return self.g * (self.sw if kind == "a" else self.cw)

    def mass(self, kind: str) -> float:
        return {"W": self.mass_w, "Z": self.mass_z, "a": 0.0, "H": self.mass_h}[kind]

    def quark_couplings(self, kind: str, charge3: int) -> tuple[float, float]:
        """(c_L, c_R) of the vertex ``i gamma^mu (c_L P_L + c_R P_R)`` for a quark of charge charge3 / 3."""
        _, q, t3 = _FLAVOURS[charge3]
        if kind == "a":
            return q, q
        if kind == "Z":
            norm = 1.0 / (self.sw * self.cw)
            return (t3 - q * self.sw**2) * norm, -q * self.sw**2 * norm
        if kind == "W":
            return SQRT_HALF * self.g, 0.0
        raise ValueError(f"no quark coupling for '{kind}'")


def default_params(**kwargs) -> EWParams:
    """EWParams with the masses of ``processes`` (M_W = 80.369, M_Z = 91.1876, M_H = 125.20 GeV)."""
    from scalinglab.simulators.amplitudes.processes import MASS_H, MASS_W, MASS_Z

    return EWParams(MASS_W, MASS_Z, MASS_H, **kwargs)


def _check_su2_structure() -> tuple[complex, np.ndarray]:
    """The WWV and WWVV colour-like coefficients recomputed from ``eps^{abc}`` in the (W^+, W^-, W^3) basis.

    ``W^a = sum_i C[a, i] X_i`` with ``X = (W^+, W^-, W^3)`` fields; the triple gauge vertex of Peskin-Schroeder
    (``g f^{abc} [...]``, all momenta incoming) becomes ``g kappa3 [...]`` for legs (W^+, W^-, W^3) and the quartic
    ``-i g^2 [A1 (g^{mu rho} g^{nu sigma} - g^{mu sigma} g^{nu rho}) + A2 (g^{mu nu} g^{rho sigma} - g^{mu sigma}
    g^{nu rho}) + A3 (g^{mu nu} g^{rho sigma} - g^{mu rho} g^{nu sigma})]`` for legs (W^+, W^-, W^3, W^3).

    Returns:
        kappa3 (= -i) and (A1, A2, A3) (= 0, 1, 1), the values used in the vertex functions.
    """
    eps = np.zeros((3, 3, 3))
    for a, b, c in itertools.permutations(range(3)):
        eps[a, b, c] = np.linalg.det(np.eye(3)[[a, b, c]])
    r = np.sqrt(0.5)
    cmat = np.array([[r, r, 0], [1j * r, -1j * r, 0], [0, 0, 1]])  # rows a = 1, 2, 3; columns W+, W-, W3
    cp, cm, c3 = cmat[:, 0], cmat[:, 1], cmat[:, 2]
    kappa3 = np.einsum("abc,a,b,c->", eps, cp, cm, c3)
    a1 = np.einsum("abe,cde,a,b,c,d->", eps, eps, cp, cm, c3, c3)
    a2 = np.einsum("ace,bde,a,b,c,d->", eps, eps, cp, cm, c3, c3)
    a3 = np.einsum("ade,bce,a,b,c,d->", eps, eps, cp, cm, c3, c3)
    return complex(kappa3), np.array([a1, a2, a3])


# --------------------------------------------------------------------------------------- electroweak currents


def _submasks(mask: int):
    """Non-empty proper submasks of mask."""
    sub = (mask - 1) & mask
    while sub:
        yield sub
        sub = (sub - 1) & mask


class BosonCurrents:
    """Off-shell electroweak currents over subsets of the external W/Z/photon bosons.

    ``current(T, kind)`` is the amplitude for an internal line of type ``kind`` ("a", "Z", "W" with the charge of
    T, or the scalar "H") to produce the bosons in T (bit mask), *including* its propagator; for a single boson it
    is the polarisation vector ``eps^*``. Vector currents have shape ``[h_1, ..., h_k, B, 4]`` with one axis per
    external boson (its helicity count if in T, else 1); the Higgs current has shape ``[h_1, ..., h_k, B]``.

    Args:
        kinds: external boson names ("W+", "W-", "Z", "a").
        momenta: [k, B, 4] outgoing physical momenta.
        polarizations: list of [h_i, B, 4] outgoing wave functions ``eps^*``.
        params: couplings, masses and switches.
    """

    def __init__(self, kinds, momenta: np.ndarray, polarizations, params: EWParams) -> None:
        self.kinds = tuple(kinds)
        self.n = len(self.kinds)
        self.p = momenta
        self.pols = polarizations
        self.hel = tuple(x.shape[0] for x in polarizations)
        self.par = params
        self._cur: dict[tuple[int, str], np.ndarray | None] = {}
        self._mom: dict[int, np.ndarray] = {}

    def charge(self, mask: int) -> int:
        """Charge of the bosons in mask (units of e/3)."""
        return sum(_BOSONS[self.kinds[i]][0] for i in range(self.n) if mask >> i & 1)

    def momentum(self, mask: int) -> np.ndarray:
        if mask not in self._mom:
            self._mom[mask] = sum(self.p[i] for i in range(self.n) if mask >> i & 1)
        return self._mom[mask]

    def shape(self, mask: int) -> tuple[int, ...]:
        return tuple(self.hel[i] if mask >> i & 1 else 1 for i in range(self.n))

    def kinds_for(self, mask: int) -> tuple[str, ...]:
        """Vector line types that can produce the bosons in mask."""
        q = self.charge(mask)
        if mask & (mask - 1) == 0:  # a single boson
            return (_BOSONS[self.kinds[mask.bit_length() - 1]][1],)
        if q == 0:
            return ("a", "Z")
        return ("W",) if abs(q) == 3 else ()

    def current(self, mask: int, kind: str) -> np.ndarray | None:
        key = (mask, kind)
        if key not in self._cur:
            self._cur[key] = self._compute(mask, kind)
        return self._cur[key]

    def _external(self, mask: int, kind: str) -> np.ndarray | None:
        i = mask.bit_length() - 1
        if kind != _BOSONS[self.kinds[i]][1]:
            return None
        shape = [1] * self.n
        shape[i] = self.hel[i]
        return self.pols[i].reshape(tuple(shape) + self.pols[i].shape[1:])

    def _legs(self, mask: int):
        """Unordered splits (m1, m2) of mask with m1 holding its lowest bit."""
        low = mask & -mask
        for m1 in _submasks(mask):
            if m1 & low:
                yield m1, mask ^ m1

    def _compute(self, mask: int, kind: str) -> np.ndarray | None:
        if mask & (mask - 1) == 0:
            return self._external(mask, kind)
        par = self.par
        q = self.charge(mask)
        k = self.momentum(mask)
        if kind == "H":
            if q != 0 or not par.higgs:
                return None
            total = None
            for m1, m2 in self._legs(mask):
                for vk, ghvv in (("W", par.g * par.mass_w), ("Z", par.g * par.mass_z / par.cw)):
                    j1, j2 = self.current(m1, vk), self.current(m2, vk)
                    if j1 is None or j2 is None:
                        continue
                    term = 1j * ghvv * mdot(j1, j2)  # vertex i g M g^{mu nu}
                    total = term if total is None else total + term
            if total is None:
                return None
            return 1j * total / (mdot(k, k) - par.mass_h**2)
        if kind not in self.kinds_for(mask):
            return None
        total = None
        # triple gauge vertices: parent leg (kind, charge q in, momentum k in), children (charge -q_i in, -k_i in)
        if par.tgc:
            for m1, m2 in self._legs(mask):
                for t1 in self.kinds_for(m1):
                    for t2 in self.kinds_for(m2):
                        term = self._triple(kind, q, k, (t1, m1), (t2, m2))
                        if term is not None:
                            total = term if total is None else total + term
        if par.quartic:
            for m1, rest in self._legs(mask):
                for m2, m3 in self._legs(rest):
                    for t1 in self.kinds_for(m1):
                        for t2 in self.kinds_for(m2):
                            for t3 in self.kinds_for(m3):
                                term = self._quartic(kind, q, ((t1, m1), (t2, m2), (t3, m3)))
                                if term is not None:
                                    total = term if total is None else total + term
        if par.higgs and kind in ("W", "Z"):
            ghvv = par.g * par.mass_w if kind == "W" else par.g * par.mass_z / par.cw
            for m1 in _submasks(mask):
                m2 = mask ^ m1
                s, j = self.current(m1, "H"), self.current(m2, kind)
                if s is None or j is None:
                    continue
                term = 1j * ghvv * s[..., None] * j
                total = term if total is None else total + term
        if total is None:
            return None
        return self._propagate(kind, k, total)

    def _propagate(self, kind: str, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        k2 = mdot(k, k)
        if kind == "a":
            out = v
            if self.par.xi_photon != 1.0:
                out = v - (1.0 - self.par.xi_photon) * k * (mdot(k, v) / k2)[..., None]
            return -1j * out / k2[..., None]
        m2 = self.par.mass(kind) ** 2
        return -1j * (v - k * (mdot(k, v) / m2)[..., None]) / (k2 - m2)[..., None]

    def _triple(self, kind: str, q: int, k: np.ndarray, c1, c2) -> np.ndarray | None:
        """Triple-gauge vertex with the parent leg open, contracted with the two child currents."""
        (t1, m1), (t2, m2) = c1, c2
        # legs: (type, charge flowing in, momentum flowing in, vector or None for the open leg)
        legs = [(kind, q, k, None), (t1, -self.charge(m1), -self.momentum(m1), m1),
                (t2, -self.charge(m2), -self.momentum(m2), m2)]
        neutral = [leg for leg in legs if leg[1] == 0]
        if len(neutral) != 1 or neutral[0][0] == "W":
            return None
        plus = [leg for leg in legs if leg[1] == 3]
        minus = [leg for leg in legs if leg[1] == -3]
        if len(plus) != 1 or len(minus) != 1:
            return None
        (_, _, kp, mp), (_, _, km, mm), (vk, _, k3, m3) = plus[0], minus[0], neutral[0]
        vec = {None: None}
        for m, t in ((m1, t1), (m2, t2)):
            vec[m] = self.current(m, t)
            if vec[m] is None:
                return None
        a, b, c = vec[mp], vec[mm], vec[m3]
        # Gamma(a, b, c) = (a.b)(k+ - k-).c + (b.c)(k- - k3).a + (c.a)(k3 - k+).b, open leg = its gradient
        if mp is None:
            out = b * mdot(kp - km, c)[..., None] + mdot(b, c)[..., None] * (km - k3) + c * mdot(k3 - kp, b)[..., None]
        elif mm is None:
            out = a * mdot(kp - km, c)[..., None] + c * mdot(km - k3, a)[..., None] + mdot(c, a)[..., None] * (k3 - kp)
        else:
            out = mdot(a, b)[..., None] * (kp - km) + b * mdot(km - k3, a)[..., None] + a * mdot(k3 - kp, b)[..., None]
        return -1j * self.par.neutral_coupling(vk) * out

    def _quartic(self, kind: str, q: int, children) -> np.ndarray | None:
        """WWV1V2 vertex with the parent leg open, contracted with three child currents."""
        legs = [(kind, q, None)] + [(t, -self.charge(m), m) for t, m in children]
        neutral = [leg for leg in legs if leg[1] == 0]
        plus = [leg for leg in legs if leg[1] == 3]
        minus = [leg for leg in legs if leg[1] == -3]
        if len(neutral) != 2 or len(plus) != 1 or len(minus) != 1 or any(leg[0] == "W" for leg in neutral):
            return None
        vec = {None: None}
        for t, m in children:
            vec[m] = self.current(m, t)
            if vec[m] is None:
                return None
        coupling = self.par.g**2 * np.prod([self.par.neutral_coupling(leg[0]) / self.par.g for leg in neutral])
        if neutral[0][2] is None or neutral[1][2] is None:  # open neutral leg: partner neutral c, W vectors a, b
            c = vec[neutral[1][2] if neutral[0][2] is None else neutral[0][2]]
            a, b = vec[plus[0][2]], vec[minus[0][2]]
            out = 2.0 * c * mdot(a, b)[..., None] - a * mdot(b, c)[..., None] - b * mdot(a, c)[..., None]
        else:  # open W leg: partner W vector w, neutral vectors c, d
            w = vec[minus[0][2]] if plus[0][2] is None else vec[plus[0][2]]
            c, d = vec[neutral[0][2]], vec[neutral[1][2]]
            out = 2.0 * w * mdot(c, d)[..., None] - c * mdot(w, d)[..., None] - d * mdot(w, c)[..., None]
        return -1j * coupling * out


# ------------------------------------------------------------------------------------------------ quark line


def _chiral(psi: np.ndarray, c_l: float, c_r: float) -> np.ndarray:
    """``(c_L P_L + c_R P_R) psi`` in the chiral basis (psi = (psi_L, psi_R))."""
    if c_l == c_r:
        return c_l * psi
    out = psi.copy()
    out[..., :2] *= c_l
    out[..., 2:] *= c_r
    return out


class ElectroweakLine:
    """One massless quark line absorbing electroweak currents (any order) and colour-ordered gluon clusters.

    The line reads ``end_bar . Gamma . start``; the start spinor (u of the incoming quark) has charge
    ``start_charge`` / 3; emitting the bosons of a mask lowers the line charge by their charge, and states whose
    charge is not that of u or d vanish. ``psi(suffix, mask)`` is the off-shell spinor after emitting the gluons of
    ``suffix`` (the last ones in colour order) and the bosons of ``mask``, with its propagator:
    ``[S, h_1, ..., h_k, 2^len(suffix), B, 4]``.

    Args:
        gluons: GluonCurrents of the gluons.
        bosons: BosonCurrents of the electroweak bosons.
        start: [S, B, 4] start spinors.
        start_momentum: [B, 4] momentum flowing into the line at the start.
        start_charge: charge of the start quark in units of e/3 (2: u, -1: d).
    """

    def __init__(self, gluons: GluonCurrents, bosons: BosonCurrents, start: np.ndarray, start_momentum: np.ndarray,
                 start_charge: int) -> None:
        self.g = gluons
        self.b = bosons
        self.nb = bosons.n
        self.start = start.reshape((start.shape[0],) + (1,) * (self.nb + 1) + start.shape[1:])
        self.p0 = start_momentum
        self.q0 = start_charge
        self._psi: dict[tuple[tuple[int, ...], int], np.ndarray | None] = {}

    def _charge(self, mask: int) -> int:
        return self.q0 - self.b.charge(mask)

    def _emit(self, suffix: tuple[int, ...], mask: int) -> np.ndarray | None:
        """Sum over the vertex next to the end of the (suffix, mask) state, without its propagator."""
        total = None
        nb = self.nb
        for m in range(1, len(suffix) + 1):
            c, rest = suffix[:m], suffix[m:]
            psi = self.psi(rest, mask)
            if psi is None:
                continue
            j = self.g.current(c)  # [hc, B, 4]
            jb = j.reshape((1,) * (1 + nb) + j.shape[:1] + (1,) + j.shape[1:])
            v = 1j * SQRT_HALF * slash(jb, psi[..., None, :, :, :])  # vertex (i/sqrt2) Jslash
            v = v.reshape(v.shape[: 1 + nb] + (v.shape[1 + nb] * v.shape[2 + nb],) + v.shape[3 + nb:])
            total = v if total is None else total + v
        if mask and (self.b.par.line or mask == (1 << nb) - 1):
            for sub in itertools.chain((mask,), _submasks(mask)):
                prev = mask ^ sub
                if not self.b.par.line and prev:
                    continue
                psi = self.psi(suffix, prev)
                if psi is None:
                    continue
                q_before = self._charge(prev)
                for kind in self.b.kinds_for(sub):
                    j = self.b.current(sub, kind)
                    if j is None:
                        continue
                    c_l, c_r = self.b.par.quark_couplings(kind, q_before)
                    jb = j.reshape((1,) + j.shape[:-2] + (1,) + j.shape[-2:])
                    v = 1j * slash(jb, _chiral(psi, c_l, c_r))
                    total = v if total is None else total + v
        return total

    def psi(self, suffix: tuple[int, ...], mask: int) -> np.ndarray | None:
        key = (suffix, mask)
        if key in self._psi:
            return self._psi[key]
        if not suffix and not mask:
            out = self.start
        elif self._charge(mask) not in _FLAVOURS:
            out = None
        else:
            e = self._emit(suffix, mask)
            if e is None:
                out = None
            else:
                p = self.p0 - (self.g.momentum(suffix) if suffix else 0.0) - (self.b.momentum(mask) if mask else 0.0)
                out = 1j * slash(p, e) / mdot(p, p)[..., None]  # propagator i pslash / p^2
        self._psi[key] = out
        return out

    def amplitude(self, order: tuple[int, ...], end_bar: np.ndarray) -> np.ndarray:
        """Colour-ordered amplitude: [S', S, h_1, ..., h_k] + [2]*m + [B], gluon axes in label order."""
        gam = self._emit(tuple(order), (1 << self.nb) - 1)
        eb = end_bar.reshape((end_bar.shape[0],) + (1,) * (self.nb + 2) + end_bar.shape[1:])
        amp = np.sum(eb * gam[None], axis=-1)  # [S', S, h..., 2^m, B]
        m = len(order)
        lead = 2 + self.nb
        amp = amp.reshape(amp.shape[:lead] + (2,) * m + amp.shape[-1:])
        return np.transpose(amp, (*range(lead), *(lead + np.argsort(order)), lead + m))


# --------------------------------------------------------------------------------------------------- processes


def _colour_sum(amps: list[np.ndarray], cmat: np.ndarray) -> np.ndarray:
    a = np.stack([x.reshape(-1, x.shape[-1]) for x in amps])  # [K, H, B]
    ca = np.tensordot(cmat, a, axes=(1, 0))
    return np.einsum("khb,khb->b", a.conj(), ca).real


def _wave_functions(kinds, momenta: np.ndarray, params: EWParams, overrides: dict | None):
    pols = []
    for i, kind in enumerate(kinds):
        if overrides and i in overrides:
            pols.append(overrides[i])
        elif kind == "a":
            pols.append(gluon_polarizations(momenta[:, i]))
        else:
            pols.append(massive_polarizations(momenta[:, i], params.mass(_BOSONS[kind][1])))
    return pols


def helicity_amplitudes(momenta: np.ndarray, bosons: tuple[str, ...], start_charge: int,
                        params: EWParams | None = None, gluon_overrides: dict | None = None,
                        boson_overrides: dict | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Colour-ordered helicity amplitudes of ``q q'~ > bosons + m g`` on one quark line.

    Args:
        momenta: [B, 2 + k + m, 4] (q, q'~, bosons..., gluons...), physical momenta (GeV).
        bosons: the k electroweak boson names ("W+", "W-", "Z", "a").
        start_charge: charge of the incoming quark q in units of e/3 (2: u, -1: d); the antiquark's flavour follows
            from charge conservation.
        params: couplings (default: ``default_params()``).
        gluon_overrides: {gluon index among the gluons: [h, B, 4]} replacement gluon wave functions.
        boson_overrides: {boson index among the bosons: [h, B, 4]} replacement boson wave functions (e.g. only the
            longitudinal polarisation, or the momentum).

    Returns:
        (amplitudes per colour ordering of ``colour.quark_line_orderings(m)``, each
        [2 (q~ spin), 2 (q spin), h_1..h_k] + [2]*m + [B]; the colour matrix ``colour.quark_line_matrix(m)``).
    """
    params = params or default_params()
    k = len(bosons)
    m = momenta.shape[1] - 2 - k
    pb = momenta[:, 2 : 2 + k]
    pg = np.transpose(momenta[:, 2 + k :], (1, 0, 2))
    b = momenta.shape[0]
    gpols = np.stack([gluon_polarizations(x) for x in pg]) if m else np.zeros((0, 2, b, 4))
    gcur = GluonCurrents(pg, gpols, gluon_overrides)
    bcur = BosonCurrents(bosons, np.transpose(pb, (1, 0, 2)), _wave_functions(bosons, pb, params, boson_overrides),
                         params)
    if start_charge - bcur.charge((1 << k) - 1) not in _FLAVOURS:
        raise ValueError("the bosons' charge does not connect the quark to an antiquark of flavour u or d")
    line = ElectroweakLine(gcur, bcur, u_spinors(momenta[:, 0]), momenta[:, 0], start_charge)
    end = bar(v_spinors(momenta[:, 1]))
    amps = [line.amplitude(o, end) for o in colour.quark_line_orderings(m)]
    cmat = colour.quark_line_matrix(m)
    return amps, cmat


def squared(momenta: np.ndarray, bosons: tuple[str, ...], start_charge: int, params: EWParams | None = None,
            gluon_overrides: dict | None = None, boson_overrides: dict | None = None) -> np.ndarray:
    """``sum |M|^2`` over helicities and colours (e = g_s = 1) for ``helicity_amplitudes``' arguments: [B]."""
    amps, cmat = helicity_amplitudes(momenta, bosons, start_charge, params, gluon_overrides, boson_overrides)
    return _colour_sum(amps, cmat)


def bg_ud_wz(momenta: np.ndarray, params: EWParams | None = None, gluon_overrides: dict | None = None,
             boson_overrides: dict | None = None) -> np.ndarray:
    """``u d~ > W+ Z + m g``: momenta [B, 4 + m, 4] (u, d~, W+, Z, g...); [B] sum |M|^2 (x e^4 g_s^(2m))."""
    return squared(momenta, ("W+", "Z"), 2, params, gluon_overrides, boson_overrides)


def bg_uu_wwz(momenta: np.ndarray, params: EWParams | None = None,
              boson_overrides: dict | None = None) -> np.ndarray:
    """``u u~ > W+ W- Z``: momenta [B, 5, 4] (u, u~, W+, W-, Z); [B] sum |M|^2 (x e^6), GeV^-2."""
    return squared(momenta, ("W+", "W-", "Z"), 2, params, None, boson_overrides)


def _call(fn, momenta: np.ndarray) -> np.ndarray:
    return fn(momenta, default_params())


def processes() -> list:
    """The Process entries of this module (registered in ``processes._make_processes``)."""
    from scalinglab.simulators.amplitudes.processes import Process, _chunk_call

    out = []
    for m, chunk in zip(range(3), (4096, 2048, 1024)):
        out.append(Process("u d~ > W+ Z" + " g" * m, ("u", "d~"), ("W+", "Z") + ("g",) * m, None,
                           partial(_chunk_call, partial(_call, bg_ud_wz), chunk)))
    out.append(Process("u u~ > W+ W- Z", ("u", "u~"), ("W+", "W-", "Z"), None,
                       partial(_chunk_call, partial(_call, bg_uu_wwz), 2048)))
    return out

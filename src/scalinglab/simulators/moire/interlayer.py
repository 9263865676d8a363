"""Interlayer exchange of twisted bilayer CrI3: local-stacking model and user pair tables.

The ab initio pair table of the papers is not public, so the default model is the local-stacking
approximation of DESIGN.md: every top site couples to the nearest bottom site of the same sublattice with

    Jperp = dE(delta) / 4      (meV, unit spins; positive = antiferromagnetic),

where delta = r_top - r_bottom is the local stacking shift and dE = E_FM - E_AFM (meV per cell) is the DFT energy
difference of an untwisted bilayer with that shift. The factor 1/4: a cell holds 2 Cr per layer, i.e. 2 interlayer
pairs, and a pair contributes +Jperp (FM) or -Jperp (AFM) to ``Jperp S_t.S_b``, so dE = 2 * 2 Jperp.

dE is tabulated only along two cuts (delta = t a1, "edge"; delta = t (a1 + a2), "diag"); we interpolate over the
stacking plane with a C3-symmetric Fourier series (3-fold rotation about the AA point, periodic in the lattice,
no inversion assumed because the tables distinguish AB from BA stacking), fitted by least squares (minimum-norm
solution for the coefficients that the two cuts leave undetermined). With reciprocal shells |G|^2 <= 19
(in units of (2 pi / a)^2 * 4/3, i.e. h^2 + k^2 - h k <= 19; 25 basis functions, rank 20 on the cuts):

    relaxed: residual rms 0.372 meV, max 1.23 meV (data span -11.6..2.3 meV; the digitized curve is noisy)
    rigid:   residual rms 0.042 meV, max 0.14 meV (data span -11.6..11.8 meV)

and the fitted surface stays inside the data range over the whole plane (tests check all of this).

Reference:
    Sivadas et al., Nano Lett. 18, 7658 (2018), Figs. 2 (rigid) and 3 (relaxed); tables digitized by Yang et al.,
    Nat. Commun. 15, 4982 (2024); copies in ../shared/reference/cri3_interlayer_deltaE_{relaxed,rigid}.csv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from scalinglab.simulators.moire.lattice import Bilayer

#: t grid of the tables (delta = t a1 or t (a1 + a2)), 1/18 steps.
TABLE_T = np.arange(19) / 18.0
#: dE = E_FM - E_AFM (meV per cell) along the two cuts; identical to the CSV files in ../shared/reference
#: (a test compares them). Embedded so the installed package does not depend on the shared folder.
DELTA_E_TABLES: dict[str, dict[str, np.ndarray]] = {
    "relaxed": {
        "diag": np.array([
            -11.619718, -3.952236, 1.138172, 2.315432, -1.746945, -8.114101, -11.619718, -10.020931, -5.245565,
            -0.774648, 0.275953, -0.818402, -2.042254, -1.813270, -0.801821, -0.704225, -3.028169, -6.621799,
            -11.619718,
        ]),
        "edge": np.array([
            -11.619718, -8.114101, -4.698387, -2.112676, -0.221481, 0.590994, 0.774648, 0.541251, -0.271224,
            -0.774648, -0.420455, 0.309115, 1.056338, 1.403470, 0.939198, -0.704225, -3.637195, -7.484018,
            -11.619718,
        ]),
    },
    "rigid": {
        "diag": np.array([
            -11.6, -7.26, 4.36, 11.8, 4.46, -7.13, -11.6, -8.27, -3.04, -1.55, -3.33, -3.78, -3.22, -3.76, -3.35,
            -1.55, -2.94, -8.22, -11.6,
        ]),
        "edge": np.array([
            -11.6, -10.4, -6.94, -2.64, 0.566, 1.67, 0.903, -0.797, -2.03, -1.55, 1.42, 6.19, 10.1, 10.1, 5.91,
            -0.459, -6.29, -10.1, -11.6,
        ]),
    },
}
STACKING_MODELS = tuple(DELTA_E_TABLES)


def _c3_orbits(max_g2: int) -> list[tuple[list[tuple[int, int]], int]]:
    """Orbits {(h,k), C3(h,k), C3^2(h,k)} of reciprocal vectors G = h b1 + k b2 with 0 < |G|^2 <= max_g2.

    C3 maps a shift with fractional coordinates (u, v) to (-u - v, u), hence (h, k) -> (k - h, -h) keeps
    h u + k v invariant. An orbit and its negative share one cos and one sin basis function.
    """
    seen: set[tuple[int, int]] = set()
    reps = []
    r = int(np.ceil(np.sqrt(max_g2))) + 2
    for h in range(-r, r + 1):
        for k in range(-r, r + 1):
            g2 = h * h + k * k - h * k
            if (h, k) == (0, 0) or (h, k) in seen or g2 > max_g2:
                continue
            orb = [(h, k)]
            for _ in range(2):
                hh, kk = orb[-1]
                orb.append((kk - hh, -hh))
            for q in orb:
                seen.add(q)
                seen.add((-q[0], -q[1]))
            reps.append((orb, g2))
    reps.sort(key=lambda x: (x[1], x[0][0]))
    return reps


@dataclass
class StackingEnergy:
    """C3-symmetric Fourier fit of dE(delta) over the stacking plane.

    Attributes:
        name: table name ("relaxed", "rigid") or "custom".
        max_g2: shell cutoff h^2 + k^2 - h k <= max_g2.
        coef_: [1 + 2 * num_orbits] coefficients (constant, then cos/sin per orbit), meV.
        residual_rms_, residual_max_: fit residual on the tabulated points (meV).
    """

    name: str
    max_g2: int = 19
    coef_: np.ndarray = field(default=None, repr=False)
    residual_rms_: float = float("nan")
    residual_max_: float = float("nan")
    _orbits: list = field(default=None, repr=False)

    def _design(self, uv: np.ndarray) -> np.ndarray:
        u, v = uv[..., 0], uv[..., 1]
        cols = [np.ones_like(u)]
        for orb, _ in self._orbits:
            phase = sum(np.exp(2j * np.pi * (h * u + k * v)) for h, k in orb)
            cols += [phase.real, phase.imag]
        return np.stack(cols, -1)

    def fit(self, t: np.ndarray, edge: np.ndarray, diag: np.ndarray) -> StackingEnergy:
        """Least-squares fit to the two cuts (minimum-norm for undetermined combinations)."""
        t, edge, diag = (np.asarray(x, dtype=float) for x in (t, edge, diag))
        if not (t.shape == edge.shape == diag.shape) or t.ndim != 1:
            raise ValueError("t, edge and diag must be 1-D arrays of equal length")
        if not np.all(np.isfinite(np.concatenate([t, edge, diag]))):
            raise ValueError("stacking table contains NaN or inf")
        self._orbits = _c3_orbits(self.max_g2)
        uv = np.concatenate([np.stack([t, 0 * t], 1), np.stack([t, t], 1)])
        y = np.concatenate([edge, diag])
        a = self._design(uv)
        self.coef_, *_ = np.linalg.lstsq(a, y, rcond=None)
        res = a @ self.coef_ - y
        self.residual_rms_ = float(np.sqrt(np.mean(res**2)))
        self.residual_max_ = float(np.abs(res).max())
        return self

    def __call__(self, uv: np.ndarray) -> np.ndarray:
        """dE (meV per cell) at stacking shifts given in fractional coordinates [..., 2] of (a1, a2)."""
        return self._design(np.asarray(uv, dtype=float)) @ self.coef_

    def at_shift(self, delta_xy: np.ndarray, a: float) -> np.ndarray:
        """dE (meV per cell) at Cartesian shifts [..., 2] (Angstrom) in the unrotated lattice frame."""
        basis = np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]]) * a  # rows a1, a2
        return self(np.asarray(delta_xy) @ np.linalg.inv(basis))


@cache
def stacking_energy(name: str = "relaxed") -> StackingEnergy:
    """The fitted dE(delta) for one of the DFT tables ("relaxed" or "rigid")."""
    if name not in DELTA_E_TABLES:
        raise ValueError(f"unknown interlayer model '{name}'; choose one of {list(STACKING_MODELS)}")
    tab = DELTA_E_TABLES[name]
    return StackingEnergy(name).fit(TABLE_T, tab["edge"], tab["diag"])


@dataclass(frozen=True)
class InterlayerPairs:
    """Interlayer couplings as a pair table: E_inter = sum_k jperp[k] S_top[k] . S_bottom[k].

    Attributes:
        top: [M] global site indices in the top layer.
        bottom: [M] global site indices in the bottom layer.
        jperp: [M] couplings (meV, unit spins; positive = antiferromagnetic).
        model: description ("local_stacking:relaxed", "local_stacking:rigid", "user").
    """

    top: np.ndarray
    bottom: np.ndarray
    jperp: np.ndarray
    model: str


def local_stacking_pairs(lat: Bilayer, model: str = "relaxed") -> InterlayerPairs:
    """Local-stacking interlayer pairs: each top site to the nearest bottom site of its sublattice.

    Args:
        lat: the bilayer.
        model: "relaxed" or "rigid" DFT table.

    Returns:
        Pair table with Jperp = dE(delta) / 4 (meV), delta = r_top - r_bottom expressed in the unrotated frame
        (the mean of the two layer orientations).

    Reference:
        DESIGN.md "Twisted bilayer CrI3" (interlayer exchange); Sivadas et al., Nano Lett. 18, 7658 (2018).
    """
    fit = stacking_energy(model)
    top, bottom = lat.nearest_same_sublattice()
    delta = lat.stacking_shift(top, bottom)
    jperp = fit.at_shift(delta, lat.a) / 4.0
    return InterlayerPairs(top, bottom, jperp, f"local_stacking:{model}")


def user_pairs(lat: Bilayer, table) -> InterlayerPairs:
    """Validate a user-supplied interlayer pair table.

    Args:
        lat: the bilayer the indices refer to.
        table: [M, 3] array-like of (i, j, Jperp) with i in the top layer and j in the bottom layer (or the reverse;
            it is normalized), Jperp in meV (unit spins, positive = antiferromagnetic).

    Returns:
        The pair table.

    Raises:
        ValueError: on wrong shape, non-integer or out-of-range indices, same-layer pairs, NaN/inf couplings.
    """
    arr = np.asarray(table, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"interlayer pair table must have shape [M, 3] (i, j, Jperp), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("interlayer pair table contains NaN or inf")
    idx = arr[:, :2]
    if not np.all(idx == np.rint(idx)):
        raise ValueError("interlayer pair table: site indices must be integers")
    i, j = idx[:, 0].astype(np.int64), idx[:, 1].astype(np.int64)
    n = lat.num_sites
    bad = np.nonzero((i < 0) | (i >= n) | (j < 0) | (j >= n))[0]
    if len(bad):
        raise ValueError(f"interlayer pair table row {bad[0]}: site index outside 0..{n - 1}")
    same = np.nonzero(lat.layer[i] == lat.layer[j])[0]
    if len(same):
        raise ValueError(f"interlayer pair table row {same[0]}: sites {i[same[0]]} and {j[same[0]]} are in one layer")
    top = np.where(lat.layer[i] == 1, i, j)
    bottom = np.where(lat.layer[i] == 1, j, i)
    return InterlayerPairs(top, bottom, arr[:, 2].copy(), "user")

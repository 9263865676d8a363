"""Commensurate twisted honeycomb bilayers (the Cr sublattice of CrI3).

Geometry follows Lopes dos Santos, Peres, Castro Neto, PRB 86, 155449 (2012), commensurate structures with
r = 1: for integer m >= 1 the twist angle obeys

    cos(theta) = (3 m^2 + 3 m + 1/2) / (3 m^2 + 3 m + 1),

each layer holds n = 3 m^2 + 3 m + 1 unit cells (2 Cr each), so a supercell has 4 n spins and period a sqrt(n).
Conventions (DESIGN.md, "Twisted bilayer CrI3"): a1 = a (1, 0), a2 = a (1/2, sqrt3/2), sublattice A at the cell
origin and B at (a1 + a2) / 3; the bottom layer (layer 0) is rotated by -theta/2, the top layer (layer 1) by
+theta/2, with a Cr site of each layer at the origin (AA stacking there); superlattice vectors

    L1 = R(-theta/2) [m a1 + (m+1) a2],   L2 = R(-theta/2) [-(m+1) a1 + (2m+1) a2].

Positions are in Angstrom; z is 0 for the bottom and ``INTERLAYER_DISTANCE`` for the top layer (the z value only
matters for plotting; the Hamiltonian uses explicit pair lists).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: CrI3 in-plane lattice constant (Angstrom).
LATTICE_CONSTANT = 6.86
#: Cr-Cr interlayer distance used for the z coordinate of the top layer (Angstrom); geometry only.
INTERLAYER_DISTANCE = 6.6
#: Supported commensurate indices: m = 8 (3.89 deg) ... 32 (1.02 deg), the paper's angle range.
M_MIN, M_MAX = 8, 32

_A1 = np.array([1.0, 0.0])
_A2 = np.array([0.5, np.sqrt(3.0) / 2.0])
_BASIS = np.stack([_A1, _A2])  # rows a1, a2 in units of a
_TAU = np.array([[0.0, 0.0], (_A1 + _A2) / 3.0])  # sublattice offsets (A, B), units of a
# Intralayer nearest neighbours of an A site, as (cell offset (i, j), B sublattice): B at tau, tau - a1, tau - a2.
_NN_CELL_OFFSETS = np.array([[0, 0], [-1, 0], [0, -1]])


def check_m(m: int) -> int:
    """Validate a commensurate index for the CrI3 bilayer builder.

    Args:
        m: commensurate index (integer).

    Returns:
        m as int.

    Raises:
        ValueError: if m is not an integer in [8, 32].
    """
    if isinstance(m, bool) or not isinstance(m, (int, float, np.integer, np.floating)) or not float(m).is_integer():
        raise ValueError(f"commensurate index m must be an integer, got {m!r}")
    m = int(m)
    if not M_MIN <= m <= M_MAX:
        raise ValueError(f"commensurate index m={m} outside {M_MIN}..{M_MAX} (theta 3.89..1.02 deg)")
    return m


def twist_angle(m: int) -> float:
    """Twist angle of the commensurate honeycomb bilayer with r = 1.

    Args:
        m: commensurate index, integer >= 1 (the CrI3 builder accepts 8..32).

    Returns:
        theta in degrees: arccos((3m^2+3m+1/2)/(3m^2+3m+1)).

    Reference:
        Lopes dos Santos et al., PRB 86, 155449 (2012), Eq. for commensurate angles with r = 1.
    """
    if isinstance(m, bool) or not float(m).is_integer() or m < 1:
        raise ValueError(f"commensurate index m must be a positive integer, got {m!r}")
    n = 3 * m * m + 3 * m + 1
    return float(np.degrees(np.arccos((n - 0.5) / n)))


def commensurate_angles(m_values=range(M_MIN, M_MAX + 1)) -> dict[int, float]:
    """Map m -> theta (deg) for the given commensurate indices (default: the 25 values m = 8..32)."""
    return {int(m): twist_angle(m) for m in m_values}


def m_for_angle(theta: float, atol: float = 1e-3) -> int:
    """The commensurate index m in 8..32 whose twist angle equals ``theta`` (deg) within ``atol``.

    Raises:
        ValueError: if theta is not one of the commensurate angles.
    """
    for m, th in commensurate_angles().items():
        if abs(th - theta) <= atol:
            return m
    raise ValueError(
        f"theta={theta} deg is not a commensurate angle; allowed: "
        + ", ".join(f"{t:.4f}" for t in commensurate_angles().values())
    )


def rotation(angle_deg: float) -> np.ndarray:
    """2x2 rotation matrix R(angle) (counter-clockwise, angle in degrees)."""
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class HoneycombLayer:
    """One periodic honeycomb layer inside a supercell.

    Attributes:
        positions: [n_sites, 2] in-plane positions (Angstrom), inside the supercell.
        sublattice: [n_sites] 0 (A) or 1 (B).
        cells: [n_sites, 2] integer cell coordinates (i, j) of each site in the layer's own (a1, a2) basis.
        neighbours: [n_sites, 3] indices (within the layer) of the 3 nearest neighbours (periodic).
        supercell: [2, 2] integer matrix; rows are L1, L2 in the layer's (a1, a2) basis.
        angle: rotation of the layer (deg).
    """

    positions: np.ndarray
    sublattice: np.ndarray
    cells: np.ndarray
    neighbours: np.ndarray
    supercell: np.ndarray
    angle: float


def honeycomb_layer(supercell: np.ndarray, angle: float = 0.0, a: float = LATTICE_CONSTANT) -> HoneycombLayer:
    """Build a periodic honeycomb layer for an integer supercell matrix.

    Args:
        supercell: [2, 2] integers; rows are the superlattice vectors in the (a1, a2) basis. Every difference of
            nearest-neighbour vectors (a1, a2, a1 - a2) must not be a superlattice vector, otherwise a site would
            neighbour the same site twice.
        angle: rotation of the layer (deg, counter-clockwise).
        a: lattice constant (Angstrom).

    Returns:
        The layer, sites ordered cell by cell (A then B in each cell).
    """
    sc = np.asarray(supercell, dtype=np.int64)
    det = int(round(np.linalg.det(sc)))
    if sc.shape != (2, 2) or det == 0:
        raise ValueError(f"supercell must be a non-singular 2x2 integer matrix, got {supercell!r}")
    if det < 0:
        raise ValueError("supercell rows must be right-handed (positive determinant)")
    inv = np.linalg.inv(sc.astype(float))
    # All lattice points in the half-open parallelogram spanned by the rows of sc.
    corners = np.array([[0, 0], sc[0], sc[1], sc[0] + sc[1]])
    lo, hi = corners.min(0), corners.max(0)
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    pts = np.stack([ii.ravel(), jj.ravel()], 1)
    frac = pts @ inv
    eps = 1e-9
    keep = np.all((frac >= -eps) & (frac < 1 - eps), axis=1)
    cells = pts[keep]
    if len(cells) != det:
        raise RuntimeError(f"found {len(cells)} cells in the supercell, expected {det}")
    # Canonical key of a cell modulo the superlattice, for periodic neighbour lookup.
    lookup = {tuple(_reduce(c, sc, inv)): k for k, c in enumerate(cells)}

    num_cells = len(cells)
    site_cells = np.repeat(cells, 2, axis=0)
    sublattice = np.tile(np.array([0, 1]), num_cells)
    rot = rotation(angle)
    xy_units = site_cells @ _BASIS + _TAU[sublattice]
    positions = (xy_units @ rot.T) * a

    nbr = np.empty((2 * num_cells, 3), dtype=np.int64)
    for k, c in enumerate(cells):
        for q, off in enumerate(_NN_CELL_OFFSETS):
            # A site of cell c neighbours B of cell c + off; B of cell c neighbours A of cell c - off.
            nbr[2 * k, q] = 2 * lookup[tuple(_reduce(c + off, sc, inv))] + 1
            nbr[2 * k + 1, q] = 2 * lookup[tuple(_reduce(c - off, sc, inv))]
    for q in range(3):
        for r in range(q + 1, 3):
            if np.any(nbr[:, q] == nbr[:, r]):
                raise ValueError("supercell too small: a site would neighbour the same site twice")
    return HoneycombLayer(positions, sublattice, site_cells, nbr, sc, float(angle))


def _reduce(cell: np.ndarray, sc: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Cell coordinates reduced into the supercell parallelogram (integers)."""
    frac = np.asarray(cell, dtype=float) @ inv
    shift = np.floor(frac + 1e-9)
    return np.rint(np.asarray(cell) - shift @ sc).astype(np.int64)


@dataclass(frozen=True)
class Bilayer:
    """A commensurate twisted honeycomb bilayer supercell.

    Sites 0..N/2-1 are the bottom layer (layer 0), N/2..N-1 the top layer (layer 1).

    Attributes:
        m: commensurate index.
        theta: twist angle (deg).
        a: lattice constant (Angstrom).
        positions: [N, 3] site positions (Angstrom).
        layer: [N] 0 bottom, 1 top.
        sublattice: [N] 0 (A) or 1 (B).
        superlattice: [2, 2] rows L1, L2 (Angstrom, Cartesian).
        intralayer: [N, 3] global indices of the 3 intralayer nearest neighbours (periodic).
    """

    m: int
    theta: float
    a: float
    positions: np.ndarray
    layer: np.ndarray
    sublattice: np.ndarray
    superlattice: np.ndarray
    intralayer: np.ndarray

    @property
    def num_sites(self) -> int:
        return int(self.positions.shape[0])

    @property
    def num_cells(self) -> int:
        """Unit cells per layer, n = 3 m^2 + 3 m + 1."""
        return self.num_sites // 4

    def wrap(self, xy: np.ndarray) -> np.ndarray:
        """Wrap in-plane points [..., 2] (Angstrom) into the supercell parallelogram."""
        inv = np.linalg.inv(self.superlattice)
        frac = xy @ inv
        return (frac - np.floor(frac)) @ self.superlattice

    def stacking_shift(self, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        """Local stacking shift delta = r_top - r_bottom (minimum image), [M, 2] Angstrom, for site pairs."""
        d = self.positions[top, :2] - self.positions[bottom, :2]
        inv = np.linalg.inv(self.superlattice)
        frac = d @ inv
        return (frac - np.rint(frac)) @ self.superlattice

    def nearest_same_sublattice(self) -> tuple[np.ndarray, np.ndarray]:
        """For every top site, the nearest bottom site of the same sublattice (periodic).

        Returns:
            (top, bottom): [N/2] global indices each; top[k] couples to bottom[k].
        """
        half = self.num_sites // 2
        top = np.arange(half, self.num_sites)
        bottom = np.empty(half, dtype=np.int64)
        rb = self.positions[:half, :2]
        inv_sc = np.linalg.inv(self.superlattice)
        for s in (0, 1):
            tmask = self.sublattice[top] == s
            bidx = np.nonzero(self.sublattice[:half] == s)[0]
            # The bottom layer is a Bravais lattice per sublattice: the nearest site is found from fractional
            # coordinates in the bottom basis, checking the 4 surrounding lattice points (+ neighbours).
            rot_b = rotation(-self.theta / 2) @ _BASIS.T * self.a  # columns a1', a2' (Angstrom)
            inv_b = np.linalg.inv(rot_b)
            tau = rotation(-self.theta / 2) @ _TAU[s] * self.a
            rt = self.positions[top[tmask], :2]
            frac = (rt - tau) @ inv_b.T
            base = np.floor(frac)
            best = np.full(len(rt), np.inf)
            best_cell = np.zeros((len(rt), 2))
            for di in (-1, 0, 1, 2):
                for dj in (-1, 0, 1, 2):
                    cand = base + np.array([di, dj])
                    pos = cand @ rot_b.T + tau
                    dist = np.linalg.norm(rt - pos, axis=1)
                    better = dist < best
                    best[better] = dist[better]
                    best_cell[better] = cand[better]
            # Locate that bottom site in the supercell by periodic position matching.
            target = best_cell @ rot_b.T + tau
            key_b = _periodic_keys(rb[bidx], inv_sc)
            key_t = _periodic_keys(target, inv_sc)
            index = {k: i for i, k in zip(bidx, map(tuple, key_b))}
            bottom[tmask] = [index[tuple(k)] for k in key_t]
        return top, bottom


def _periodic_keys(xy: np.ndarray, inv_sc: np.ndarray, digits: int = 6) -> np.ndarray:
    """Hashable keys of positions modulo the superlattice (fractional coordinates rounded)."""
    frac = xy @ inv_sc
    frac = frac - np.floor(frac + 1e-7)
    frac = np.round(frac, digits) % 1.0
    return np.round(frac * 10**digits).astype(np.int64) % 10**digits


def bilayer(m: int, a: float = LATTICE_CONSTANT) -> Bilayer:
    """Build the commensurate twisted bilayer supercell for index m.

    Args:
        m: commensurate index in 8..32 (theta = twist_angle(m), 3.89..1.02 deg).
        a: lattice constant (Angstrom), default CrI3's 6.86.

    Returns:
        The bilayer with 4 n sites, n = 3 m^2 + 3 m + 1.

    Reference:
        DESIGN.md "Twisted bilayer CrI3"; Lopes dos Santos et al., PRB 86, 155449 (2012).
    """
    m = check_m(m)
    return _bilayer(m, a)


def _bilayer(m: int, a: float = LATTICE_CONSTANT) -> Bilayer:
    theta = twist_angle(m)
    sc_bottom = np.array([[m, m + 1], [-(m + 1), 2 * m + 1]])
    superlattice = (sc_bottom @ _BASIS) @ rotation(-theta / 2).T * a  # rows L1, L2 (Angstrom)
    # The same vectors in the top layer's basis: R(+theta/2) x_top = L  ->  integer coordinates.
    top_units = superlattice @ rotation(theta / 2) / a  # rows in the unrotated frame of the top layer
    sc_top_f = top_units @ np.linalg.inv(_BASIS)
    sc_top = np.rint(sc_top_f).astype(np.int64)
    if not np.allclose(sc_top, sc_top_f, atol=1e-6):
        raise RuntimeError(f"m={m}: superlattice is not commensurate with the top layer")
    bot = honeycomb_layer(sc_bottom, -theta / 2, a)
    top = honeycomb_layer(sc_top, theta / 2, a)
    nb = len(bot.positions)
    positions = np.zeros((2 * nb, 3))
    positions[:nb, :2] = bot.positions
    positions[nb:, :2] = top.positions
    positions[nb:, 2] = INTERLAYER_DISTANCE
    return Bilayer(
        m=m,
        theta=theta,
        a=a,
        positions=positions,
        layer=np.repeat(np.array([0, 1]), nb),
        sublattice=np.concatenate([bot.sublattice, top.sublattice]),
        superlattice=superlattice,
        intralayer=np.concatenate([bot.neighbours, top.neighbours + nb]),
    )

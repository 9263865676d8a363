"""Domain images: tile the moire supercell, crop a fixed field of view, rasterize m_z of each layer.

The field of view (default 100 nm, papers 1-2) is centred on the AA stacking point at the origin; pixel (r, c) of a
G x G grid covers x in [-F/2 + c p, -F/2 + (c+1) p), y in [-F/2 + r p, -F/2 + (r+1) p) with p = F / G, i.e. row 0
is the smallest y (plot with ``origin="lower"``). A pixel's value is the mean m_z of the sites of the tiled layer
inside it (box filter); a pixel that contains no site takes its nearest site. With ``quadrant=True`` only the first
quadrant (x >= 0, y >= 0: rows and columns G/2..G-1) is kept, paper 2's 200 x 200 -> 100 x 100 preprocessing.
Channels: 0 = top layer, 1 = bottom layer.

The pixel-to-site weights depend only on the lattice, so they are built once per (m, grid, field of view) and a
batch of states renders with one sparse product.

Reference:
    Paper 1, Methods A (100 x 100 images of 100 nm); paper 2, Appendix A (200 x 200, first quadrant) and Sec. II.1.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from scalinglab.simulators.moire.lattice import Bilayer, _bilayer


def pixel_weights(lat: Bilayer, layer: int, grid: int = 100, fov_nm: float = 100.0,
                  quadrant: bool = False) -> sp.csr_matrix:
    """Sparse box-filter weights [P, N_layer] mapping one layer's m_z to pixels.

    Args:
        lat: the bilayer.
        layer: 0 (bottom) or 1 (top).
        grid: pixels per side of the full field of view (even when ``quadrant``).
        fov_nm: side of the field of view (nm).
        quadrant: keep only the first quadrant (P = (grid/2)^2), else P = grid^2.

    Returns:
        CSR matrix whose rows sum to 1; columns index the layer's sites in ``lat`` order.
    """
    if grid < 2 or (quadrant and grid % 2):
        raise ValueError(f"grid must be >= 2 (and even with quadrant=True), got {grid}")
    if not fov_nm > 0:
        raise ValueError(f"fov_nm must be > 0, got {fov_nm}")
    idx = np.nonzero(lat.layer == layer)[0]
    xy = lat.positions[idx, :2]
    fov = fov_nm * 10.0  # Angstrom
    pix = fov / grid
    lo = np.array([0.0, 0.0]) if quadrant else np.array([-fov / 2, -fov / 2])
    side = fov / 2 if quadrant else fov
    npx = grid // 2 if quadrant else grid
    # Superlattice translations whose copies can reach the field of view.
    corners = np.array([[lo[0], lo[1]], [lo[0] + side, lo[1]], [lo[0], lo[1] + side], [lo[0] + side, lo[1] + side]])
    inv = np.linalg.inv(lat.superlattice)
    fc = corners @ inv
    pr = np.arange(int(np.floor(fc[:, 0].min())) - 1, int(np.ceil(fc[:, 0].max())) + 2)
    qr = np.arange(int(np.floor(fc[:, 1].min())) - 1, int(np.ceil(fc[:, 1].max())) + 2)
    pp, qq = np.meshgrid(pr, qr, indexing="ij")
    shifts = np.stack([pp.ravel(), qq.ravel()], 1) @ lat.superlattice  # [T, 2]
    tiled = (xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    site = np.tile(np.arange(len(idx)), len(shifts))
    margin = 3 * lat.a
    near = np.all((tiled >= lo - margin) & (tiled < lo + side + margin), axis=1)
    tiled, site = tiled[near], site[near]
    cell = np.floor((tiled - lo) / pix).astype(np.int64)
    inside = np.all((cell >= 0) & (cell < npx), axis=1)
    rows = cell[inside, 1] * npx + cell[inside, 0]
    w = sp.coo_matrix((np.ones(int(inside.sum())), (rows, site[inside])), shape=(npx * npx, len(idx))).tocsr()
    w.sum_duplicates()
    counts = np.asarray(w.sum(1)).ravel()
    empty = np.nonzero(counts == 0)[0]
    if len(empty):
        centres = lo + (np.stack([empty % npx, empty // npx], 1) + 0.5) * pix
        _, k = cKDTree(tiled).query(centres)
        fill = sp.coo_matrix((np.ones(len(empty)), (empty, site[k])), shape=w.shape).tocsr()
        w = w + fill
        counts = np.asarray(w.sum(1)).ravel()
    return sp.diags(1.0 / counts) @ w


@lru_cache(maxsize=64)
def _cached_weights(m: int, a: float, layer: int, grid: int, fov_nm: float, quadrant: bool) -> sp.csr_matrix:
    return pixel_weights(_bilayer(m, a), layer, grid, fov_nm, quadrant).tocsr()


class Renderer:
    """Rasterize batches of states of one bilayer into two-channel m_z images.

    Args:
        lat: the bilayer.
        grid: pixels per side (default 100; paper 2 uses 200 with ``quadrant=True``).
        fov_nm: field of view (nm), default 100.
        quadrant: keep the first quadrant only.
    """

    def __init__(self, lat: Bilayer, grid: int = 100, fov_nm: float = 100.0, quadrant: bool = False) -> None:
        self.lat = lat
        self.size = grid // 2 if quadrant else grid
        self._layers = [np.nonzero(lat.layer == layer)[0] for layer in (1, 0)]  # channel order: top, bottom
        self._w = [_cached_weights(lat.m, lat.a, layer, grid, float(fov_nm), bool(quadrant)) for layer in (1, 0)]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (2, self.size, self.size)

    def __call__(self, spins) -> np.ndarray:
        """Images of a batch of states.

        Args:
            spins: [B, N, 3] unit spins (numpy or torch).

        Returns:
            [B, 2, H, W] float32 m_z images (channel 0 top, 1 bottom), values in [-1, 1].
        """
        sz = np.asarray(spins[..., 2].detach().cpu() if hasattr(spins, "detach") else spins[..., 2], dtype=float)
        if sz.ndim != 2 or sz.shape[1] != self.lat.num_sites:
            raise ValueError(f"spins must have shape [B, {self.lat.num_sites}, 3]")
        out = np.empty((sz.shape[0], 2, self.size, self.size), dtype=np.float32)
        for c, (idx, w) in enumerate(zip(self._layers, self._w)):
            out[:, c] = (w @ sz[:, idx].T).T.reshape(-1, self.size, self.size)
        return out

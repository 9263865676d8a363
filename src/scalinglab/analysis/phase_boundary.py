"""Phase boundaries from phase labels, and the Euclidean distance of a point to them (paper 2, Eq. 3).

Paper 2 measures how far each test sample lies from the FM-NCD and NCD-MD phase boundaries in normalized
parameter space, d = min_b |x - x_b| (Eq. 3), x_b on the boundary. The boundary is known only through the phase
labels of the simulated samples, so it is located here as the set of midpoints of the nearest-neighbour edges
that join a sample of one phase (side a) to a sample of the other (side b): each such edge crosses the boundary,
so its midpoint is within half the edge length of it.

Accuracy: for samples on a grid of spacing h (or random samples whose k-nearest-neighbour edges are ~h long), a
boundary point lies within h/2 (h/sqrt(2) for diagonal edges) of the true boundary and neighbouring boundary
points are ~h apart along it, so the distance is exact to within about one grid spacing, for straight and curved
boundaries alike (tests plant a plane and a sphere). A discrete axis (paper 2's twist angle theta, a few
commensurate values) limits the resolution across it to that axis' spacing.

Reference: twisted-magnets-regression-and-generation (paper 2), Sec. II.3 (Eq. 3), Figs. 6, 9, 10 d-e.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["boundary_points", "distance_to_boundary"]


def boundary_points(points, phase, side_a: Iterable[int], side_b: Iterable[int], k: int = 8) -> np.ndarray:
    """Points on the boundary between two groups of phases: midpoints of crossing k-nearest-neighbour edges.

    Args:
        points: [n, P] sample positions, normalized parameters (Eq. 2).
        phase: [n] integer phase code of each sample.
        side_a: phase codes on one side (e.g. the FM code).
        side_b: phase codes on the other side (e.g. the NCD code); must not overlap ``side_a``. Samples of other
            phases take part in the neighbour search but give no boundary points (an FM-MD edge does not
            belong to the FM-NCD boundary).
        k: neighbours per sample (edges are taken from both sides' neighbour lists; duplicates removed).

    Returns:
        [M, P] distinct boundary points (M >= 1 if the two sides touch; M = 0 if no edge joins them).

    Raises:
        ValueError: shapes, k < 1, overlapping sides, or a side with no samples (one line naming it).
    """
    x = np.asarray(points, dtype=np.float64)
    ph = np.asarray(phase)
    if x.ndim != 2 or ph.shape != (x.shape[0],):
        raise ValueError(f"points must be [n, P] and phase [n], got {list(x.shape)} and {list(ph.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("points contain NaN or inf")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    a_codes, b_codes = {int(c) for c in side_a}, {int(c) for c in side_b}
    if a_codes & b_codes:
        raise ValueError(f"side_a and side_b share phase codes {sorted(a_codes & b_codes)}")
    in_a, in_b = np.isin(ph, list(a_codes)), np.isin(ph, list(b_codes))
    for name, codes, mask in (("side_a", a_codes, in_a), ("side_b", b_codes, in_b)):
        if not mask.any():
            present = sorted({int(c) for c in np.unique(ph)})
            raise ValueError(f"{name} (phase codes {sorted(codes)}) has no points; phases present: {present}")
    # neighbours among ALL samples: a sample of a third phase between an a and a b sample blocks their edge,
    # so a thin third-phase region does not produce spurious a-b boundary points
    kk = min(int(k), len(x) - 1)
    _, nbr = cKDTree(x).query(x, k=kk + 1)  # [n, kk + 1], column 0 is the point itself (or a duplicate)
    src = np.repeat(np.arange(len(x)), kk)
    dst = nbr[:, 1:].ravel()
    cross = (in_a[src] & in_b[dst]) | (in_b[src] & in_a[dst])
    pairs = np.unique(np.sort(np.stack([src[cross], dst[cross]], axis=1), axis=1), axis=0)  # [M, 2]
    if len(pairs) == 0:
        return np.empty((0, x.shape[1]))
    return 0.5 * (x[pairs[:, 0]] + x[pairs[:, 1]])


def distance_to_boundary(query, boundary) -> np.ndarray:
    """Euclidean distance from each query point to the nearest boundary point (Eq. 3).

    Args:
        query: [q, P] points, normalized parameters (e.g. the test set).
        boundary: [M, P] boundary points from :func:`boundary_points`, M >= 1.

    Returns:
        [q] distances (normalized units).

    Reference: paper 2, Eq. 3.
    """
    qx = np.asarray(query, dtype=np.float64)
    b = np.asarray(boundary, dtype=np.float64)
    if qx.ndim != 2 or b.ndim != 2 or qx.shape[1] != b.shape[1]:
        raise ValueError(f"query [q, P] and boundary [M, P] must share P, got {list(qx.shape)} and {list(b.shape)}")
    if len(b) == 0:
        raise ValueError("boundary has no points (the two phases never neighbour each other)")
    dist, _ = cKDTree(b).query(qx, k=1)
    return np.asarray(dist, dtype=np.float64)

"""Min-max normalization of Hamiltonian parameters to [0, 1] over their sampled ranges (paper 2, Eq. 2).

Paper 2 normalizes theta, J and D before every error statistic so that the three parameters, which carry
different units and spans, are treated alike: x_norm = (x - x_min) / (x_max - x_min).

Reference: twisted-magnets-regression-and-generation (paper 2), Sec. II.3, Eq. 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CRI3_RANGES", "normalize_parameters", "denormalize_parameters"]

# Paper 2's sampled ranges: twist angle theta in degrees, intralayer exchange J and anisotropy D in meV.
CRI3_RANGES: dict[str, tuple[float, float]] = {"theta": (1.01, 3.89), "J": (1.0, 10.0), "D": (0.01, 0.3)}


def _ranges(values: np.ndarray, ranges: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ranges, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be [n, P], got shape {list(values.shape)}")
    if r.ndim != 2 or r.shape[1] != 2 or r.shape[0] != values.shape[1]:
        raise ValueError(f"ranges must be {values.shape[1]} (lo, hi) pairs for values [n, {values.shape[1]}], "
                         f"got shape {list(r.shape)}")
    lo, hi = r[:, 0], r[:, 1]
    if not (np.isfinite(r).all() and (hi > lo).all()):
        bad = [i for i in range(len(lo)) if not (np.isfinite(r[i]).all() and hi[i] > lo[i])]
        raise ValueError(f"each range needs finite lo < hi; parameter(s) {bad} have {r[bad].tolist()}")
    return lo, hi


def normalize_parameters(values, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Map each parameter column to [0, 1] over its range: (x - lo) / (hi - lo).

    Values outside a range map outside [0, 1] (no clipping: an out-of-range prediction stays visible).

    Args:
        values: [n, P] physical parameters (e.g. theta [deg], J [meV], D [meV]).
        ranges: P pairs (lo, hi) in the same units, e.g. ``[CRI3_RANGES[k] for k in ("theta", "J", "D")]``.

    Returns:
        [n, P] float64 normalized parameters (dimensionless).

    Raises:
        ValueError: values not 2-D, a number of ranges different from P, or a range with hi <= lo.

    Reference: paper 2, Sec. II.3, Eq. 2.
    """
    x = np.asarray(values, dtype=np.float64)
    lo, hi = _ranges(x, ranges)
    return (x - lo) / (hi - lo)


def denormalize_parameters(values_norm, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Inverse of :func:`normalize_parameters`: lo + x_norm (hi - lo), [n, P] -> [n, P]."""
    z = np.asarray(values_norm, dtype=np.float64)
    lo, hi = _ranges(z, ranges)
    return lo + z * (hi - lo)

"""Measured domain scale, saturation and coercivity of TDGL patterns and loops (for checks and reports).

- ``chord_length``: ``2 area / (sign changes along rows + along columns)`` of a +-1 pattern (periodic): for an
  isotropic pattern the mean length of a run of equal sign along a line; a checkerboard of squares of side c
  gives c, stripes of period P (changes along one axis only) give P.
- ``saturated_fraction``: fraction of pixels of the continuous state with ``|m| > threshold`` (paper 4: "the
  values of m_z tend to approximate either +1 or -1").
- ``loop_crossings`` / ``coercive_field``: fields at which the recorded mean magnetization changes sign on the
  descending (t in [T, 3T]) and ascending (t in [3T, 5T]) branches of Eq. 2; the coercive field is half their
  distance.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. II B 1, Figs. 2-3.
"""

from __future__ import annotations

import numpy as np


def chord_length(pattern: np.ndarray) -> float:
    """Chord length in pixels of a ``[H, W]`` pattern: ``2 H W / (changes along axis 0 + along axis 1)``, periodic.

    Returns ``inf`` for a uniform pattern (no sign change).
    """
    p = np.sign(np.asarray(pattern, dtype=np.float64))
    if p.ndim != 2:
        raise ValueError(f"pattern must be [H, W], got shape {p.shape}")
    changes = int((p != np.roll(p, 1, axis=0)).sum() + (p != np.roll(p, 1, axis=1)).sum())
    return float("inf") if changes == 0 else 2.0 * p.size / changes


def saturated_fraction(m: np.ndarray, threshold: float = 0.9) -> float:
    """Fraction of the entries of a continuous state ``m`` with ``|m| > threshold``."""
    return float(np.mean(np.abs(np.asarray(m)) > threshold))


def loop_crossings(loop_h: np.ndarray, loop_m: np.ndarray, ramp_time: float, record_dt: float
                   ) -> tuple[list[float], list[float]]:
    """Fields where the recorded mean magnetization changes sign, (descending branch, ascending branch).

    Args:
        loop_h: ``[n]`` field at the recorded points.
        loop_m: ``[n]`` mean magnetization at those points (NaN after a member stopped).
        ramp_time: T of Eq. 2.
        record_dt: time between two recorded points (``dt * record_every``).

    Returns:
        Two lists of fields (linearly interpolated between the recorded points).
    """
    h = np.asarray(loop_h, dtype=np.float64)
    m = np.asarray(loop_m, dtype=np.float64)
    t = np.arange(len(h)) * record_dt
    down, up = [], []
    for i in range(len(m) - 1):
        if not (np.isfinite(m[i]) and np.isfinite(m[i + 1])) or m[i] * m[i + 1] >= 0:
            continue
        w = m[i] / (m[i] - m[i + 1])
        hc = h[i] + w * (h[i + 1] - h[i])
        tc = t[i] + w * record_dt
        if ramp_time <= tc <= 3 * ramp_time:
            down.append(float(hc))
        elif tc > 3 * ramp_time:
            up.append(float(hc))
    return down, up


def coercive_field(loop_h: np.ndarray, loop_m: np.ndarray, ramp_time: float, record_dt: float) -> float:
    """Half the distance between the first descending and the first ascending zero crossing (NaN if missing)."""
    down, up = loop_crossings(loop_h, loop_m, ramp_time, record_dt)
    if not down or not up:
        return float("nan")
    return 0.5 * (up[0] - down[0])

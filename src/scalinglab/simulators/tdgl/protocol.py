"""Field protocol of the hysteresis simulation (paper 4, Eq. 2), generalised to a ramp time T.

``h(t) = H t / T`` for ``t < T``, ``H (2 - t / T)`` for ``T <= t <= 3T``, ``H (t / T - 4)`` for ``3T < t <= 5T``:
up from 0 to +H, down to -H, back up to +H. The paper uses T = 1e5 (time units of Eq. 1) and H = 0.3; faster ramps
(smaller T) are what the ``quick`` profile uses and are stated in the dataset metadata.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Eq. 2.
"""

from __future__ import annotations

import numpy as np


def field(t: float | np.ndarray, H: float = 0.3, ramp_time: float = 1e5) -> float | np.ndarray:
    """Applied field h(t) of Eq. 2 (dimensionless, same units as A0).

    Args:
        t: time (scalar or array), 0 <= t <= 5 * ramp_time.
        H: field amplitude.
        ramp_time: T, the time to go from 0 to H (paper: 1e5).

    Returns:
        h(t), same shape as ``t``.
    """
    if ramp_time <= 0:
        raise ValueError(f"ramp_time must be positive, got {ramp_time}")
    s = np.asarray(t, dtype=np.float64) / ramp_time
    h = np.where(s < 1, s, np.where(s <= 3, 2 - s, s - 4)) * H
    return float(h) if np.ndim(h) == 0 else h


def protocol_duration(ramp_time: float = 1e5) -> float:
    """Total duration 5 T of the protocol (one full loop)."""
    return 5.0 * ramp_time


def descending_start(ramp_time: float = 1e5) -> float:
    """Time T at which the field reaches +H and the descending branch starts."""
    return float(ramp_time)

"""Uncertainty of estimates from an ensemble of trained realizations, pulls, and interval coverage.

Beyond paper 2: each estimate gets a standard deviation sigma, either from the spread of R independently trained
networks (``ensemble_spread``) or from a heteroscedastic head. Calibration is checked with

    pull = (mean - true) / sigma          (~ N(0, 1) when sigma is right)
    coverage(l) = fraction of |true - mean| <= z_l sigma,  z_l = Phi^-1((1 + l) / 2)

which equals the nominal level l (0.68, 0.95, ...) for calibrated Gaussian uncertainties.

Reference: issue 9 ("beyond the paper" (1)); paper 3 (scaling-laws-amplitude-surrogates) Sec. 3.2 for pulls.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.stats import norm

__all__ = ["ensemble_spread", "interval_coverage", "pulls"]


def ensemble_spread(preds) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof = 1) over realizations.

    Args:
        preds: [R, n, P] predictions of R >= 2 realizations (any trailing shape works).

    Returns:
        (mean [n, P], std [n, P]).
    """
    p = np.asarray(preds, dtype=np.float64)
    if p.ndim < 2 or p.shape[0] < 2:
        raise ValueError(f"preds must be [R, n, P] with R >= 2 realizations, got shape {list(p.shape)}")
    return p.mean(axis=0), p.std(axis=0, ddof=1)


def _triple(mean, sigma, true) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, s, t = (np.asarray(a, dtype=np.float64) for a in (mean, sigma, true))
    if not (m.shape == s.shape == t.shape) or m.ndim == 0:
        raise ValueError(f"mean, sigma, true must share a shape [n, P], got {list(m.shape)}, {list(s.shape)}, "
                         f"{list(t.shape)}")
    if (s < 0).any():
        raise ValueError("sigma has negative entries")
    return m, s, t


def pulls(mean, sigma, true) -> np.ndarray:
    """(mean - true) / sigma, same shape as the inputs ([n, P]); +-inf (or NaN) where sigma = 0."""
    m, s, t = _triple(mean, sigma, true)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m - t) / s


def interval_coverage(mean, sigma, true, levels: Iterable[float] = (0.68, 0.95)) -> dict[float, np.ndarray]:
    """Fraction of samples whose Gaussian central interval mean +- z(level) sigma contains ``true``.

    Args:
        mean, sigma, true: [n, P] estimates, their standard deviations, and the true values.
        levels: nominal coverages in (0, 1); z(level) = ``scipy.stats.norm.ppf((1 + level) / 2)``.

    Returns:
        {level: [P] fraction covered per parameter} (the reduction is over the first axis).
    """
    m, s, t = _triple(mean, sigma, true)
    out: dict[float, np.ndarray] = {}
    for level in levels:
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"coverage levels must lie in (0, 1), got {level}")
        z = norm.ppf(0.5 * (1.0 + level))
        out[level] = np.mean(np.abs(t - m) <= z * s, axis=0)
    return out

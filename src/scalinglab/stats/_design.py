"""Input checks and vectorized realization bootstrap shared by the fitters (private).

A *design* is the array-level view of one scaling curve: ``x`` values ``[P]`` (dataset size, model size or
FLOPs) and, per design point, the test losses of its independent realizations (a list of ``P`` arrays, each
``[R_p]``; ``R_p`` may differ between points). Every fitter works on the logarithms of the losses, so the
losses must be finite and strictly positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: float32 resolution of a squared-error loss quoted by paper 1 (scaling-laws-deep-regression, Results B):
#: test losses below about 1.9e-7 are dominated by float32 rounding of the predictions and are unreliable.
FLOAT32_LOSS_RESOLUTION = 1.9e-7


def as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A numpy Generator from an explicit integer seed (or a Generator passed through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int or numpy Generator, got {type(seed).__name__}")
    return np.random.default_rng(int(seed))


def check_losses(losses: Sequence[float] | np.ndarray, *, where: str = "losses") -> np.ndarray:
    """One design point's realization losses as a float64 array ``[R]``; finite, > 0 and non-empty."""
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{where} must be a 1-D array of realization losses, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{where} is empty: each design point needs at least one realization")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
    if bad.size:
        raise ValueError(
            f"{where} has a non-finite or non-positive loss at realization {int(bad[0])} "
            f"(value {arr[bad[0]]!r}); losses must be > 0 to take logarithms"
        )
    return arr


@dataclass(frozen=True)
class Design:
    """A checked scaling curve, sorted by ``x``.

    Attributes:
        x: design values ``[P]``, strictly positive, ascending.
        order: permutation ``[P]`` that sorted the caller's points (``x = x_in[order]``).
        log_losses: natural log of the losses, padded with NaN ``[P, R_max]``.
        counts: realizations per point ``[P]``.
    """

    x: np.ndarray
    order: np.ndarray
    log_losses: np.ndarray
    counts: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """``[P, R_max]`` True where a realization exists."""
        return np.arange(self.log_losses.shape[1])[None, :] < self.counts[:, None]

    def log_means(self) -> np.ndarray:
        """Mean log loss per point ``[P]`` (log of the geometric mean)."""
        return np.nansum(self.log_losses, axis=1) / self.counts

    def log_vars(self) -> np.ndarray:
        """Unbiased variance of the log losses per point ``[P]`` (NaN where R_p = 1)."""
        dev = np.where(self.mask, self.log_losses - self.log_means()[:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 1, (dev**2).sum(axis=1) / (self.counts - 1), np.nan)


def make_design(
    x: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    x_name: str = "x",
    min_points: int = 1,
    min_realizations: int = 1,
) -> Design:
    """Check a scaling curve and pack it into a :class:`Design` sorted by ``x``.

    Args:
        x: design values ``[P]`` (> 0).
        losses_per_point: ``P`` arrays of realization losses ``[R_p]`` (> 0, finite).
        x_name: name used in error messages.
        min_points: minimum number of distinct ``x`` values.
        min_realizations: minimum ``R_p`` at every point.

    Returns:
        The sorted design.
    """
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1:
        raise ValueError(f"{x_name} must be a 1-D array, got shape {xs.shape}")
    if isinstance(losses_per_point, np.ndarray) and losses_per_point.ndim == 2:
        losses_per_point = list(losses_per_point)
    if len(losses_per_point) != xs.size:
        raise ValueError(f"{x_name} has {xs.size} points but losses_per_point has {len(losses_per_point)} entries")
    bad = np.flatnonzero(~np.isfinite(xs) | (xs <= 0))
    if bad.size:
        raise ValueError(f"{x_name} must be finite and > 0; point {int(bad[0])} is {xs[bad[0]]!r}")
    if np.unique(xs).size < min_points:
        raise ValueError(f"need at least {min_points} distinct {x_name} values, got {np.unique(xs).size}")
    arrays = [check_losses(l, where=f"losses at {x_name}={xs[i]:g}") for i, l in enumerate(losses_per_point)]
    counts = np.array([a.size for a in arrays], dtype=np.int64)
    low = np.flatnonzero(counts < min_realizations)
    if low.size:
        raise ValueError(
            f"the point {x_name}={xs[low[0]]:g} has {counts[low[0]]} realization(s); this needs at least "
            f"{min_realizations} per point to estimate the realization spread"
        )
    order = np.argsort(xs, kind="stable")
    log_losses = np.full((xs.size, int(counts.max())), np.nan)
    for row, i in enumerate(order):
        log_losses[row, : counts[i]] = np.log(arrays[i])
    return Design(x=xs[order], order=order, log_losses=log_losses, counts=counts[order])


def bootstrap_log_moments(
    design: Design, num_bootstrap: int, rng: np.random.Generator, *, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Resample realizations within each design point; return per-point log means and variances.

    The resampled residuals are inflated by ``sqrt(R_p / (R_p - 1))`` (the residual bootstrap with the
    small-sample correction of Davison & Hinkley 1997, Sec. 3.3): the plain bootstrap variance of a mean of
    ``R`` draws is ``(R-1)/R`` of the unbiased one, which at ``R = 5..10`` would shrink the intervals by
    5-10 %.

    Args:
        design: the checked curve.
        num_bootstrap: number of replicates ``B``.
        rng: random generator (consumed).
        rows: optional subset of design rows ``[P']`` to resample (default: all).

    Returns:
        ``(means [B, P'], variances [B, P'])`` of the log losses of each replicate.
    """
    logs = design.log_losses if rows is None else design.log_losses[rows]
    counts = design.counts if rows is None else design.counts[rows]
    num_points, r_max = logs.shape
    centre = np.nansum(logs, axis=1) / counts  # [P]
    idx = np.floor(rng.random((num_bootstrap, num_points, r_max)) * counts[None, :, None]).astype(np.int64)
    draws = logs[np.arange(num_points)[None, :, None], idx]  # (B, P, R_max)
    mask = (np.arange(r_max)[None, :] < counts[:, None])[None]  # (1, P, R_max)
    inflate = np.sqrt(np.where(counts > 1, counts / np.maximum(counts - 1, 1), 1.0))  # [P]
    dev = np.where(mask, (draws - centre[None, :, None]) * inflate[None, :, None], 0.0)
    means = centre[None, :] + dev.sum(axis=2) / counts[None, :]
    var = ((dev - np.where(mask, (means - centre[None, :])[:, :, None], 0.0)) ** 2).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(counts[None, :] > 1, var / np.maximum(counts[None, :] - 1, 1), np.nan)
    return means, var


def case_bootstrap_weights(num_points: int, num_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicities of a case (point) bootstrap ``[B, P]``: how often each point is drawn in ``P`` draws.

    Used where a point has a single run and so no realization spread to resample: refitting with each
    point weighted by its multiplicity is the same as refitting on the resampled set of points.
    """
    idx = rng.integers(0, num_points, size=(num_bootstrap, num_points))
    return np.stack([np.bincount(row, minlength=num_points) for row in idx]).astype(np.float64)


def check_weights(weights, num_points: int) -> np.ndarray:
    """User point weights ``[P]``: finite, >= 0, not all zero (default: all 1)."""
    if weights is None:
        return np.ones(num_points)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (num_points,):
        raise ValueError(f"weights must have one entry per point ({num_points}), got shape {w.shape}")
    if not np.all(np.isfinite(w) & (w >= 0)) or not np.any(w > 0):
        raise ValueError("weights must be finite, >= 0 and not all zero")
    return w


def point_variances(log_vars: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Variance of each point's mean log loss, ``s_p^2 / R_p``, made safe for weighting ``[..., P]``.

    A point whose realizations agree exactly (s_p = 0) or that has one realization would get an infinite
    or undefined weight; its spread is replaced by a floor of 1e-3 times the pooled spread (or by the pooled
    spread when undefined) so that one degenerate point cannot pin the fit.
    """
    dof = np.maximum(counts - 1, 0)
    finite = np.isfinite(log_vars)
    pooled = np.where(finite, log_vars, 0.0) * dof
    pooled = pooled.sum(axis=-1, keepdims=True) / np.maximum(np.where(finite, dof, 0).sum(axis=-1, keepdims=True), 1)
    pooled = np.where(pooled > 0, pooled, 1e-12)
    v = np.where(finite, log_vars, pooled)
    v = np.maximum(v, 1e-3 * pooled)
    return v / counts


def percentile_interval(samples: np.ndarray, confidence: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval of bootstrap replicates (NaN replicates ignored)."""
    check_confidence(confidence)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.nanpercentile(samples, [tail, 100.0 - tail], axis=axis)
    return lo, hi


def check_confidence(confidence: float) -> None:
    """Raise ValueError unless 0 < confidence < 1."""
    if not (0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def check_num_bootstrap(num_bootstrap: int, minimum: int = 10) -> int:
    """Raise ValueError unless num_bootstrap is an integer >= minimum."""
    if isinstance(num_bootstrap, bool) or not isinstance(num_bootstrap, int | np.integer):
        raise ValueError(f"num_bootstrap must be an integer, got {num_bootstrap!r}")
    if num_bootstrap < minimum:
        raise ValueError(f"num_bootstrap must be at least {minimum}, got {num_bootstrap}")
    return int(num_bootstrap)

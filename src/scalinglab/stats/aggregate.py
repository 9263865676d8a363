"""Per-design-point aggregates of test losses over independent realizations.

Paper 1 (scaling-laws-deep-regression, Results A and Fig. 3) compares three averages of the test loss over
network realizations: the arithmetic mean (with its standard error), the geometric mean (with its standard
error) and the median (with the median absolute deviation), and adopts the geometric mean because a few
badly trained realizations bias the arithmetic mean. Fig. 3e shows the geometric mean as a function of the
number of realizations averaged, from random subsets.

Conventions:
    * geometric mean ``GM = exp(mean(log L))``; its standard error by the delta method,
      ``SE(GM) = GM * s_log / sqrt(R)`` with ``s_log`` the sample standard deviation of ``log L``;
    * MAD is the raw median absolute deviation ``median(|L - median(L)|)`` (no 1.4826 normal factor), as
      drawn in paper 1 Fig. 3;
    * intervals are equal-tailed percentile bootstrap intervals over realizations (resampled with
      replacement), at ``confidence`` (default 95 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from scalinglab.stats._design import (
    as_rng,
    check_confidence,
    check_losses,
    check_num_bootstrap,
    percentile_interval,
)

__all__ = [
    "GeometricMeanCurve",
    "PointSummary",
    "geometric_mean_vs_realizations",
    "summarize_point",
    "summarize_points",
]


@dataclass(frozen=True)
class PointSummary:
    """Aggregates of one design point's realization losses (all in loss units unless noted).

    Attributes:
        num_realizations: R, the number of realizations.
        mean: arithmetic mean.
        mean_stderr: standard error of the mean, ``std(L, ddof=1) / sqrt(R)`` (NaN when R = 1).
        mean_interval: bootstrap interval of the arithmetic mean ``(lo, hi)``.
        geometric_mean: ``exp(mean(log L))``.
        geometric_mean_stderr: delta-method standard error ``GM * log_stderr``.
        geometric_mean_interval: bootstrap interval of the geometric mean ``(lo, hi)``.
        log_mean: ``mean(log L)`` (natural log, dimensionless).
        log_std: ``std(log L, ddof=1)`` (NaN when R = 1).
        log_stderr: ``log_std / sqrt(R)``.
        median: median loss.
        median_mad: median absolute deviation ``median(|L - median|)``.
        median_interval: bootstrap interval of the median ``(lo, hi)``.
        confidence: coverage of the intervals.
    """

    num_realizations: int
    mean: float
    mean_stderr: float
    mean_interval: tuple[float, float]
    geometric_mean: float
    geometric_mean_stderr: float
    geometric_mean_interval: tuple[float, float]
    log_mean: float
    log_std: float
    log_stderr: float
    median: float
    median_mad: float
    median_interval: tuple[float, float]
    confidence: float

    def as_dict(self) -> dict:
        """JSON-serializable dictionary (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def summarize_point(
    losses: Sequence[float] | np.ndarray,
    *,
    num_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> PointSummary:
    """Arithmetic mean, geometric mean and median of one design point, with uncertainties.

    Args:
        losses: test losses of the realizations ``[R]`` (> 0, finite).
        num_bootstrap: bootstrap replicates for the intervals.
        confidence: coverage of the equal-tailed percentile intervals.
        seed: integer seed or numpy Generator for the bootstrap.

    Returns:
        The :class:`PointSummary`.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Results A and Fig. 3(a)-(d).
    """
    arr = check_losses(losses)
    num_bootstrap = check_num_bootstrap(num_bootstrap)
    check_confidence(confidence)
    rng = as_rng(seed)
    r = arr.size
    logs = np.log(arr)
    log_mean = float(logs.mean())
    log_std = float(logs.std(ddof=1)) if r > 1 else float("nan")
    log_stderr = log_std / np.sqrt(r)
    gm = float(np.exp(log_mean))
    median = float(np.median(arr))

    idx = rng.integers(0, r, size=(num_bootstrap, r))  # (B, R) resampled realizations
    boot = arr[idx]
    mean_lo, mean_hi = percentile_interval(boot.mean(axis=1), confidence)
    gm_lo, gm_hi = percentile_interval(np.exp(np.log(boot).mean(axis=1)), confidence)
    med_lo, med_hi = percentile_interval(np.median(boot, axis=1), confidence)
    return PointSummary(
        num_realizations=r,
        mean=float(arr.mean()),
        mean_stderr=float(arr.std(ddof=1) / np.sqrt(r)) if r > 1 else float("nan"),
        mean_interval=(float(mean_lo), float(mean_hi)),
        geometric_mean=gm,
        geometric_mean_stderr=gm * log_stderr,
        geometric_mean_interval=(float(gm_lo), float(gm_hi)),
        log_mean=log_mean,
        log_std=log_std,
        log_stderr=float(log_stderr),
        median=median,
        median_mad=float(np.median(np.abs(arr - median))),
        median_interval=(float(med_lo), float(med_hi)),
        confidence=float(confidence),
    )


def summarize_points(
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    num_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[PointSummary]:
    """:func:`summarize_point` for every design point, each with its own derived bootstrap stream.

    Args:
        losses_per_point: ``P`` arrays of realization losses ``[R_p]``.
        num_bootstrap: bootstrap replicates per point.
        confidence: coverage of the intervals.
        seed: integer root seed; point ``p`` draws from ``SeedSequence(seed).spawn(P)[p]``, so the points'
            bootstrap streams are independent and reproducible.

    Returns:
        One :class:`PointSummary` per point, in input order.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    children = np.random.SeedSequence(int(seed)).spawn(len(losses_per_point))
    return [
        summarize_point(
            check_losses(l, where=f"losses_per_point[{i}]"),
            num_bootstrap=num_bootstrap,
            confidence=confidence,
            seed=np.random.default_rng(children[i]),
        )
        for i, l in enumerate(losses_per_point)
    ]


@dataclass(frozen=True)
class GeometricMeanCurve:
    """Geometric mean as a function of the number of realizations averaged (paper 1 Fig. 3e).

    Attributes:
        num_realizations: subset sizes ``k = 1..R`` ``[R]``.
        mean: average over random subsets of the subset geometric mean ``[R]`` (loss units).
        std: standard deviation over random subsets of the subset geometric mean ``[R]`` (0 at k = R).
        geometric_mean: geometric mean of all ``R`` realizations.
        num_bootstrap: random subsets drawn per ``k``.
    """

    num_realizations: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    geometric_mean: float
    num_bootstrap: int


def geometric_mean_vs_realizations(
    losses: Sequence[float] | np.ndarray, num_bootstrap: int = 50, seed: int | np.random.Generator = 0
) -> GeometricMeanCurve:
    """Geometric mean of random subsets of ``k`` realizations, for ``k = 1..R``.

    For each ``k``, ``num_bootstrap`` subsets of ``k`` distinct realizations are drawn uniformly (without
    replacement, independently for each ``k``); the curve reports the mean and the standard deviation of
    their geometric means. At ``k = R`` every subset is the full set, so ``std = 0`` and ``mean`` is the
    full geometric mean.

    Args:
        losses: test losses of the realizations ``[R]`` (> 0, finite).
        num_bootstrap: random subsets per ``k`` (paper 1 used 50 subsets of 100 networks).
        seed: integer seed or numpy Generator.

    Returns:
        The :class:`GeometricMeanCurve`.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Fig. 3(e) and its caption.
    """
    arr = check_losses(losses)
    num_bootstrap = check_num_bootstrap(num_bootstrap, minimum=2)
    rng = as_rng(seed)
    logs = np.log(arr)
    r = arr.size
    means = np.empty(r)
    stds = np.empty(r)
    for k in range(1, r + 1):
        # k distinct realizations per subset: the first k columns of independent random permutations.
        perm = np.argsort(rng.random((num_bootstrap, r)), axis=1)[:, :k]  # (B, k)
        gms = np.exp(logs[perm].mean(axis=1))  # (B,)
        means[k - 1] = gms.mean()
        stds[k - 1] = gms.std(ddof=1)
    return GeometricMeanCurve(
        num_realizations=np.arange(1, r + 1),
        mean=means,
        std=stds,
        geometric_mean=float(np.exp(logs.mean())),
        num_bootstrap=num_bootstrap,
    )

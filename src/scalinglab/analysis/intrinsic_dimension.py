"""TwoNN intrinsic-dimension estimator (ratio of second to first nearest-neighbour distances).

For points sampled with locally constant density on a d-dimensional manifold, ``mu = r2 / r1`` follows the
Pareto law ``p(mu) = d mu^(-d-1)``, so ``-log(1 - F(mu)) = d log(mu)``. The estimate is the slope of a
straight-line fit through the origin of ``-log(1 - F_emp)`` against ``log(mu)`` after discarding the largest
``discard_fraction`` of the ratios (default, as in Facco et al. and Ansuini et al.), or the maximum-likelihood
value.

Reference: E. Facco, M. d'Errico, A. Rodriguez, A. Laio, Sci. Rep. 7, 12140 (2017), Eqs. (1)-(5);
A. Ansuini et al., NeurIPS 32 (2019) (the linear-fit implementation); Bahl et al., "Scaling laws for amplitude
surrogates", App. B, Eqs. (24)-(31).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _neighbour_ratios(x: np.ndarray) -> np.ndarray:
    """``mu_i = r2 / r1`` for every point with a non-zero nearest-neighbour distance: [N']."""
    dist, _ = cKDTree(x).query(x, k=3)  # column 0 is the point itself
    r1, r2 = dist[:, 1], dist[:, 2]
    keep = r1 > 0  # exact duplicates carry no information about the dimension
    return r2[keep] / r1[keep]


def intrinsic_dimension(
    x: np.ndarray, discard_fraction: float = 0.1, method: str = "linear"
) -> float:
    """TwoNN estimate of the intrinsic dimension of a point cloud.

    Args:
        x: [N, D] points (e.g. last-hidden-layer activations), N >= 3.
        discard_fraction: fraction of the largest ratios mu dropped before the fit (0 <= f < 1).
        method: ``"linear"`` (fit of the empirical CDF, Facco et al. Eq. 5) or ``"mle"`` (Pareto maximum
            likelihood with the discarded tail treated as censored).

    Returns:
        The estimated dimension d.

    Raises:
        ValueError: wrong shape, too few distinct points, non-finite values, bad options.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"x must be [N, D] with N >= 3, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    if not 0 <= discard_fraction < 1:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    if method not in ("linear", "mle"):
        raise ValueError(f"unknown method '{method}' (known: linear, mle)")
    mu = np.sort(_neighbour_ratios(x))
    n = mu.size
    n_keep = int(n * (1 - discard_fraction))
    if n_keep < 2:
        raise ValueError("fewer than 2 points with distinct neighbours: cannot estimate a dimension")
    mu = mu[:n_keep]
    log_mu = np.log(mu)
    if method == "mle":
        return float((n_keep - 1) / (np.sum(log_mu) + (n - n_keep) * log_mu[-1]))
    f_emp = np.arange(1, n_keep + 1) / n
    y = -np.log(1.0 - f_emp)
    return float(np.dot(log_mu, y) / np.dot(log_mu, log_mu))


def intrinsic_dimension_subsets(
    x: np.ndarray, num_subsets: int = 10, subset_size: int | None = None, seed: int = 0, **kwargs
) -> tuple[float, float]:
    """Mean and standard deviation of TwoNN over random subsets (the uncertainty band of paper 3, Fig. 3).

    Args:
        x: [N, D] points.
        num_subsets: number of random subsets.
        subset_size: points per subset (default N // 2).
        seed: seed of the subset draws.
        **kwargs: passed to :func:`intrinsic_dimension`.

    Returns:
        (mean, std) of the estimates.
    """
    x = np.asarray(x)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    size = subset_size or x.shape[0] // 2
    if not 3 <= size <= x.shape[0]:
        raise ValueError(f"subset_size must be in [3, {x.shape[0]}], got {size}")
    rng = np.random.default_rng(seed)
    est = [intrinsic_dimension(x[rng.choice(x.shape[0], size, replace=False)], **kwargs) for _ in range(num_subsets)]
    return float(np.mean(est)), float(np.std(est, ddof=1) if num_subsets > 1 else 0.0)

"""Principal component analysis of regression error vectors (paper 2, Eqs. 5-6, Fig. 5).

The error vector of a test sample is e = pred - true in normalized parameters (Eq. 5). Its sample covariance

    C_ij = 1/(n - 1) sum_s (e_i^s - <e_i>)(e_j^s - <e_j>)        (Eq. 6, ddof = 1)

is diagonalized; eigenvalues sorted in descending order are the explained variances lambda_k, the variance
ratio of component k is lambda_k / sum_l lambda_l, and the eigenvectors are the principal axes. A leading axis
that mixes two parameters (paper 2: 77.86 % of the variance, along an axis joining e_J and e_D) says their
errors are correlated: along it, e_a / e_b = v_a / v_b.

Reference: twisted-magnets-regression-and-generation (paper 2), Sec. II.3 (Eqs. 5-6), Sec. III.1.2, Fig. 5;
I. Jolliffe, Principal Component Analysis (Springer, 1986).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorPCA", "error_pca"]


@dataclass(frozen=True)
class ErrorPCA:
    """Fitted PCA of error vectors (all attributes end in ``_``; P = number of parameters).

    Attributes:
        mean_: [P] mean error (the bias of each parameter).
        covariance_: [P, P] sample covariance, ddof = 1 (Eq. 6).
        explained_variance_: [P] eigenvalues of ``covariance_``, descending.
        explained_variance_ratio_: [P] eigenvalue / sum of eigenvalues (sums to 1).
        components_: [P, P] row k = k-th principal axis (unit vector), sign fixed so that its largest-|.|
            entry is positive.
        num_samples_: n.
    """

    mean_: np.ndarray
    covariance_: np.ndarray
    explained_variance_: np.ndarray
    explained_variance_ratio_: np.ndarray
    components_: np.ndarray
    num_samples_: int

    def relation(self, names: Sequence[str], k: int = 0, digits: int = 2) -> str:
        """The k-th principal axis as a relation between its two largest entries, e.g. ``"e_J ~ -0.80 e_D"``.

        Along axis v the errors satisfy e_a = (v_a / v_b) e_b. The right-hand side is the largest-|.| entry b,
        the left-hand side the second largest a, so the coefficient has magnitude <= 1.
        """
        v = self.components_[k]
        if len(names) != len(v):
            raise ValueError(f"{len(names)} names for {len(v)} error components")
        if len(v) < 2:
            return f"e_{names[0]} (single component)"
        b, a = np.argsort(-np.abs(v), kind="stable")[:2]
        return f"e_{names[a]} ~ {v[a] / v[b]:.{digits}f} e_{names[b]}"


def error_pca(errors) -> ErrorPCA:
    """PCA of error vectors: covariance (Eq. 6), its eigen-decomposition, variance ratios.

    Args:
        errors: [n, P] error vectors pred - true in normalized parameters (Eq. 5), n >= 2.

    Returns:
        :class:`ErrorPCA`.

    Raises:
        ValueError: errors not [n, P] with n >= 2, or not finite.

    Reference: paper 2, Eqs. 5-6.
    """
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2 or e.shape[1] < 1:
        raise ValueError(f"errors must be [n, P] with n >= 2, got shape {list(e.shape)}")
    if not np.isfinite(e).all():
        raise ValueError("errors contain NaN or inf")
    mean = e.mean(axis=0)
    d = e - mean
    cov = d.T @ d / (len(e) - 1)  # [P, P]
    evals, evecs = np.linalg.eigh(cov)  # ascending; columns are eigenvectors
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)  # round-off can make a zero eigenvalue slightly negative
    comps = evecs[:, order].T  # [P, P], row k = axis k
    pivot = np.argmax(np.abs(comps), axis=1)
    comps = comps * np.sign(comps[np.arange(len(comps)), pivot])[:, None]
    total = evals.sum()
    ratio = evals / total if total > 0 else np.full_like(evals, np.nan)
    return ErrorPCA(mean_=mean, covariance_=cov, explained_variance_=evals, explained_variance_ratio_=ratio,
                    components_=comps, num_samples_=int(len(e)))

"""Exponent-versus-size fits ``alpha = a log10(N / N0) + b`` with propagated uncertainties.

Paper 1 (scaling-laws-deep-regression) fits the data-scaling exponent against model size,
``alpha_D = a_D log10(N_M / 1e6) + b_D`` (Fig. 5), and the model-scaling exponent against dataset size,
``alpha_M = a_M log10(N_D / 1e4) + b_M`` (Fig. 7). Here the fit is weighted least squares with weights
``1 / stderr_i^2`` from the per-curve exponent uncertainties; the covariance of ``(a, b)`` is
``(X^T W X)^-1``, inflated by the Birge ratio ``chi2 / dof`` when the exponents scatter more than their
error bars allow (the convention of the power-law fits in this package: never shrunk below the propagated
uncertainty). Choosing ``N0`` near the weighted centre of ``log10 N`` makes ``a`` and ``b`` nearly
uncorrelated, which is why the paper quotes independent errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ExponentTrendFit", "fit_exponent_trend"]


@dataclass(frozen=True)
class ExponentTrendFit:
    """A fitted ``alpha = slope_ * log10(N / n0) + intercept_``.

    Attributes:
        slope_: a (exponent units per decade of N).
        intercept_: b (the exponent at N = n0).
        slope_stderr_, intercept_stderr_: standard errors.
        covariance_: covariance of ``(a, b)`` ``[2, 2]``.
        chi2_: weighted chi-square.
        dof_: number of exponents - 2.
        birge_factor_: ``max(1, chi2 / dof)`` applied to the covariance (1 when dof = 0).
        n0: reference size N0.
    """

    slope_: float
    intercept_: float
    slope_stderr_: float
    intercept_stderr_: float
    covariance_: np.ndarray
    chi2_: float
    dof_: int
    birge_factor_: float
    n0: float

    def predict(self, sizes: Sequence[float] | np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Fitted exponent and its propagated standard error at ``sizes`` (any shape, > 0).

        Returns:
            ``(alpha, stderr)``, with ``var = [t, 1] C [t, 1]^T`` and ``t = log10(N / n0)``.
        """
        t = np.log10(np.asarray(sizes, dtype=np.float64) / self.n0)
        c = self.covariance_
        var = c[0, 0] * t**2 + 2.0 * c[0, 1] * t + c[1, 1]
        return self.slope_ * t + self.intercept_, np.sqrt(var)

    def summary(self) -> dict:
        """JSON-serializable summary."""
        return {
            "law": "exponent_trend",
            "slope": self.slope_,
            "slope_stderr": self.slope_stderr_,
            "intercept": self.intercept_,
            "intercept_stderr": self.intercept_stderr_,
            "n0": self.n0,
            "chi2": self.chi2_,
            "dof": self.dof_,
            "birge_factor": self.birge_factor_,
        }


def fit_exponent_trend(
    sizes: Sequence[float] | np.ndarray,
    exponents: Sequence[float] | np.ndarray,
    stderrs: Sequence[float] | np.ndarray,
    n0: float,
) -> ExponentTrendFit:
    """Weighted least-squares fit of ``alpha = a log10(N / n0) + b``.

    Args:
        sizes: N per fitted exponent ``[M]`` (model sizes in parameters, or dataset sizes; > 0).
        exponents: fitted exponents ``[M]``.
        stderrs: their standard errors ``[M]`` (> 0), e.g. ``PowerLawFit.exponent_stderr_``.
        n0: reference size N0 (> 0; paper 1: 1e6 parameters for Fig. 5, 1e4 samples for Fig. 7).

    Returns:
        The :class:`ExponentTrendFit`.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Figs. 5 and 7.
    """
    n = np.asarray(sizes, dtype=np.float64)
    alpha = np.asarray(exponents, dtype=np.float64)
    se = np.asarray(stderrs, dtype=np.float64)
    if not (n.ndim == alpha.ndim == se.ndim == 1 and n.size == alpha.size == se.size):
        raise ValueError(
            f"sizes, exponents and stderrs must be 1-D of equal length, got {n.shape}, {alpha.shape}, {se.shape}"
        )
    if n.size < 2 or np.unique(n).size < 2:
        raise ValueError(f"need at least 2 distinct sizes to fit a slope, got {np.unique(n).size}")
    if not np.all(np.isfinite(n) & (n > 0)):
        raise ValueError("sizes must be finite and > 0")
    if not np.all(np.isfinite(alpha)):
        raise ValueError("exponents must be finite")
    if not np.all(np.isfinite(se) & (se > 0)):
        raise ValueError("stderrs must be finite and > 0")
    if not (np.isfinite(n0) and n0 > 0):
        raise ValueError(f"n0 must be finite and > 0, got {n0!r}")
    t = np.log10(n / n0)
    x = np.stack([t, np.ones_like(t)], axis=-1)  # (M, 2): columns for (a, b)
    w = 1.0 / se**2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    coef = cov @ (x.T @ (w * alpha))
    chi2 = float((w * (alpha - x @ coef) ** 2).sum())
    dof = n.size - 2
    birge = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cov = cov * birge
    return ExponentTrendFit(
        slope_=float(coef[0]),
        intercept_=float(coef[1]),
        slope_stderr_=float(np.sqrt(cov[0, 0])),
        intercept_stderr_=float(np.sqrt(cov[1, 1])),
        covariance_=cov,
        chi2_=chi2,
        dof_=int(dof),
        birge_factor_=float(birge),
        n0=float(n0),
    )

"""Goodness of fit and the flags every fit table shows (poor fit, parameter at a bound, unconstrained).

A fit that looks precise can still be wrong: a plateau-then-drop curve forced through a power law, a
saturating fit whose floor sits on its bound, a model-size exponent from sizes that differ by 0.7 %. Each
fitter computes a :class:`GoodnessOfFit` and a tuple of one-line ``flags``; the report prints both.

Statistic: with realization spreads, ``chi2 = sum_p w_p r_p^2`` over standardized log residuals
``r_p = (ln GM_p - ln fit_p) / se_p``; with a Huber loss its analogue ``2 sum_p w_p huber(r_p)`` (equal to chi2
where every residual is inside the threshold). Its p-value uses the chi-square law with
``dof = points - parameters``; it exists only when the residuals are standardized by a measured spread
(single-run data has no external scale: then only the residual RMS in log units is reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from scalinglab.stats._optim import huber

__all__ = ["POOR_FIT_P_VALUE", "GoodnessOfFit", "bound_flags", "goodness_of_fit", "range_flag"]

#: p-values below this flag a fit as poor (at 1e-3 a correct model is flagged once in a thousand fits).
POOR_FIT_P_VALUE = 1e-3
#: A resource that varies by less than this factor cannot determine an exponent along its axis.
MIN_AXIS_RATIO = 2.0


@dataclass(frozen=True)
class GoodnessOfFit:
    """How well a fitted law describes its points.

    Attributes:
        statistic: chi2 (or its Huber analogue) of the standardized log residuals.
        dof: points minus fitted parameters.
        reduced: ``statistic / dof`` (NaN when dof <= 0).
        p_value: chi-square survival probability (NaN without a measured spread or when dof <= 0).
        rms_log_residual: root mean square of ``ln GM - ln fit`` over the fitted points (natural-log units).
        kind: ``"chi2"``, ``"huber"`` (analogue) or ``"residual"`` (single-run data: RMS only).
        poor: ``p_value < POOR_FIT_P_VALUE``.
    """

    statistic: float
    dof: int
    reduced: float
    p_value: float
    rms_log_residual: float
    kind: str
    poor: bool

    def summary(self) -> dict:
        return {"gof_kind": self.kind, "chi2": self.statistic, "dof": self.dof, "chi2_dof": self.reduced,
                "gof_p_value": self.p_value, "rms_log_residual": self.rms_log_residual, "poor_fit": self.poor}

    def flag(self) -> str | None:
        """The one-line flag of a poor fit (None when the fit is acceptable)."""
        if not self.poor:
            return None
        return (f"poor fit: chi2 = {self.statistic:.3g} for {self.dof} dof (p = {self.p_value:.2g}); the law does "
                "not describe these points within their realization spread")


def goodness_of_fit(
    log_residuals: np.ndarray,
    log_stderrs: np.ndarray | None,
    num_params: int,
    *,
    weights: np.ndarray | None = None,
    threshold: float | np.ndarray = np.inf,
) -> GoodnessOfFit:
    """Goodness of fit of one fitted law.

    Args:
        log_residuals: ``ln GM - ln fit`` of the fitted points ``[P]``.
        log_stderrs: standard errors of ``ln GM`` ``[P]`` from the realization spread; None for single-run data.
        num_params: fitted parameters.
        weights: optional point weights ``[P]`` (default 1).
        threshold: Huber threshold in standardized units (``inf``: plain chi2).

    Returns:
        The :class:`GoodnessOfFit`.
    """
    res = np.asarray(log_residuals, dtype=np.float64)
    w = np.ones_like(res) if weights is None else np.asarray(weights, dtype=np.float64)
    dof = int(res.size - num_params)
    rms = float(np.sqrt(np.sum(w * res**2) / max(np.sum(w), 1e-300)))
    if log_stderrs is None:
        return GoodnessOfFit(float("nan"), dof, float("nan"), float("nan"), rms, "residual", False)
    r = res / np.asarray(log_stderrs, dtype=np.float64)
    robust = np.any(np.isfinite(threshold))
    stat = float(2.0 * np.sum(w * huber(r, threshold))) if robust else float(np.sum(w * r**2))
    reduced = stat / dof if dof > 0 else float("nan")
    p = float(sps.chi2.sf(stat, dof)) if dof > 0 else float("nan")
    return GoodnessOfFit(stat, dof, reduced, p, rms, "huber" if robust else "chi2",
                         bool(np.isfinite(p) and p < POOR_FIT_P_VALUE))


def bound_flags(values: np.ndarray, lower: np.ndarray, upper: np.ndarray, names: list[str],
                *, skip: tuple[str, ...] = ()) -> list[str]:
    """One flag per parameter that sits on (within 1e-6 relative of) a bound of the fit."""
    flags = []
    for v, lo, hi, name in zip(values, lower, upper, names, strict=True):
        if name in skip or not np.isfinite(v):
            continue
        tol = 1e-6 * max(1.0, abs(v))
        if v <= lo + tol:
            flags.append(f"at bound: {name} = {v:.3g} sits on its lower bound {lo:.3g}")
        elif v >= hi - tol:
            flags.append(f"at bound: {name} = {v:.3g} sits on its upper bound {hi:.3g}")
    return flags


def range_flag(values: np.ndarray, name: str) -> str | None:
    """A flag when a resource varies by less than ``MIN_AXIS_RATIO``: its exponent is unconstrained."""
    v = np.asarray(values, dtype=np.float64)
    ratio = float(v.max() / v.min())
    if ratio < MIN_AXIS_RATIO:
        return (f"unconstrained: {name} varies by only x{ratio:.4g} (< x{MIN_AXIS_RATIO:g}); no exponent along "
                "this axis can be determined")
    return None

"""Automatic choice between a pure power law and a floored one, repeated inside every bootstrap replicate.

Why: a pure power law fitted to ``L = A x^-alpha + K`` absorbs the floor into a smaller exponent (on
synthetic sweeps with a floor of 5-30 % of the last point's loss the ``auto`` power-law range gave alpha
biased by -0.03 and 95 % intervals covering 58-61 %), while a saturating fit on a pure power law invents a
floor in a few percent of sweeps. The exponent to quote is the one of the law the data support, and its
interval must include the uncertainty of that choice.

Rule (same on the data and on every replicate):

1. Fit ``ln L = ln A - alpha ln x`` (power law, 2 parameters) and ``ln L = logaddexp(alpha (ln X_c - ln x),
   ln K)`` (saturating, 3 parameters) with the same objective: Huber loss of the log residuals standardized
   by each point's standard error (``se_p = s_p / sqrt(R_p)`` from the realization spread, or 1 for
   single-run points), times optional point weights.
2. ``D = 2 (cost_power - cost_saturating)``, divided by the saturating fit's reduced deviance when that
   exceeds 1 (single-run data: always divided, an F ratio). Choose the saturating law when ``D`` exceeds
   the ``1 - level`` quantile of chi2(1) (F(1, P - 3) for single-run data).
3. The quoted exponent is the chosen law's alpha.

Intervals: ``num_bootstrap`` replicates (over realizations within each point where every point has several;
over points, i.e. cases, where some point has one), both laws refitted on each by the batched Huber
Levenberg-Marquardt (warm-started at the full-data optima; unsettled replicates get a multi-start retry),
the rule applied per replicate, percentile interval of the chosen exponents.

Reference: paper 1 (scaling-laws-deep-regression), Results B (power laws up to where the scaling breaks);
paper 3 (scaling-laws-amplitude-surrogates), Eq. (1) (the floored law).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from scalinglab.stats._design import (
    FLOAT32_LOSS_RESOLUTION,
    as_rng,
    bootstrap_log_moments,
    case_bootstrap_weights,
    check_confidence,
    check_num_bootstrap,
    check_weights,
    make_design,
    percentile_interval,
    point_variances,
)
from scalinglab.stats._optim import HUBER_SCALE, batched_huber_lm, huber
from scalinglab.stats.goodness import GoodnessOfFit, bound_flags, goodness_of_fit, range_flag
from scalinglab.stats.saturating import _bounds, _refine_batched, _scan_alpha, saturating_loss

__all__ = ["ScalingCurveFit", "fit_scaling_curve"]

_LAWS = ("auto", "power_law", "saturating")


@dataclass(frozen=True)
class ScalingCurveFit:
    """The exponent of one scaling curve from the law the data support.

    Attributes:
        law_: ``"power_law"`` or ``"saturating"``: the law whose exponent is quoted.
        exponent_: the quoted alpha; exponent_interval_: its percentile interval over the replicates, each
            with its own law choice; exponent_stderr_: the replicates' standard deviation.
        prefactor_: A of the power law ``A x^-alpha`` (when ``law_ == "power_law"``), else NaN.
        x_c_, floor_: X_c and K of the saturating law (NaN / 0 when the power law is quoted).
        power_law_params_: ``(alpha, A)`` of the full-data power law (always fitted).
        saturating_params_: ``(alpha, X_c, K)`` of the full-data saturating law (always fitted).
        choice_statistic_, choice_threshold_: ``D`` and its critical value on the data.
        floor_p_value_: p-value of ``D`` under the pure power law (chi2(1), or F(1, P - 3) for single runs).
        floor_detected_: the quoted law is the saturating one and ``floor_p_value_ < floor_level``.
        saturating_share_: fraction of replicates that chose the saturating law.
        floor_interval_: percentile interval of K over the replicates (0 where the power law was chosen).
        goodness_: goodness of fit of the quoted law.
        flags_: one line per problem (poor fit, parameter at a bound, unconstrained exponent).
        resampling_: ``"realizations"`` or ``"points"``.
        x_: design values ascending ``[P]``; geometric_means_ ``[P]``; residuals_: ``ln GM - ln fit`` ``[P]``.
        bootstrap_exponents_: quoted alpha per replicate ``[B]`` (NaN where both refits failed).
        bootstrap_saturating_: per replicate, whether it chose the saturating law ``[B]``.
        bootstrap_params_: the chosen law's parameters per replicate ``[B, 3]``: ``(alpha, ln A, 0)`` for the
            power law, ``(alpha, ln X_c, K)`` for the saturating law (NaN rows where the refit failed); what
            planning inverts (``scalinglab.stats.planning.plan_scaling_curve``).
        confidence: coverage of the intervals.
    """

    law_: str
    exponent_: float
    exponent_interval_: tuple[float, float]
    exponent_stderr_: float
    prefactor_: float
    x_c_: float
    floor_: float
    power_law_params_: tuple[float, float]
    saturating_params_: tuple[float, float, float]
    choice_statistic_: float
    choice_threshold_: float
    floor_p_value_: float
    floor_detected_: bool
    saturating_share_: float
    floor_interval_: tuple[float, float]
    goodness_: GoodnessOfFit
    flags_: tuple[str, ...]
    resampling_: str
    x_: np.ndarray
    geometric_means_: np.ndarray
    residuals_: np.ndarray
    confidence: float
    bootstrap_exponents_: np.ndarray = field(default_factory=lambda: np.empty(0))
    bootstrap_saturating_: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    bootstrap_params_: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))

    def predict(self, x: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """Fitted loss of the quoted law at ``x`` (> 0)."""
        if self.law_ == "power_law":
            return self.prefactor_ * np.asarray(x, dtype=np.float64) ** (-self.exponent_)
        return saturating_loss(x, self.exponent_, self.x_c_, self.floor_)

    def summary(self) -> dict:
        """JSON-serializable summary."""
        return {
            "law": "auto", "chosen_law": self.law_, "exponent": self.exponent_,
            "exponent_interval": list(self.exponent_interval_), "exponent_stderr": self.exponent_stderr_,
            "prefactor": self.prefactor_, "x_c": self.x_c_, "floor": self.floor_,
            "floor_interval": list(self.floor_interval_), "saturating_share": self.saturating_share_,
            "choice_statistic": self.choice_statistic_, "choice_threshold": self.choice_threshold_,
            "floor_p_value": self.floor_p_value_, "floor_detected": self.floor_detected_,
            "resampling": self.resampling_, "confidence": self.confidence, "flags": list(self.flags_),
            **self.goodness_.summary(),
        }


def _power_batched(start: np.ndarray, lx: np.ndarray, y: np.ndarray, se: np.ndarray, w: np.ndarray,
                   thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Huber fits of ``ln L = p - alpha (ln x - u_ref)`` for ``B`` rows; returns ``(alpha, ln A) [B, 2]``."""
    u_ref = float(lx.mean())
    du = lx - u_ref

    def evaluate(ph, rows):
        m = ph[:, 1:2] - ph[:, 0:1] * du[None, :]
        jr = -np.stack([-np.broadcast_to(du, m.shape), np.ones_like(m)], axis=-1) / se[rows][..., None]
        return (y[rows] - m) / se[rows], jr

    phi0 = np.broadcast_to(np.asarray(start, dtype=np.float64), (y.shape[0], 2)).copy()
    inf = np.array([np.inf, np.inf])
    phi, ok = batched_huber_lm(phi0, evaluate, -inf, inf, weights=w, threshold=thr, max_iter=100)
    return np.stack([phi[:, 0], phi[:, 1] + phi[:, 0] * u_ref], axis=-1), ok


def _power_start(lx: np.ndarray, y: np.ndarray) -> np.ndarray:
    slope, _ = np.polyfit(lx - lx.mean(), y, 1)
    return np.array([-slope, y.mean()])


def _power_cost(par: np.ndarray, lx, y, se, w, thr) -> np.ndarray:
    m = par[:, 1:2] - par[:, 0:1] * lx[None, :]
    return (w * huber((y - m) / se, thr)).sum(-1)


def _sat_cost(theta: np.ndarray, lx, y, se, w, thr) -> np.ndarray:
    m = np.logaddexp(theta[:, 0:1] * (theta[:, 1:2] - lx[None, :]), theta[:, 2:3])
    return np.where(np.all(np.isfinite(theta), axis=1), (w * huber((y - m) / se, thr)).sum(-1), np.inf)


def _sat_multistart(lx, y, se, w, thr, lower, upper, num_starts: int = 6):
    """Saturating fits of ``B`` rows from several scan starts each; best converged per row."""
    num_b = y.shape[0]
    best = np.full((num_b, 3), np.nan)
    best_cost = np.full(num_b, np.inf)
    best_ok = np.zeros(num_b, dtype=bool)
    for b in range(num_b):
        scan = _scan_alpha(lx, y[b], se[b], np.geomspace(0.02, 10.0, 60))
        rows = scan[np.argsort(scan[:, 3])[: num_starts - 2], :3]
        fixed = np.array([[a, lx[0] + y[b, 0] / a, y[b].min() - 5.0] for a in (0.5, 2.0)])
        starts = np.clip(np.concatenate([rows, fixed]), lower + 1e-9, upper - 1e-9)
        n = starts.shape[0]
        cand, ok = _refine_batched(starts, lx, np.tile(y[b], (n, 1)), np.tile(se[b], (n, 1)), lower, upper,
                                   weights=np.tile(w[b], (n, 1)), threshold=np.tile(thr[b], (n, 1)))
        cost = _sat_cost(cand, lx, np.tile(y[b], (n, 1)), np.tile(se[b], (n, 1)), w[b], thr[b])
        cost = np.where(ok, cost, np.inf) if ok.any() else cost
        i = int(np.argmin(cost))
        best[b], best_cost[b], best_ok[b] = cand[i], cost[i], ok[i]
    return best, best_ok


def _deviance_ratio(cost_pow, cost_sat, num_points: int, has_spread: bool) -> np.ndarray:
    """``D = 2 (cost_pow - cost_sat)``, Birge-scaled (with spreads) or F-scaled (single runs)."""
    dof = num_points - 3
    drop = 2.0 * np.maximum(cost_pow - cost_sat, 0.0)
    reduced = 2.0 * cost_sat / max(dof, 1)
    scale = np.maximum(1.0, reduced) if has_spread else np.maximum(reduced, 1e-300)
    return drop / scale


def fit_scaling_curve(
    x: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    law: str = "auto",
    level: float = 0.3,
    floor_level: float = 0.01,
    weights: Sequence[float] | np.ndarray | None = None,
    huber_delta: float | None = None,
    precision_margin: float = 10.0,
    resolution: float = FLOAT32_LOSS_RESOLUTION,
    num_bootstrap: int = 400,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> ScalingCurveFit:
    """Fit a scaling curve with the power-law / saturating choice made on the data and on every replicate.

    Args:
        x: design values ``[P]`` (> 0; at least 4 distinct values above the precision cut).
        losses_per_point: ``P`` arrays of realization losses ``[R_p]`` (> 0; ``R_p >= 1``).
        law: ``"auto"`` (the rule in the module docstring), ``"power_law"`` or ``"saturating"`` (forced).
        level: level of the choice: the saturating law is chosen when the power law is rejected at it. The
            default 0.3 was measured (synthetic sweeps, ``benchmarks/fit_coverage.py``): at 0.05 a floor of
            5-30 % of the last loss was missed often enough to bias alpha by -0.02, at 0.2 by -0.010; at 0.3
            the median bias stays well below 0.01 with and without a floor. Choosing the floored law is a bias-variance
            decision, not a claim that a floor exists: that claim is ``floor_detected_``.
        floor_level: level of the floor claim ``floor_detected_`` (a floor reported at 0.01 on a pure power
            law in about 1 % of sweeps).
        weights: optional point weights ``[P]`` (multiply each point's term of the objective).
        huber_delta: Huber threshold in units of log loss (default: 1.345 standard errors of each point
            with realization spreads, least squares for single-run data).
        precision_margin, resolution: points from the first one with GM below ``precision_margin *
            resolution`` on are left out (float32 rounding, paper 1 Results B).
        num_bootstrap: replicates.
        confidence: coverage of the intervals.
        seed: integer seed or numpy Generator.

    Returns:
        The :class:`ScalingCurveFit`.
    """
    if law not in _LAWS:
        raise ValueError(f"law must be one of {', '.join(_LAWS)}, got {law!r}")
    for name, value in (("level", level), ("floor_level", floor_level)):
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    if huber_delta is not None and not (np.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be a positive number (log-loss units), got {huber_delta!r}")
    check_confidence(confidence)
    num_bootstrap = check_num_bootstrap(num_bootstrap)
    rng = as_rng(seed)
    design = make_design(x, losses_per_point, min_points=4)
    w_all = check_weights(weights, design.x.size)[design.order]
    log_means = design.log_means()
    flagged = np.exp(log_means) < precision_margin * resolution
    end = int(np.argmax(flagged)) if flagged.any() else design.x.size
    if end < 4:
        raise ValueError(f"only {end} point(s) lie above {precision_margin:g} x the loss resolution {resolution:g}; "
                         "a power-law / saturating choice needs at least 4")
    rows = np.arange(end)
    counts = design.counts[rows]
    has_spread = bool(np.all(counts >= 2))
    lx, y, w = np.log(design.x[rows]), log_means[rows], w_all[rows]
    if np.any(counts >= 2):
        se = np.sqrt(point_variances(design.log_vars()[rows], counts))
    else:
        se = np.ones(end)  # no realization spread anywhere: residuals in plain log-loss units
    thr = np.full(end, HUBER_SCALE if has_spread else np.inf) if huber_delta is None else huber_delta / se

    # full-data fits, both laws
    lower, upper = _bounds(lx, y)
    pw, _ = _power_batched(_power_start(lx, y), lx, y[None], se[None], w[None], thr[None])
    sat, sat_ok = _sat_multistart(lx, y[None], se[None], w[None], thr[None], lower, upper)
    cost_pow = _power_cost(pw, lx, y[None], se[None], w, thr)
    cost_sat = _sat_cost(sat, lx, y[None], se[None], w, thr)
    dev = _deviance_ratio(cost_pow, cost_sat, end, has_spread)
    crit = float(sps.chi2.ppf(1 - level, 1) if has_spread else sps.f.ppf(1 - level, 1, max(end - 3, 1)))
    floor_p = float(sps.chi2.sf(dev[0], 1) if has_spread else sps.f.sf(dev[0], 1, max(end - 3, 1)))
    choose_sat = {"auto": bool(dev[0] > crit and sat_ok[0]), "power_law": False, "saturating": True}[law]

    # replicates
    if has_spread:
        resampling = "realizations"
        y_b, v_b = bootstrap_log_moments(design, num_bootstrap, rng, rows=rows)
        se_b = np.sqrt(point_variances(v_b, counts))
        w_b = np.broadcast_to(w, y_b.shape).copy()
    else:
        resampling = "points"
        y_b = np.broadcast_to(y, (num_bootstrap, end)).copy()
        se_b = np.broadcast_to(se, y_b.shape).copy()
        w_b = case_bootstrap_weights(end, num_bootstrap, rng) * w[None]
    thr_b = np.broadcast_to(thr, y_b.shape) if huber_delta is None else huber_delta / se_b
    pw_b, pw_ok = _power_batched(pw[0], lx, y_b, se_b, w_b, thr_b)
    sat_b, sat_ok_b = _refine_batched(sat[0], lx, y_b, se_b, lower, upper, weights=w_b, threshold=thr_b)
    retry = np.flatnonzero(~sat_ok_b)
    if retry.size:
        again, ok_again = _sat_multistart(lx, y_b[retry], se_b[retry], w_b[retry], thr_b[retry], lower, upper)
        sat_b[retry], sat_ok_b[retry] = again, ok_again
    dev_b = _deviance_ratio(_power_cost(pw_b, lx, y_b, se_b, w_b, thr_b), _sat_cost(sat_b, lx, y_b, se_b, w_b, thr_b),
                            end, has_spread)
    if law == "auto":
        choose_b = (dev_b > crit) & sat_ok_b
    else:
        choose_b = np.full(num_bootstrap, law == "saturating")
    alpha_b = np.where(choose_b, sat_b[:, 0], pw_b[:, 0])
    alpha_b = np.where(np.where(choose_b, sat_ok_b, pw_ok), alpha_b, np.nan)
    floor_b = np.where(choose_b, np.exp(sat_b[:, 2]), 0.0)
    params_b = np.where(choose_b[:, None], np.stack([sat_b[:, 0], sat_b[:, 1], floor_b], axis=1),
                        np.stack([pw_b[:, 0], pw_b[:, 1], np.zeros(num_bootstrap)], axis=1))
    params_b[np.isnan(alpha_b)] = np.nan
    lo, hi = percentile_interval(alpha_b, confidence)
    k_lo, k_hi = percentile_interval(floor_b, confidence)

    if choose_sat:
        alpha, x_c, floor, prefactor = float(sat[0, 0]), float(np.exp(sat[0, 1])), float(np.exp(sat[0, 2])), np.nan
        fitted = np.logaddexp(sat[0, 0] * (sat[0, 1] - np.log(design.x)), sat[0, 2])
        num_params = 3
    else:
        alpha, x_c, floor, prefactor = float(pw[0, 0]), float("nan"), 0.0, float(np.exp(pw[0, 1]))
        fitted = pw[0, 1] - pw[0, 0] * np.log(design.x)
        num_params = 2
    residuals = log_means - fitted
    gof = goodness_of_fit(residuals[rows], se if np.any(counts >= 2) else None, num_params, weights=w,
                          threshold=thr)
    flags = [f for f in (gof.flag(), range_flag(design.x[rows], "x")) if f]
    if choose_sat:
        flags += bound_flags(sat[0], lower, upper, ["alpha", "ln X_c", "ln K"], skip=("ln K",))
    if np.isfinite(lo) and np.isfinite(hi) and hi - lo > max(1.0, abs(alpha)):
        flags.append(f"unconstrained: the {confidence:.0%} interval of alpha spans {lo:.3g}..{hi:.3g}")
    if np.isnan(alpha_b).mean() > 0.05:
        flags.append(f"{np.isnan(alpha_b).mean():.0%} of the bootstrap refits failed")
    return ScalingCurveFit(
        law_="saturating" if choose_sat else "power_law",
        exponent_=alpha,
        exponent_interval_=(float(lo), float(hi)),
        exponent_stderr_=float(np.nanstd(alpha_b, ddof=1)),
        prefactor_=prefactor,
        x_c_=x_c,
        floor_=floor,
        power_law_params_=(float(pw[0, 0]), float(np.exp(pw[0, 1]))),
        saturating_params_=(float(sat[0, 0]), float(np.exp(sat[0, 1])), float(np.exp(sat[0, 2]))),
        choice_statistic_=float(dev[0]),
        choice_threshold_=crit,
        floor_p_value_=floor_p,
        floor_detected_=bool(choose_sat and floor_p < floor_level),
        saturating_share_=float(np.mean(choose_b)),
        floor_interval_=(float(k_lo), float(k_hi)),
        goodness_=gof,
        flags_=tuple(flags),
        resampling_=resampling,
        x_=design.x,
        geometric_means_=np.exp(log_means),
        residuals_=residuals,
        confidence=float(confidence),
        bootstrap_exponents_=alpha_b,
        bootstrap_saturating_=np.asarray(choose_b, dtype=bool),
        bootstrap_params_=params_b,
    )

"""Pure power-law fits ``eps = A x^-alpha`` on geometric means, with a stated fit-range rule.

Method (paper 1, scaling-laws-deep-regression, Results B and Figs. 1, 4, 6):

* Each design point contributes ``y_p = mean(log L)`` (the log of its geometric mean over realizations) with
  variance ``v_p = s_p^2 / R_p`` from the spread ``s_p`` of its log losses. The line
  ``y = log A - alpha log x`` is fitted by weighted least squares with weights ``1 / v_p``.
* ``exponent_stderr_`` is the WLS standard error, inflated by the Birge ratio ``sqrt(chi2 / dof)`` when the
  points scatter more than their realization spread allows (never shrunk below the propagated error).
* ``exponent_interval_`` is an equal-tailed percentile bootstrap interval: realizations are resampled with
  replacement within each design point (residuals inflated by ``sqrt(R/(R-1))``), point means and weights
  are recomputed and the line refitted, ``num_bootstrap`` times, vectorized.

Fit-range rule (``fit_range="auto"``), applied to the points sorted by ``x``:

1. *Precision*: a point whose geometric mean is below ``precision_margin * 1.9e-7`` (the float32 resolution
   of the loss quoted in paper 1) is flagged; the fit range ends just before the first flagged point, since
   rounding then makes up a sizeable part of the loss and larger ``x`` cannot be trusted either.
2. *Curvature*: starting from all remaining points, while more than ``min_points`` points are in range and
   :func:`curvature_test` rejects the pure power law at level ``level``, the largest-``x`` point is dropped
   (paper 1 fits "up to where the scaling breaks down": saturation and precision limits appear at large N).

The curvature test (see :func:`curvature_test`) compares the weighted straight line in log-log with a
weighted quadratic; its null distribution comes from a parametric residual bootstrap under the fitted power
law, so it is calibrated for the small realization counts (R = 5..20) of real sweeps, where the chi-square
reference would be off because the weights are themselves estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scalinglab.stats._design import (
    FLOAT32_LOSS_RESOLUTION,
    Design,
    as_rng,
    bootstrap_log_moments,
    check_confidence,
    check_num_bootstrap,
    make_design,
    percentile_interval,
    point_variances,
)

__all__ = ["CurvatureTestResult", "PowerLawFit", "curvature_test", "fit_power_law"]


def _poly_wls(u: np.ndarray, y: np.ndarray, w: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched weighted polynomial least squares.

    Args:
        u: abscissae ``[P]`` (already centred and scaled for conditioning).
        y: ordinates ``[B, P]``.
        w: weights ``[B, P]``.
        degree: polynomial degree (1 or 2).

    Returns:
        ``(coefficients [B, degree+1] in increasing powers, chi2 [B])``.
    """
    design = np.stack([u**k for k in range(degree + 1)], axis=-1)  # (P, d+1)
    xtwx = np.einsum("pi,bp,pj->bij", design, w, design)  # (B, d+1, d+1)
    xtwy = np.einsum("pi,bp,bp->bi", design, w, y)  # (B, d+1)
    coef = np.linalg.solve(xtwx, xtwy[..., None])[..., 0]
    resid = y - coef @ design.T
    return coef, (w * resid**2).sum(axis=1)


def _scaled_log_x(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(log x - centre) / scale`` for a well-conditioned normal matrix; returns also centre and scale."""
    lx = np.log(x)
    centre = float(lx.mean())
    scale = float(lx.std()) or 1.0
    return (lx - centre) / scale, centre, scale


@dataclass(frozen=True)
class CurvatureTestResult:
    """Outcome of :func:`curvature_test`.

    Attributes:
        statistic: ``T = (chi2_line - chi2_quad) / max(1, chi2_quad / (P - 3))`` (weighted chi-squares).
        p_value: fraction of null (pure power-law) bootstrap replicates with a statistic >= ``statistic``
            (with the +1 correction of Davison & Hinkley 1997, Eq. 4.11).
        rejects_power_law: ``p_value < level``.
        curvature: coefficient ``c`` of ``(ln x)^2`` in the weighted quadratic fit of ``ln L`` (> 0: the
            log-log curve flattens towards large ``x``, as with a floor; < 0: it steepens).
        direction: ``"flattening"`` or ``"steepening"`` (sign of ``curvature``).
        level: test level.
        num_points: design points tested.
        num_bootstrap: null replicates.
    """

    statistic: float
    p_value: float
    rejects_power_law: bool
    curvature: float
    direction: str
    level: float
    num_points: int
    num_bootstrap: int
    null_statistics: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


def _curvature_statistic(c_lin: np.ndarray, c_quad: np.ndarray, num_points: int) -> np.ndarray:
    """Birge-scaled drop in chi2: an F-like ratio when the quadratic itself misfits, the plain chi2
    difference when the quadratic is consistent with the realization spread."""
    dof = num_points - 3
    scale_q = np.maximum(1.0, c_quad / dof) if dof > 0 else np.ones_like(c_quad)
    return np.maximum(c_lin - c_quad, 0.0) / scale_q


def _curvature_on_rows(
    design: Design, rows: np.ndarray, level: float, num_bootstrap: int, rng: np.random.Generator
) -> CurvatureTestResult:
    x = design.x[rows]
    counts = design.counts[rows]
    num_points = rows.size
    u, _, scale = _scaled_log_x(x)
    y = design.log_means()[rows][None, :]  # (1, P)
    w = 1.0 / point_variances(design.log_vars()[rows], counts)[None, :]
    lin, chi2_lin = _poly_wls(u, y, w, 1)
    quad, chi2_quad = _poly_wls(u, y, w, 2)

    def stat(c_lin: np.ndarray, c_quad: np.ndarray) -> np.ndarray:
        return _curvature_statistic(c_lin, c_quad, num_points)

    t_obs = float(stat(chi2_lin, chi2_quad)[0])
    # Null world: the fitted line plus each point's own resampled realization residuals.
    means, variances = bootstrap_log_moments(design, num_bootstrap, rng, rows=rows)  # (B, P)
    y_null = (lin @ np.stack([u**0, u], axis=0))[0][None, :] + (means - y)
    w_null = 1.0 / point_variances(variances, counts)
    _, c_lin_b = _poly_wls(u, y_null, w_null, 1)
    _, c_quad_b = _poly_wls(u, y_null, w_null, 2)
    t_null = stat(c_lin_b, c_quad_b)
    p_value = float((1 + np.count_nonzero(t_null >= t_obs)) / (num_bootstrap + 1))
    curvature = float(quad[0, 2] / scale**2)  # back to natural-log units of x
    return CurvatureTestResult(
        statistic=t_obs,
        p_value=p_value,
        rejects_power_law=p_value < level,
        curvature=curvature,
        direction="flattening" if curvature > 0 else "steepening",
        level=float(level),
        num_points=int(num_points),
        num_bootstrap=int(num_bootstrap),
        null_statistics=np.sort(t_null),
    )


def _replicate_range_ends(
    design: Design,
    end: int,
    means_b: np.ndarray,
    vars_b: np.ndarray,
    null_of: dict[int, np.ndarray],
    level: float,
    min_points: int,
) -> np.ndarray:
    """The ``auto`` curvature rule applied to every bootstrap replicate: points kept per replicate ``[B]``.

    Each replicate drops its own largest-x points while its curvature statistic is significant, so the
    interval includes the uncertainty of the range choice (fixing the full-data range made the intervals
    about 15 % too narrow on pure power laws). The null distribution at each range length is the full-data
    one (``null_of[k]``, sorted): the statistic is nearly pivotal, and a nested bootstrap per replicate
    would cost ``B`` times more.
    """
    num_b = means_b.shape[0]
    ends = np.full(num_b, end)
    active = np.ones(num_b, dtype=bool)
    k = end
    while k >= 4 and active.any():
        rows = np.arange(k)
        u, _, _ = _scaled_log_x(design.x[rows])
        w = 1.0 / point_variances(vars_b[:, rows], design.counts[rows])
        _, c_lin = _poly_wls(u, means_b[:, rows], w, 1)
        _, c_quad = _poly_wls(u, means_b[:, rows], w, 2)
        t = _curvature_statistic(c_lin, c_quad, k)
        null = null_of[k]
        exceed = null.size - np.searchsorted(null, t, side="left")  # #{T_null >= t}
        rejects = (1 + exceed) / (null.size + 1) < level
        active &= rejects & (k > min_points)
        ends[active] = k - 1
        k -= 1
    return ends


def _check_level(level: float) -> None:
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")


def curvature_test(
    x: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    level: float = 0.05,
    num_bootstrap: int = 499,
    seed: int | np.random.Generator = 0,
) -> CurvatureTestResult:
    """Test whether a pure power law ``L = A x^-alpha`` is inadequate for a curve of geometric means.

    Statistic: weighted least squares of ``y_p = mean(ln L)`` on ``ln x`` with weights ``R_p / s_p^2``,
    once with a straight line (the power law) and once with a quadratic (the lowest-order bend: a floor
    ``L -> K`` or slowing down bends the log-log curve upward, an overfitting upturn likewise; a steepening
    pre-asymptotic regime bends it downward). ``T`` is the drop in chi-square, divided by the quadratic's
    reduced chi-square when that exceeds one, so point-to-point scatter beyond the realization spread is not
    mistaken for curvature.

    Calibration: a parametric residual bootstrap under the null. Each replicate puts on the fitted line each
    point's own realization residuals, resampled with replacement (inflated by ``sqrt(R/(R-1))``),
    recomputes means and weights, and evaluates ``T``; ``p = (1 + #{T* >= T}) / (B + 1)``. This accounts for
    the estimated weights and non-Gaussian realization spread at small R, where a chi2(1) or F(1, P-3)
    reference would be miscalibrated. The quadratic was preferred to the saturating form as the alternative
    because it is linear (vectorizable over replicates, no failed optimizations) and also detects upturns.

    Args:
        x: design values ``[P]`` (P >= 3).
        losses_per_point: ``P`` arrays of realization losses ``[R_p]`` (R_p >= 2).
        level: test level (reject when ``p_value < level``).
        num_bootstrap: null replicates.
        seed: integer seed or numpy Generator.

    Returns:
        The :class:`CurvatureTestResult`.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Results B (power law up to where the scaling breaks);
        Davison & Hinkley, Bootstrap Methods and their Application (1997), Sec. 4.2.
    """
    _check_level(level)
    num_bootstrap = check_num_bootstrap(num_bootstrap, minimum=19)
    design = make_design(x, losses_per_point, min_points=3, min_realizations=2)
    return _curvature_on_rows(design, np.arange(design.x.size), level, num_bootstrap, as_rng(seed))


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted ``L = prefactor_ * x^-exponent_`` (natural logs internally; ``x`` in the caller's units).

    Attributes:
        exponent_: alpha.
        prefactor_: A (loss units at x = 1).
        exponent_stderr_: WLS standard error of alpha (Birge-inflated when chi2/dof > 1).
        log_prefactor_stderr_: standard error of ln A.
        exponent_interval_: bootstrap interval of alpha ``(lo, hi)``.
        prefactor_interval_: bootstrap interval of A ``(lo, hi)``.
        confidence: coverage of the intervals.
        chi2_: weighted chi-square of the fit over the fit range.
        dof_: degrees of freedom (points in range - 2).
        x_: all design values, ascending ``[P]``.
        geometric_means_: geometric mean per point ``[P]``.
        log_stderrs_: standard error of each point's mean log loss ``[P]``.
        in_fit_: True for points inside the fit range ``[P]``.
        flagged_precision_: True for points whose geometric mean is within ``precision_margin`` of the
            float32 loss resolution ``[P]``.
        fit_range_: ``(x_min, x_max)`` of the points used.
        range_rule_: the rule that chose the range, in words.
        dropped_: one ``{"x": ..., "reason": ...}`` per point left out, in the order they were dropped.
        residuals_: ``ln GM - ln(fit)`` per point (all points, natural-log units) ``[P]``.
        curvature_: curvature test on the final fit range (None when fewer than 4 points are in range or
            when the range was given as ``(x_min, x_max)``).
        bootstrap_exponents_: alpha per bootstrap replicate ``[B]``.
        bootstrap_log_prefactors_: ln A per bootstrap replicate ``[B]``.
    """

    exponent_: float
    prefactor_: float
    exponent_stderr_: float
    log_prefactor_stderr_: float
    exponent_interval_: tuple[float, float]
    prefactor_interval_: tuple[float, float]
    confidence: float
    chi2_: float
    dof_: int
    x_: np.ndarray
    geometric_means_: np.ndarray
    log_stderrs_: np.ndarray
    in_fit_: np.ndarray
    flagged_precision_: np.ndarray
    fit_range_: tuple[float, float]
    range_rule_: str
    dropped_: list[dict] = field(default_factory=list)
    residuals_: np.ndarray = field(default_factory=lambda: np.empty(0))
    curvature_: CurvatureTestResult | None = None
    bootstrap_exponents_: np.ndarray = field(default_factory=lambda: np.empty(0))
    bootstrap_log_prefactors_: np.ndarray = field(default_factory=lambda: np.empty(0))

    def predict(self, x: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """Fitted loss ``A x^-alpha`` at ``x`` (any shape, > 0)."""
        xs = np.asarray(x, dtype=np.float64)
        return self.prefactor_ * xs ** (-self.exponent_)

    def summary(self) -> dict:
        """JSON-serializable summary (scalars, lists) for tables and reports."""
        return {
            "law": "power_law",
            "exponent": self.exponent_,
            "exponent_stderr": self.exponent_stderr_,
            "exponent_interval": list(self.exponent_interval_),
            "prefactor": self.prefactor_,
            "prefactor_interval": list(self.prefactor_interval_),
            "confidence": self.confidence,
            "chi2": self.chi2_,
            "dof": self.dof_,
            "fit_range": list(self.fit_range_),
            "range_rule": self.range_rule_,
            "num_points_in_fit": int(self.in_fit_.sum()),
            "dropped": list(self.dropped_),
            "flagged_precision_x": [float(v) for v in self.x_[self.flagged_precision_]],
            "curvature_p_value": None if self.curvature_ is None else self.curvature_.p_value,
        }


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    fit_range: str | tuple[float, float] = "auto",
    min_points: int = 4,
    level: float = 0.05,
    precision_margin: float = 10.0,
    resolution: float = FLOAT32_LOSS_RESOLUTION,
    num_bootstrap: int = 2000,
    num_curvature_bootstrap: int = 499,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> PowerLawFit:
    """Fit ``L = A x^-alpha`` to the geometric means of a scaling curve, with bootstrap uncertainties.

    Args:
        x: design values ``[P]`` (dataset sizes, parameter counts or FLOPs; > 0).
        losses_per_point: ``P`` arrays of realization test losses ``[R_p]`` (> 0; R_p >= 2).
        fit_range: ``"auto"`` (the rule in the module docstring), ``"all"`` (every point, flags kept for
            information) or ``(x_min, x_max)`` (inclusive, the caller's choice).
        min_points: the curvature step never shrinks the range below this many points (>= 3).
        level: level of the curvature test used by the range rule.
        precision_margin: points with geometric mean below ``precision_margin * resolution`` are flagged
            (at 10 the float32 rounding contributes about 10 % of the loss or more).
        resolution: loss resolution of the arithmetic (paper 1: 1.9e-7 for float32).
        num_bootstrap: bootstrap replicates for the intervals.
        num_curvature_bootstrap: null replicates per curvature test.
        confidence: coverage of the intervals.
        seed: integer seed or numpy Generator.

    Returns:
        The :class:`PowerLawFit`.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Results B, Figs. 1, 4-7 (eps ~ N^-alpha, geometric means,
        float32 resolution ~1.9e-7).
    """
    _check_level(level)
    check_confidence(confidence)
    num_bootstrap = check_num_bootstrap(num_bootstrap)
    num_curvature_bootstrap = check_num_bootstrap(num_curvature_bootstrap, minimum=19)
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
        raise ValueError(f"min_points must be an integer >= 3, got {min_points!r}")
    if not (precision_margin > 0 and resolution >= 0):
        raise ValueError("precision_margin must be > 0 and resolution >= 0")
    rng = as_rng(seed)
    design = make_design(x, losses_per_point, min_points=3, min_realizations=2)
    num_all = design.x.size
    log_means = design.log_means()
    gms = np.exp(log_means)
    flagged = gms < precision_margin * resolution
    dropped: list[dict] = []
    curvature: CurvatureTestResult | None = None

    if isinstance(fit_range, str) and fit_range == "auto":
        end = int(np.argmax(flagged)) if flagged.any() else num_all
        for i in range(end, num_all):
            dropped.append({"x": float(design.x[i]), "reason": "precision"})
        if end < 3:
            raise ValueError(
                f"only {end} point(s) lie above {precision_margin:g} x the loss resolution {resolution:g} "
                "before the first flagged point; a power-law fit needs at least 3"
            )
        rows = np.arange(end)
        auto_end = end
        nulls: dict[int, np.ndarray] = {}
        while True:
            if rows.size < 4:
                curvature = None
                break
            curvature = _curvature_on_rows(design, rows, level, num_curvature_bootstrap, rng)
            nulls[rows.size] = curvature.null_statistics
            if not curvature.rejects_power_law or rows.size <= min_points:
                break
            dropped.append({"x": float(design.x[rows[-1]]), "reason": f"curvature (p={curvature.p_value:.3g})"})
            rows = rows[:-1]
        rule = (
            f"auto: points from the first one with GM < {precision_margin:g} x {resolution:g} on are "
            f"excluded; then the largest-x point is dropped while the curvature test rejects the power "
            f"law at level {level:g} (never below {min_points} points)"
        )
    elif isinstance(fit_range, str) and fit_range == "all":
        rows = np.arange(num_all)
        rule = "all: every design point"
        if num_all >= 4:  # reported for information: does one power law hold over everything?
            curvature = _curvature_on_rows(design, rows, level, num_curvature_bootstrap, rng)
    elif isinstance(fit_range, str):
        raise ValueError(f"fit_range must be 'auto', 'all' or (x_min, x_max), got {fit_range!r}")
    else:
        try:
            lo, hi = (float(v) for v in fit_range)
        except (TypeError, ValueError):
            raise ValueError(f"fit_range must be 'auto', 'all' or (x_min, x_max), got {fit_range!r}") from None
        rows = np.flatnonzero((design.x >= lo) & (design.x <= hi))
        if np.unique(design.x[rows]).size < 3:
            raise ValueError(f"fit_range ({lo:g}, {hi:g}) holds {rows.size} point(s); a power law needs 3")
        for i in np.setdiff1d(np.arange(num_all), rows):
            dropped.append({"x": float(design.x[i]), "reason": "outside the given fit_range"})
        rule = f"given: {lo:g} <= x <= {hi:g}"

    in_fit = np.zeros(num_all, dtype=bool)
    in_fit[rows] = True
    variances = point_variances(design.log_vars(), design.counts)  # (P,)
    u, centre, scale = _scaled_log_x(design.x[rows])
    y = log_means[rows][None, :]
    w = 1.0 / variances[rows][None, :]
    coef, chi2 = _poly_wls(u, y, w, 1)
    dof = rows.size - 2
    # Covariance of (intercept, slope) in scaled coordinates, Birge-inflated.
    design_mat = np.stack([np.ones_like(u), u], axis=-1)
    cov = np.linalg.inv(design_mat.T @ (w[0][:, None] * design_mat))
    if dof > 0:
        cov = cov * max(1.0, float(chi2[0]) / dof)
    slope = coef[0, 1] / scale
    log_a = coef[0, 0] - slope * centre
    # Linear map (c0, c1) -> (ln A, slope) = (c0 - c1 centre/scale, c1/scale).
    jac = np.array([[1.0, -centre / scale], [0.0, 1.0 / scale]])
    cov_phys = jac @ cov @ jac.T

    if isinstance(fit_range, str) and fit_range == "auto":
        # the range rule is part of the estimator: every replicate chooses its own range
        all_rows = np.arange(auto_end)
        means_b, vars_b = bootstrap_log_moments(design, num_bootstrap, rng, rows=all_rows)
        for k in range(max(4, min_points), auto_end + 1):
            if k not in nulls:
                nulls[k] = _curvature_on_rows(design, np.arange(k), level, num_curvature_bootstrap, rng).null_statistics
        ends = _replicate_range_ends(design, auto_end, means_b, vars_b, nulls, level, min_points)
        slope_b = np.empty(num_bootstrap)
        log_a_b = np.empty(num_bootstrap)
        for k in np.unique(ends):
            sel = ends == k
            u_k, centre_k, scale_k = _scaled_log_x(design.x[:k])
            w_k = 1.0 / point_variances(vars_b[sel][:, :k], design.counts[:k])
            coef_k, _ = _poly_wls(u_k, means_b[sel][:, :k], w_k, 1)
            slope_b[sel] = coef_k[:, 1] / scale_k
            log_a_b[sel] = coef_k[:, 0] - slope_b[sel] * centre_k
    else:
        means_b, vars_b = bootstrap_log_moments(design, num_bootstrap, rng, rows=rows)
        coef_b, _ = _poly_wls(u, means_b, 1.0 / point_variances(vars_b, design.counts[rows]), 1)
        slope_b = coef_b[:, 1] / scale
        log_a_b = coef_b[:, 0] - slope_b * centre
    exp_lo, exp_hi = percentile_interval(-slope_b, confidence)
    la_lo, la_hi = percentile_interval(log_a_b, confidence)

    residuals = log_means - (log_a + slope * np.log(design.x))
    return PowerLawFit(
        exponent_=float(-slope),
        prefactor_=float(np.exp(log_a)),
        exponent_stderr_=float(np.sqrt(cov_phys[1, 1])),
        log_prefactor_stderr_=float(np.sqrt(cov_phys[0, 0])),
        exponent_interval_=(float(exp_lo), float(exp_hi)),
        prefactor_interval_=(float(np.exp(la_lo)), float(np.exp(la_hi))),
        confidence=float(confidence),
        chi2_=float(chi2[0]),
        dof_=int(dof),
        x_=design.x,
        geometric_means_=gms,
        log_stderrs_=np.sqrt(variances),
        in_fit_=in_fit,
        flagged_precision_=flagged,
        fit_range_=(float(design.x[rows[0]]), float(design.x[rows[-1]])),
        range_rule_=rule,
        dropped_=dropped,
        residuals_=residuals,
        curvature_=curvature,
        bootstrap_exponents_=-slope_b,
        bootstrap_log_prefactors_=log_a_b,
    )

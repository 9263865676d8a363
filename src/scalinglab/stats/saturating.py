"""Saturating scaling-law fits ``L = (X_c / X)^alpha + K`` in log-sum-exp form with a robust loss.

Model (paper 3, scaling-laws-amplitude-surrogates, Eq. 1): the loss falls as a power law of the resource X
(data, parameters or FLOPs) until it reaches the plateau ``K`` set by the other resources. Parameters are
fitted as ``theta = (alpha, ln X_c, ln K)`` on the log of each design point's geometric mean:

    ln L(X) = logaddexp(alpha (ln X_c - ln X), ln K),

which stays finite and smooth for any K (paper 3 fits the logarithm as well, Sec. 3.2). Residuals are
standardized by each point's standard error of the mean log loss, ``r_p = (y_p - ln L(X_p)) / se_p``, and
minimized with the Huber loss (scipy ``least_squares(loss="huber", f_scale=1.345)``: 95 % efficiency for
Gaussian residuals, bounded influence of an aberrant design point).

Global search: a variable-projection scan over alpha. For each alpha on a log grid the model is linear in
``(X_c^alpha, K)`` in loss space; a weighted linear solve (relative weights, so approximately the log-space
objective) gives the best amplitude and floor. The few best alphas (plus two fixed floorless starts) are
refined together by a batched Huber Levenberg-Marquardt, and the lowest-cost converged one is polished by
scipy's bounded trust-region solver, whose convergence status is reported (``converged_``).
Bounds: ``alpha in [1e-3, 20]``, ``ln K`` between ``ln(min GM) - 25`` (K ~ 0: "unconstrained from below",
paper 3 App. C) and ``ln(max GM)``.

Uncertainties: bootstrap over realizations within each design point (residuals inflated by
``sqrt(R/(R-1))``), all replicates refitted at once by a vectorized Levenberg-Marquardt with Huber IRLS
weights warm-started at the full-data optimum (replicates it does not settle get the full global search);
equal-tailed percentile intervals for alpha, X_c and K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from scalinglab.progress import progress_bar
from scalinglab.stats._design import (
    Design,
    as_rng,
    bootstrap_log_moments,
    check_confidence,
    check_num_bootstrap,
    make_design,
    percentile_interval,
    point_variances,
)
from scalinglab.stats._optim import HUBER_SCALE, batched_huber_lm, huber

__all__ = ["SaturatingFit", "fit_saturating", "saturating_loss"]

_ALPHA_BOUNDS = (1e-3, 20.0)
_LOG_K_SPAN = 25.0  # ln K may go this far below ln(min GM): K ~ 0 within float precision of the fit


def saturating_loss(x: np.ndarray | float, alpha: float, x_c: float, floor: float) -> np.ndarray:
    """``(x_c / x)^alpha + floor`` evaluated stably (loss units; ``x`` > 0, any shape)."""
    lx = np.log(np.asarray(x, dtype=np.float64))
    log_floor = np.log(floor) if floor > 0 else -np.inf
    return np.exp(np.logaddexp(alpha * (np.log(x_c) - lx), log_floor))


def _model(theta: np.ndarray, lx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log model and its Jacobian ``[P, 3]`` for ``theta = (alpha, ln X_c, ln K)``."""
    alpha, log_xc, log_k = theta
    power = alpha * (log_xc - lx)
    m = np.logaddexp(power, log_k)
    s = np.exp(power - m)  # share of the power term in the loss, in (0, 1)
    jac = np.stack([s * (log_xc - lx), s * alpha, 1.0 - s], axis=-1)
    return m, jac


def _scan_alpha(lx: np.ndarray, y: np.ndarray, se: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Variable-projection scan: for each alpha the best ``(ln X_c, ln K)`` and the log-space cost.

    Returns:
        ``[num_alpha, 4]`` rows of ``(alpha, ln X_c, ln K, cost)``.
    """
    gm = np.exp(y)
    basis = np.exp(-alphas[:, None] * lx[None, :])  # (A, P): x^-alpha
    wt = 1.0 / (gm * se) ** 2  # relative weights: d ln L = dL / L
    # Weighted normal equations for L ~ c basis + K, solved per alpha in closed form.
    s_bb = (wt * basis**2).sum(1)
    s_b1 = (wt * basis).sum(1)
    s_11 = wt.sum()
    s_by = (wt * basis * gm).sum(1)
    s_1y = (wt * gm).sum()
    det = s_bb * s_11 - s_b1**2
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (s_by * s_11 - s_b1 * s_1y) / det
        k = (s_bb * s_1y - s_b1 * s_by) / det
    tiny = gm.min() * np.exp(-_LOG_K_SPAN)
    c = np.where(np.isfinite(c) & (c > 0), c, tiny)
    k = np.clip(np.where(np.isfinite(k), k, tiny), tiny, gm.max())
    log_xc = np.log(c) / alphas
    pred = np.logaddexp(np.log(c)[:, None] - alphas[:, None] * lx[None, :], np.log(k)[:, None])
    cost = (((y[None, :] - pred) / se[None, :]) ** 2).sum(1)
    return np.stack([alphas, log_xc, np.log(k), cost], axis=-1)


def _solve(theta0: np.ndarray, lx: np.ndarray, y: np.ndarray, se: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    def resid(theta):
        return (y - _model(theta, lx)[0]) / se

    def jac(theta):
        return -_model(theta, lx)[1] / se[:, None]

    start = np.clip(theta0, lower + 1e-9, upper - 1e-9)
    return least_squares(
        resid,
        start,
        jac=jac,
        bounds=(lower, upper),
        loss="huber",
        f_scale=HUBER_SCALE,
        method="trf",
        x_scale="jac",
        max_nfev=400,
    )


def _converged(res) -> bool:
    # status 1-4: a gradient, cost or step tolerance was met; 0 means max_nfev ran out.
    return bool(res.status > 0 and np.all(np.isfinite(res.x)))


def _bounds(lx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    span = lx.max() - lx.min()
    lower = np.array([_ALPHA_BOUNDS[0], lx.min() - 60.0 - span, y.min() - _LOG_K_SPAN])
    upper = np.array([_ALPHA_BOUNDS[1], lx.max() + 60.0 + span, y.max()])
    return lower, upper


def _fit_once(lx: np.ndarray, y: np.ndarray, se: np.ndarray, num_starts: int) -> tuple[np.ndarray, bool, float]:
    """Global fit of one curve: alpha scan, batched refinement of all starts, scipy polish of the best."""
    lower, upper = _bounds(lx, y)
    scan = _scan_alpha(lx, y, se, np.geomspace(0.02, 10.0, 80))
    best_rows = scan[np.argsort(scan[:, 3])[: max(num_starts - 2, 1)], :3]
    # two floorless starts anchored at the first point, in case the scan's linear proxy misleads
    fixed = np.array([[a, lx[0] + y[0] / a, y.min() - 5.0] for a in (0.5, 2.0)])
    starts = np.clip(np.concatenate([best_rows, fixed], axis=0), lower + 1e-9, upper - 1e-9)
    num = starts.shape[0]
    cand, ok = _refine_batched(starts, lx, np.tile(y, (num, 1)), np.tile(se, (num, 1)), lower, upper)
    costs = np.array([huber((y - _model(t, lx)[0]) / se).sum() if np.all(np.isfinite(t)) else np.inf for t in cand])
    pick = int(np.argmin(np.where(ok, costs, np.inf))) if ok.any() else int(np.argmin(costs))
    # polish with scipy's trust-region reflective solver (its own convergence tests are the reference)
    res = _solve(cand[pick] if np.all(np.isfinite(cand[pick])) else starts[pick], lx, y, se, lower, upper)
    if _converged(res):
        return res.x, True, float(huber((y - _model(res.x, lx)[0]) / se).sum())
    return cand[pick], bool(ok[pick]), float(costs[pick])


def _refine_batched(
    theta0: np.ndarray, lx: np.ndarray, y: np.ndarray, se: np.ndarray, lower: np.ndarray, upper: np.ndarray,
    *, weights: np.ndarray | None = None, threshold: float | np.ndarray = HUBER_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Refit ``B`` curves at once from ``theta0`` by the batched Huber Levenberg-Marquardt.

    Works in the better-conditioned coordinates ``phi = (alpha, p, ln K)`` with ``p = alpha (ln X_c - u_ref)``
    the log of the power term at the central ``u_ref = mean(ln x)`` (``alpha`` and ``ln X_c`` are strongly
    correlated when X_c lies far outside the data). Minimizes the same objective as the scipy path.

    Args:
        theta0: start ``(alpha, ln X_c, ln K)``, one ``[3]`` for all curves or one per curve ``[B, 3]``.
        lx: ``ln x`` ``[P]``.
        y: log geometric means ``[B, P]``.
        se: standard errors of ``y`` ``[B, P]``.
        lower, upper: bounds on theta ``[3]``.
        weights: optional point weights ``[B, P]`` (user weights or case-bootstrap multiplicities).
        threshold: Huber threshold in standardized units (scalar or ``[B, P]``).

    Returns:
        ``(theta [B, 3], converged [B])``.
    """
    u_ref = float(lx.mean())
    du = lx - u_ref  # [P]

    def evaluate(ph, rows):
        power = ph[:, 1:2] - ph[:, 0:1] * du[None, :]  # (b, P)
        m = np.logaddexp(power, ph[:, 2:3])
        s = np.exp(power - m)  # share of the power term
        jr = -np.stack([-s * du[None, :], s, 1.0 - s], axis=-1) / se[rows][..., None]  # (b, P, 3)
        return (y[rows] - m) / se[rows], jr

    th0 = np.broadcast_to(np.asarray(theta0, dtype=np.float64), (y.shape[0], 3))
    phi0 = np.stack([th0[:, 0], th0[:, 0] * (th0[:, 1] - u_ref), th0[:, 2]], axis=-1)
    lo = np.array([lower[0], -np.inf, lower[2]])
    hi = np.array([upper[0], np.inf, upper[2]])
    phi, converged = batched_huber_lm(phi0, evaluate, lo, hi, weights=weights, threshold=threshold)
    theta = np.stack([phi[:, 0], u_ref + phi[:, 1] / phi[:, 0], phi[:, 2]], axis=-1)
    theta[:, 1] = np.clip(theta[:, 1], lower[1], upper[1])
    return theta, converged


@dataclass(frozen=True)
class SaturatingFit:
    """A fitted ``L = (x_c_ / x)^exponent_ + floor_``.

    Attributes:
        exponent_: alpha.
        x_c_: X_c (units of x): the resource at which the power term equals 1 loss unit.
        floor_: K (loss units).
        exponent_interval_, x_c_interval_, floor_interval_: bootstrap intervals ``(lo, hi)``.
        exponent_stderr_: bootstrap standard deviation of alpha.
        confidence: coverage of the intervals.
        converged_: the full-data optimum met a convergence criterion.
        floor_unconstrained_: the floor sits at (or its interval reaches) the lower bound, i.e. K is
            compatible with 0 (paper 3 App. C writes "K ~ 0").
        cost_: Huber cost at the optimum (standardized log residuals).
        x_: design values ascending ``[P]``.
        geometric_means_: per point ``[P]``.
        residuals_: ``ln GM - ln(fit)`` per point ``[P]``.
        bootstrap_params_: ``[B, 3]`` rows ``(alpha, X_c, K)`` per replicate (NaN where it failed).
        bootstrap_failures_: replicates that did not converge (excluded from the intervals).
    """

    exponent_: float
    x_c_: float
    floor_: float
    exponent_interval_: tuple[float, float]
    x_c_interval_: tuple[float, float]
    floor_interval_: tuple[float, float]
    exponent_stderr_: float
    confidence: float
    converged_: bool
    floor_unconstrained_: bool
    cost_: float
    x_: np.ndarray
    geometric_means_: np.ndarray
    residuals_: np.ndarray
    bootstrap_params_: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    bootstrap_failures_: int = 0

    def predict(self, x: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """Fitted loss at ``x`` (any shape, > 0)."""
        return saturating_loss(x, self.exponent_, self.x_c_, self.floor_)

    def summary(self) -> dict:
        """JSON-serializable summary for tables and reports."""
        return {
            "law": "saturating",
            "exponent": self.exponent_,
            "exponent_stderr": self.exponent_stderr_,
            "exponent_interval": list(self.exponent_interval_),
            "x_c": self.x_c_,
            "x_c_interval": list(self.x_c_interval_),
            "floor": self.floor_,
            "floor_interval": list(self.floor_interval_),
            "floor_unconstrained": self.floor_unconstrained_,
            "confidence": self.confidence,
            "converged": self.converged_,
            "bootstrap_failures": self.bootstrap_failures_,
        }


def _design_arrays(design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lx = np.log(design.x)
    y = design.log_means()
    se = np.sqrt(point_variances(design.log_vars(), design.counts))
    return lx, y, se


def fit_saturating(
    x: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    num_bootstrap: int = 200,
    num_starts: int = 6,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    quiet: bool = False,
) -> SaturatingFit:
    """Fit ``L = (X_c / X)^alpha + K`` to a scaling curve with a Huber loss on log residuals.

    Args:
        x: design values ``[P]`` (> 0; P >= 4 distinct values for three parameters plus one dof).
        losses_per_point: ``P`` arrays of realization losses ``[R_p]`` (> 0; R_p >= 2).
        num_bootstrap: bootstrap replicates (each a bounded nonlinear refit).
        num_starts: refinements from the alpha scan (the best ``num_starts - 2`` grid alphas) plus two
            fixed floorless starts.
        confidence: coverage of the intervals.
        seed: integer seed or numpy Generator.
        quiet: no progress bar.

    Returns:
        The :class:`SaturatingFit`.

    Reference:
        Paper 3 (scaling-laws-amplitude-surrogates), Eq. (1), Sec. 3.2 and App. C.
    """
    check_confidence(confidence)
    num_bootstrap = check_num_bootstrap(num_bootstrap)
    if isinstance(num_starts, bool) or not isinstance(num_starts, int) or num_starts < 3:
        raise ValueError(f"num_starts must be an integer >= 3, got {num_starts!r}")
    rng = as_rng(seed)
    design = make_design(x, losses_per_point, min_points=4, min_realizations=2)
    lx, y, se = _design_arrays(design)
    theta, ok, cost = _fit_once(lx, y, se, num_starts)
    lower, upper = _bounds(lx, y)

    means_b, vars_b = bootstrap_log_moments(design, num_bootstrap, rng)
    se_b = np.sqrt(point_variances(vars_b, design.counts))
    params, ok_b = _refine_batched(theta, lx, means_b, se_b, lower, upper)
    params[~ok_b] = np.nan
    failures = 0
    retry = np.flatnonzero(~ok_b)
    # replicates the batched warm start did not settle get the full global search, one by one
    with progress_bar(retry.size, "saturating-fit bootstrap retries", quiet=quiet or retry.size == 0) as bar:
        for b in retry:
            tb, okb, _ = _fit_once(lx, means_b[b], se_b[b], num_starts)
            if okb:
                params[b] = tb
            else:
                failures += 1
            bar.advance()
    alpha_b, log_xc_b, log_k_b = params.T
    a_lo, a_hi = percentile_interval(alpha_b, confidence)
    xc_lo, xc_hi = percentile_interval(log_xc_b, confidence)
    k_lo, k_hi = percentile_interval(log_k_b, confidence)
    at_floor_bound = lambda v: v <= lower[2] + 1.0  # within a factor e of the lower bound
    return SaturatingFit(
        exponent_=float(theta[0]),
        x_c_=float(np.exp(theta[1])),
        floor_=float(np.exp(theta[2])),
        exponent_interval_=(float(a_lo), float(a_hi)),
        x_c_interval_=(float(np.exp(xc_lo)), float(np.exp(xc_hi))),
        floor_interval_=(float(np.exp(k_lo)), float(np.exp(k_hi))),
        exponent_stderr_=float(np.nanstd(alpha_b, ddof=1)),
        confidence=float(confidence),
        converged_=ok,
        floor_unconstrained_=bool(at_floor_bound(theta[2]) or at_floor_bound(k_lo)),
        cost_=cost,
        x_=design.x,
        geometric_means_=np.exp(y),
        residuals_=y - _model(theta, lx)[0],
        bootstrap_params_=np.stack([alpha_b, np.exp(log_xc_b), np.exp(log_k_b)], axis=-1),
        bootstrap_failures_=failures,
    )

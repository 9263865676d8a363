"""Joint scaling law over model size and dataset size, ``L(N_M, N_D)``.

Form (additive, "Chinchilla-style"; beyond papers 1 and 3, which fit one axis at a time):

    L(N_M, N_D) = (A / N_M)^a_M + (B / N_D)^a_D + K.

Each resource contributes its own power-law term and ``K`` is the loss neither can remove; fixing one axis
reduces it to paper 3's 1-D law (Eq. 1) with floor ``K_X = K + (other term)``, so the 1-D fits and the joint
fit can be compared directly. (Kaplan et al.'s form ``[(A/N_M)^(a_M/a_D) + B/N_D]^a_D`` was not chosen: its
single outer exponent ties the two axes together and it has no irreducible floor, which both papers see.)

Fit: on the log geometric mean of each (N_M, N_D) point, ``ln L = logsumexp(a_M (ln A - ln N_M),
a_D (ln B - ln N_D), ln K)``, residuals standardized by each point's standard error of the mean log loss,
Huber loss, bounds. Starts: a variable-projection grid over ``(a_M, a_D)`` (the model is linear in
``(A^a_M, B^a_D, K)`` in loss space); the best few are refined together by the batched Huber
Levenberg-Marquardt and the best is polished by scipy ``least_squares(loss="huber")``. Uncertainties: bootstrap over
realizations within each point, all replicates refitted at once by the batched Huber Levenberg-Marquardt,
equal-tailed percentile intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from scalinglab.stats._design import (
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

__all__ = ["JointFit", "fit_joint", "joint_loss"]

_EXP_BOUNDS = (1e-3, 20.0)
_LOG_K_SPAN = 25.0


def joint_loss(
    n_model: np.ndarray | float,
    n_data: np.ndarray | float,
    a_m: float,
    scale_m: float,
    a_d: float,
    scale_d: float,
    floor: float,
) -> np.ndarray:
    """``(scale_m / n_model)^a_m + (scale_d / n_data)^a_d + floor`` (loss units, broadcasting)."""
    nm = np.asarray(n_model, dtype=np.float64)
    nd = np.asarray(n_data, dtype=np.float64)
    return (scale_m / nm) ** a_m + (scale_d / nd) ** a_d + floor


def _log_model(theta: np.ndarray, um: np.ndarray, ud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ln L`` and its Jacobian ``[..., P, 5]`` for ``theta [..., 5] = (a_M, ln A, a_D, ln B, ln K)``."""
    th = np.asarray(theta)[..., None, :]
    tm = th[..., 0] * (th[..., 1] - um)
    td = th[..., 2] * (th[..., 3] - ud)
    tk = np.broadcast_to(th[..., 4], tm.shape)
    m = np.logaddexp(np.logaddexp(tm, td), tk)
    sm, sd, sk = np.exp(tm - m), np.exp(td - m), np.exp(tk - m)
    jac = np.stack([sm * (th[..., 1] - um), sm * th[..., 0], sd * (th[..., 3] - ud), sd * th[..., 2], sk], -1)
    return m, jac


def _grid_starts(um, ud, y, se, num: int) -> np.ndarray:
    grid = np.geomspace(0.05, 5.0, 10)
    am, ad = (g.ravel() for g in np.meshgrid(grid, grid, indexing="ij"))  # (G,)
    gm = np.exp(y)
    bm = np.exp(-am[:, None] * um[None, :])  # (G, P)
    bd = np.exp(-ad[:, None] * ud[None, :])
    basis = np.stack([bm, bd, np.ones_like(bm)], axis=-1)  # (G, P, 3)
    wt = 1.0 / (gm * se) ** 2  # relative weights approximate the log-space objective
    lhs = np.einsum("gpi,p,gpj->gij", basis, wt, basis) + 1e-300 * np.eye(3)
    rhs = np.einsum("gpi,p,p->gi", basis, wt, gm)
    coef = np.stack([np.linalg.lstsq(lhs[g], rhs[g], rcond=None)[0] for g in range(lhs.shape[0])])
    tiny = gm.min() * np.exp(-_LOG_K_SPAN)
    coef = np.clip(np.where(np.isfinite(coef), coef, tiny), tiny, None)
    log_c = np.log(coef)
    theta = np.stack([am, log_c[:, 0] / am, ad, log_c[:, 1] / ad, np.minimum(log_c[:, 2], y.max())], -1)
    m, _ = _log_model(theta, um, ud)
    cost = (((y - m) / se) ** 2).sum(-1)
    return theta[np.argsort(cost)[:num]]


def _bounds(um, ud, y) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([_EXP_BOUNDS[0], um.min() - 80.0, _EXP_BOUNDS[0], ud.min() - 80.0, y.min() - _LOG_K_SPAN])
    hi = np.array([_EXP_BOUNDS[1], um.max() + 80.0, _EXP_BOUNDS[1], ud.max() + 80.0, y.max()])
    return lo, hi


def _refine_batched(theta0, um, ud, y, se, lo, hi, max_iter: int = 300, *, weights=None,
                    threshold=HUBER_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Refit ``B`` problems at once by the batched Huber Levenberg-Marquardt.

    Works in the better-conditioned coordinates ``(a_M, p_M, a_D, p_D, ln K)`` with ``p = a (ln scale - u_ref)``
    the log of each power term at the centre of its axis (exponent and scale are strongly correlated when
    the scale lies far outside the data).

    Args:
        theta0: starts ``(a_M, ln A, a_D, ln B, ln K)``: ``[5]`` for all problems or ``[B, 5]``.
        um, ud: ``ln N_M``, ``ln N_D`` ``[P]``.
        y, se: log geometric means and their standard errors ``[B, P]``.
        lo, hi: bounds on theta ``[5]``.
        max_iter: iterations.
        weights: optional point weights ``[B, P]`` (user weights or case-bootstrap multiplicities).
        threshold: Huber threshold in standardized units (scalar or ``[B, P]``; ``inf``: least squares).

    Returns:
        ``(theta [B, 5], converged [B])``.
    """
    cm, cd = float(um.mean()), float(ud.mean())
    dm, dd = um - cm, ud - cd

    def evaluate(ph, rows):
        tm = ph[:, 1:2] - ph[:, 0:1] * dm[None, :]  # (b, P)
        td = ph[:, 3:4] - ph[:, 2:3] * dd[None, :]
        m = np.logaddexp(np.logaddexp(tm, td), ph[:, 4:5])
        sm, sd = np.exp(tm - m), np.exp(td - m)
        dmod = np.stack([-sm * dm, sm, -sd * dd, sd, 1.0 - sm - sd], axis=-1)  # d ln L / d phi (b, P, 5)
        return (y[rows] - m) / se[rows], -dmod / se[rows][..., None]

    th = np.broadcast_to(np.asarray(theta0, dtype=np.float64), (y.shape[0], 5))
    phi0 = np.stack([th[:, 0], th[:, 0] * (th[:, 1] - cm), th[:, 2], th[:, 2] * (th[:, 3] - cd), th[:, 4]], -1)
    plo = np.array([lo[0], -np.inf, lo[2], -np.inf, lo[4]])
    phi_hi = np.array([hi[0], np.inf, hi[2], np.inf, hi[4]])
    phi, ok = batched_huber_lm(phi0, evaluate, plo, phi_hi, max_iter=max_iter, weights=weights, threshold=threshold)
    theta = np.stack([phi[:, 0], cm + phi[:, 1] / phi[:, 0], phi[:, 2], cd + phi[:, 3] / phi[:, 2], phi[:, 4]], -1)
    theta[:, 1] = np.clip(theta[:, 1], lo[1], hi[1])
    theta[:, 3] = np.clip(theta[:, 3], lo[3], hi[3])
    return theta, ok


def _fit_once(um, ud, y, se, num_starts: int, weights=None, threshold=HUBER_SCALE) -> tuple[np.ndarray, bool]:
    """One curve: exponent-grid starts, batched refinement of all, scipy polish of the best.

    scipy's Huber loss takes one threshold and no weights; with point weights or per-point thresholds the
    polish is skipped and the batched solver (which minimizes exactly that objective) gives the answer.
    """
    lo, hi = _bounds(um, ud, y)
    starts = np.clip(_grid_starts(um, ud, y, se, num_starts), lo + 1e-9, hi - 1e-9)
    num = starts.shape[0]
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), y.shape)
    cand, ok = _refine_batched(starts, um, ud, np.tile(y, (num, 1)), np.tile(se, (num, 1)), lo, hi,
                               weights=np.tile(w, (num, 1)), threshold=np.tile(thr, (num, 1)))
    cost = np.array(
        [(w * huber((y - _log_model(t, um, ud)[0]) / se, thr)).sum() if np.all(np.isfinite(t)) else np.inf
         for t in cand]
    )
    pick = int(np.argmin(np.where(ok, cost, np.inf))) if ok.any() else int(np.argmin(cost))
    start = cand[pick] if np.all(np.isfinite(cand[pick])) else starts[pick]
    if np.any(w != 1.0) or np.unique(thr).size > 1:
        return cand[pick], bool(ok[pick])
    scalar = float(thr.flat[0])

    def resid(theta):
        return (y - _log_model(theta, um, ud)[0]) / se

    def jac(theta):
        return -_log_model(theta, um, ud)[1] / se[:, None]

    # polish with scipy's trust-region reflective solver (its convergence status is the one reported)
    res = least_squares(
        resid,
        np.clip(start, lo + 1e-9, hi - 1e-9),
        jac=jac,
        bounds=(lo, hi),
        loss="huber" if np.isfinite(scalar) else "linear",
        f_scale=scalar if np.isfinite(scalar) else 1.0,
        x_scale="jac",
        max_nfev=200,
    )
    if res.status > 0 and np.all(np.isfinite(res.x)):
        return res.x, True
    return cand[pick], bool(ok[pick])


@dataclass(frozen=True)
class JointFit:
    """A fitted ``L = (scale_model_ / N_M)^exponent_model_ + (scale_data_ / N_D)^exponent_data_ + floor_``.

    Attributes:
        exponent_model_, exponent_data_: a_M and a_D.
        scale_model_, scale_data_: A (parameters) and B (samples).
        floor_: K (loss units).
        intervals_: bootstrap interval ``(lo, hi)`` per parameter name (``exponent_model``,
            ``scale_model``, ``exponent_data``, ``scale_data``, ``floor``).
        confidence: coverage of the intervals.
        converged_: the full-data optimum met a convergence criterion.
        residuals_: ``ln GM - ln(fit)`` per point ``[P]`` (input order).
        bootstrap_params_: ``[B, 5]`` rows ``(a_M, A, a_D, B, K)`` (NaN for failed replicates).
        bootstrap_failures_: replicates that did not converge.
        goodness_: goodness of fit (chi2 or its Huber analogue; the residual RMS for single-run data).
        flags_: one line per problem (poor fit, parameter at a bound, an axis that varies < 2x, an exponent
            whose interval spans more than its value).
        resampling_: ``"realizations"`` (bootstrap within each point) or ``"points"`` (cases).
        n_model_range_, n_data_range_: ``(min, max)`` of the measured N_M and N_D (extrapolation checks).
    """

    exponent_model_: float
    scale_model_: float
    exponent_data_: float
    scale_data_: float
    floor_: float
    intervals_: dict
    confidence: float
    converged_: bool
    residuals_: np.ndarray
    bootstrap_params_: np.ndarray = field(default_factory=lambda: np.empty((0, 5)))
    bootstrap_failures_: int = 0
    goodness_: GoodnessOfFit | None = None
    flags_: tuple[str, ...] = ()
    resampling_: str = "realizations"
    n_model_range_: tuple[float, float] = (float("nan"), float("nan"))
    n_data_range_: tuple[float, float] = (float("nan"), float("nan"))

    def predict(self, n_model: np.ndarray | float, n_data: np.ndarray | float) -> np.ndarray:
        """Fitted loss at ``(N_M, N_D)`` (broadcasting)."""
        return joint_loss(
            n_model,
            n_data,
            self.exponent_model_,
            self.scale_model_,
            self.exponent_data_,
            self.scale_data_,
            self.floor_,
        )

    def summary(self) -> dict:
        """JSON-serializable summary."""
        return {
            "law": "joint",
            "form": "(A/N_M)^a_M + (B/N_D)^a_D + K",
            "exponent_model": self.exponent_model_,
            "scale_model": self.scale_model_,
            "exponent_data": self.exponent_data_,
            "scale_data": self.scale_data_,
            "floor": self.floor_,
            "intervals": {k: list(v) for k, v in self.intervals_.items()},
            "confidence": self.confidence,
            "converged": self.converged_,
            "bootstrap_failures": self.bootstrap_failures_,
            "resampling": self.resampling_,
            "n_model_range": list(self.n_model_range_),
            "n_data_range": list(self.n_data_range_),
            "flags": list(self.flags_),
            **(self.goodness_.summary() if self.goodness_ is not None else {}),
        }


def fit_joint(
    n_model: Sequence[float] | np.ndarray,
    n_data: Sequence[float] | np.ndarray,
    losses_per_point: Sequence[Sequence[float] | np.ndarray],
    *,
    num_bootstrap: int = 200,
    num_starts: int = 5,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    weights: Sequence[float] | np.ndarray | None = None,
    huber_delta: float | None = None,
    resampling: str = "auto",
) -> JointFit:
    """Fit ``L(N_M, N_D) = (A/N_M)^a_M + (B/N_D)^a_D + K`` over a grid of (model size, dataset size) points.

    One run per point is accepted (published scaling ladders have one): the residuals are then in plain
    log-loss units (least squares unless ``huber_delta`` is set) and the bootstrap resamples points.

    Args:
        n_model: model size N_M per point ``[P]`` (parameters, > 0).
        n_data: dataset size N_D per point ``[P]`` (samples, > 0).
        losses_per_point: ``P`` arrays of realization losses ``[R_p]`` (> 0; R_p >= 1).
        num_bootstrap: bootstrap replicates.
        num_starts: refinements from the best points of the exponent grid.
        confidence: coverage of the intervals.
        seed: integer seed or numpy Generator.
        weights: optional point weights ``[P]`` (multiply each point's term of the objective).
        huber_delta: Huber threshold in units of log loss (default: 1.345 standard errors of each point with
            realization spreads; least squares for single-run data).
        resampling: ``"auto"`` (realizations where every point has >= 2, else points), ``"realizations"``
            or ``"points"``.

    Returns:
        The :class:`JointFit`.
    """
    check_confidence(confidence)
    num_bootstrap = check_num_bootstrap(num_bootstrap)
    if isinstance(num_starts, bool) or not isinstance(num_starts, int) or num_starts < 1:
        raise ValueError(f"num_starts must be a positive integer, got {num_starts!r}")
    nm = np.asarray(n_model, dtype=np.float64)
    nd = np.asarray(n_data, dtype=np.float64)
    if nm.ndim != 1 or nd.shape != nm.shape:
        raise ValueError(f"n_model and n_data must be 1-D of equal length, got {nm.shape} and {nd.shape}")
    for name, arr in (("n_model", nm), ("n_data", nd)):
        if not np.all(np.isfinite(arr) & (arr > 0)):
            raise ValueError(f"{name} must be finite and > 0")
        if np.unique(arr).size < 2:
            raise ValueError(f"{name} takes a single value; a joint fit needs at least 2 values on each axis")
    if nm.size < 6:
        raise ValueError(f"a joint fit has 5 parameters and needs at least 6 points, got {nm.size}")
    if resampling not in ("auto", "realizations", "points"):
        raise ValueError(f"resampling must be 'auto', 'realizations' or 'points', got {resampling!r}")
    if huber_delta is not None and not (np.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be a positive number (log-loss units), got {huber_delta!r}")
    # Points are indexed 1..P so the design keeps the input order (the 2-D axes are carried separately).
    design = make_design(np.arange(1.0, nm.size + 1), losses_per_point, x_name="point")
    w = check_weights(weights, nm.size)
    has_spread = bool(np.all(design.counts >= 2))
    if resampling == "auto":
        resampling = "realizations" if has_spread else "points"
    if resampling == "realizations" and not has_spread:
        raise ValueError("resampling='realizations' needs at least 2 realizations at every point; "
                         "use 'points' (or 'auto') for single-run data")
    rng = as_rng(seed)
    um, ud = np.log(nm), np.log(nd)
    y = design.log_means()
    if np.any(design.counts >= 2):
        se = np.sqrt(point_variances(design.log_vars(), design.counts))
    else:
        se = np.ones_like(y)  # no realization spread anywhere: residuals in plain log-loss units
    thr = np.full(y.shape, HUBER_SCALE if has_spread else np.inf) if huber_delta is None else huber_delta / se
    theta, ok = _fit_once(um, ud, y, se, num_starts, weights=w, threshold=thr)
    lo, hi = _bounds(um, ud, y)

    if resampling == "realizations":
        means_b, vars_b = bootstrap_log_moments(design, num_bootstrap, rng)
        se_b = np.sqrt(point_variances(vars_b, design.counts))
        w_b = np.broadcast_to(w, means_b.shape).copy()
    else:
        means_b = np.broadcast_to(y, (num_bootstrap, y.size)).copy()
        se_b = np.broadcast_to(se, means_b.shape).copy()
        w_b = case_bootstrap_weights(y.size, num_bootstrap, rng) * w[None]
    thr_b = np.broadcast_to(thr, means_b.shape) if huber_delta is None else huber_delta / se_b

    params, ok_b = _refine_batched(theta, um, ud, means_b, se_b, lo, hi, weights=w_b, threshold=thr_b)
    params[~ok_b] = np.nan
    failures = 0
    for b in np.flatnonzero(~ok_b):
        tb, okb = _fit_once(um, ud, means_b[b], se_b[b], num_starts, weights=w_b[b], threshold=thr_b[b])
        if okb:
            params[b] = tb
        else:
            failures += 1
    phys = params.copy()
    for j in (1, 3, 4):
        phys[:, j] = np.exp(params[:, j])
    intervals = {}
    for j, name in enumerate(("exponent_model", "scale_model", "exponent_data", "scale_data", "floor")):
        lo_j, hi_j = percentile_interval(params[:, j], confidence)
        if j in (1, 3, 4):
            lo_j, hi_j = np.exp(lo_j), np.exp(hi_j)
        intervals[name] = (float(lo_j), float(hi_j))
    residuals = y - _log_model(theta, um, ud)[0]
    gof = goodness_of_fit(residuals, se if np.any(design.counts >= 2) else None, 5, weights=w, threshold=thr)
    flags = [f for f in (gof.flag(), range_flag(nm, "N_M"), range_flag(nd, "N_D")) if f]
    flags += bound_flags(theta, lo, hi, ["a_M", "ln A", "a_D", "ln B", "ln K"], skip=("ln K",))
    for name, value in (("exponent_model", theta[0]), ("exponent_data", theta[2])):
        a, b = intervals[name]
        if np.isfinite(a) and np.isfinite(b) and b - a > max(1.0, abs(value)):
            flags.append(f"unconstrained: the {confidence:.0%} interval of {name} spans {a:.3g}..{b:.3g}")
    if not ok:
        flags.append("not converged: the full-data optimum met no convergence criterion")
    return JointFit(
        exponent_model_=float(theta[0]),
        scale_model_=float(np.exp(theta[1])),
        exponent_data_=float(theta[2]),
        scale_data_=float(np.exp(theta[3])),
        floor_=float(np.exp(theta[4])),
        intervals_=intervals,
        confidence=float(confidence),
        converged_=ok,
        residuals_=residuals,
        bootstrap_params_=phys,
        bootstrap_failures_=failures,
        goodness_=gof,
        flags_=tuple(flags),
        resampling_=resampling,
        n_model_range_=(float(nm.min()), float(nm.max())),
        n_data_range_=(float(nd.min()), float(nd.max())),
    )

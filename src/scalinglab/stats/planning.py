"""Resource planning: invert fitted scaling laws for a target loss, with bootstrap intervals.

* Power law ``L = A X^-alpha``: ``X = (A / L*)^(1/alpha)``, always defined for ``alpha > 0``.
* Saturating law ``L = (X_c / X)^alpha + K`` (paper 3, Eq. 1): ``X = X_c (L* - K)^(-1/alpha)``, undefined when
  ``L* <= K``: no amount of this resource alone reaches the target (the other resources set the floor).
* Joint law ``L = (A/N_M)^a_M + (B/N_D)^a_D + K``: the needed size along one axis with the other held fixed,
  undefined when the floor plus the fixed axis' term already exceeds the target.

Intervals come from inverting every bootstrap replicate of the fit; replicates for which the target is
unreachable count as ``X = inf``, so the upper end becomes ``inf`` when more than ``(1 - confidence) / 2``
of them are unreachable (and ``fraction_undefined`` says how many). Quantiles are order statistics
(``method="inverted_cdf"``) so infinite replicates need no interpolation.

Paper 3 Sec. 5 recipe (:func:`conservative_plan`): for amplitude surrogates the exponents are bounded below
by ``4/d`` with intrinsic dimension ``d = 3 n_f - 4`` (``n_f`` final-state particles, Eqs. 4, 6, 8); an
anchor point from a cheap training fixes ``X_c``, and the bound exponent then gives a conservative (upper)
estimate of the resource needed for the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.stats._design import check_confidence
from scalinglab.stats.joint import JointFit
from scalinglab.stats.model_choice import ScalingCurveFit
from scalinglab.stats.power_law import PowerLawFit
from scalinglab.stats.saturating import SaturatingFit

__all__ = [
    "ConservativePlan",
    "ResourcePlan",
    "conservative_plan",
    "exponent_lower_bound",
    "intrinsic_dimension",
    "plan",
    "plan_joint",
    "plan_power_law",
    "plan_saturating",
    "plan_scaling_curve",
]


@dataclass(frozen=True)
class ResourcePlan:
    """The resource needed to reach a target loss.

    Attributes:
        target_loss: the requested loss (loss units).
        law: ``"power_law"``, ``"saturating"`` or ``"joint"``.
        axis: the resource inverted for (``"x"`` for 1-D laws, ``"model"`` or ``"data"`` for the joint law).
        needed: point estimate of the resource (units of the fitted x); NaN when undefined.
        interval: bootstrap interval ``(lo, hi)``; ``hi = inf`` when too many replicates cannot reach the
            target; ``(nan, nan)`` when undefined.
        defined: False when the point estimate cannot reach the target.
        reason: why not (empty when defined).
        fraction_undefined: fraction of bootstrap replicates that cannot reach the target.
        extrapolation_factor: ``needed / max(fitted x)`` (> 1: beyond the measured range); NaN when unknown.
        confidence: coverage of the interval.
    """

    target_loss: float
    law: str
    axis: str
    needed: float
    interval: tuple[float, float]
    defined: bool
    reason: str
    fraction_undefined: float
    extrapolation_factor: float
    confidence: float

    def summary(self) -> dict:
        """JSON-serializable summary (infinities become the string ``"inf"``)."""
        conv = lambda v: "inf" if np.isinf(v) else (None if np.isnan(v) else float(v))
        return {
            "target_loss": self.target_loss,
            "law": self.law,
            "axis": self.axis,
            "needed": conv(self.needed),
            "interval": [conv(v) for v in self.interval],
            "defined": self.defined,
            "reason": self.reason,
            "fraction_undefined": self.fraction_undefined,
            "extrapolation_factor": conv(self.extrapolation_factor),
            "confidence": self.confidence,
        }


def _check_target(target_loss: float) -> float:
    t = float(target_loss)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"target_loss must be finite and > 0, got {target_loss!r}")
    return t


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed order-statistic interval; NaN replicates (failed fits) are ignored, inf is kept."""
    s = samples[~np.isnan(samples)]
    if s.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(s, [tail, 1.0 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def _make_plan(target, law, axis, needed, reason, boot, confidence, x_max) -> ResourcePlan:
    finite_boot = boot[~np.isnan(boot)]
    frac = float(np.mean(np.isinf(finite_boot))) if finite_boot.size else float("nan")
    defined = not reason
    return ResourcePlan(
        target_loss=target,
        law=law,
        axis=axis,
        needed=float(needed) if defined else float("nan"),
        interval=_interval(boot, confidence) if defined else (float("nan"), float("nan")),
        defined=defined,
        reason=reason,
        fraction_undefined=frac,
        extrapolation_factor=float(needed / x_max) if defined and np.isfinite(x_max) else float("nan"),
        confidence=float(confidence),
    )


def plan_power_law(fit: PowerLawFit, target_loss: float, confidence: float | None = None) -> ResourcePlan:
    """Invert ``L = A X^-alpha`` for a target loss: ``X = (A / L*)^(1/alpha)``.

    Args:
        fit: a :class:`PowerLawFit`.
        target_loss: target loss (loss units, > 0).
        confidence: interval coverage (default: the fit's).

    Returns:
        The :class:`ResourcePlan` (undefined only if the fitted exponent is not positive).

    Reference:
        Paper 1 (scaling-laws-deep-regression), eps = A N^-alpha; paper 3 Sec. 5 (resource prediction).
    """
    target = _check_target(target_loss)
    confidence = fit.confidence if confidence is None else confidence
    check_confidence(confidence)
    alpha_b = fit.bootstrap_exponents_
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        boot = np.where(alpha_b > 0, np.exp((fit.bootstrap_log_prefactors_ - np.log(target)) / alpha_b), np.inf)
    x_max = float(fit.x_[fit.in_fit_].max())
    if fit.exponent_ <= 0:
        reason = f"the fitted exponent {fit.exponent_:.3g} is not positive: the loss does not fall with x"
        return _make_plan(target, "power_law", "x", np.nan, reason, boot, confidence, x_max)
    needed = (fit.prefactor_ / target) ** (1.0 / fit.exponent_)
    return _make_plan(target, "power_law", "x", needed, "", boot, confidence, x_max)


def plan_saturating(fit: SaturatingFit, target_loss: float, confidence: float | None = None) -> ResourcePlan:
    """Invert ``L = (X_c / X)^alpha + K``: ``X = X_c (L* - K)^(-1/alpha)``; undefined when ``L* <= K``.

    Args:
        fit: a :class:`SaturatingFit`.
        target_loss: target loss (loss units, > 0).
        confidence: interval coverage (default: the fit's).

    Returns:
        The :class:`ResourcePlan`.

    Reference:
        Paper 3 (scaling-laws-amplitude-surrogates), Eq. (1) and Sec. 5.
    """
    target = _check_target(target_loss)
    confidence = fit.confidence if confidence is None else confidence
    check_confidence(confidence)
    alpha_b, xc_b, k_b = fit.bootstrap_params_.T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        boot = np.where(target > k_b, xc_b * (target - k_b) ** (-1.0 / alpha_b), np.inf)
    boot = np.where(np.isnan(alpha_b), np.nan, boot)
    x_max = float(fit.x_.max())
    if target <= fit.floor_:
        reason = (
            f"target loss {target:.3g} is at or below the fitted floor K = {fit.floor_:.3g} "
            f"({100 * fit.confidence:.0f}% interval {fit.floor_interval_[0]:.3g}..{fit.floor_interval_[1]:.3g}): "
            "no amount of this resource alone reaches it"
        )
        return _make_plan(target, "saturating", "x", np.nan, reason, boot, confidence, x_max)
    needed = fit.x_c_ * (target - fit.floor_) ** (-1.0 / fit.exponent_)
    return _make_plan(target, "saturating", "x", needed, "", boot, confidence, x_max)


def plan_scaling_curve(fit: ScalingCurveFit, target_loss: float, confidence: float | None = None) -> ResourcePlan:
    """Invert the automatically chosen law of :func:`~scalinglab.stats.model_choice.fit_scaling_curve`.

    The point estimate inverts the law the data chose (power law ``X = (A / L*)^(1/alpha)``, or saturating
    ``X = X_c (L* - K)^(-1/alpha)``, undefined when ``L* <= K``); every bootstrap replicate inverts the law
    *it* chose, so the interval includes the uncertainty of the choice (as the quoted exponent's does).

    Args:
        fit: a :class:`~scalinglab.stats.model_choice.ScalingCurveFit`.
        target_loss: target loss (loss units, > 0).
        confidence: interval coverage (default: the fit's).

    Returns:
        The :class:`ResourcePlan`, ``law = "auto: power_law"`` or ``"auto: saturating"``.
    """
    target = _check_target(target_loss)
    confidence = fit.confidence if confidence is None else confidence
    check_confidence(confidence)
    law = f"auto: {fit.law_}"
    alpha_b, scale_b, k_b = fit.bootstrap_params_.T
    sat_b = fit.bootstrap_saturating_
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x_pow = np.where(alpha_b > 0, np.exp((scale_b - np.log(target)) / alpha_b), np.inf)
        x_sat = np.where((target > k_b) & (alpha_b > 0),
                         np.exp(scale_b) * (target - k_b) ** (-1.0 / alpha_b), np.inf)
    boot = np.where(np.isnan(alpha_b), np.nan, np.where(sat_b, x_sat, x_pow))
    x_max = float(np.max(fit.x_))
    if fit.exponent_ <= 0:
        reason = f"the fitted exponent {fit.exponent_:.3g} is not positive: the loss does not fall with x"
        return _make_plan(target, law, "x", np.nan, reason, boot, confidence, x_max)
    if fit.law_ == "saturating":
        if target <= fit.floor_:
            reason = (f"target loss {target:.3g} is at or below the fitted floor K = {fit.floor_:.3g} "
                      f"({100 * fit.confidence:.0f}% interval {fit.floor_interval_[0]:.3g}.."
                      f"{fit.floor_interval_[1]:.3g}): no amount of this resource alone reaches it")
            return _make_plan(target, law, "x", np.nan, reason, boot, confidence, x_max)
        needed = fit.x_c_ * (target - fit.floor_) ** (-1.0 / fit.exponent_)
    else:
        needed = (fit.prefactor_ / target) ** (1.0 / fit.exponent_)
    return _make_plan(target, law, "x", needed, "", boot, confidence, x_max)


def plan_joint(
    fit: JointFit, target_loss: float, axis: str, other: float, confidence: float | None = None
) -> ResourcePlan:
    """Needed size along one axis of the joint law with the other axis fixed.

    Args:
        fit: a :class:`JointFit`.
        target_loss: target loss (> 0).
        axis: ``"data"`` (solve for N_D at N_M = other) or ``"model"`` (solve for N_M at N_D = other).
        other: the fixed size on the other axis (> 0).
        confidence: interval coverage (default: the fit's).

    Returns:
        The :class:`ResourcePlan`; undefined when ``K + (fixed axis' term) >= target``.
    """
    target = _check_target(target_loss)
    if axis not in ("data", "model"):
        raise ValueError(f"axis must be 'data' or 'model', got {axis!r}")
    if not (np.isfinite(other) and other > 0):
        raise ValueError(f"other must be finite and > 0, got {other!r}")
    confidence = fit.confidence if confidence is None else confidence
    check_confidence(confidence)
    am, a_scale, ad, d_scale, k = fit.bootstrap_params_.T
    if axis == "data":
        fixed_b, exp_b, scale_b = (a_scale / other) ** am, ad, d_scale
        fixed = (fit.scale_model_ / other) ** fit.exponent_model_
        exponent, scale, other_name = fit.exponent_data_, fit.scale_data_, "N_M"
    else:
        fixed_b, exp_b, scale_b = (d_scale / other) ** ad, am, a_scale
        fixed = (fit.scale_data_ / other) ** fit.exponent_data_
        exponent, scale, other_name = fit.exponent_model_, fit.scale_model_, "N_D"
    room_b = target - k - fixed_b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        boot = np.where(room_b > 0, scale_b * room_b ** (-1.0 / exp_b), np.inf)
    boot = np.where(np.isnan(am), np.nan, boot)
    room = target - fit.floor_ - fixed
    # extrapolation is measured against the largest size fitted on the solved axis (NaN for old fits)
    x_max = fit.n_data_range_[1] if axis == "data" else fit.n_model_range_[1]
    if room <= 0:
        reason = (
            f"target loss {target:.3g} is at or below the fitted floor K = {fit.floor_:.3g} plus the "
            f"{other_name} = {other:g} term {fixed:.3g}: no {axis} size alone reaches it"
        )
        return _make_plan(target, "joint", axis, np.nan, reason, boot, confidence, x_max)
    needed = scale * room ** (-1.0 / exponent)
    return _make_plan(target, "joint", axis, needed, "", boot, confidence, x_max)


def plan(fit, target_loss: float, **kwargs) -> ResourcePlan:
    """Dispatch to :func:`plan_power_law`, :func:`plan_saturating`, :func:`plan_joint` or
    :func:`plan_scaling_curve` by fit type."""
    if isinstance(fit, PowerLawFit):
        return plan_power_law(fit, target_loss, **kwargs)
    if isinstance(fit, SaturatingFit):
        return plan_saturating(fit, target_loss, **kwargs)
    if isinstance(fit, JointFit):
        return plan_joint(fit, target_loss, **kwargs)
    if isinstance(fit, ScalingCurveFit):
        return plan_scaling_curve(fit, target_loss, **kwargs)
    raise ValueError(f"cannot plan with a {type(fit).__name__}; expected a PowerLawFit, SaturatingFit, JointFit or "
                     "ScalingCurveFit")


def intrinsic_dimension(num_final: int, sampling: str = "hadronic") -> int:
    """Phase-space dimension d that |M|^2 depends on for an n_f-body final state (paper 3, Sec. 2).

    Args:
        num_final: number of final-state particles ``n_f`` (>= 2).
        sampling: ``"hadronic"`` (partonic sqrt(s_hat) varies, the paper's data: ``d = 3 n_f - 4``) or
            ``"fixed"`` (one centre-of-mass energy: ``d = 3 n_f - 5``).
    """
    if isinstance(num_final, bool) or not isinstance(num_final, int | np.integer) or num_final < 2:
        raise ValueError(f"num_final must be an integer >= 2, got {num_final!r}")
    if sampling not in ("hadronic", "fixed"):
        raise ValueError(f"unknown sampling '{sampling}' (known: hadronic, fixed)")
    return 3 * int(num_final) - (4 if sampling == "hadronic" else 5)


def exponent_lower_bound(num_final: int, sampling: str = "hadronic") -> float:
    """Lower bound ``alpha >= 4 / d`` on the scaling exponents (paper 3, Eqs. 4, 6, 8)."""
    return 4.0 / intrinsic_dimension(num_final, sampling)


@dataclass(frozen=True)
class ConservativePlan:
    """Paper 3 Sec. 5 resource estimate from an anchor point and the ``4/d`` bound.

    Attributes:
        intrinsic_dimension: d (3 n_f - 4 for hadronic samples, 3 n_f - 5 at fixed sqrt(s)).
        exponent_bound: 4 / d.
        x_c: X_c implied by the anchor with the bound exponent (units of x).
        needed: conservative resource for the target (bound exponent); NaN when undefined.
        needed_with_exponent: the same with the supplied (e.g. fitted) exponent; NaN if none given.
        defined: False when the target is at or below the floor, or at or above the anchor loss (there the
            bound exponent would give a smaller resource than the fitted law: anti-conservative).
        reason: why not (empty when defined).
    """

    intrinsic_dimension: int
    exponent_bound: float
    x_c: float
    needed: float
    needed_with_exponent: float
    defined: bool
    reason: str


def conservative_plan(
    target_loss: float,
    anchor_x: float,
    anchor_loss: float,
    num_final: int | None = None,
    *,
    dimension: int | None = None,
    floor: float = 0.0,
    exponent: float | None = None,
) -> ConservativePlan:
    """Paper 3 Sec. 5 recipe: anchor ``X_c`` with a cheap training, use ``alpha = 4/d`` conservatively.

    With ``L = (X_c / X)^alpha + K`` through the anchor ``(X_0, L_0)``: ``X_c = X_0 (L_0 - K)^(1/alpha)`` and
    ``X(L*) = X_0 ((L_0 - K) / (L* - K))^(1/alpha)``. Since ``alpha >= 4/d``, the bound exponent gives the
    larger ``X`` for any target below the anchor loss: a conservative budget.

    Args:
        target_loss: target loss L* (> 0).
        anchor_x: resource of the cheap anchor training X_0 (> 0).
        anchor_loss: its test loss L_0 (> floor).
        num_final: final-state multiplicity n_f (>= 2) of a hadronic sample (d = 3 n_f - 4); or give
        dimension: the phase-space dimension d directly (as recorded by the dataset: use this one).
        floor: plateau K (paper 3 approximates K_N, K_C by the data-scaling prediction; K_D ~ 0).
        exponent: optional fitted exponent to compare with the bound.

    Returns:
        The :class:`ConservativePlan`.

    Reference:
        Paper 3 (scaling-laws-amplitude-surrogates), Eqs. (1), (4), (6), (8) and Sec. 5.
    """
    target = _check_target(target_loss)
    if not (np.isfinite(anchor_x) and anchor_x > 0):
        raise ValueError(f"anchor_x must be finite and > 0, got {anchor_x!r}")
    if not (np.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be finite and >= 0, got {floor!r}")
    if not (np.isfinite(anchor_loss) and anchor_loss > floor):
        raise ValueError(f"anchor_loss must exceed the floor {floor!r}, got {anchor_loss!r}")
    if exponent is not None and not (np.isfinite(exponent) and exponent > 0):
        raise ValueError(f"exponent must be finite and > 0, got {exponent!r}")
    if (num_final is None) == (dimension is None):
        raise ValueError("give exactly one of num_final and dimension")
    if dimension is None:
        d = intrinsic_dimension(num_final)
    elif isinstance(dimension, bool) or not isinstance(dimension, int | np.integer) or dimension < 1:
        raise ValueError(f"dimension must be an integer >= 1, got {dimension!r}")
    else:
        d = int(dimension)
    bound = 4.0 / d
    x_c = anchor_x * (anchor_loss - floor) ** (1.0 / bound)
    if target <= floor:
        reason = f"target loss {target:.3g} is at or below the floor K = {floor:.3g}"
        return ConservativePlan(d, bound, x_c, float("nan"), float("nan"), False, reason)
    if target >= anchor_loss:
        # Below the anchor the bound exponent shrinks the answer instead of enlarging it: the recipe would
        # print a smaller resource than the fitted law, the opposite of conservative.
        reason = (f"the anchor loss {anchor_loss:.3g} is already at or below the target {target:.3g}: the 4/d "
                  "recipe is conservative only for targets below the anchor; use the fitted law instead")
        return ConservativePlan(d, bound, float(x_c), float("nan"), float("nan"), False, reason)
    ratio = (anchor_loss - floor) / (target - floor)
    with_exp = float(anchor_x * ratio ** (1.0 / exponent)) if exponent is not None else float("nan")
    return ConservativePlan(d, bound, float(x_c), float(anchor_x * ratio ** (1.0 / bound)), with_exp, True, "")

"""Group sweep records into design points and scaling curves, and fit them through ``scalinglab.stats``.

A *design point* is one (family, model size, target, N_D[, compute value]) with the test losses of its
realizations. Curves:

* data curves: loss vs N_D at fixed model (and compute), fitted with ``eps = A N_D^-alpha_D``
  (paper 1 Figs. 1, 4);
* model curves: loss vs N_M (parameters) at fixed N_D, fitted with ``eps = A N_M^-alpha_M`` when the family
  has at least 3 sizes (paper 1 Fig. 6);
* compute curves: loss vs training FLOPs at fixed model and N_D when the sweep has a compute axis, fitted with
  the power law and the saturating law ``L = (C_c / C)^alpha + K`` (paper 3 Sec. 3.2);
* joint law ``L(N_M, N_D) = (A/N_M)^a_M + (B/N_D)^a_D + K`` per family and target when the family has at least
  3 model sizes and 3 dataset sizes (``scalinglab.stats.joint``; beyond papers 1 and 3);
* exponent trends: alpha_D vs N_M per family (N0 = 10^6 parameters, paper 1 Fig. 5) and alpha_M vs N_D
  (N0 = 10^4 samples, paper 1 Fig. 7), ``alpha = a log10(N / N0) + b``.

The loss is ``test_normalized[loss_key]`` (standardized target units, dimensionless) with the spec's
``loss_key`` (default "mse"). This module reads records only: it never imports torch or the sweep runner.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalinglab.record_status import UNKNOWN, excluded_statuses, record_status
from scalinglab.report.loader import SweepResults
from scalinglab.seeding import derive_seed
from scalinglab.stats import FLOAT32_LOSS_RESOLUTION
from scalinglab.stats._optim import HUBER_SCALE
from scalinglab.stats.aggregate import PointSummary, summarize_point
from scalinglab.stats.compute_optimal import ComputeOptimum, FlopModel, compute_optimal
from scalinglab.stats.exponent_trend import ExponentTrendFit, fit_exponent_trend
from scalinglab.stats.goodness import GoodnessOfFit, bound_flags, goodness_of_fit, range_flag
from scalinglab.stats.joint import JointFit, fit_joint
from scalinglab.stats.model_choice import ScalingCurveFit, fit_scaling_curve
from scalinglab.stats.power_law import PowerLawFit, fit_power_law
from scalinglab.stats.saturating import SaturatingFit, fit_saturating
from scalinglab.stats.saturating import _bounds as saturating_bounds

__all__ = ["FLOAT32_LOSS_RESOLUTION", "Analysis", "CurveFit", "Point", "ReportOptions", "TrendFit", "analyze",
           "fit_rows", "group_points", "loss_of", "point_rows", "record_rows", "value_sort_key"]

#: Reference sizes of the exponent trends (paper 1 Figs. 5 and 7).
N0_MODEL = 1e6
N0_DATA = 1e4
#: Training share of each N_D (paper 1 Methods B: 7/8 train, 1/8 validation); ``--x train`` plots it.
TRAIN_FRACTION = 7 / 8
#: Keys an ``--exclude`` clause may name, and the point attribute each one matches.
EXCLUDE_KEYS = {"model": "model_label", "family": "family", "target": "target", "N_D": "num_train",
                "N_M": "num_params", "size": "size_value", "compute": "compute_value", "source": "source"}


def parse_exclusions(clauses: list[str] | tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """Parse ``--exclude`` clauses ``KEY=VALUE[,KEY=VALUE...]`` (a point is left out when it matches every pair).

    Keys: ``model``, ``family``, ``target``, ``N_D``, ``N_M``, ``size``, ``compute``, ``source``.
    """
    parsed = []
    for clause in clauses:
        pairs: dict[str, str] = {}
        for part in str(clause).split(","):
            key, sep, value = part.strip().partition("=")
            if not sep or not key or not value:
                raise ValueError(f"--exclude {clause!r}: expected KEY=VALUE[,KEY=VALUE...] (e.g. N_D=8192,model=vit)")
            if key not in EXCLUDE_KEYS:
                raise ValueError(f"--exclude {clause!r}: unknown key {key!r}; keys: {', '.join(EXCLUDE_KEYS)}")
            pairs[key] = value
        parsed.append(pairs)
    return tuple(parsed)


def _matches(value: Any, wanted: str) -> bool:
    try:
        return math.isclose(float(value), float(wanted), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(value) == wanted


@dataclass(frozen=True)
class ReportOptions:
    """Settings of the statistical analysis behind a report.

    Attributes:
        num_bootstrap: bootstrap replicates for point intervals and power-law fits.
        num_saturating_bootstrap: replicates for saturating fits (each a nonlinear refit, hence fewer).
        confidence: coverage of every interval.
        fit_range: power-law range rule passed to ``fit_power_law`` ("auto", "all").
        seed: root seed; every fit draws from a stream derived from it and the curve's name.
    """

    num_bootstrap: int = 2000
    num_saturating_bootstrap: int = 200
    confidence: float = 0.95
    fit_range: str = "auto"
    seed: int = 0
    # replicates of the automatic power-law / saturating choice (each one refits both laws)
    num_choice_bootstrap: int = 400
    # points left out of every fit (parse_exclusions); they stay in points.csv and are drawn as grey crosses
    exclude: tuple = ()
    # "total": x = N_D; "train": x = 7/8 N_D, the part actually trained on (paper 1's axis)
    data_x: str = "total"
    # Huber threshold in units of log loss for the automatic and joint fits (None: 1.345 standard errors)
    huber_delta: float | None = None
    # compute budget (FLOPs) for the compute-optimal allocation of every joint fit (None: no allocation)
    compute_budget: float | None = None
    flop_model: FlopModel = field(default_factory=FlopModel)
    # realizations flagged diverged / not_better_than_mean enter the fits too (scalinglab.record_status)
    include_flagged: bool = False
    # realizations flagged at_epoch_cap are left out of the fits (by default they are kept, with a warning)
    exclude_at_cap: bool = False

    @property
    def excluded_statuses(self) -> frozenset[str]:
        """Record statuses left out of the fits under these options."""
        return excluded_statuses(include_flagged=self.include_flagged, exclude_at_cap=self.exclude_at_cap)

    def __post_init__(self) -> None:
        if self.huber_delta is not None and not (math.isfinite(self.huber_delta) and self.huber_delta > 0):
            raise ValueError(f"huber delta must be a positive number (log-loss units), got {self.huber_delta!r}")
        if self.data_x not in ("total", "train"):
            raise ValueError(f"data_x must be 'total' or 'train', got {self.data_x!r}")
        if self.compute_budget is not None and not (math.isfinite(self.compute_budget) and self.compute_budget > 0):
            raise ValueError(f"compute budget must be a positive number of FLOPs, got {self.compute_budget!r}")
        if isinstance(self.num_bootstrap, bool) or not isinstance(self.num_bootstrap, int) or self.num_bootstrap < 10:
            raise ValueError(f"num_bootstrap must be an integer >= 10, got {self.num_bootstrap!r}")
        if not isinstance(self.num_saturating_bootstrap, int) or self.num_saturating_bootstrap < 10:
            raise ValueError(
                f"num_saturating_bootstrap must be an integer >= 10, got {self.num_saturating_bootstrap!r}"
            )
        if not 0.0 < float(self.confidence) < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence!r}")
        if self.fit_range not in ("auto", "all"):
            raise ValueError(f"fit_range must be 'auto' or 'all', got {self.fit_range!r}")


@dataclass
class Point:
    """One design point: the realizations of one (model, target, N_D[, compute]).

    Attributes:
        losses: test losses per realization ``[R]`` (standardized units, dimensionless).
        realizations: realization indices ``[R]``.
        flops: median training FLOPs of the realizations (None when not recorded).
        wall_time_s: summed training wall time of the realizations (s).
        num_excluded: realizations left out because their loss was NaN, infinite or <= 0 (diverged).
        num_at_epoch_cap: realizations in the fits that trained for the full epoch budget (early stopping
            never fired: they may still be improving, so their loss overstates what the model can reach);
            from the record's status, or for records without one from epochs_run and the budget.
        num_no_skill: realizations in the fits no better than predicting the training mean (status
            not_better_than_mean when included, or for records without a status standardized MSE >= 1 or
            R^2 <= 0).
        num_flagged: ``{status: count}`` of realizations left out of the fits by their status
            (``scalinglab.record_status``; diverged and not_better_than_mean by default).
        num_records: realizations recorded at this point (before any exclusion).
        num_unknown_status: records without a status (written before status flags; kept in the fits).
        excluded: the user left this point out of the fits (``--exclude``).
        source: the results directory the point came from (several directories in one report).
        weight: the point's weight in the fits (mean of its records' ``weight``, default 1).
        summary: AM / GM / median with their uncertainties (``scalinglab.stats.aggregate``; None when no
            realization is valid).
    """

    family: str
    model_label: str
    size_axis: str | None
    size_value: Any
    num_params: float | None
    target: str
    target_unit: str
    num_train: int
    compute_key: str | None
    compute_value: Any
    flops: float | None
    losses: np.ndarray
    realizations: np.ndarray
    wall_time_s: float
    num_excluded: int = 0
    summary: PointSummary | None = None
    num_at_epoch_cap: int = 0
    num_no_skill: int = 0
    excluded: bool = False
    source: str = ""
    weight: float = 1.0
    num_flagged: dict[str, int] = field(default_factory=dict)
    num_records: int = 0
    num_unknown_status: int = 0


@dataclass
class CurveFit:
    """A scaling curve along one axis and its fits.

    Attributes:
        axis: "data" (x = N_D), "model" (x = N_M) or "compute" (x = training FLOPs, or the compute value).
        x: design values of the points ``[P]`` (ascending).
        points: the design points in the order of ``x``.
        power_law: the power-law fit (None when it could not be made; see ``error``).
        saturating: the saturating fit (compute curves, and data curves whose range the curvature test cut).
        error: why a fit is missing (one line), else None.
        quoted: the automatic power-law / saturating choice (``fit_scaling_curve``): its exponent is the one
            quoted and used by the exponent trends, since it survives a floor (data and model curves).
        excluded_points: points on this curve left out by ``--exclude`` (drawn, not fitted).
    """

    axis: str
    family: str
    target: str
    model_label: str | None
    size_value: Any
    num_params: float | None
    num_train: int | None
    compute_value: Any
    x_name: str
    x: np.ndarray
    points: list[Point]
    power_law: PowerLawFit | None = None
    saturating: SaturatingFit | None = None
    error: str | None = None
    saturating_error: str | None = None
    quoted: ScalingCurveFit | None = None
    quoted_error: str | None = None
    excluded_points: list[Point] = field(default_factory=list)

    def exponent_fit(self):
        """The fit whose exponent is quoted and used by the trends: the automatic law choice when made."""
        return self.quoted if self.quoted is not None else self.power_law


@dataclass
class TrendFit:
    """Exponents of several curves against a size, with the log trend ``alpha = a log10(N/N0) + b``.

    Attributes:
        axis: "alpha_D vs N_M" or "alpha_M vs N_D".
        sizes: N per exponent ``[K]``; curves: the fitted curves in the same order.
        line: the fitted trend (None when fewer than 2 exponents; see ``error``).
        slope_interval, intercept_interval: percentile intervals of (a, b) from refitting the trend on the
            bootstrap replicates of the exponents (the curves' realizations are independent, so replicate
            ``b`` of every curve together is one replicate of the trend).
    """

    axis: str
    family: str
    target: str
    compute_value: Any
    n0: float
    sizes: np.ndarray
    curves: list[CurveFit]
    line: ExponentTrendFit | None = None
    slope_interval: tuple[float, float] = (float("nan"), float("nan"))
    intercept_interval: tuple[float, float] = (float("nan"), float("nan"))
    error: str | None = None


@dataclass
class JointEntry:
    """The joint fit of one family and target over its (N_M, N_D) grid (``fit`` None: see ``error``)."""

    family: str
    target: str
    compute_value: Any
    points: list[Point]
    fit: JointFit | None = None
    error: str | None = None
    optimum: ComputeOptimum | None = None


@dataclass
class Analysis:
    """Everything computed from one results directory (inputs of figures, tables and the HTML page)."""

    results: SweepResults
    options: ReportOptions
    points: list[Point]
    data_curves: list[CurveFit] = field(default_factory=list)
    model_curves: list[CurveFit] = field(default_factory=list)
    compute_curves: list[CurveFit] = field(default_factory=list)
    data_trends: list[TrendFit] = field(default_factory=list)
    model_trends: list[TrendFit] = field(default_factory=list)
    joint_fits: list[JointEntry] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        """Targets in the spec's order (then any others found in the records)."""
        order = list((self.results.resolved_spec.get("spec") or {}).get("targets") or [])
        found = {p.target for p in self.points}
        return [t for t in order if t in found] + sorted(found - set(order))

    @property
    def has_compute_axis(self) -> bool:
        return any(p.compute_key for p in self.points)

    def all_curves(self) -> list[CurveFit]:
        return self.data_curves + self.model_curves + self.compute_curves


def loss_of(record: dict[str, Any], loss_key: str) -> float:
    """The scaling loss of one record: ``test_normalized[loss_key]`` (``test.<key>`` for physical units)."""
    section, _, key = loss_key.rpartition(".")
    table = record.get(section or "test_normalized")
    if not isinstance(table, dict) or key not in table:
        raise ValueError(
            f"record {record.get('task_id', '?')} realization {record.get('realization')} has no "
            f"{section or 'test_normalized'}.{key} loss"
        )
    return float(table[key])


def _median_or_none(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def value_sort_key(value: Any) -> tuple:
    """Numbers before strings, numbers numerically (compute values may be ints, floats or names)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _size_sort_key(p: Point) -> tuple:
    return (p.num_params if p.num_params is not None else math.inf, str(p.size_value))


def _epoch_cap(record: dict[str, Any], resolved: dict[str, Any]) -> int | None:
    """The epoch budget a record trained under (None when the records and spec do not say)."""
    if record.get("max_epochs") is not None:
        return int(record["max_epochs"])
    if record.get("compute_key") == "epochs":
        return None  # a compute sweep over epochs trains every run for its budget by design
    spec = resolved.get("spec") or {}
    for m in spec.get("models") or []:
        if m.get("family") == record.get("family") and (m.get("train") or {}).get("epochs") is not None:
            return int(m["train"]["epochs"])
    epochs = (spec.get("train") or {}).get("epochs")
    return int(epochs) if epochs is not None else None


def _at_epoch_cap(record: dict[str, Any], resolved: dict[str, Any]) -> bool:
    """The record's status says at_epoch_cap; a record without a status: it ran its whole epoch budget."""
    status = record_status(record)
    if status != UNKNOWN:
        return status == "at_epoch_cap"
    cap = _epoch_cap(record, resolved)
    return cap is not None and record.get("epochs_run") is not None and int(record["epochs_run"]) >= cap


def _no_skill(record: dict[str, Any]) -> bool:
    """No better than the mean predictor: the status says so; for records without a status, standardized
    test MSE >= 1 or R^2 <= 0 (when recorded)."""
    status = record_status(record)
    if status != UNKNOWN:
        return status == "not_better_than_mean"
    normed = record.get("test_normalized") or {}
    mse, r2 = normed.get("mse"), normed.get("r2")
    return bool((mse is not None and float(mse) >= 1.0) or (r2 is not None and float(r2) <= 0.0))


def group_points(results: SweepResults, exclusions: tuple[dict[str, str], ...] = (),
                 excluded_status: frozenset[str] | None = None) -> list[Point]:
    """Group records into design points (family, model size, target, N_D, compute value).

    Args:
        results: the loaded records.
        exclusions: parsed ``--exclude`` clauses; matching points get ``excluded = True``.
        excluded_status: record statuses left out of the points (default: diverged and not_better_than_mean,
            ``scalinglab.record_status``); records without a status are always kept.

    Returns:
        Points sorted by family, model size, target, compute value and N_D.
    """
    if excluded_status is None:
        excluded_status = excluded_statuses()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for rec in results.records:
        key = (str(rec["family"]), str(rec.get("size_value")), str(rec["target"]), int(rec["num_train"]),
               str(rec.get("compute_value")))
        groups.setdefault(key, []).append(rec)
    points = []
    for recs in groups.values():
        first = recs[0]
        # the same realization may appear twice only if a results directory was merged by hand
        seen: set[int] = set()
        recs = [r for r in recs if not (int(r["realization"]) in seen or seen.add(int(r["realization"])))]
        num_records = len(recs)
        statuses = [record_status(r) for r in recs]
        flagged: dict[str, int] = {}
        for st in statuses:
            if st in excluded_status:
                flagged[st] = flagged.get(st, 0) + 1
        num_unknown = statuses.count(UNKNOWN)
        recs = [r for r, st in zip(recs, statuses, strict=True) if st not in excluded_status]
        all_losses = np.array([loss_of(r, results.loss_key) for r in recs], dtype=np.float64)
        # A diverged realization (NaN, inf or a zero loss) has no logarithm: it is left out of the point
        # and counted, so the report says how many were excluded instead of failing the whole curve.
        valid = np.isfinite(all_losses) & (all_losses > 0)
        recs_ok = [r for r, ok in zip(recs, valid, strict=True) if ok]
        losses = all_losses[valid]
        at_cap = sum(1 for r in recs_ok if _at_epoch_cap(r, results.resolved_spec))
        no_skill = sum(1 for r in recs_ok if _no_skill(r))
        family = str(first["family"])
        size_value = first.get("size_value")
        label = first.get("model_label") or (
            family if first.get("size_axis") is None else f"{family} {first.get('size_axis')}={size_value}"
        )
        points.append(
            Point(
                family=family, model_label=str(label), size_axis=first.get("size_axis"), size_value=size_value,
                num_params=_median_or_none([r.get("num_params") for r in recs]), target=str(first["target"]),
                target_unit=str(first.get("target_unit") or ""), num_train=int(first["num_train"]),
                compute_key=first.get("compute_key"), compute_value=first.get("compute_value"),
                flops=_median_or_none([r.get("flops") for r in recs]), losses=losses,
                realizations=np.array([int(r["realization"]) for r in recs_ok], dtype=np.int64),
                wall_time_s=float(sum(float(r.get("wall_time_s") or 0.0) for r in recs)),
                num_excluded=int((~valid).sum()), num_at_epoch_cap=at_cap, num_no_skill=no_skill,
                source=str(first.get("source") or ""), num_flagged=flagged, num_records=num_records,
                num_unknown_status=num_unknown,
                weight=float(np.mean([float(r.get("weight", 1.0)) for r in recs_ok])) if recs_ok else 1.0,
            )
        )
        p = points[-1]
        p.excluded = any(all(_matches(getattr(p, EXCLUDE_KEYS[k]), v) for k, v in clause.items())
                         for clause in exclusions)
    order = list((results.resolved_spec.get("spec") or {}).get("targets") or [])
    target_key = lambda t: (order.index(t), "") if t in order else (len(order), t)
    points.sort(key=lambda p: (p.family, _size_sort_key(p), target_key(p.target), value_sort_key(p.compute_value),
                               p.num_train))
    return points


def _bad_points(points: list[Point]) -> str | None:
    for p in points:
        if p.losses.size == 0:
            return (f"no valid realization at N_D={p.num_train} ({p.model_label}): every loss was NaN, inf or <= 0, "
                    "or its status kept it out")
    return None


def _fit_curve(curve: CurveFit, options: ReportOptions, *, saturating: bool) -> None:
    """Fill ``curve.power_law`` (and ``curve.saturating`` when asked or when the range was cut)."""
    losses = [p.losses for p in curve.points]
    name = (curve.axis, curve.family, str(curve.size_value), curve.target, str(curve.num_train),
            str(curve.compute_value))
    bad = _bad_points(curve.points)
    if bad:
        curve.error = bad
        return
    if np.unique(curve.x).size < 3:
        curve.error = f"{np.unique(curve.x).size} distinct {curve.x_name} value(s): a power law needs 3"
        return
    unconstrained = range_flag(curve.x, curve.x_name)
    if unconstrained:
        # e.g. a depth sweep whose parameter count moves by 0.7 %: any exponent fitted there is noise
        curve.error = unconstrained
        return
    if np.unique(curve.x).size >= 4:
        try:
            curve.quoted = fit_scaling_curve(
                curve.x, losses, huber_delta=options.huber_delta, weights=[p.weight for p in curve.points],
                num_bootstrap=options.num_choice_bootstrap,
                confidence=options.confidence, seed=derive_seed(options.seed, "choice", *name),
            )
        except ValueError as exc:
            curve.quoted_error = str(exc)
    else:
        curve.quoted_error = "3 points: the power-law / saturating choice needs 4"
    if min(p.losses.size for p in curve.points) < 2:
        curve.error = ("a point has a single realization: the realization-weighted power law needs >= 2 per "
                       "point (the automatic fit resamples points instead)")
        return
    try:
        curve.power_law = fit_power_law(
            curve.x, losses, fit_range=options.fit_range, num_bootstrap=options.num_bootstrap,
            confidence=options.confidence, seed=derive_seed(options.seed, "power_law", *name),
        )
    except ValueError as exc:
        curve.error = str(exc)
    cut = curve.power_law is not None and any("curvature" in d["reason"] for d in curve.power_law.dropped_)
    if (saturating or cut) and np.unique(curve.x).size >= 4:
        try:
            curve.saturating = fit_saturating(
                curve.x, losses, num_bootstrap=options.num_saturating_bootstrap, confidence=options.confidence,
                seed=derive_seed(options.seed, "saturating", *name), quiet=True,
            )
        except ValueError as exc:
            curve.saturating_error = str(exc)


# [compute] keys that vary an optimizer setting at a fixed training budget (the learning-rate grid of
# `scalinglab mup-check`): not a compute-scaling axis, so no compute curves; their points still form data and
# model curves at each value, as any compute value does
NOT_BUDGET_COMPUTE_KEYS = frozenset({"lr", "min_lr", "lr_decay", "step_gamma", "weight_decay", "momentum"})


def _curves(points: list[Point], axis: str, data_x: str = "total") -> list[CurveFit]:
    """Group points into curves along ``axis`` ("data", "model" or "compute"); excluded points are set aside."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        if p.losses.size == 0:
            continue  # every realization diverged: nothing to fit (counted in the report's notes)
        if axis == "data":
            key = (p.family, str(p.size_value), p.target, str(p.compute_value))
        elif axis == "model":
            key = (p.family, p.target, p.num_train, str(p.compute_value))
        else:
            if not p.compute_key or p.compute_key in NOT_BUDGET_COMPUTE_KEYS:
                continue
            key = (p.family, str(p.size_value), p.target, p.num_train)
        groups.setdefault(key, []).append(p)
    curves = []
    for all_pts in groups.values():
        pts = [p for p in all_pts if not p.excluded]
        left_out = [p for p in all_pts if p.excluded]
        if not pts:
            continue
        if axis == "data":
            share = TRAIN_FRACTION if data_x == "train" else 1.0
            xs = [share * float(p.num_train) for p in pts]
            x_name = "7/8 N_D" if data_x == "train" else "N_D"
        elif axis == "model":
            if any(p.num_params is None for p in pts):
                continue
            xs = [float(p.num_params) for p in pts]
            x_name = "N_M"
        else:
            use_flops = all(p.flops for p in pts)
            xs = [float(p.flops) if use_flops else float(p.compute_value) for p in pts]
            x_name = "C [FLOPs]" if use_flops else str(pts[0].compute_key)
        if len(set(xs)) < 2:
            continue  # not a curve along this axis
        order = np.argsort(xs, kind="stable")
        pts = [pts[i] for i in order]
        first = pts[0]
        single_model = axis != "model"
        curves.append(
            CurveFit(
                axis=axis, family=first.family, target=first.target,
                model_label=first.model_label if single_model else first.family,
                size_value=first.size_value if single_model else None,
                num_params=first.num_params if single_model else None,
                num_train=None if axis == "data" else first.num_train,
                compute_value=None if axis == "compute" else first.compute_value,
                x_name=x_name, x=np.asarray(xs, dtype=np.float64)[order], points=pts, excluded_points=left_out,
            )
        )
    return curves


def _trend(curves: list[CurveFit], axis: str, n0: float, size_of: Callable[[CurveFit], float | None],
           options: ReportOptions) -> TrendFit:
    fitted = [c for c in curves if c.exponent_fit() is not None and size_of(c) is not None]
    fitted.sort(key=lambda c: size_of(c))
    first = curves[0]
    trend = TrendFit(axis=axis, family=first.family, target=first.target, compute_value=first.compute_value,
                     n0=n0, sizes=np.array([size_of(c) for c in fitted], dtype=np.float64), curves=fitted)
    if np.unique(trend.sizes).size < 2:
        trend.error = f"{np.unique(trend.sizes).size} fitted exponent(s): a log trend needs exponents at >= 2 sizes"
        return trend
    # the quoted exponents (automatic law choice): a floor left in a pure power law would bias the trend
    alphas = np.array([c.exponent_fit().exponent_ for c in fitted])
    stderrs = np.array([c.exponent_fit().exponent_stderr_ for c in fitted])
    boots = [c.exponent_fit().bootstrap_exponents_ for c in fitted]
    boot = np.stack(boots, axis=1) if len({b.size for b in boots}) == 1 and boots[0].size else None
    try:
        trend.line = fit_exponent_trend(trend.sizes, alphas, stderrs, n0)
    except ValueError as exc:
        trend.error = str(exc)
        return trend
    if boot is not None:
        ok = np.all(np.isfinite(boot), axis=1)
        # at most 1000 replicates: enough for 95 % percentile intervals, each refit is a 2x2 solve
        reps = [fit_exponent_trend(trend.sizes, row, stderrs, n0) for row in boot[ok][:1000]]
        if reps:
            tail = 100.0 * (1.0 - options.confidence) / 2.0
            a_lo, a_hi = np.percentile([r.slope_ for r in reps], [tail, 100.0 - tail])
            b_lo, b_hi = np.percentile([r.intercept_ for r in reps], [tail, 100.0 - tail])
            trend.slope_interval = (float(a_lo), float(a_hi))
            trend.intercept_interval = (float(b_lo), float(b_hi))
    return trend


def analyze(results: SweepResults, options: ReportOptions | None = None, progress: Any = None) -> Analysis:
    """Aggregate every design point and fit every curve the sweep allows.

    Args:
        results: loaded results (``load_results``).
        options: analysis settings (defaults: 2000 bootstrap replicates, 95 % intervals, seed 0).
        progress: optional progress bar (``advance(n)``); one unit per point and per curve.

    Returns:
        The :class:`Analysis`.

    Raises:
        ValueError: the results hold no finished records.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Results A-C and Figs. 1, 3-7; paper 3
        (scaling-laws-amplitude-surrogates), Sec. 3.2 (saturating fits in FLOPs).
    """
    options = options or ReportOptions()
    if not results.records:
        raise ValueError(
            f"{results.root} holds no finished records yet: nothing to report (run or resume the sweep first)"
        )
    points = group_points(results, options.exclude, options.excluded_statuses)
    for p in points:
        if p.losses.size:
            p.summary = summarize_point(
                p.losses, num_bootstrap=options.num_bootstrap, confidence=options.confidence,
                seed=derive_seed(options.seed, "point", p.family, str(p.size_value), p.target, p.num_train,
                                 str(p.compute_value)),
            )
        if progress is not None:
            progress.advance(1)
    analysis = Analysis(results=results, options=options, points=points)
    analysis.data_curves = _curves(points, "data", options.data_x)
    analysis.model_curves = [c for c in _curves(points, "model") if len({p.size_value for p in c.points}) >= 2]
    analysis.compute_curves = _curves(points, "compute")
    for curve in analysis.data_curves + analysis.model_curves:
        _fit_curve(curve, options, saturating=False)
        if progress is not None:
            progress.advance(1)
    for curve in analysis.compute_curves:
        _fit_curve(curve, options, saturating=True)
        if progress is not None:
            progress.advance(1)

    by_family: dict[tuple, list[CurveFit]] = {}
    for c in analysis.data_curves:
        by_family.setdefault((c.family, c.target, str(c.compute_value)), []).append(c)
    for curves in by_family.values():
        if len({str(c.size_value) for c in curves}) >= 2:
            analysis.data_trends.append(_trend(curves, "alpha_D vs N_M", N0_MODEL, lambda c: c.num_params, options))
    by_target: dict[tuple, list[CurveFit]] = {}
    for c in analysis.model_curves:
        by_target.setdefault((c.family, c.target, str(c.compute_value)), []).append(c)
    for curves in by_target.values():
        # alpha_M exists only where a family has >= 3 sizes; with fewer there is no trend to draw
        if len(curves) >= 2 and any(c.exponent_fit() is not None for c in curves):
            analysis.model_trends.append(
                _trend(curves, "alpha_M vs N_D", N0_DATA, lambda c: float(c.num_train), options)
            )
    analysis.joint_fits = _joint_fits(points, options)
    return analysis


def _joint_fits(points: list[Point], options: ReportOptions) -> list[JointEntry]:
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        # one run per point is enough: the joint fit then resamples points instead of realizations
        if p.num_params is not None and p.losses.size >= 1 and not p.excluded:
            groups.setdefault((p.family, p.target, str(p.compute_value)), []).append(p)
    entries = []
    for (family, target, _), pts in groups.items():
        # 5 parameters: both axes need enough distinct values for their exponent to be determined
        if len({p.num_params for p in pts}) < 3 or len({p.num_train for p in pts}) < 3:
            continue
        entry = JointEntry(family=family, target=target, compute_value=pts[0].compute_value, points=pts)
        bad = _bad_points(pts)
        if bad:
            entry.error = bad
        else:
            try:
                entry.fit = fit_joint(
                    [p.num_params for p in pts], [p.num_train for p in pts], [p.losses for p in pts],
                    num_bootstrap=options.num_saturating_bootstrap, confidence=options.confidence,
                    seed=derive_seed(options.seed, "joint", family, target, str(pts[0].compute_value)),
                    huber_delta=options.huber_delta, weights=[p.weight for p in pts],
                )
                if options.compute_budget is not None:
                    entry.optimum = compute_optimal(entry.fit, options.compute_budget, flop_model=options.flop_model)
            except ValueError as exc:
                entry.error = str(exc)
        entries.append(entry)
    return entries


def num_progress_units(results: SweepResults) -> int:
    """Units of work ``analyze`` reports (points + curves), for sizing a progress bar."""
    points = group_points(results)
    return len(points) + len(_curves(points, "data")) + len(_curves(points, "model")) + len(
        _curves(points, "compute"))


def _interval(iv: tuple[float, float] | None) -> tuple[float | None, float | None]:
    if iv is None:
        return None, None
    return tuple(None if not np.isfinite(v) else float(v) for v in iv)  # type: ignore[return-value]


def _log_stderrs(points: list[Point]) -> np.ndarray:
    """Standard error of each point's mean log loss ``[P]`` (the fitters' weights)."""
    from scalinglab.stats._design import make_design, point_variances

    design = make_design(np.arange(1.0, len(points) + 1), [p.losses for p in points])
    return np.sqrt(point_variances(design.log_vars(), design.counts))


def power_law_flags(fit: PowerLawFit) -> tuple[GoodnessOfFit, list[str]]:
    """Goodness of fit over the fit range and the flags of a realization-weighted power law."""
    m = fit.in_fit_
    gof = goodness_of_fit(fit.residuals_[m], fit.log_stderrs_[m], 2)
    flags = [f for f in (gof.flag(), range_flag(fit.x_[m], "x")) if f]
    cut = [d for d in fit.dropped_ if "curvature" in d["reason"]]
    if cut:
        flags.append(f"floor suspected: the curvature test cut {len(cut)} point(s) from the range; the quoted "
                     "exponent comes from the automatic law choice (row law=auto)")
    return gof, flags


def saturating_flags(fit: SaturatingFit, points: list[Point]) -> tuple[GoodnessOfFit, list[str]]:
    """Goodness of fit (Huber analogue of chi2) and flags of a saturating fit."""
    se = _log_stderrs(points)
    gof = goodness_of_fit(fit.residuals_, se, 3, threshold=HUBER_SCALE)
    lx, y = np.log(fit.x_), np.log(fit.geometric_means_)
    lower, upper = saturating_bounds(lx, y)
    theta = np.array([fit.exponent_, np.log(fit.x_c_), np.log(fit.floor_)])
    flags = [f for f in (gof.flag(),) if f]
    flags += bound_flags(theta, lower, upper, ["alpha", "ln X_c", "ln K"], skip=("ln K",))
    if not fit.converged_:
        flags.append("not converged: the optimizer met no convergence criterion")
    return gof, flags


def _gof_columns(gof: GoodnessOfFit | None, flags: list[str] | tuple[str, ...]) -> dict[str, Any]:
    cols: dict[str, Any] = {"flags": "; ".join(flags)}
    if gof is not None:
        cols.update(chi2=gof.statistic, dof=gof.dof, chi2_dof=gof.reduced, gof_p_value=gof.p_value,
                    rms_log_residual=gof.rms_log_residual, gof_kind=gof.kind)
    return cols


def fit_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """One flat row per fit (power laws, saturating laws, automatic choice, joint laws, exponent trends).

    Every fit row carries its goodness of fit (``chi2``, ``dof``, ``chi2_dof``, ``gof_p_value``,
    ``rms_log_residual``) and ``flags``: poor fit, parameter at a bound, unconstrained exponent.
    """
    rows: list[dict[str, Any]] = []
    for c in analysis.all_curves():
        if c.axis == "model" and np.unique(c.x).size < 3:
            continue  # two model sizes make a line, not a fit: the HTML page says why there is no alpha_M
        base = {
            "axis": c.axis, "family": c.family, "model": c.model_label, "size_value": c.size_value,
            "num_params": c.num_params, "target": c.target, "num_train": c.num_train,
            "compute_value": c.compute_value, "x": c.x_name, "num_points": int(c.x.size),
            "realizations": int(min(p.losses.size for p in c.points)),
            "excluded_x": ";".join(f"{p.num_train if c.axis == 'data' else p.num_params:g}"
                                   for p in c.excluded_points),
        }
        if c.power_law is not None:
            f = c.power_law
            gof, flags = power_law_flags(f)
            lo, hi = _interval(f.exponent_interval_)
            plo, phi = _interval(f.prefactor_interval_)
            rows.append({
                **base, "law": "power_law", "exponent": f.exponent_, "exponent_stderr": f.exponent_stderr_,
                "exponent_lo": lo, "exponent_hi": hi, "confidence": f.confidence, "prefactor": f.prefactor_,
                "prefactor_lo": plo, "prefactor_hi": phi, "floor": None, "floor_lo": None, "floor_hi": None,
                "chi2": f.chi2_, "dof": f.dof_, "fit_min": f.fit_range_[0], "fit_max": f.fit_range_[1],
                "num_points_in_fit": int(f.in_fit_.sum()),
                "flagged_precision": ";".join(f"{v:g}" for v in f.x_[f.flagged_precision_]),
                "dropped": ";".join(f"{d['x']:g} ({d['reason']})" for d in f.dropped_),
                "curvature_p_value": None if f.curvature_ is None else f.curvature_.p_value,
                "range_rule": f.range_rule_, "note": "", **_gof_columns(gof, flags),
            })
        else:
            rows.append({**base, "law": "power_law", "note": f"not fitted: {c.error}"})
        if c.quoted is not None:
            q = c.quoted
            lo, hi = _interval(q.exponent_interval_)
            klo, khi = _interval(q.floor_interval_)
            rows.append({
                **base, "law": "auto", "chosen_law": q.law_, "exponent": q.exponent_,
                "exponent_stderr": q.exponent_stderr_, "exponent_lo": lo, "exponent_hi": hi,
                "confidence": q.confidence, "prefactor": q.prefactor_ if q.law_ == "power_law" else q.x_c_,
                "floor": q.floor_, "floor_lo": klo, "floor_hi": khi, "saturating_share": q.saturating_share_,
                "floor_p_value": q.floor_p_value_, "floor_detected": q.floor_detected_, "resampling": q.resampling_,
                "fit_min": float(q.x_[0]), "fit_max": float(q.x_[-1]), **_gof_columns(q.goodness_, q.flags_),
                "note": (f"quoted exponent: {q.law_} chosen by the deviance test (level 0.3), the choice repeated "
                         f"in every replicate ({100 * q.saturating_share_:.0f}% chose the floored law)"
                         + ("; X_c in the prefactor column" if q.law_ == "saturating" else "")),
            })
        elif c.quoted_error and c.error is None:
            rows.append({**base, "law": "auto", "note": f"not fitted: {c.quoted_error}"})
        if c.saturating is not None:
            s = c.saturating
            gof, flags = saturating_flags(s, c.points)
            q = c.quoted
            if q is not None and not q.floor_detected_ and not s.floor_unconstrained_:
                # fit_saturating alone reports a floor on 4.5 % of pure power laws; the deviance test decides
                flags.append(f"floor not significant: deviance test p = {q.floor_p_value_:.2g} >= 0.01, so K is "
                             "not evidence of a floor")
            lo, hi = _interval(s.exponent_interval_)
            klo, khi = _interval(s.floor_interval_)
            xlo, xhi = _interval(s.x_c_interval_)
            rows.append({
                **base, "law": "saturating", "exponent": s.exponent_, "exponent_stderr": s.exponent_stderr_,
                "exponent_lo": lo, "exponent_hi": hi, "confidence": s.confidence, "prefactor": s.x_c_,
                "prefactor_lo": xlo, "prefactor_hi": xhi, "floor": s.floor_, "floor_lo": klo, "floor_hi": khi,
                "note": ("X_c in the prefactor columns; " + ("converged" if s.converged_ else "NOT converged")
                         + ("; floor compatible with 0" if s.floor_unconstrained_ else "")),
                **_gof_columns(gof, flags),
            })
        elif c.saturating_error:
            rows.append({**base, "law": "saturating", "note": f"not fitted: {c.saturating_error}"})
    for j in analysis.joint_fits:
        base = {"axis": "joint N_M x N_D", "law": "joint", "family": j.family, "model": j.family,
                "target": j.target, "compute_value": j.compute_value, "x": "N_M, N_D", "num_points": len(j.points),
                "realizations": int(min(p.losses.size for p in j.points))}
        if j.fit is None:
            rows.append({**base, "note": f"not fitted: {j.error}"})
            continue
        f = j.fit
        iv = {k: _interval(v) for k, v in f.intervals_.items()}
        rows.append({
            **base, "exponent": f.exponent_data_, "exponent_lo": iv["exponent_data"][0],
            "exponent_hi": iv["exponent_data"][1], "confidence": f.confidence,
            "exponent_model": f.exponent_model_, "exponent_model_lo": iv["exponent_model"][0],
            "exponent_model_hi": iv["exponent_model"][1], "prefactor": f.scale_data_,
            "prefactor_lo": iv["scale_data"][0], "prefactor_hi": iv["scale_data"][1],
            "scale_model": f.scale_model_, "floor": f.floor_, "floor_lo": iv["floor"][0], "floor_hi": iv["floor"][1],
            "resampling": f.resampling_, **_gof_columns(f.goodness_, f.flags_),
            "note": ("L = (A/N_M)^a_M + (B/N_D)^a_D + K; exponent = a_D, exponent_model = a_M, prefactor = B, "
                     "scale_model = A; " + ("converged" if f.converged_ else "NOT converged")
                     + f"; bootstrap over {f.resampling_}"),
        })
        if j.optimum is not None:
            o = j.optimum
            rows.append({
                **base, "axis": "compute-optimal", "law": "joint optimum", "compute_budget": o.budget,
                "n_model_opt": o.n_model, "n_model_opt_lo": o.n_model_interval[0],
                "n_model_opt_hi": o.n_model_interval[1], "n_data_opt": o.n_data,
                "n_data_opt_lo": o.n_data_interval[0], "n_data_opt_hi": o.n_data_interval[1],
                "loss_at_optimum": o.loss, "exponent": o.exponent_data, "exponent_lo": o.exponent_data_interval[0],
                "exponent_hi": o.exponent_data_interval[1], "exponent_model": o.exponent_model,
                "exponent_model_lo": o.exponent_model_interval[0], "exponent_model_hi": o.exponent_model_interval[1],
                "confidence": o.confidence, "flags": "; ".join(o.extrapolation),
                "note": (f"{o.flop_model}: N_opt ~ C^a (exponent_model = a), D_opt ~ C^b (exponent = b)"),
            })
    for t in analysis.data_trends + analysis.model_trends:
        base = {"axis": t.axis, "family": t.family, "model": t.family, "target": t.target,
                "compute_value": t.compute_value, "x": "N_M" if t.axis.endswith("N_M") else "N_D",
                "num_points": int(t.sizes.size), "law": "log_trend", "n0": t.n0}
        if t.line is None:
            rows.append({**base, "note": f"not fitted: {t.error}"})
            continue
        ln = t.line
        rows.append({
            **base, "slope_a": ln.slope_, "slope_a_stderr": ln.slope_stderr_,
            "slope_a_lo": _interval(t.slope_interval)[0], "slope_a_hi": _interval(t.slope_interval)[1],
            "intercept_b": ln.intercept_, "intercept_b_stderr": ln.intercept_stderr_,
            "intercept_b_lo": _interval(t.intercept_interval)[0], "intercept_b_hi": _interval(t.intercept_interval)[1],
            "confidence": analysis.options.confidence, "chi2": ln.chi2_, "dof": ln.dof_,
            "chi2_dof": ln.chi2_ / ln.dof_ if ln.dof_ > 0 else None,
            "note": f"alpha = a log10(N / {t.n0:g}) + b, on the quoted exponents (automatic law choice)",
        })
    return rows


def record_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """One row per realization record (records.csv): what it trained, how it ended, its metrics and whether it
    entered the fits (``used_in_fits``: its status is not excluded, its loss is a positive number and its point
    is not left out by ``--exclude``)."""
    excluded_points = {(p.source, p.family, str(p.size_value), p.target, p.num_train, str(p.compute_value))
                       for p in analysis.points if p.excluded}
    excluded_status = analysis.options.excluded_statuses
    rows = []
    for rec in analysis.results.records:
        status = record_status(rec)
        try:
            loss = loss_of(rec, analysis.results.loss_key)
        except ValueError:
            loss = math.nan
        key = (str(rec.get("source") or ""), str(rec["family"]), str(rec.get("size_value")), str(rec["target"]),
               int(rec["num_train"]), str(rec.get("compute_value")))
        row = {
            "source": rec.get("source"), "task_id": rec.get("task_id"), "family": rec["family"],
            "model": rec.get("model"), "model_label": rec.get("model_label"), "size_axis": rec.get("size_axis"),
            "size_value": rec.get("size_value"), "num_params": rec.get("num_params"), "target": rec["target"],
            "target_unit": rec.get("target_unit"), "num_train": rec["num_train"],
            "compute_key": rec.get("compute_key"), "compute_value": rec.get("compute_value"),
            "realization": rec["realization"], "seed": rec.get("seed"), "status": status,
            "stop_reason": rec.get("stop_reason"), "used_in_fits": bool(
                status not in excluded_status and math.isfinite(loss) and loss > 0 and key not in excluded_points),
            "loss": loss, "epochs_run": rec.get("epochs_run"), "max_epochs": rec.get("max_epochs"),
            "best_epoch": rec.get("best_epoch"), "best_val_loss": rec.get("best_val_loss"),
            "train_steps": rec.get("train_steps"), "flops": rec.get("flops"), "wall_time_s": rec.get("wall_time_s"),
            "mean_predictor_mse": rec.get("mean_predictor_mse"),
        }
        for section in ("test", "test_normalized"):
            for k, v in (rec.get(section) or {}).items():
                if not isinstance(v, dict | list):
                    row[f"{section}_{k}"] = v
        rows.append(row)
    return rows


def point_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """One row per design point with its aggregates (AM, GM, median) and their uncertainties."""
    rows = []
    for p in analysis.points:
        row = {
            "family": p.family, "model": p.model_label, "size_value": p.size_value, "num_params": p.num_params,
            "target": p.target, "num_train": p.num_train, "compute_value": p.compute_value, "flops": p.flops,
            "realizations": int(p.losses.size), "excluded_realizations": p.num_excluded,
            "wall_time_s": p.wall_time_s, "at_epoch_cap": p.num_at_epoch_cap, "no_skill": p.num_no_skill,
            "excluded_from_fits": p.excluded, "source": p.source, "recorded_realizations": p.num_records,
            "excluded_by_status": "; ".join(f"{k} {v}" for k, v in sorted(p.num_flagged.items())),
            "without_status": p.num_unknown_status,
        }
        s = p.summary
        if s is not None:
            row.update(
                mean=s.mean, mean_stderr=s.mean_stderr, geometric_mean=s.geometric_mean,
                geometric_mean_stderr=s.geometric_mean_stderr, geometric_mean_lo=s.geometric_mean_interval[0],
                geometric_mean_hi=s.geometric_mean_interval[1], median=s.median, median_mad=s.median_mad,
                near_float32_resolution=bool(s.geometric_mean < 10 * FLOAT32_LOSS_RESOLUTION),
            )
        rows.append(row)
    return rows

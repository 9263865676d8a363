"""Synthetic scaling sweeps with known truth, and the coverage studies that check the fitters against them.

A fitter's interval is honest when, over many sweeps drawn from a known law, it covers the true value at its
nominal rate. These generators and studies are what ``benchmarks/fit_coverage.py`` and the statistics tests
run; a user can run them on a design like their own before trusting an interval.

* Curves: ``L(x) = A x^-alpha + K`` at ``x = 256 * 2^k`` (8 points, paper 1's doubling N_D), 12-20
  realizations per point, lognormal realization noise ``exp(sigma z)`` (sigma = 0.3: the spread of paper 1's
  realization losses, Fig. 3). The floor ``K`` is a fraction ``f`` of the last point's loss, ``f`` drawn
  uniformly in [0.05, 0.30] per sweep.
* Joint single-run data: ``L = E + A N^-alpha + B D^-beta`` (Hoffmann et al. 2022's form) on a 6 x 6 grid,
  one run per point, lognormal noise sigma = 0.02 (the scatter of published ladders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.stats.compute_optimal import FlopModel, _optimum, compute_optimal
from scalinglab.stats.joint import fit_joint
from scalinglab.stats.model_choice import fit_scaling_curve

__all__ = ["CURVE_CASES", "JointTruth", "curve_coverage", "floored_power_law_sweep", "joint_coverage",
           "joint_single_run"]

#: The curve cases of the coverage study: name -> (alpha, floored).
CURVE_CASES = {"pure_alpha_0.8": (0.8, False), "pure_alpha_1.4": (1.4, False), "floored_alpha_1.1": (1.1, True)}
CURVE_X = 256.0 * 2.0 ** np.arange(8)


def floored_power_law_sweep(rng: np.random.Generator, alpha: float, floor_fraction: float, *,
                            x: np.ndarray = CURVE_X, prefactor: float = 50.0, sigma: float = 0.3,
                            runs: tuple[int, int] = (12, 20)) -> list[np.ndarray]:
    """Realization losses per point of ``A x^-alpha + K`` with ``K = f / (1 - f) * A x_max^-alpha``
    (so the floor is the fraction ``f`` of the last point's mean loss); ``R_p`` uniform in ``runs``."""
    if not 0.0 <= floor_fraction < 1.0:
        raise ValueError(f"floor_fraction must lie in [0, 1), got {floor_fraction!r}")
    last = prefactor * x[-1] ** -alpha
    floor = floor_fraction / (1.0 - floor_fraction) * last
    num = rng.integers(runs[0], runs[1] + 1)
    return [(prefactor * v**-alpha + floor) * np.exp(sigma * rng.standard_normal(num)) for v in x]


def curve_coverage(case: str, num_sweeps: int, *, seed: int = 0, num_bootstrap: int = 300,
                   confidence: float = 0.95) -> dict:
    """Coverage and bias of the automatically chosen exponent (``fit_scaling_curve``) over synthetic sweeps.

    Returns:
        ``{"case", "alpha", "num_sweeps", "coverage", "median_bias", "median_abs_error", "saturating_share",
        "floor_detected_share"}``.
    """
    if case not in CURVE_CASES:
        raise ValueError(f"unknown case {case!r}; cases: {', '.join(CURVE_CASES)}")
    alpha, floored = CURVE_CASES[case]
    rng = np.random.default_rng(seed)
    covered, errors, saturating, detected = [], [], [], []
    for i in range(num_sweeps):
        fraction = rng.uniform(0.05, 0.30) if floored else 0.0
        losses = floored_power_law_sweep(rng, alpha, fraction)
        fit = fit_scaling_curve(CURVE_X, losses, num_bootstrap=num_bootstrap, confidence=confidence,
                                seed=seed * 100003 + i)
        lo, hi = fit.exponent_interval_
        covered.append(lo <= alpha <= hi)
        errors.append(fit.exponent_ - alpha)
        saturating.append(fit.law_ == "saturating")
        detected.append(fit.floor_detected_)
    return {"case": case, "alpha": alpha, "num_sweeps": num_sweeps, "coverage": float(np.mean(covered)),
            "median_bias": float(np.median(errors)), "median_abs_error": float(np.median(np.abs(errors))),
            "saturating_share": float(np.mean(saturating)), "floor_detected_share": float(np.mean(detected))}


@dataclass(frozen=True)
class JointTruth:
    """``L = E + A N^-alpha + B D^-beta`` (defaults: Hoffmann et al. 2022's fitted values) on a 6 x 6 grid."""

    E: float = 1.69
    A: float = 406.4
    B: float = 410.7
    alpha: float = 0.34
    beta: float = 0.28
    sigma: float = 0.02
    n_model: tuple[float, float] = (1e6, 3e8)
    n_data: tuple[float, float] = (2e7, 6e9)
    grid: int = 6

    def params(self) -> np.ndarray:
        """The truth in :class:`~scalinglab.stats.joint.JointFit` order ``(a_M, A', a_D, B', K)``, where
        ``(A'/N)^a_M = A N^-alpha``."""
        return np.array([self.alpha, self.A ** (1 / self.alpha), self.beta, self.B ** (1 / self.beta), self.E])


def joint_single_run(rng: np.random.Generator, truth: JointTruth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run per point of the joint law: ``(N [P], D [P], loss [P])``."""
    ns = np.geomspace(*truth.n_model, truth.grid)
    ds = np.geomspace(*truth.n_data, truth.grid)
    nm, nd = (g.ravel() for g in np.meshgrid(ns, ds, indexing="ij"))
    mean = truth.E + truth.A * nm**-truth.alpha + truth.B * nd**-truth.beta
    return nm, nd, mean * np.exp(truth.sigma * rng.standard_normal(mean.size))


def joint_coverage(num_sweeps: int, *, seed: int = 0, budget: float = 1e19, num_bootstrap: int = 200,
                   truth: JointTruth | None = None) -> dict:
    """Coverage of the point-bootstrap intervals of the joint fit on single-run data, and of N_opt(C).

    Returns:
        ``{"num_sweeps", "coverage": {parameter: share}, "n_opt_true", "n_opt_coverage", "budget"}``.
    """
    truth = truth or JointTruth()
    true = truth.params()
    n_opt_true = float(_optimum(true, np.asarray(budget), FlopModel())[0])
    rng = np.random.default_rng(seed)
    names = ("exponent_model", "scale_model", "exponent_data", "scale_data", "floor")
    hits = dict.fromkeys(names, 0)
    n_opt_hits = 0
    for i in range(num_sweeps):
        nm, nd, loss = joint_single_run(rng, truth)
        fit = fit_joint(nm, nd, [[v] for v in loss], num_bootstrap=num_bootstrap, seed=seed * 100003 + i)
        for j, name in enumerate(names):
            lo, hi = fit.intervals_[name]
            hits[name] += bool(lo <= true[j] <= hi)
        lo, hi = compute_optimal(fit, budget).n_model_interval
        n_opt_hits += bool(lo <= n_opt_true <= hi)
    return {"num_sweeps": num_sweeps, "coverage": {k: v / num_sweeps for k, v in hits.items()},
            "budget": budget, "n_opt_true": n_opt_true, "n_opt_coverage": n_opt_hits / num_sweeps}

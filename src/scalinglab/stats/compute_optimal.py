"""Compute-optimal allocation from a joint fit: the model and dataset sizes that minimize loss at a budget.

With the joint law ``L = (A/N)^a + (B/D)^b + K`` (``a = a_M``, ``b = a_D``; :mod:`scalinglab.stats.joint`)
and a FLOP model ``C = c N^p D^q`` (default ``C = 6 N D``: forward plus backward pass per parameter and
sample), eliminating ``D = (C / (c N^p))^(1/q)`` and setting ``dL/dN = 0`` gives the closed form

    N_opt^(a + b p / q) = (a q A^a) / (b p B^b) * (C / c)^(b / q),     D_opt = (C / (c N_opt^p))^(1/q),

so ``N_opt ~ C^(b / (a q + b p))`` and ``D_opt ~ C^(a / (a q + b p))``. For ``C = 6 N D`` these are the
familiar exponents ``beta / (alpha + beta)`` and ``alpha / (alpha + beta)`` (alpha = a_M, beta = a_D). The loss
at the optimum is the law evaluated there. Intervals come from evaluating the same closed form on every
bootstrap replicate of the joint fit (percentile intervals), so they carry the fit's uncertainty.

Reference: Hoffmann et al., "Training Compute-Optimal Large Language Models" (2022), Approach 3, Eq. (4)
(the additive law and its constrained minimum); the form here is the package's ``(A/N)^a`` scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalinglab.stats._design import check_confidence, percentile_interval
from scalinglab.stats.joint import JointFit

__all__ = ["ComputeOptimum", "FlopModel", "compute_optimal", "compute_frontier"]


@dataclass(frozen=True)
class FlopModel:
    """Training compute ``C = coefficient * N^model_power * D^data_power`` (FLOPs; N parameters, D samples).

    The default 6 N D counts a forward and a backward pass (2 + 4 FLOPs per parameter and sample) over one
    pass through the data; a user with several epochs, or a cost that grows faster with N, sets their own.
    """

    coefficient: float = 6.0
    model_power: float = 1.0
    data_power: float = 1.0

    def __post_init__(self) -> None:
        for name in ("coefficient", "model_power", "data_power"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"FlopModel.{name} must be finite and > 0, got {v!r}")

    def flops(self, n_model, n_data) -> np.ndarray:
        """``C`` for the given sizes (broadcasting)."""
        return self.coefficient * np.asarray(n_model, float) ** self.model_power * np.asarray(
            n_data, float) ** self.data_power

    def describe(self) -> str:
        p, q = self.model_power, self.data_power
        return f"C = {self.coefficient:g} N{'' if p == 1 else f'^{p:g}'} D{'' if q == 1 else f'^{q:g}'}"


@dataclass(frozen=True)
class ComputeOptimum:
    """The loss-optimal allocation of a compute budget.

    Attributes:
        budget: the budget C (FLOPs).
        n_model, n_data: N_opt and D_opt; n_model_interval, n_data_interval: their percentile intervals.
        loss, loss_interval: the fitted loss at the optimum and its interval.
        exponent_model, exponent_data: ``N_opt ~ C^exponent_model``, ``D_opt ~ C^exponent_data`` (the a and b
            of the compute-optimal literature), with intervals.
        extrapolation: one line per size outside the measured range (empty: interpolation).
        flop_model: the compute model used, in words.
        confidence: coverage of the intervals.
    """

    budget: float
    n_model: float
    n_model_interval: tuple[float, float]
    n_data: float
    n_data_interval: tuple[float, float]
    loss: float
    loss_interval: tuple[float, float]
    exponent_model: float
    exponent_model_interval: tuple[float, float]
    exponent_data: float
    exponent_data_interval: tuple[float, float]
    extrapolation: tuple[str, ...]
    flop_model: str
    confidence: float

    def summary(self) -> dict:
        return {
            "budget": self.budget, "flop_model": self.flop_model, "n_model_opt": self.n_model,
            "n_model_opt_interval": list(self.n_model_interval), "n_data_opt": self.n_data,
            "n_data_opt_interval": list(self.n_data_interval), "loss_at_optimum": self.loss,
            "loss_at_optimum_interval": list(self.loss_interval), "exponent_model": self.exponent_model,
            "exponent_model_interval": list(self.exponent_model_interval), "exponent_data": self.exponent_data,
            "exponent_data_interval": list(self.exponent_data_interval), "extrapolation": list(self.extrapolation),
            "confidence": self.confidence,
        }


def _optimum(params: np.ndarray, budget: np.ndarray, flops: FlopModel):
    """Closed-form optimum for parameter rows ``[..., 5] = (a_M, A, a_D, B, K)`` and budgets (broadcast)."""
    a, big_a, b, big_b, k = (params[..., i] for i in range(5))
    c, p, q = flops.coefficient, flops.model_power, flops.data_power
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # logs keep 1e20-FLOP budgets and 1e-30 prefactors representable
        log_n = (np.log(a * q / (b * p)) + a * np.log(big_a) - b * np.log(big_b)
                 + (b / q) * np.log(budget / c)) / (a + b * p / q)
        log_d = (np.log(budget / c) - p * log_n) / q
        n_opt, d_opt = np.exp(log_n), np.exp(log_d)
        loss = np.exp(a * (np.log(big_a) - log_n)) + np.exp(b * (np.log(big_b) - log_d)) + k
        denom = a * q + b * p
    return n_opt, d_opt, loss, b / denom, a / denom


def compute_optimal(fit: JointFit, budget: float, *, flop_model: FlopModel | None = None,
                    confidence: float | None = None) -> ComputeOptimum:
    """N_opt(C), D_opt(C), the loss there and the allocation exponents, with bootstrap intervals.

    Args:
        fit: a :class:`~scalinglab.stats.joint.JointFit`.
        budget: compute budget C (FLOPs, > 0).
        flop_model: the compute model (default ``C = 6 N D``).
        confidence: interval coverage (default: the fit's).

    Returns:
        The :class:`ComputeOptimum`.
    """
    budget = float(budget)
    if not (np.isfinite(budget) and budget > 0):
        raise ValueError(f"the compute budget must be a positive number of FLOPs, got {budget!r}")
    flops = flop_model or FlopModel()
    confidence = fit.confidence if confidence is None else confidence
    check_confidence(confidence)
    theta = np.array([fit.exponent_model_, fit.scale_model_, fit.exponent_data_, fit.scale_data_, fit.floor_])
    n, d, loss, e_n, e_d = (float(v) for v in _optimum(theta, np.asarray(budget), flops))
    boot = _optimum(fit.bootstrap_params_, np.asarray(budget), flops)
    ivs = [tuple(float(v) for v in percentile_interval(arr, confidence)) for arr in boot]
    notes = []
    for name, value, (lo, hi) in (("N_opt", n, fit.n_model_range_), ("D_opt", d, fit.n_data_range_)):
        if np.isfinite(lo) and not lo <= value <= hi:
            factor = value / hi if value > hi else lo / value
            side = "above" if value > hi else "below"
            notes.append(f"{name} = {value:.3g} lies x{factor:.3g} {side} the measured range {lo:.3g}..{hi:.3g}: "
                         "an extrapolation of the fitted law")
    return ComputeOptimum(budget=budget, n_model=n, n_model_interval=ivs[0], n_data=d, n_data_interval=ivs[1],
                          loss=loss, loss_interval=ivs[2], exponent_model=e_n, exponent_model_interval=ivs[3],
                          exponent_data=e_d, exponent_data_interval=ivs[4], extrapolation=tuple(notes),
                          flop_model=flops.describe(), confidence=float(confidence))


def compute_frontier(fit: JointFit, budgets, *, flop_model: FlopModel | None = None,
                     confidence: float | None = None) -> dict[str, np.ndarray]:
    """The loss-optimal frontier over budgets ``[C]``: point values and interval bands of N_opt, D_opt, loss.

    Returns:
        ``{"budget", "n_model", "n_data", "loss"}`` ``[C]`` and ``"<name>_lo"``, ``"<name>_hi"`` bands.
    """
    c = np.asarray(budgets, dtype=np.float64)
    if c.ndim != 1 or not np.all(np.isfinite(c) & (c > 0)):
        raise ValueError("budgets must be a 1-D array of positive FLOP counts")
    flops = flop_model or FlopModel()
    confidence = fit.confidence if confidence is None else confidence
    theta = np.array([fit.exponent_model_, fit.scale_model_, fit.exponent_data_, fit.scale_data_, fit.floor_])
    point = _optimum(theta[None, :], c, flops)
    boot = _optimum(fit.bootstrap_params_[:, None, :], c[None, :], flops)
    out = {"budget": c}
    for i, name in enumerate(("n_model", "n_data", "loss")):
        out[name] = point[i]
        lo, hi = percentile_interval(boot[i], confidence, axis=0)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out

"""Test metrics per target, in physical and in standardized units.

All metrics are computed in float64 with numpy from predictions and targets ``[n, P]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METRICS = ("mse", "mae", "mape", "r2")


def _as_2d(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be [n, P], got shape {list(arr.shape)}")
    return arr


def regression_metrics(pred: Any, target: Any) -> dict[str, np.ndarray]:
    """Per-target regression metrics.

    Args:
        pred: [n, P] predictions.
        target: [n, P] true values (same units as ``pred``).

    Returns:
        ``{"mse", "mae", "mape", "r2"}``, each [P]:
        mse = mean (pred - y)^2; mae = mean |pred - y|;
        mape = 100 * mean |pred - y| / |y| in percent, over the samples with y != 0 (NaN if none);
        r2 = 1 - sum (pred - y)^2 / sum (y - mean y)^2 (NaN for a constant target).
    """
    p, y = _as_2d(pred, "predictions"), _as_2d(target, "targets")
    if p.shape != y.shape:
        raise ValueError(f"predictions {list(p.shape)} and targets {list(y.shape)} differ in shape")
    if p.shape[0] == 0:
        raise ValueError("metrics need at least one sample")
    err = p - y
    mse = np.mean(err**2, axis=0)
    mae = np.mean(np.abs(err), axis=0)
    nonzero = y != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(nonzero, np.abs(err) / np.where(nonzero, np.abs(y), 1.0), 0.0)
        mape = 100.0 * ratio.sum(axis=0) / nonzero.sum(axis=0)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        r2 = np.where(ss_tot > 0, 1.0 - np.sum(err**2, axis=0) / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    return {"mse": mse, "mae": mae, "mape": mape, "r2": r2}


def summarize(per_target: dict[str, np.ndarray]) -> dict[str, float]:
    """Average each metric over targets (for one target: that target's value), as plain floats."""
    return {k: float(np.mean(v)) for k, v in per_target.items()}


def per_target_dict(per_target: dict[str, np.ndarray], names: list[str]) -> dict[str, dict[str, float]]:
    """``{target name: {metric: value}}`` (JSON-serializable)."""
    return {n: {k: float(v[i]) for k, v in per_target.items()} for i, n in enumerate(names)}

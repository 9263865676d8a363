"""Calibration figure of heteroscedastic surrogates: pull histograms against N(0, 1) and learned sigmas.

Reads the ``calibration`` entry that ``scalinglab.training.experiment`` writes into each record trained with
``loss = "gaussian_nll"``: fixed-bin pull counts (pull = (pred - true) / sigma in standardized, possibly
log-transformed, target units) and quantiles of the learned sigma. A calibrated network has pulls ~ N(0, 1).

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2 (Eq. 15) and Figs. 4-6.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 110


def calibration_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that carry a ``calibration`` entry (trained with the Gaussian NLL)."""
    return [r for r in records if isinstance(r.get("calibration"), dict)]


def pooled_pulls(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Pull histogram summed over records: (bin edges [K + 1], density [K] normalized over all pulls counted).

    Raises:
        ValueError: no calibration records, or records with different bin edges.
    """
    recs = calibration_records(records)
    if not recs:
        raise ValueError("no records with a 'calibration' entry (train with loss = 'gaussian_nll')")
    edges = np.asarray(recs[0]["calibration"]["pull_bins"], dtype=float)
    counts = np.zeros(len(edges) - 1)
    for r in recs:
        if not np.array_equal(np.asarray(r["calibration"]["pull_bins"], dtype=float), edges):
            raise ValueError("calibration records use different pull bins; cannot pool them")
        counts += np.asarray(r["calibration"]["pull_counts"], dtype=float)
    total = counts.sum()
    density = counts / (total * np.diff(edges)) if total > 0 else counts
    return edges, density


def _sort_key(value: Any) -> tuple:
    """None last, numbers numerically, then names."""
    if value is None:
        return (2, 0.0, "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def calibration_groups(records: list[dict[str, Any]], group_key: str = "num_train") -> dict[Any, list[dict[str, Any]]]:
    """The calibration records split by ``record[group_key]``, keys in ascending order (one line each)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in calibration_records(records):
        groups.setdefault(r.get(group_key), []).append(r)
    return {k: groups[k] for k in sorted(groups, key=_sort_key)}


def draw_calibration(records: list[dict[str, Any]], group_key: str = "num_train", title: str | None = None,
                     label: str | None = None):
    """The calibration figure, not yet saved: ``(fig, ax_pull, ax_sigma)`` with one pull histogram (a
    ``StepPatch``) and one sigma-quantile line per value of ``group_key`` (legend: ``label=value``, ``label``
    defaulting to ``group_key``).

    Raises:
        ValueError: no records with a ``calibration`` entry.
    """
    groups = calibration_groups(records, group_key)
    if not groups:
        raise ValueError("no records with a 'calibration' entry (train with loss = 'gaussian_nll')")
    label = label or group_key
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, max(1, len(groups))))
    fig, (ax_pull, ax_sigma) = plt.subplots(1, 2, figsize=(10.5, 4.0))
    grid = np.linspace(-5, 5, 401)
    ax_pull.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", lw=1.2, label="N(0, 1)")
    for color, (key, recs) in zip(colors, groups.items()):
        edges, density = pooled_pulls(recs)
        std = float(np.mean([r["calibration"]["pull_std"] for r in recs]))
        ax_pull.stairs(density, edges, color=color, label=f"{label}={key} (pull std {std:.2f})")
        qs = [r["calibration"]["sigma_quantiles"] for r in recs]
        levels = sorted(qs[0], key=float)
        med = [float(np.median([q[lv] for q in qs])) for lv in levels]
        ax_sigma.plot([float(lv) for lv in levels], med, "o-", color=color, label=f"{label}={key}")
    ax_pull.set_yscale("log")
    ax_pull.set_ylim(1e-4, 1.0)
    ax_pull.set_xlabel("pull (pred - true) / sigma")
    ax_pull.set_ylabel("density")
    ax_pull.legend(fontsize=7)
    ax_sigma.set_yscale("log")
    ax_sigma.set_xlabel("quantile")
    ax_sigma.set_ylabel("learned sigma (standardized units)")
    ax_sigma.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, ax_pull, ax_sigma


def calibration_figure(records: list[dict[str, Any]], out_path: str | Path, group_key: str = "num_train",
                       title: str | None = None, label: str | None = None) -> Path:
    """Draw pull histograms per group (e.g. per N_D) against a unit Gaussian, and the learned sigma quantiles.

    Args:
        records: sweep/experiment records (those without ``calibration`` are ignored).
        out_path: PNG file to write.
        group_key: record field that separates the histograms (one line per value).
        title: optional figure title.
        label: name of the grouping in the legend (default ``group_key``).

    Returns:
        the written path.
    """
    fig, _, _ = draw_calibration(records, group_key, title, label)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return out_path


def largest_compute_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calibration records at the largest compute value of their model (and results directory); records
    without a compute axis are all kept."""
    recs = calibration_records(records)

    def key(r):
        return (str(r.get("source") or ""), str(r.get("model_label") or r.get("family") or ""))

    top: dict[tuple[str, str], Any] = {}
    for r in recs:
        if r.get("compute_key") and (key(r) not in top or _sort_key(r.get("compute_value")) > _sort_key(top[key(r)])):
            top[key(r)] = r.get("compute_value")
    return [r for r in recs if not r.get("compute_key") or r.get("compute_value") == top[key(r)]]


def calibration_by_compute(records: list[dict[str, Any]], out_dir: str | Path) -> list[dict[str, Any]]:
    """One calibration figure per N_D (and model, when several) of a compute-axis sweep, one line per compute
    value (paper 3 Figs. 5-6 left: pull and sigma distributions for different amounts of compute).

    Returns:
        One dict per figure: ``num_train``, ``model``, ``compute_values`` (the lines, ascending), ``path``
        (``calibration_compute_ND{N}[_{model}].png``). Empty when no calibration record has a compute axis.
    """
    recs = [r for r in calibration_records(records) if r.get("compute_key")]
    models = sorted({str(r.get("model_label") or r.get("family") or "") for r in recs})
    out = []
    for model in models:
        mine = [r for r in recs if str(r.get("model_label") or r.get("family") or "") == model]
        for n in sorted({int(r["num_train"]) for r in mine}):
            at_n = [r for r in mine if int(r["num_train"]) == n]
            key = at_n[0]["compute_key"]
            slug = "" if len(models) == 1 else "_" + "".join(ch if ch.isalnum() else "-" for ch in model)
            path = calibration_figure(at_n, Path(out_dir) / f"calibration_compute_ND{n}{slug}.png",
                                      group_key="compute_value", label=str(key),
                                      title=f"{model}: N_D = {n}, lines: {key}" if model else f"N_D = {n}")
            out.append({"num_train": n, "model": model, "compute_key": key, "path": path,
                        "compute_values": list(calibration_groups(at_n, "compute_value"))})
    return out

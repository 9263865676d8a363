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


def calibration_figure(records: list[dict[str, Any]], out_path: str | Path, group_key: str = "num_train") -> Path:
    """Draw pull histograms per group (e.g. per N_D) against a unit Gaussian, and the learned sigma quantiles.

    Args:
        records: sweep/experiment records (those without ``calibration`` are ignored).
        out_path: PNG file to write.
        group_key: record field that separates the histograms (one line per value).

    Returns:
        the written path.
    """
    recs = calibration_records(records)
    if not recs:
        raise ValueError("no records with a 'calibration' entry (train with loss = 'gaussian_nll')")
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault(r.get(group_key), []).append(r)
    keys = sorted(groups, key=lambda k: (k is None, k if isinstance(k, (int, float)) else str(k)))
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, max(1, len(keys))))
    fig, (ax_pull, ax_sigma) = plt.subplots(1, 2, figsize=(10.5, 4.0))
    grid = np.linspace(-5, 5, 401)
    ax_pull.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", lw=1.2, label="N(0, 1)")
    for color, key in zip(colors, keys):
        edges, density = pooled_pulls(groups[key])
        std = float(np.mean([r["calibration"]["pull_std"] for r in groups[key]]))
        ax_pull.stairs(density, edges, color=color, label=f"{group_key}={key} (pull std {std:.2f})")
        qs = [r["calibration"]["sigma_quantiles"] for r in groups[key]]
        levels = sorted(qs[0], key=float)
        med = [float(np.median([q[lv] for q in qs])) for lv in levels]
        ax_sigma.plot([float(lv) for lv in levels], med, "o-", color=color, label=f"{group_key}={key}")
    ax_pull.set_yscale("log")
    ax_pull.set_ylim(1e-4, 1.0)
    ax_pull.set_xlabel("pull (pred - true) / sigma")
    ax_pull.set_ylabel("density")
    ax_pull.legend(fontsize=7)
    ax_sigma.set_yscale("log")
    ax_sigma.set_xlabel("quantile")
    ax_sigma.set_ylabel("learned sigma (standardized units)")
    ax_sigma.legend(fontsize=7)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return out_path

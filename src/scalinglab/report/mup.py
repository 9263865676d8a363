"""muP transfer check from sweep records: test loss per (width, base learning rate) and the best rate per width.

Reads the records of a sweep with a model-size axis (the hidden width) and a ``[compute]`` axis over ``lr``, as
``scalinglab mup-check`` writes it: one record per (width, lr, realization) with the standardized test metrics
``test_normalized``. Under the maximal update parametrisation the best base learning rate does not move with
the width (paper 3 Fig. 1 left); :func:`optimum_shift` measures how far it moves, in grid steps.

No torch and no sweeps import: records come from ``report.loader`` (or ``ResultsStore.records``).

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eqs. 17-21 and Fig. 1 (left).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["mup_table", "optimum_shift", "mup_figure"]


def mup_table(records: Sequence[dict[str, Any]], widths: Sequence[int] | None = None,
              lrs: Sequence[float] | None = None, loss_key: str = "mse") -> dict[str, Any]:
    """Geometric-mean test loss over realizations for every (width, lr), and the best lr per width.

    A point with a diverged realization (test loss NaN, infinite or not positive) or without records is
    missing (None), as one diverged seed makes the rate unusable at that width.

    Args:
        records: realization records with ``size_value`` (width), ``compute_key`` "lr", ``compute_value`` (the
            base learning rate) and ``test_normalized[loss_key]`` (standardized target units).
        widths: the widths, in table order (default: those of the records, ascending).
        lrs: the learning rates, in table order (default: those of the records, ascending).
        loss_key: the test metric in ``test_normalized``.

    Returns:
        ``{"widths", "lrs", "loss": [len(widths)][len(lrs)] (None: missing), "best_lr": {str(width): lr or
        None (every point missing)}}``.
    """
    recs = [r for r in records if r.get("compute_key") == "lr"]
    if not recs:
        raise ValueError("no records with a learning-rate axis ([compute] key = \"lr\"): not a mup-check sweep")
    widths = [int(w) for w in widths] if widths is not None else sorted({int(r["size_value"]) for r in recs})
    lrs = [float(v) for v in lrs] if lrs is not None else sorted({float(r["compute_value"]) for r in recs})
    groups: dict[tuple[int, float], list[float]] = {}
    for r in recs:
        value = (r.get("test_normalized") or {}).get(loss_key)
        groups.setdefault((int(r["size_value"]), float(r["compute_value"])), []).append(
            math.nan if value is None else float(value))
    loss: list[list[float | None]] = []
    best: dict[str, float | None] = {}
    for w in widths:
        row: list[float | None] = []
        for lr in lrs:
            vals = np.asarray(groups.get((w, lr), []), dtype=np.float64)
            ok = vals.size > 0 and bool(np.all(np.isfinite(vals)) and np.all(vals > 0))
            row.append(float(np.exp(np.mean(np.log(vals)))) if ok else None)
        loss.append(row)
        finite = [j for j, v in enumerate(row) if v is not None]
        best[str(w)] = lrs[min(finite, key=lambda j: row[j])] if finite else None  # first of ties, as argmin
    return {"widths": widths, "lrs": lrs, "loss": loss, "best_lr": best}


def optimum_shift(result: dict[str, Any]) -> int:
    """Largest distance, in grid steps, between the best learning rates of any two widths."""
    idx = [result["lrs"].index(b) for b in result["best_lr"].values() if b is not None]
    return max(idx) - min(idx) if idx else 0


def mup_figure(result: dict[str, Any], out_path: str | Path) -> Path:
    """Test loss vs base learning rate, one line per width, best rate starred (paper 3 Fig. 1 left).

    Args:
        result: :func:`mup_table`'s dict with ``base_width`` and ``log_target`` (as ``scalinglab mup-check``
            returns it); a missing (diverged) point is a gap in its line.
        out_path: PNG file to write.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: written by batch jobs and tests
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, len(result["widths"])))
    for color, w, row in zip(colors, result["widths"], result["loss"], strict=True):
        y = np.array([np.nan if v is None else v for v in row])
        ax.plot(result["lrs"], y, "o-", color=color, label=f"width {w}")
        b = result["best_lr"].get(str(w))
        if b is not None:
            ax.plot([b], [y[result["lrs"].index(b)]], "*", color=color, ms=12)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"base learning rate (muP, base width {result.get('base_width', '?')})")
    ax.set_ylabel("test MSE (standardized" + (", log target)" if result.get("log_target") else ")"))
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path

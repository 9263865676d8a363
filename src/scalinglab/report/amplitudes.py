"""Amplitude-surrogate figures: exponents vs final-state multiplicity with the 4/d bound, and the TwoNN
intrinsic dimension of the learned features vs training size against the phase-space dimension d.

Inputs are sweep records (``scalinglab.report.loader``) that carry ``n_f`` and ``phase_space_dim`` (written by
the experiment layer from the dataset's metadata: d = 3 n_f - 4 for hadron-collider samples, 3 n_f - 5 at one
fixed sqrt(s)) and, for MLP-I, ``intrinsic_dimension`` (TwoNN on last-hidden-layer activations of test points).
No torch: this module reads records and fits through ``scalinglab.stats``.

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 2 (Eqs. 4-8: alpha >= 4/d, d = 3 n_f - 4),
Fig. 10 (exponents vs n_f) and App. B / Figs. 3, 18-19 (intrinsic dimension).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scalinglab.stats import fit_power_law  # noqa: E402

DPI = 110


def record_dimension(record: dict[str, Any]) -> int:
    """The phase-space dimension d of a record's dataset.

    Records written before datasets recorded their sampling carry only ``n_f``; all of them came from stores
    sampled at one fixed sqrt(s), where d = 3 n_f - 5.
    """
    if record.get("phase_space_dim") is not None:
        return int(record["phase_space_dim"])
    n_f = record.get("n_f")
    if n_f is None or int(n_f) < 2:
        raise ValueError(f"record has no phase-space dimension and no n_f >= 2 (n_f = {n_f!r})")
    return 3 * int(n_f) - 5


def exponent_bound(dimension: int) -> float:
    """Lower bound alpha >= 4/d of the MSE scaling exponents (paper 3 Eqs. 4-8)."""
    if dimension < 1:
        raise ValueError(f"the phase-space dimension must be >= 1, got {dimension}")
    return 4.0 / dimension


def data_exponent(records: list[dict[str, Any]], *, loss_key: str = "mse", num_bootstrap: int = 2000,
                  seed: int = 0, fit_range: str = "all") -> dict[str, Any]:
    """alpha_D of one amplitude sweep: power law of the test loss (``test_normalized[loss_key]``) vs N_D.

    Args:
        records: realization records of one process and one model configuration, each with ``n_f``.
        loss_key: metric in ``test_normalized`` (paper 3: MSE of log-standardized |M|^2).
        num_bootstrap, seed, fit_range: passed to :func:`scalinglab.stats.fit_power_law`.

    Returns:
        {"n_f", "d", "exponent", "ci95", "stderr", "bound", "fit_range", "num_points"}.

    Raises:
        ValueError: records without ``n_f``, several n_f or d values, or fewer than 3 data sizes.
    """
    nfs = {r.get("n_f") for r in records}
    if None in nfs or len(nfs) != 1:
        raise ValueError(f"records must share one n_f (found {sorted(map(str, nfs))})")
    n_f = int(nfs.pop())
    dims = {record_dimension(r) for r in records}
    if len(dims) != 1:
        raise ValueError(f"records must share one phase-space dimension (found {sorted(dims)})")
    d = dims.pop()
    by_n: dict[int, list[float]] = {}
    for r in records:
        by_n.setdefault(int(r["num_train"]), []).append(float(r["test_normalized"][loss_key]))
    sizes = sorted(by_n)
    if len(sizes) < 3:
        raise ValueError(f"need >= 3 data sizes for alpha_D, got {len(sizes)}")
    fit = fit_power_law(sizes, [by_n[n] for n in sizes], fit_range=fit_range, num_bootstrap=num_bootstrap,
                        seed=seed)
    return {"n_f": n_f, "d": d, "exponent": float(fit.exponent_), "ci95": [float(v) for v in fit.exponent_interval_],
            "stderr": float(fit.exponent_stderr_), "bound": exponent_bound(d),
            "fit_range": [float(v) for v in fit.fit_range_], "num_points": len(sizes)}


def exponents_vs_nf_figure(rows: list[dict[str, Any]], out_path: str | Path) -> Path:
    """alpha vs n_f with intervals against the bound 4/d (paper 3 Fig. 10).

    Args:
        rows: dicts with ``n_f``, ``d``, ``exponent``, ``ci95`` and optionally ``axis`` ("data" or "compute";
            default "data"), e.g. from :func:`data_exponent`. The bound is drawn as 4/(3 n_f - k) for each
            sampling k = 3 n_f - d among the rows (k = 4: hadronic, 5: fixed sqrt(s)).
        out_path: PNG path.
    """
    if not rows:
        raise ValueError("no exponents to plot")
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    markers = {"data": ("o", "alpha_D"), "compute": ("s", "alpha_C")}
    for k, axis in enumerate(sorted({r.get("axis", "data") for r in rows})):
        sel = sorted((r for r in rows if r.get("axis", "data") == axis), key=lambda r: r["n_f"])
        x = np.array([r["n_f"] for r in sel], float) + 0.08 * k
        y = np.array([r["exponent"] for r in sel])
        lo = y - np.array([r["ci95"][0] for r in sel])
        hi = np.array([r["ci95"][1] for r in sel]) - y
        marker, label = markers.get(axis, ("^", axis))
        ax.errorbar(x, y, yerr=[lo, hi], fmt=marker, capsize=3, label=label)
    nf = np.arange(min(r["n_f"] for r in rows), max(r["n_f"] for r in rows) + 1)
    grid = np.linspace(nf[0] - 0.3, nf[-1] + 0.3, 200)
    for k, ls in zip(sorted({3 * int(r["n_f"]) - int(r["d"]) for r in rows}), ("--", ":", "-.")):
        what = {4: "hadronic", 5: "fixed sqrt(s)"}.get(k, f"d = 3 n_f - {k}")
        ax.plot(grid, 4.0 / (3 * grid - k), "k", ls=ls, lw=1, label=f"bound 4/(3 n_f - {k}) ({what})")
    ax.set_xticks(nf)
    ax.set_xlabel("final-state particles n_f")
    ax.set_ylabel("scaling exponent")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def intrinsic_dimension_figure(records: list[dict[str, Any]], out_path: str | Path) -> Path:
    """TwoNN dimension of the last hidden layer vs N_D per n_f (median and range over realizations), with
    the dataset's phase-space dimension d as a dashed line (paper 3 Fig. 3, App. B).

    Raises:
        ValueError: no record carries both ``n_f`` and ``intrinsic_dimension``.
    """
    recs = [r for r in records if r.get("n_f") is not None and r.get("intrinsic_dimension") is not None]
    if not recs:
        raise ValueError("no records with n_f and intrinsic_dimension (MLP-I on an amplitude dataset)")
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    nfs = sorted({int(r["n_f"]) for r in recs})
    colors = plt.cm.viridis(np.linspace(0.1, 0.8, len(nfs)))
    for color, n_f in zip(colors, nfs):
        by_n: dict[int, list[float]] = {}
        for r in recs:
            if int(r["n_f"]) == n_f:
                by_n.setdefault(int(r["num_train"]), []).append(float(r["intrinsic_dimension"]))
        sizes = sorted(by_n)
        med = np.array([np.median(by_n[n]) for n in sizes])
        lo = med - np.array([min(by_n[n]) for n in sizes])
        hi = np.array([max(by_n[n]) for n in sizes]) - med
        ax.errorbar(sizes, med, yerr=[lo, hi], fmt="o-", color=color, capsize=3, label=f"n_f = {n_f}")
        for d in sorted({record_dimension(r) for r in recs if int(r["n_f"]) == n_f}):
            ax.axhline(d, color=color, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training size N_D")
    ax.set_ylabel("TwoNN dimension (last hidden layer)")
    ax.legend(fontsize=8, title="dashed: phase-space dimension d", title_fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return out_path

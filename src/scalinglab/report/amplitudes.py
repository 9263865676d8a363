"""Amplitude-surrogate figures: exponents vs final-state multiplicity with the 4/d bound, and the TwoNN
intrinsic dimension of the learned features vs training size against 3 n_f - 4.

Inputs are sweep records (``scalinglab.report.loader``) that carry ``n_f`` (written by the experiment layer
for amplitude datasets) and, for MLP-I, ``intrinsic_dimension`` (TwoNN on last-hidden-layer activations of
test points). No torch: this module reads records and fits through ``scalinglab.stats``.

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


def phase_space_dimension(n_f: int) -> int:
    """d = 3 n_f - 4: momenta of n_f final-state particles minus energy-momentum conservation (massless/fixed
    masses, fixed sqrt(s)); for n_f = 2 the amplitude still depends on 2 angles."""
    if n_f < 2:
        raise ValueError(f"n_f must be >= 2, got {n_f}")
    return 3 * n_f - 4


def exponent_bound(n_f: int) -> float:
    """Lower bound alpha >= 4/d of the MSE scaling exponents (paper 3 Eqs. 4-8)."""
    return 4.0 / phase_space_dimension(n_f)


def data_exponent(records: list[dict[str, Any]], *, loss_key: str = "mse", num_bootstrap: int = 2000,
                  seed: int = 0, fit_range: str = "all") -> dict[str, Any]:
    """alpha_D of one amplitude sweep: power law of the test loss (``test_normalized[loss_key]``) vs N_D.

    Args:
        records: realization records of one process and one model configuration, each with ``n_f``.
        loss_key: metric in ``test_normalized`` (paper 3: MSE of log-standardized |M|^2).
        num_bootstrap, seed, fit_range: passed to :func:`scalinglab.stats.fit_power_law`.

    Returns:
        {"n_f", "exponent", "ci95", "stderr", "bound", "fit_range", "num_points"}.

    Raises:
        ValueError: records without ``n_f``, several n_f values, or fewer than 3 data sizes.
    """
    nfs = {r.get("n_f") for r in records}
    if None in nfs or len(nfs) != 1:
        raise ValueError(f"records must share one n_f (found {sorted(map(str, nfs))})")
    n_f = int(nfs.pop())
    by_n: dict[int, list[float]] = {}
    for r in records:
        by_n.setdefault(int(r["num_train"]), []).append(float(r["test_normalized"][loss_key]))
    sizes = sorted(by_n)
    if len(sizes) < 3:
        raise ValueError(f"need >= 3 data sizes for alpha_D, got {len(sizes)}")
    fit = fit_power_law(sizes, [by_n[n] for n in sizes], fit_range=fit_range, num_bootstrap=num_bootstrap,
                        seed=seed)
    return {"n_f": n_f, "exponent": float(fit.exponent_), "ci95": [float(v) for v in fit.exponent_interval_],
            "stderr": float(fit.exponent_stderr_), "bound": exponent_bound(n_f),
            "fit_range": [float(v) for v in fit.fit_range_], "num_points": len(sizes)}


def exponents_vs_nf_figure(rows: list[dict[str, Any]], out_path: str | Path) -> Path:
    """alpha vs n_f with intervals against the bound 4/(3 n_f - 4) (paper 3 Fig. 10).

    Args:
        rows: dicts with ``n_f``, ``exponent``, ``ci95`` and optionally ``axis`` ("data" or "compute"; default
            "data"), e.g. from :func:`data_exponent`.
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
    ax.plot(grid, 4.0 / (3 * grid - 4), "k--", lw=1, label="bound 4/(3 n_f - 4)")
    ax.set_xticks(nf)
    ax.set_xlabel("final-state particles n_f")
    ax.set_ylabel("scaling exponent")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def intrinsic_dimension_figure(records: list[dict[str, Any]], out_path: str | Path) -> Path:
    """TwoNN dimension of the last hidden layer vs N_D per n_f (median and range over realizations), with
    the phase-space dimension 3 n_f - 4 as a dashed line (paper 3 Fig. 3, App. B).

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
        ax.axhline(phase_space_dimension(n_f), color=color, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training size N_D")
    ax.set_ylabel("TwoNN dimension (last hidden layer)")
    ax.legend(fontsize=8, title="dashed: 3 n_f - 4", title_fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return out_path

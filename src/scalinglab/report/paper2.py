"""Paper 2's figures drawn from arrays (matplotlib Agg, PNG): regression, error statistics, noise, generator.

Every function takes plain arrays (computed by ``scalinglab.analysis``), names and units, and an output path;
it writes one PNG and returns its path. Shapes use n samples, P parameters, C image layers, S SNR values.
Shape mismatches raise ``ValueError`` before anything is drawn. Nothing here trains or imports torch.

Reference: twisted-magnets-regression-and-generation (paper 2), Figs. 3-10; calibration is beyond the paper.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scalinglab.analysis.error_pca import ErrorPCA  # noqa: E402
from scalinglab.analysis.regression_errors import (  # noqa: E402
    BinnedMAE,
    binned_mean,
    percentage_errors,
    regression_summary,
)

__all__ = [
    "fig_binned_mae",
    "fig_calibration",
    "fig_error_pca",
    "fig_gallery",
    "fig_generator_errors",
    "fig_mae_vs_distance",
    "fig_magnetization",
    "fig_noise",
    "fig_pred_vs_true",
]

DPI = 110
MAX_SCATTER = 20_000  # points drawn per scatter panel (a fixed-seed subsample beyond that keeps PNGs small)
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
COUNT_COLOR = "0.55"


# ---------------------------------------------------------------------------------------------- helpers
def _style() -> dict:
    return {
        "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "legend.fontsize": 8,
        "axes.grid": True, "grid.alpha": 0.3, "grid.linestyle": ":", "figure.dpi": DPI,
        "figure.titlesize": 12,
    }


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _label(name: str, unit: str | None) -> str:
    return f"{name} [{unit}]" if unit else name


def _array(x, ndim: int | tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if a.ndim not in dims:
        raise ValueError(f"{what} must have {' or '.join(str(d) for d in dims)} dimensions, got shape {list(a.shape)}")
    return a


def _check_names(names: Sequence[str], num: int, what: str = "names") -> list[str]:
    names = list(names)
    if len(names) != num:
        raise ValueError(f"{len(names)} {what} for {num} columns")
    return names


def _units(units: Sequence[str] | None, num: int) -> list[str]:
    if units is None:
        return [""] * num
    return _check_names(units, num, "units")


def _subsample(n: int, limit: int = MAX_SCATTER) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))


def _panel_letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def _edges(values: np.ndarray, num_bins: int, lo: float | None = None) -> np.ndarray:
    v = values[np.isfinite(values)]
    a = float(v.min()) if lo is None else lo
    b = float(v.max()) if v.size else 1.0
    if not b > a:
        b = a + 1.0
    return np.linspace(a, b, int(num_bins) + 1)


def _binned_line(ax, values, along, edges, color, label, marker="o"):
    b = binned_mean(values, along, edges)
    ok = b.count > 0
    ax.errorbar(b.centers[ok], b.mean[ok], yerr=np.nan_to_num(b.sem[ok]), color=color, marker=marker, ms=4,
                capsize=2, lw=1.3, label=label)
    return b


def _counts_twin(ax, edges, counts, label: str):
    """Sample counts per bin as grey bars on a twin axis behind the curve."""
    twin = ax.twinx()
    twin.bar(0.5 * (edges[:-1] + edges[1:]), counts, width=0.9 * np.diff(edges), color=COUNT_COLOR, alpha=0.25,
             zorder=0)
    twin.set_ylabel(label, color=COUNT_COLOR)
    twin.tick_params(axis="y", colors=COUNT_COLOR)
    twin.grid(False)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)  # the curve is drawn above the bars
    return twin


def _positive_log(ax, values) -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > 30:
        ax.set_yscale("log")


# ---------------------------------------------------------------------------------------------- Fig. 3
def fig_pred_vs_true(true, pred, names: Sequence[str], units: Sequence[str] | None, path,
                     mape_bins: int = 10) -> Path:
    """Fig. 3: predicted vs true per parameter (with y = x and MAE / MAPE / R^2), and MAPE binned along the truth.

    Args:
        true, pred: [n, P] physical parameters of the test set.
        names, units: P names and units (e.g. ["theta", "J", "D"], ["deg", "meV", "meV"]).
        path: PNG to write.
        mape_bins: equal-width bins of the true value for row 2.
    """
    t = _array(true, 2, "true")
    p = _array(pred, 2, "pred")
    if t.shape != p.shape:
        raise ValueError(f"true and pred shapes differ: {list(t.shape)} vs {list(p.shape)}")
    num_p = t.shape[1]
    names, units = _check_names(names, num_p), _units(units, num_p)
    summary = regression_summary(p, t, names)
    ape = percentage_errors(p, t)
    sel = _subsample(len(t))
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(2, num_p, figsize=(4.2 * num_p, 7.6), squeeze=False, layout="constrained")
        for j, name in enumerate(names):
            ax = axes[0, j]
            ax.scatter(t[sel, j], p[sel, j], s=4, alpha=0.35, color=COLORS[0], rasterized=True, lw=0)
            lo = float(min(t[:, j].min(), p[:, j].min()))
            hi = float(max(t[:, j].max(), p[:, j].max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
            s = summary[name]
            ax.text(0.04, 0.96, f"MAE = {s['mae']:.3g} {units[j]}\nMAPE = {s['mape']:.3g} %\n"
                    f"R$^2$ = {s['r2']:.4f}\nn = {s['num']}", transform=ax.transAxes, va="top", fontsize=9,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})
            ax.set_xlabel(f"true {_label(name, units[j])}")
            ax.set_ylabel(f"predicted {_label(name, units[j])}")
            ax.set_title(f"{_panel_letter(j)} {name}: predicted vs true")
            ax.legend(loc="lower right", frameon=False)
            ax2 = axes[1, j]
            edges = _edges(t[:, j], mape_bins)
            b = _binned_line(ax2, ape[:, j], t[:, j], edges, COLORS[1], "MAPE per bin")
            _counts_twin(ax2, edges, b.count, "test samples per bin")
            _positive_log(ax2, b.mean)
            ax2.set_xlabel(f"true {_label(name, units[j])}")
            ax2.set_ylabel("MAPE (%)")
            ax2.set_title(f"{_panel_letter(num_p + j)} {name}: MAPE vs true value")
        fig.suptitle("Parameter estimation on the test set (paper 2, Fig. 3)")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Fig. 4
def fig_binned_mae(binned: BinnedMAE, names: Sequence[str], path, along_names: Sequence[str] | None = None) -> Path:
    """Fig. 4: P x Q grid; panel (p, q) is the MAE of normalized parameter p per bin of normalized true q
    (SEM error bars) with the number of training samples per bin as grey bars on a twin axis.

    Args:
        binned: :func:`scalinglab.analysis.binned_mae` output (mae [P, Q, B]).
        names: P names of the error columns (also the bin axes when ``along_names`` is None).
        path: PNG to write.
        along_names: Q names of the bin axes, if they differ from ``names``.
    """
    mae = np.asarray(binned.mae)
    if mae.ndim != 3:
        raise ValueError(f"binned.mae must be [P, Q, B], got shape {list(mae.shape)}")
    num_p, num_q, num_b = mae.shape
    names = _check_names(names, num_p)
    along_names = names if along_names is None else _check_names(along_names, num_q, "along_names")
    if len(along_names) != num_q:
        raise ValueError(f"{len(along_names)} bin-axis names for Q = {num_q} (pass along_names)")
    if np.shape(binned.count_train) != (num_q, num_b) or np.shape(binned.edges) != (num_b + 1,):
        raise ValueError("binned.count_train must be [Q, B] and binned.edges [B + 1]")
    edges = np.asarray(binned.edges)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(num_p, num_q, figsize=(3.9 * num_q, 3.1 * num_p), squeeze=False,
                                 layout="constrained")
        for pi in range(num_p):
            for qi in range(num_q):
                ax = axes[pi, qi]
                ok = np.isfinite(mae[pi, qi])
                ax.errorbar(binned.centers[ok], mae[pi, qi, ok], yerr=np.nan_to_num(binned.sem[pi, qi, ok]),
                            color=COLORS[pi % len(COLORS)], marker="o", ms=4, capsize=2, lw=1.3)
                _counts_twin(ax, edges, binned.count_train[qi], "N$_{train}$ per bin" if qi == num_q - 1 else "")
                ax.set_title(f"{_panel_letter(pi * num_q + qi)} MAE of {names[pi]} vs {along_names[qi]}")
                ax.set_xlim(edges[0], edges[-1])
                if pi == num_p - 1:
                    ax.set_xlabel(f"normalized true {along_names[qi]}")
                if qi == 0:
                    ax.set_ylabel(f"MAE of normalized {names[pi]}")
        fig.suptitle("MAE of each normalized parameter binned along each normalized true parameter; "
                     "grey bars: training samples per bin (paper 2, Fig. 4)")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Fig. 5
def fig_error_pca(errors, pca: ErrorPCA, names: Sequence[str], path) -> Path:
    """Fig. 5: pairwise scatter of the normalized error components with the principal axes drawn through the
    mean (half-length 2 sqrt(lambda_k), projected onto each plane), variance ratios in the legend.

    Args:
        errors: [n, P] normalized errors pred - true (Eq. 5).
        pca: :func:`scalinglab.analysis.error_pca` of ``errors``.
        names: P parameter names.
        path: PNG to write.
    """
    e = _array(errors, 2, "errors")
    num_p = e.shape[1]
    names = _check_names(names, num_p)
    if np.shape(pca.components_) != (num_p, num_p):
        raise ValueError(f"pca has {np.shape(pca.components_)[0]} components, errors have {num_p} columns")
    if num_p < 2:
        raise ValueError("error PCA figure needs at least 2 error components")
    pairs = [(i, j) for i in range(num_p) for j in range(i + 1, num_p)]
    sel = _subsample(len(e))
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 4.3 * nrows), squeeze=False,
                                 layout="constrained")
        for ax in axes.flat[len(pairs):]:
            ax.set_visible(False)
        for n_ax, (i, j) in enumerate(pairs):
            ax = axes.flat[n_ax]
            ax.scatter(e[sel, i], e[sel, j], s=3, alpha=0.25, color="0.35", lw=0, rasterized=True)
            for k in range(num_p):
                v = pca.components_[k]
                half = 2.0 * math.sqrt(max(float(pca.explained_variance_[k]), 0.0))
                xs = pca.mean_[i] + np.array([-half, half]) * v[i]
                ys = pca.mean_[j] + np.array([-half, half]) * v[j]
                ax.plot(xs, ys, color=COLORS[k % len(COLORS)], lw=2.2 if k == 0 else 1.5,
                        label=f"PC{k + 1}: {100 * pca.explained_variance_ratio_[k]:.2f} % of variance")
            ax.set_xlabel(f"error e_{names[i]} (normalized)")
            ax.set_ylabel(f"error e_{names[j]} (normalized)")
            ax.set_title(f"{_panel_letter(n_ax)} e_{names[j]} vs e_{names[i]}")
            ax.legend(frameon=True, fontsize=7.5, loc="best")
        fig.suptitle(f"PCA of normalized error vectors (paper 2, Fig. 5); leading axis: {pca.relation(names)}, "
                     f"n = {len(e)}")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Figs. 6, 9, 10d-e
def fig_mae_vs_distance(distances: Mapping[str, np.ndarray], abs_err, names: Sequence[str], path,
                        num_bins: int = 10, ylabel: str = "MAE") -> Path:
    """Figs. 6, 9, 10 d-e: MAE binned along the Euclidean distance to each phase boundary, with sample counts.

    Args:
        distances: {boundary name (e.g. "FM-NCD"): [n] distance of each sample, normalized parameter space}.
        abs_err: [n, P] absolute errors (one panel row entry per column), or [n] for one series.
        names: P names of the error columns (one name for [n]).
        path: PNG to write.
        num_bins: equal-width distance bins from 0 to the largest distance.
        ylabel: y-axis quantity (e.g. "MAE of m" for Fig. 10).
    """
    err = _array(abs_err, (1, 2), "abs_err")
    if err.ndim == 1:
        err = err[:, None]
    num_p = err.shape[1]
    names = _check_names(names, num_p)
    if not distances:
        raise ValueError("distances is empty: give at least one boundary")
    dist = {k: _array(v, 1, f"distances[{k!r}]") for k, v in distances.items()}
    for k, v in dist.items():
        if len(v) != len(err):
            raise ValueError(f"distances[{k!r}] has {len(v)} samples, abs_err has {len(err)}")
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(len(dist), num_p, figsize=(max(4.2 * num_p, 5.6), 3.4 * len(dist)),
                                 squeeze=False, layout="constrained")
        for r, (bname, d) in enumerate(dist.items()):
            edges = _edges(d, num_bins, lo=0.0)
            for c, name in enumerate(names):
                ax = axes[r, c]
                b = _binned_line(ax, err[:, c], d, edges, COLORS[c % len(COLORS)], name)
                _counts_twin(ax, edges, b.count, "samples per bin" if c == num_p - 1 else "")
                ax.set_xlabel(f"distance to {bname} boundary (normalized)")
                ax.set_ylabel(f"{ylabel} of {name}" if num_p > 1 or name else ylabel)
                ax.set_title(f"{_panel_letter(r * num_p + c)} {name} vs distance to {bname}")
        sep = "\n" if num_p < 3 else "; "  # narrow figures: two lines, so the title is not cut off
        fig.suptitle(f"{ylabel} vs Euclidean distance to the phase boundaries (paper 2, Eq. 3){sep}"
                     "grey bars: samples per bin")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Fig. 7
def fig_noise(snr_db, mape: Mapping[str, np.ndarray], names: Sequence[str], path,
              pred_vs_true: Mapping[str, tuple] | None = None, units: Sequence[str] | None = None) -> Path:
    """Fig. 7 (+ beyond the paper): MAPE vs SNR for each parameter, one line per training condition, and
    optionally predicted vs true at one SNR per condition, side by side.

    Args:
        snr_db: [S] SNR values in dB (Eq. 10; paper 2: 20 down to -10).
        mape: {label (e.g. "trained clean", "trained with noise"): [S, P] MAPE in percent}.
        names: P parameter names.
        path: PNG to write.
        pred_vs_true: optional {label: (true [n, P], pred [n, P], snr_dB)}; one row of scatter panels each.
        units: P units for the scatter axes.
    """
    snr = _array(snr_db, 1, "snr_db")
    if not mape:
        raise ValueError("mape is empty")
    curves = {k: _array(v, 2, f"mape[{k!r}]") for k, v in mape.items()}
    num_p = next(iter(curves.values())).shape[1]
    names, units = _check_names(names, num_p), _units(units, num_p)
    for k, v in curves.items():
        if v.shape != (len(snr), num_p):
            raise ValueError(f"mape[{k!r}] must be [S={len(snr)}, P={num_p}], got {list(v.shape)}")
    scatters = {}
    for k, item in (pred_vs_true or {}).items():
        if len(item) != 3:
            raise ValueError(f"pred_vs_true[{k!r}] must be (true, pred, snr_dB)")
        t, p = _array(item[0], 2, "true"), _array(item[1], 2, "pred")
        if t.shape != p.shape or t.shape[1] != num_p:
            raise ValueError(f"pred_vs_true[{k!r}]: true {list(t.shape)} and pred {list(p.shape)} must be [n, {num_p}]")
        scatters[k] = (t, p, float(item[2]))
    order = np.argsort(snr)[::-1]
    with plt.rc_context(_style()):
        nrows = 1 + len(scatters)
        fig, axes = plt.subplots(nrows, num_p, figsize=(4.2 * num_p, 3.7 * nrows), squeeze=False,
                                 layout="constrained")
        for j, name in enumerate(names):
            ax = axes[0, j]
            for c, (label, v) in enumerate(curves.items()):
                ax.plot(snr[order], v[order, j], marker="o", ms=4, color=COLORS[c % len(COLORS)], label=label)
            _positive_log(ax, np.concatenate([v[:, j] for v in curves.values()]))
            ax.set_xlim(snr.max() + 1, snr.min() - 1)  # noise increases to the right
            ax.set_xlabel("SNR (dB)  (noisier to the right)")
            ax.set_ylabel(f"MAPE of {name} (%)")
            ax.set_title(f"{_panel_letter(j)} {name}: MAPE vs SNR")
            ax.legend(frameon=False)
        for r, (label, (t, p, s)) in enumerate(scatters.items(), start=1):
            sel = _subsample(len(t))
            summary = regression_summary(p, t, names)
            for j, name in enumerate(names):
                ax = axes[r, j]
                ax.scatter(t[sel, j], p[sel, j], s=4, alpha=0.35, lw=0, rasterized=True,
                           color=COLORS[(r - 1) % len(COLORS)])
                lo, hi = float(t[:, j].min()), float(t[:, j].max())
                ax.plot([lo, hi], [lo, hi], "k--", lw=1)
                ax.text(0.04, 0.96, f"MAPE = {summary[name]['mape']:.3g} %\nR$^2$ = {summary[name]['r2']:.3f}",
                        transform=ax.transAxes, va="top", fontsize=9,
                        bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})
                ax.set_xlabel(f"true {_label(name, units[j])}")
                ax.set_ylabel(f"predicted {_label(name, units[j])}")
                ax.set_title(f"{_panel_letter(r * num_p + j)} {label}, SNR = {s:g} dB")
        fig.suptitle("Robustness against Gaussian white noise (paper 2, Fig. 7, Eqs. 7-10)")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Fig. 8 c-e
def fig_generator_errors(mae_per_image, phase, phase_names: Mapping[int, str], params_norm, names: Sequence[str],
                         path, num_bins: int = 10) -> Path:
    """Fig. 8 c-e: per-image MAE of generated images by phase (histogram) and binned along each normalized
    parameter, one line per phase.

    Args:
        mae_per_image: [n] per-image MAE (mean over pixels and layers).
        phase: [n] integer phase codes.
        phase_names: {code: name}, e.g. {1: "NCD", 2: "MD"}; codes not listed are shown as "phase <code>".
        params_norm: [n, P] normalized parameters.
        names: P parameter names.
        path: PNG to write.
    """
    mae = _array(mae_per_image, 1, "mae_per_image")
    ph = np.asarray(phase)
    x = _array(params_norm, 2, "params_norm")
    if ph.shape != mae.shape or len(x) != len(mae):
        raise ValueError(f"mae_per_image [n], phase [n], params_norm [n, P] disagree: {list(mae.shape)}, "
                         f"{list(ph.shape)}, {list(x.shape)}")
    num_p = x.shape[1]
    names = _check_names(names, num_p)
    codes = sorted(int(c) for c in np.unique(ph))
    label = {c: phase_names.get(c, f"phase {c}") for c in codes}
    edges = np.linspace(0.0, 1.0, int(num_bins) + 1)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(1, num_p + 1, figsize=(4.2 * (num_p + 1), 3.8), squeeze=False,
                                 layout="constrained")
        ax = axes[0, 0]
        pos = mae[mae > 0]
        use_log = pos.size > 0 and pos.max() / pos.min() > 30
        hist_edges = (np.geomspace(pos.min(), pos.max(), 30) if use_log else np.linspace(mae.min(), mae.max(), 30))
        for i, c in enumerate(codes):
            m = mae[ph == c]
            ax.hist(m, bins=hist_edges, histtype="step", lw=1.6, color=COLORS[i % len(COLORS)],
                    label=f"{label[c]}: mean {m.mean():.3g} (n = {m.size})")
        if use_log:
            ax.set_xscale("log")
        ax.set_xlabel("per-image MAE (m$_z$ units)")
        ax.set_ylabel("images")
        ax.set_title("(a) per-image MAE by phase")
        ax.legend(frameon=False)
        for j, name in enumerate(names):
            ax = axes[0, j + 1]
            for i, c in enumerate(codes):
                sel = ph == c
                _binned_line(ax, mae[sel], x[sel, j], edges, COLORS[i % len(COLORS)], label[c])
            _binned_line(ax, mae, x[:, j], edges, "k", "all", marker="s")
            ax.set_xlabel(f"normalized {name}")
            ax.set_ylabel("mean per-image MAE")
            ax.set_title(f"{_panel_letter(j + 1)} MAE vs {name}")
            ax.legend(frameon=False)
        fig.suptitle("Generated domain images: per-image MAE by phase and along each parameter (paper 2, Fig. 8)")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- gallery
def fig_gallery(true, generated, titles: Sequence[str], path, layer_names: Sequence[str] | None = None) -> Path:
    """One row per sample; per layer the true, generated and |difference| images. m_z on a shared [-1, 1]
    colour scale, the difference on a shared [0, max] scale; each |difference| panel gives its MAE.

    Args:
        true, generated: [k, C, H, W] images (m_z in [-1, 1]).
        titles: k row titles (e.g. "theta=1.25 deg, J=3.0 meV, D=0.12 meV, MD").
        path: PNG to write.
        layer_names: C layer names (default "top", "bottom" for C = 2).
    """
    t = _array(true, 4, "true")
    g = _array(generated, 4, "generated")
    if t.shape != g.shape:
        raise ValueError(f"true and generated shapes differ: {list(t.shape)} vs {list(g.shape)}")
    k, num_c = t.shape[:2]
    titles = [str(x) for x in _check_names(titles, k, "titles")]
    if layer_names is None:
        layer_names = ["top", "bottom"] if num_c == 2 else [f"layer {c}" for c in range(num_c)]
    layer_names = _check_names(layer_names, num_c, "layer_names")
    diff = np.abs(t - g)
    dmax = float(diff.max()) if diff.max() > 0 else 1.0
    ncols = 3 * num_c  # per layer: true, generated, |difference|
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(k, ncols, figsize=(2.3 * ncols, 2.45 * k + 1.3), squeeze=False,
                                 layout="constrained")
        for s in range(k):
            for c in range(num_c):
                a_true, a_gen, a_diff = axes[s, 3 * c:3 * c + 3]
                im_m = a_true.imshow(t[s, c], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
                a_gen.imshow(g[s, c], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
                im_d = a_diff.imshow(diff[s, c], cmap="magma", vmin=0, vmax=dmax, interpolation="nearest")
                head = f"{layer_names[c]}: " if s == 0 else ""
                a_true.set_title(f"{head}true" if s == 0 else "", fontsize=9)
                a_gen.set_title(f"{head}generated" if s == 0 else "", fontsize=9)
                a_diff.set_title(f"{head}|diff|\n" * (s == 0) + f"MAE = {float(diff[s, c].mean()):.3g}", fontsize=9)
                for ax in (a_true, a_gen, a_diff):
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.grid(False)
            axes[s, 0].set_ylabel(titles[s].replace(", ", "\n", 2) if len(titles[s]) > 28 else titles[s],
                                  fontsize=8)
        mz_axes = [ax for c in range(num_c) for ax in axes[:, 3 * c:3 * c + 2].ravel()]
        # two colour bars on different sides: m_z (true, generated) below, |difference| on the right
        fig.colorbar(im_m, ax=mz_axes, shrink=0.5, aspect=40, label="m$_z$ (true and generated)", location="bottom")
        fig.colorbar(im_d, ax=axes.ravel().tolist(), shrink=0.8, label="|true - generated|", location="right")
        fig.suptitle("Domain images: simulator (true) vs generator, per layer")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- Fig. 10
def fig_magnetization(ape, params, names: Sequence[str], units: Sequence[str] | None, path,
                      distances: Mapping[str, np.ndarray] | None = None, abs_err=None,
                      layer_names: Sequence[str] | None = None, num_bins: int = 10) -> Path:
    """Fig. 10: MAPE of the averaged layer magnetization binned along each parameter (a-c) and, given
    ``distances`` and ``abs_err``, the MAE of the magnetization vs distance to each boundary (d-e).

    Args:
        ape: [n, C] absolute percentage error of the averaged magnetization per layer (NaN entries skipped).
        params: [n, P] true physical parameters.
        names, units: P names and units.
        path: PNG to write.
        distances: optional {boundary name: [n] distance (normalized)}.
        abs_err: [n, C] |m_pred - m_true|; required with ``distances``.
        layer_names: C layer names (default "top", "bottom" for C = 2).
    """
    a = _array(ape, 2, "ape")
    x = _array(params, 2, "params")
    if len(x) != len(a):
        raise ValueError(f"ape has {len(a)} samples, params has {len(x)}")
    num_c, num_p = a.shape[1], x.shape[1]
    names, units = _check_names(names, num_p), _units(units, num_p)
    if layer_names is None:
        layer_names = ["top", "bottom"] if num_c == 2 else [f"layer {c}" for c in range(num_c)]
    layer_names = _check_names(layer_names, num_c, "layer_names")
    dist = {}
    if distances:
        if abs_err is None:
            raise ValueError("abs_err [n, C] is needed with distances")
        ab = _array(abs_err, 2, "abs_err")
        if ab.shape != a.shape:
            raise ValueError(f"abs_err must be [n, C] = {list(a.shape)}, got {list(ab.shape)}")
        dist = {k: _array(v, 1, f"distances[{k!r}]") for k, v in distances.items()}
        for k, v in dist.items():
            if len(v) != len(a):
                raise ValueError(f"distances[{k!r}] has {len(v)} samples, ape has {len(a)}")
    ncols = max(num_p, len(dist))
    nrows = 1 + (1 if dist else 0)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False,
                                 layout="constrained")
        for ax in axes.flat:
            ax.set_visible(False)
        for j, name in enumerate(names):
            ax = axes[0, j]
            ax.set_visible(True)
            edges = _edges(x[:, j], num_bins)
            means = []
            for c in range(num_c):
                undefined = not np.isfinite(a[:, c]).any()  # every |m_true| ~ 0: no percentage error exists
                label = f"{layer_names[c]} layer" + (" (undefined: m_true = 0)" if undefined else "")
                means.append(_binned_line(ax, a[:, c], x[:, j], edges, COLORS[c % len(COLORS)], label).mean)
            _positive_log(ax, np.concatenate(means))
            ax.set_xlabel(f"true {_label(name, units[j])}")
            ax.set_ylabel("MAPE of averaged magnetization (%)")
            ax.set_title(f"{_panel_letter(j)} MAPE of m vs {name}")
            ax.legend(frameon=False)
        for i, (bname, d) in enumerate(dist.items()):
            ax = axes[1, i]
            ax.set_visible(True)
            edges = _edges(d, num_bins, lo=0.0)
            for c in range(num_c):
                b = _binned_line(ax, ab[:, c], d, edges, COLORS[c % len(COLORS)], f"{layer_names[c]} layer")
            _counts_twin(ax, edges, b.count, "samples per bin")
            ax.set_xlabel(f"distance to {bname} boundary (normalized)")
            ax.set_ylabel("MAE of averaged magnetization")
            ax.set_title(f"{_panel_letter(num_p + i)} MAE of m vs distance to {bname}")
            ax.legend(frameon=False)
        fig.suptitle("Averaged layer magnetization of generated images (paper 2, Fig. 10)")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------- calibration
def fig_calibration(pull, coverage: Mapping[float, np.ndarray], names: Sequence[str], path) -> Path:
    """Pull histograms per parameter against N(0, 1), and interval coverage against the nominal level.

    Args:
        pull: [n, P] pulls (mean - true) / sigma.
        coverage: {nominal level: [P] fraction covered} (from :func:`scalinglab.analysis.interval_coverage`).
        names: P parameter names.
        path: PNG to write.
    """
    pl = _array(pull, 2, "pull")
    num_p = pl.shape[1]
    names = _check_names(names, num_p)
    if not coverage:
        raise ValueError("coverage is empty")
    cov = {float(k): np.atleast_1d(np.asarray(v, dtype=float)) for k, v in coverage.items()}
    for k, v in cov.items():
        if v.shape != (num_p,):
            raise ValueError(f"coverage[{k}] must be [P={num_p}], got {list(v.shape)}")
    grid = np.linspace(-5, 5, 401)
    edges = np.linspace(-5, 5, 51)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(1, num_p + 1, figsize=(4.0 * (num_p + 1), 3.7), squeeze=False,
                                 layout="constrained")
        for j, name in enumerate(names):
            ax = axes[0, j]
            v = pl[:, j][np.isfinite(pl[:, j])]
            outside = np.mean(np.abs(v) > 5) if v.size else float("nan")
            ax.hist(np.clip(v, -5, 5), bins=edges, density=True, histtype="stepfilled", alpha=0.4,
                    color=COLORS[j % len(COLORS)],
                    label=f"{name}: mean {v.mean():.2f}, std {v.std():.2f}" if v.size else name)
            ax.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", lw=1.2, label="N(0, 1)")
            ax.set_xlabel(f"pull of {name}: (mean - true) / sigma")
            ax.set_ylabel("density")
            ax.set_title(f"{_panel_letter(j)} {name}" + (f" ({100 * outside:.1f} % beyond +-5, clipped)"
                                                          if outside > 0 else ""))
            ax.legend(frameon=False, fontsize=7.5, loc="upper left")
        ax = axes[0, num_p]
        levels = np.array(sorted(cov))
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="nominal")
        for j, name in enumerate(names):
            ax.plot(levels, [cov[lv][j] for lv in levels], marker="o", color=COLORS[j % len(COLORS)], label=name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("nominal coverage of mean +- z sigma")
        ax.set_ylabel("observed coverage on the test set")
        ax.set_title(f"{_panel_letter(num_p)} interval coverage")
        ax.legend(frameon=False)
        fig.suptitle("Calibration of the estimated uncertainties: pulls and interval coverage")
        return _save(fig, path)

"""Report figures (matplotlib Agg, PNG), modelled on paper 1's Figs. 1 and 3-7 and paper 3's compute plots.

Every function takes an :class:`~scalinglab.report.analysis.Analysis` and an output directory, draws only
what the sweep allows, and returns a list of :class:`Figure` (file, title, caption); an empty list means the
sweep has no axis for that figure. Losses are test MSEs in standardized target units (dimensionless),
averaged over realizations by the geometric mean (GM) as in paper 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the report is written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scalinglab.report.analysis import (  # noqa: E402
    FLOAT32_LOSS_RESOLUTION,
    Analysis,
    CurveFit,
    Point,
    TrendFit,
    value_sort_key,
)
from scalinglab.stats.aggregate import geometric_mean_vs_realizations  # noqa: E402

LOSS_LABEL = "GM test MSE (standardized units, dimensionless)"
MARKERS = ["s", "o", "D", "^", "v", "P", "X", "<", ">", "*"]
DPI = 110


@dataclass(frozen=True)
class Figure:
    """A written figure: ``path`` (PNG), a short ``title`` and a ``caption`` explaining what is drawn."""

    path: Path
    title: str
    caption: str


def _style() -> dict:
    return {
        "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8,
        "axes.grid": True, "grid.alpha": 0.3, "grid.linestyle": ":", "figure.dpi": DPI,
        "savefig.bbox": "tight", "axes.spines.top": False, "axes.spines.right": False,
    }


def _panels(num: int, *, width: float = 5.2, height: float = 4.2, ncols_max: int = 3):
    ncols = max(1, min(ncols_max, num))
    nrows = int(np.ceil(num / ncols))
    # constrained layout makes room for legends placed below their axes
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[num:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:num])


def _save(fig, out_dir: Path, name: str) -> Path:
    path = Path(out_dir) / name
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _legend(ax, **kwargs) -> None:
    """Inside the axes for a few entries; below the axes (never over the data) for more."""
    handles, labels = ax.get_legend_handles_labels()
    if not labels:
        return
    if len(labels) <= 4:
        ax.legend(frameon=False, fontsize=8, **kwargs)
    else:
        ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=_legend_columns(labels))


def _legend_columns(labels: list[str]) -> int:
    return 1 if len(labels) <= 8 or max(len(t) for t in labels) > 40 else 2


def _legend_height(num_entries: int, long_labels: bool = True) -> float:
    """Extra figure height (inches) for a legend of ``num_entries`` drawn below a panel."""
    if num_entries <= 4:
        return 0.0
    rows = num_entries if long_labels or num_entries <= 8 else int(np.ceil(num_entries / 2))
    return 0.17 * rows + 0.3


def main_compute(analysis: Analysis):
    """The compute value whose curves the data/model-size figures show: the largest (None: no compute axis)."""
    values = {p.compute_value for p in analysis.points if p.compute_key}
    return max(values, key=value_sort_key) if values else None


def _loss_label(analysis: Analysis) -> str:
    """The y label: the sweep's standardized MSE, or the column name of imported measurements."""
    label = analysis.results.resolved_spec.get("loss_label")
    return f"GM {label} (geometric mean over runs)" if label else LOSS_LABEL


def _axis_label(analysis: Analysis, axis: str, default: str) -> str:
    """An x label: the default for sweeps, the column name for imported measurements (``scalinglab fit``)."""
    label = (analysis.results.resolved_spec.get("axis_labels") or {}).get(axis)
    return label if label else default


def _panel_letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def _unit(analysis: Analysis, target: str) -> str:
    units = analysis.results.resolved_spec.get("target_units") or {}
    unit = units.get(target) or next((p.target_unit for p in analysis.points if p.target == target), "")
    return f" [{unit}]" if unit else ""


def _model_keys(analysis: Analysis) -> list[tuple[str, str]]:
    """Distinct (family, size) pairs ordered by family and parameter count: one color each."""
    seen: dict[tuple[str, str], float] = {}
    for p in analysis.points:
        seen.setdefault((p.family, str(p.size_value)), p.num_params if p.num_params is not None else np.inf)
    families = list(dict.fromkeys(k[0] for k in seen))
    return sorted(seen, key=lambda k: (families.index(k[0]), seen[k]))


def _colors(n: int):
    cmap = plt.get_cmap("plasma" if n > 10 else "tab10")
    if n > 10:
        return [cmap(v) for v in np.linspace(0.0, 0.9, n)]
    return [cmap(i) for i in range(n)]


def _gm_errors(points: list[Point]) -> tuple[np.ndarray, np.ndarray]:
    """GM ``[P]`` and asymmetric 95 % bootstrap error bars ``[2, P]`` (zero where no summary)."""
    gm = np.array([p.summary.geometric_mean if p.summary else np.nan for p in points])
    lo = np.array([p.summary.geometric_mean_interval[0] if p.summary else np.nan for p in points])
    hi = np.array([p.summary.geometric_mean_interval[1] if p.summary else np.nan for p in points])
    return gm, np.nan_to_num(np.stack([gm - lo, hi - gm]), nan=0.0).clip(min=0.0)


def _fmt_interval(value: float, iv: tuple[float, float]) -> str:
    if iv is None or not all(np.isfinite(iv)):
        return f"{value:.2f}"
    return f"{value:.2f} [{iv[0]:.2f}, {iv[1]:.2f}]"


def _resolution_line(ax, values: np.ndarray) -> None:
    """Dotted float32 resolution line, only when some GM comes within a factor 10 of it."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < 10 * FLOAT32_LOSS_RESOLUTION:
        ax.axhline(FLOAT32_LOSS_RESOLUTION, color="0.3", ls=":", lw=1.0, label="float32 resolution 1.9e-7")
        ax.plot([], [], "x", color="red", ms=8, mew=1.5, label="GM < 10 x float32 resolution")


def _draw_curve(ax, curve: CurveFit, color, marker: str, label: str, symbol: str) -> None:
    """GM points with error bars; hollow markers outside the fit range; red x near float32 resolution."""
    gm, err = _gm_errors(curve.points)
    fit = curve.power_law
    quoted = curve.exponent_fit()
    in_fit = fit.in_fit_ if fit is not None else np.ones(gm.size, dtype=bool)
    flagged = gm < 10 * FLOAT32_LOSS_RESOLUTION
    if quoted is not None:
        floored = " (floored law)" if getattr(quoted, "law_", "") == "saturating" else ""
        label = f"{label}: $\\{symbol}$ = {_fmt_interval(quoted.exponent_, quoted.exponent_interval_)}{floored}"
    ax.errorbar(curve.x[in_fit], gm[in_fit], yerr=err[:, in_fit], fmt=marker, color=color, ms=5, capsize=2,
                lw=1, label=label)
    if (~in_fit).any():
        ax.errorbar(curve.x[~in_fit], gm[~in_fit], yerr=err[:, ~in_fit], fmt=marker, color=color, ms=5,
                    mfc="white", capsize=2, lw=1)
    if flagged.any():
        ax.plot(curve.x[flagged], gm[flagged], "x", color="red", ms=9, mew=1.5)
    if curve.excluded_points:
        share = curve.x[0] / _x_of(curve, curve.points[0])
        xs_ex = np.array([share * _x_of(curve, p) for p in curve.excluded_points])
        gm_ex = _gm_errors(curve.excluded_points)[0]
        ax.plot(xs_ex, gm_ex, "x", color="0.5", ms=8, mew=1.5)
    if curve.quoted is not None and curve.quoted.law_ == "saturating":
        xs = np.geomspace(curve.x.min(), curve.x.max(), 80)
        ax.plot(xs, curve.quoted.predict(xs), "-", color=color, lw=1.2)
    if fit is None and curve.quoted is None:
        # no fit to draw: a faint line guides the eye along the curve
        ax.plot(curve.x, gm, "-", color=color, lw=0.8, alpha=0.5)
    elif fit is None:
        xs = np.geomspace(curve.x.min(), curve.x.max(), 50)
        ax.plot(xs, curve.quoted.predict(xs), "--", color=color, lw=1.2)
    else:
        lo, hi = fit.fit_range_
        xs = np.geomspace(lo, hi, 50)
        ax.plot(xs, fit.predict(xs), "--", color=color, lw=1.2)
    if curve.saturating is not None and curve.axis == "compute":
        xs = np.geomspace(curve.x.min(), curve.x.max(), 80)
        ax.plot(xs, curve.saturating.predict(xs), "-", color=color, lw=0.9, alpha=0.6)


def _x_of(curve: CurveFit, p: Point) -> float:
    """The raw design value of a point along its curve's axis (before any train-share scaling)."""
    if curve.axis == "data":
        return float(p.num_train)
    if curve.axis == "model":
        return float(p.num_params)
    return float(p.flops) if curve.x_name.startswith("C") else float(p.compute_value)


def _loglog(ax) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    _decade_ticks(ax)


def _decade_ticks(ax) -> None:
    """Labels only at decades: matplotlib's default minor labels (2x10^2, 3x10^2, ...) collide."""
    from matplotlib.ticker import LogLocator, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_locator(LogLocator(base=10, numticks=12))
            axis.set_minor_formatter(NullFormatter())


def loss_vs_data(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Figs. 1 and 4: GM test loss vs N_D per model, with power-law fits, one panel per target."""
    compute = main_compute(analysis)
    curves = [c for c in analysis.data_curves if c.compute_value == compute]
    if not curves:
        return []
    keys = _model_keys(analysis)
    colors = dict(zip(keys, _colors(len(keys)), strict=True))
    families = list(dict.fromkeys(k[0] for k in keys))
    targets = [t for t in analysis.targets if any(c.target == t for c in curves)]
    per_panel = max(sum(c.target == t for c in curves) for t in targets)
    with plt.rc_context(_style()):
        fig, axes = _panels(len(targets), height=4.2 + _legend_height(per_panel))
        for i, (ax, target) in enumerate(zip(axes, targets, strict=True)):
            all_gm = []
            for c in (c for c in curves if c.target == target):
                key = (c.family, str(c.size_value))
                marker = MARKERS[families.index(c.family) % len(MARKERS)]
                label = c.model_label
                _draw_curve(ax, c, colors[key], marker, label, "alpha_D")
                all_gm.append(_gm_errors(c.points)[0])
            _resolution_line(ax, np.concatenate(all_gm))
            _loglog(ax)
            ax.set_title(f"{_panel_letter(i)} {target}{_unit(analysis, target)}")
            ax.set_xlabel(_axis_label(analysis, "data", "training part $\\frac{7}{8} N_D$ [samples]"
                                      if analysis.options.data_x == "train" else "training set size $N_D$ [samples]"))
            ax.set_ylabel(_loss_label(analysis))
            _legend(ax, loc="upper right")
        path = _save(fig, out_dir, "loss_vs_data.png")
    at = "" if compute is None else f"At {curves[0].points[0].compute_key} = {compute} (the largest). "
    return [Figure(path, "Test loss vs training set size (paper 1 Figs. 1, 4)",
                   at + "Geometric mean over realizations of the test MSE against N_D, one panel per target; error "
                   "bars are 95 % bootstrap intervals of the GM. Dashed lines: power-law fits "
                   "eps = A N_D^-alpha_D over the fit range (legend: alpha_D with its 95 % bootstrap interval). "
                   "Hollow markers lie outside the fit range; red crosses mark GMs within 10x of the float32 "
                   "resolution 1.9e-7; grey crosses are points left out with --exclude. The legend quotes the "
                   "exponent of the automatic law choice (a floored law, drawn solid, where the data need one), "
                   "with an interval that repeats the choice in every bootstrap replicate.")]


def _select(values: list, k: int) -> list:
    """Up to ``k`` entries spread over a sorted list: first, middle(s), last."""
    if len(values) <= k:
        return list(values)
    idx = np.unique(np.round(np.linspace(0, len(values) - 1, k)).astype(int))
    return [values[i] for i in idx]


def loss_distributions(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Fig. 3(a)-(d): realization loss histograms with AM, GM and median and their bands."""
    figures = []
    for target in analysis.targets:
        pts = [p for p in analysis.points if p.target == target and p.summary is not None and p.losses.size >= 2]
        if not pts:
            continue
        # paper 1 shows 2 x 2 panels: the smallest and largest model at the smallest and largest N_D
        models = _select(list(dict.fromkeys(p.model_label for p in pts)), 2)
        sizes = _select(sorted({p.num_train for p in pts}), 2)
        compute = main_compute(analysis)
        grid = [[next((p for p in pts if p.model_label == m and p.num_train == n
                       and p.compute_value == compute), None) for n in sizes] for m in models]
        with plt.rc_context(_style()):
            fig, axes = plt.subplots(len(models), len(sizes), figsize=(4.2 * len(sizes), 3.2 * len(models)),
                                     squeeze=False)
            k = 0
            for r, row in enumerate(grid):
                for col, p in enumerate(row):
                    ax = axes[r][col]
                    if p is None:
                        ax.set_visible(False)
                        continue
                    _histogram(ax, p)
                    ax.set_title(f"{_panel_letter(k)} {p.model_label}, $N_D$={p.num_train}, "
                                 f"$N_r$={p.losses.size}", fontsize=9)
                    k += 1
                    if r == len(grid) - 1:
                        ax.set_xlabel("test MSE (standardized)")
                    if col == 0:
                        ax.set_ylabel("$N_{bin}$ [networks]")
            axes[0][0].legend(loc="upper right", frameon=False, fontsize=7)
            fig.suptitle(f"Test-loss distributions over realizations: {target}", y=1.01)
            path = _save(fig, out_dir, f"loss_distributions_{_safe(target)}.png")
        figures.append(Figure(path, f"Loss distributions over realizations, {target} (paper 1 Fig. 3a-d)",
                              "Histograms (log-spaced bins) of the test MSE of individual realizations. Black, "
                              "blue and red lines: arithmetic mean, geometric mean and median; shaded: the "
                              "standard errors of the two means and the median absolute deviation, in the "
                              "same colors. Ticks at the bottom: individual realizations."))
    return figures


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _histogram(ax, p: Point) -> None:
    s = p.summary
    losses = p.losses
    lo, hi = losses.min(), losses.max()
    if hi <= lo:
        lo, hi = lo / 1.5, hi * 1.5
    num_bins = int(np.clip(np.sqrt(losses.size) * 2, 5, 25))
    bins = np.geomspace(lo / 1.05, hi * 1.05, num_bins + 1)
    ax.hist(losses, bins=bins, color="0.75", edgecolor="0.45")
    ax.plot(losses, np.zeros_like(losses), "|", color="0.2", ms=10, clip_on=False)
    for value, err, color, name in (
        (s.mean, s.mean_stderr, "black", "AM ± SE"),
        (s.geometric_mean, s.geometric_mean_stderr, "tab:blue", "GM ± SE"),
        (s.median, s.median_mad, "tab:red", "median ± MAD"),
    ):
        ax.axvline(value, color=color, lw=1.5, label=name)
        if np.isfinite(err) and err > 0:
            ax.axvspan(max(value - err, bins[0]), value + err, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    _decade_ticks(ax)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(False)


def gm_vs_realizations(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Fig. 3(e): GM of random subsets of k realizations vs k, with bootstrap standard deviations."""
    pts_all = [p for p in analysis.points if p.losses.size >= 3 and np.all(p.losses > 0)]
    targets = [t for t in analysis.targets if any(p.target == t for p in pts_all)]
    if not targets:
        return []
    keys = _model_keys(analysis)
    colors = dict(zip(keys, _colors(len(keys)), strict=True))
    shapes = ["s", "p", "h"]  # square, pentagon, hexagon: small, middle, large N_D as in the paper
    with plt.rc_context(_style()):
        fig, axes = _panels(len(targets))
        for i, (ax, target) in enumerate(zip(axes, targets, strict=True)):
            pts = [p for p in pts_all if p.target == target]
            compute = main_compute(analysis)
            sizes = _select(sorted({p.num_train for p in pts}), 3)
            models = _select([k for k in keys if any((p.family, str(p.size_value)) == k for p in pts)], 4)
            for m_i, key in enumerate(models):
                for s_i, n in enumerate(sizes):
                    p = next((q for q in pts if (q.family, str(q.size_value)) == key and q.num_train == n
                              and q.compute_value == compute), None)
                    if p is None:
                        continue
                    curve = geometric_mean_vs_realizations(p.losses, num_bootstrap=50,
                                                           seed=analysis.options.seed + 7919 * m_i + s_i)
                    # small horizontal offsets keep overlapping error bars apart
                    dx = 1.0 + 0.03 * (s_i - 1)
                    label = f"{p.model_label}, $N_D$={n}"
                    ax.errorbar(curve.num_realizations * dx, curve.mean, yerr=curve.std, fmt=shapes[s_i] + "-",
                                color=colors[key], ms=4, lw=0.8, capsize=1.5, label=label)
            ax.set_yscale("log")
            ax.set_title(f"{_panel_letter(i)} {target}")
            ax.set_xlabel("number of realizations averaged $k$")
            ax.set_ylabel("GM test MSE of $k$ realizations (standardized)")
            ax.xaxis.get_major_locator().set_params(integer=True)
        # one legend for all panels, below them: inside a panel it would hide the curves
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
                   ncol=min(len(labels), 3), fontsize=8)
        path = _save(fig, out_dir, "gm_vs_realizations.png")
    return [Figure(path, "Geometric mean vs number of realizations (paper 1 Fig. 3e)",
                   "For each k, 50 random subsets of k distinct realizations; markers: the average of their "
                   "geometric means, error bars: the standard deviation across subsets (zero at k = R). "
                   "Colors: model sizes; squares, pentagons, hexagons: small, middle, large N_D.")]


def _trend_panel(ax, trends: list[TrendFit], curves: list[CurveFit], size_of, symbol: str,
                 families: list[str], colors: dict) -> None:
    for fam_i, fam in enumerate(families):
        fam_curves = [c for c in curves if c.family == fam and c.exponent_fit() is not None
                      and size_of(c) is not None]
        if not fam_curves:
            continue
        x = np.array([size_of(c) for c in fam_curves], dtype=float)
        a = np.array([c.exponent_fit().exponent_ for c in fam_curves])
        lo = np.array([c.exponent_fit().exponent_interval_[0] for c in fam_curves])
        hi = np.array([c.exponent_fit().exponent_interval_[1] for c in fam_curves])
        err = np.nan_to_num(np.stack([a - lo, hi - a]), nan=0.0).clip(min=0.0)
        color = colors[fam]
        trend = next((t for t in trends if t.family == fam and t.line is not None), None)
        label = fam
        if trend is not None:
            ln = trend.line
            label += (f": a = {ln.slope_:.2f} ± {ln.slope_stderr_:.2f}, "
                      f"b = {ln.intercept_:.2f} ± {ln.intercept_stderr_:.2f}")
        ax.errorbar(x, a, yerr=err, fmt=MARKERS[fam_i % len(MARKERS)], color=color, ms=6, capsize=3, label=label)
        if trend is not None:
            xs = np.geomspace(x.min() / 1.3, x.max() * 1.3, 50)
            mid, err = trend.line.predict(xs)
            ax.plot(xs, mid, "--", color=color, lw=1.2)
            # propagated 1-sigma band of the trend (covariance of a and b)
            ax.fill_between(xs, mid - err, mid + err, color=color, alpha=0.12, lw=0)
    ax.set_xscale("log")
    _decade_ticks(ax)


def _trend_figure(analysis: Analysis, out_dir: Path, curves: list[CurveFit], trends: list[TrendFit], size_of,
                  symbol: str, xlabel: str, ylabel: str, name: str) -> Path:
    """One panel per target: the curves' exponents vs size with the families' log trends (Figs. 5 and 7)."""
    families = list(dict.fromkeys(c.family for c in curves))
    colors = dict(zip(families, _colors(len(families)), strict=True))
    targets = [t for t in analysis.targets if any(c.target == t for c in curves)]
    with plt.rc_context(_style()):
        fig, axes = _panels(len(targets))
        for i, (ax, target) in enumerate(zip(axes, targets, strict=True)):
            _trend_panel(ax, [t for t in trends if t.target == target], [c for c in curves if c.target == target],
                         size_of, symbol, families, colors)
            ax.set_title(f"{_panel_letter(i)} {target}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            _legend(ax)
        return _save(fig, out_dir, name)


def exponents_vs_model_size(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Fig. 5: alpha_D vs model size N_M with the log fit alpha_D = a log10(N_M / 10^6) + b."""
    compute = main_compute(analysis)
    curves = [c for c in analysis.data_curves
              if c.exponent_fit() is not None and c.num_params is not None and c.compute_value == compute]
    if len({(c.family, str(c.size_value)) for c in curves}) < 2:
        return []
    trends = [t for t in analysis.data_trends if t.compute_value == compute]
    path = _trend_figure(analysis, out_dir, curves, trends, lambda c: c.num_params, "alpha_D",
                         "model size $N_M$ [parameters]", r"data exponent $\alpha_D$ (dimensionless)",
                         "exponents_vs_model_size.png")
    return [Figure(path, "Data-scaling exponent vs model size (paper 1 Fig. 5)",
                   "alpha_D of each model's power-law fit with its 95 % bootstrap interval. Dashed: fit "
                   "alpha_D = a log10(N_M / 10^6) + b per family, weighted by the exponents' standard errors "
                   "(legend: a, b with standard errors; band: the propagated 1-sigma uncertainty of the line). "
                   "Models without a size axis (e.g. ResNet-18) appear as single markers, as in the paper.")]


def loss_vs_model_size(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Fig. 6: GM test loss vs N_M, one curve per N_D, power-law fits where >= 3 sizes."""
    compute = main_compute(analysis)
    curves = [c for c in analysis.model_curves if c.compute_value == compute]
    if not curves:
        return []
    sizes = sorted({c.num_train for c in curves})
    cmap = plt.get_cmap("viridis")
    colors = {n: cmap(v) for n, v in zip(sizes, np.linspace(0.0, 0.9, len(sizes)), strict=True)}
    families = list(dict.fromkeys(c.family for c in curves))
    targets = [t for t in analysis.targets if any(c.target == t for c in curves)]
    per_panel = max(sum(c.target == t for c in curves) for t in targets)
    with plt.rc_context(_style()):
        fig, axes = _panels(len(targets), height=4.2 + _legend_height(per_panel, long_labels=False))
        for i, (ax, target) in enumerate(zip(axes, targets, strict=True)):
            all_gm = []
            for c in (c for c in curves if c.target == target):
                label = f"$N_D$={c.num_train}" + (f" ({c.family})" if len(families) > 1 else "")
                _draw_curve(ax, c, colors[c.num_train], MARKERS[families.index(c.family) % len(MARKERS)], label,
                            "alpha_M")
                all_gm.append(_gm_errors(c.points)[0])
            _resolution_line(ax, np.concatenate(all_gm))
            _loglog(ax)
            ax.set_title(f"{_panel_letter(i)} {target}{_unit(analysis, target)}")
            ax.set_xlabel(_axis_label(analysis, "model", "model size $N_M$ [parameters]"))
            ax.set_ylabel(_loss_label(analysis))
            _legend(ax)
        path = _save(fig, out_dir, "loss_vs_model_size.png")
    fitted = any(c.power_law is not None for c in curves)
    note = ("Dashed lines: power-law fits eps = A N_M^-alpha_M (legend: alpha_M with 95 % interval)."
            if fitted else "No alpha_M fits: a model-size power law needs at least 3 model sizes per family.")
    return [Figure(path, "Test loss vs model size (paper 1 Fig. 6)",
                   "Geometric mean test MSE against the parameter count, one color per training set size; "
                   f"error bars are 95 % bootstrap intervals of the GM. {note}")]


def exponents_vs_data_size(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Paper 1 Fig. 7: alpha_M vs N_D with the log fit alpha_M = a log10(N_D / 10^4) + b."""
    compute = main_compute(analysis)
    curves = [c for c in analysis.model_curves if c.exponent_fit() is not None and c.compute_value == compute]
    if len({c.num_train for c in curves}) < 2:
        return []
    trends = [t for t in analysis.model_trends if t.compute_value == compute]
    path = _trend_figure(analysis, out_dir, curves, trends, lambda c: float(c.num_train), "alpha_M",
                         "training set size $N_D$ [samples]", r"model exponent $\alpha_M$ (dimensionless)",
                         "exponents_vs_data_size.png")
    return [Figure(path, "Model-scaling exponent vs training set size (paper 1 Fig. 7)",
                   "alpha_M of each N_D's model-size fit with its 95 % bootstrap interval. Dashed: fit "
                   "alpha_M = a log10(N_D / 10^4) + b weighted by the exponents' standard errors (legend: a, b "
                   "with standard errors; band: the propagated 1-sigma uncertainty of the line).")]


def loss_vs_compute(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Loss vs training compute when the sweep has a compute axis (paper 3 Sec. 3.2, Fig. 6 style)."""
    curves = analysis.compute_curves
    if not curves:
        return []
    keys = list(dict.fromkeys((c.model_label, c.num_train) for c in curves))
    colors = dict(zip(keys, _colors(len(keys)), strict=True))
    targets = [t for t in analysis.targets if any(c.target == t for c in curves)]
    x_name = curves[0].x_name
    per_panel = max(sum(c.target == t for c in curves) for t in targets)
    with plt.rc_context(_style()):
        fig, axes = _panels(len(targets), height=4.2 + _legend_height(per_panel))
        for i, (ax, target) in enumerate(zip(axes, targets, strict=True)):
            for c in (c for c in curves if c.target == target):
                label = f"{c.model_label}, $N_D$={c.num_train}"
                if c.saturating is not None:
                    label += f" (saturating $\\alpha$ = {c.saturating.exponent_:.2f}, K = {c.saturating.floor_:.2g})"
                _draw_curve(ax, c, colors[(c.model_label, c.num_train)], "o", label, "alpha_C")
            _loglog(ax)
            ax.set_title(f"{_panel_letter(i)} {target}{_unit(analysis, target)}")
            ax.set_xlabel(_axis_label(analysis, "compute", "training compute $C$ [FLOPs]" if x_name.startswith("C")
                                      else x_name))
            ax.set_ylabel(_loss_label(analysis))
            _legend(ax)
        path = _save(fig, out_dir, "loss_vs_compute.png")
    return [Figure(path, "Test loss vs training compute",
                   "Geometric mean test MSE against the training FLOPs (model and data fixed, training length "
                   "varied). Dashed: power law over its fit range; thin solid: saturating fit "
                   "L = (C_c / C)^alpha + K (paper 3 Eq. 1).")]


def _residual_axes(ax, title: str, xlabel: str) -> None:
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xscale("log")
    _decade_ticks(ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ln GM - ln fit")
    _legend(ax)


def fit_residuals(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """Residuals ``ln GM - ln fit`` of every quoted fit with the points' standard errors, one panel per axis."""
    curves = [c for c in analysis.all_curves() if c.quoted is not None]
    joints = [j for j in analysis.joint_fits if j.fit is not None]
    if not curves and not joints:
        return []
    axes_present = [a for a in ("data", "model", "compute") if any(c.axis == a for c in curves)]
    axes_present += ["joint"] if joints else []
    keys = list(dict.fromkeys((c.axis, c.model_label, c.target, str(c.num_train)) for c in curves))
    colors = dict(zip(keys, _colors(len(keys)), strict=True))
    names = {"data": _axis_label(analysis, "data", "training set size $N_D$"),
             "model": _axis_label(analysis, "model", "model size $N_M$"),
             "compute": _axis_label(analysis, "compute", "training compute"),
             "joint": _axis_label(analysis, "data", "training set size $N_D$")}
    with plt.rc_context(_style()):
        fig, axs = _panels(len(axes_present), height=3.6 + _legend_height(max(
            [sum(c.axis == a for c in curves) for a in axes_present] + [len(joints)])))
        for i, (ax, axis) in enumerate(zip(axs, axes_present, strict=True)):
            if axis == "joint":
                # the joint law's residuals against the data axis; one color per fit, N_M in the marker size
                for j_i, j in enumerate(joints):
                    nm = np.array([p.num_params for p in j.points], dtype=float)
                    size = 12 + 40 * (np.log(nm) - np.log(nm.min())) / max(np.ptp(np.log(nm)), 1e-12)
                    kind = j.fit.goodness_.kind if j.fit.goodness_ is not None else ""
                    ax.scatter([p.num_train for p in j.points], j.fit.residuals_, s=size,
                               color=_colors(len(joints))[j_i], alpha=0.8,
                               label=f"joint {j.family} {j.target}" + (f" ({kind} {j.fit.goodness_.reduced:.2g}/dof)"
                                                                        if kind in ("chi2", "huber") else ""))
                _residual_axes(ax, f"{_panel_letter(i)} joint law (marker size: model size)", names[axis])
                continue
            for c in (c for c in curves if c.axis == axis):
                q = c.quoted
                gm, err = _gm_errors(c.points)
                # error bars: the interval of ln GM (the residual's own uncertainty)
                lerr = np.stack([np.log(gm) - np.log(np.maximum(gm - err[0], 1e-300)),
                                 np.log(gm + err[1]) - np.log(gm)])
                key = (c.axis, c.model_label, c.target, str(c.num_train))
                tag = f"{c.model_label} {c.target}" + ("" if axis == "data" else f" N_D={c.num_train}")
                ax.errorbar(q.x_, q.residuals_, yerr=np.nan_to_num(lerr), fmt="o", ms=4, capsize=2,
                            color=colors[key], label=f"{tag} ({q.law_}, {q.goodness_.kind} "
                            f"{q.goodness_.reduced:.2g}/dof)" if q.goodness_.kind != "residual" else tag)
            _residual_axes(ax, f"{_panel_letter(i)} {names[axis]}", names[axis])
        path = _save(fig, out_dir, "fit_residuals.png")
    return [Figure(path, "Fit residuals", "Log residuals of every quoted fit (automatic law choice) with the 95 % "
                   "intervals of the points' geometric means. A trend in the residuals, or residuals far outside "
                   "their bars, means the law does not describe the curve (see chi2/dof and the flags column).")]


def compute_frontier_figure(analysis: Analysis, out_dir: Path) -> list[Figure]:
    """The loss-optimal frontier of each joint fit: N_opt(C), D_opt(C) and L_opt(C) with bootstrap bands."""
    from scalinglab.stats.compute_optimal import compute_frontier

    entries = [j for j in analysis.joint_fits if j.optimum is not None]
    if not entries:
        return []
    flops = analysis.options.flop_model
    with plt.rc_context(_style()):
        fig, axs = _panels(2, width=5.6)
        for j_i, j in enumerate(entries):
            color = _colors(len(entries))[j_i]
            f = j.fit
            measured = flops.flops(np.array(f.n_model_range_), np.array(f.n_data_range_))
            c_lo = min(measured[0], j.optimum.budget) / 10
            c_hi = max(measured[1], j.optimum.budget) * 10
            fr = compute_frontier(f, np.geomspace(c_lo, c_hi, 60), flop_model=flops)
            tag = f"{j.family} {j.target}"
            for key, style, name in (("n_model", "-", "$N_{opt}$"), ("n_data", "--", "$D_{opt}$")):
                axs[0].plot(fr["budget"], fr[key], style, color=color, label=f"{name} {tag}")
                axs[0].fill_between(fr["budget"], fr[f"{key}_lo"], fr[f"{key}_hi"], color=color, alpha=0.15, lw=0)
            axs[1].plot(fr["budget"], fr["loss"], "-", color=color, label=tag)
            axs[1].fill_between(fr["budget"], fr["loss_lo"], fr["loss_hi"], color=color, alpha=0.15, lw=0)
            for ax in axs:
                ax.axvline(j.optimum.budget, color=color, ls=":", lw=1.0)
                ax.axvspan(measured[0], measured[1], color="0.85", alpha=0.4, lw=0)
        axs[0].set_ylabel("optimal size (parameters / samples)")
        axs[1].set_ylabel("loss at the optimum")
        for i, ax in enumerate(axs):
            _loglog(ax)
            ax.set_xlabel(f"compute budget C [FLOPs] ({flops.describe()})")
            ax.set_title(f"{_panel_letter(i)} " + ("compute-optimal allocation" if i == 0 else "loss frontier"))
            _legend(ax)
        path = _save(fig, out_dir, "compute_frontier.png")
    return [Figure(path, "Compute-optimal frontier", "From each joint fit L = (A/N)^a_M + (B/D)^a_D + K: the "
                   "model size N_opt and data size D_opt that minimize the loss at compute C, and that loss; bands "
                   "are 95 % bootstrap intervals, the dotted line marks the requested budget and the grey span the "
                   "compute range of the measured points (outside it the curves extrapolate).")]


FIGURE_BUILDERS = (
    loss_vs_data,
    loss_distributions,
    gm_vs_realizations,
    exponents_vs_model_size,
    loss_vs_model_size,
    exponents_vs_data_size,
    loss_vs_compute,
    fit_residuals,
    compute_frontier_figure,
)


def make_figures(analysis: Analysis, out_dir: Path, progress=None) -> list[Figure]:
    """Every figure the sweep allows, written as PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    for builder in FIGURE_BUILDERS:
        figures.extend(builder(analysis, out_dir))
        if progress is not None:
            progress.advance(1)
    return figures

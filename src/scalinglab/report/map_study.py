"""Figures, tables and index page of a parameter-map study (paper 4 Sec. III B, Figs. 10-13).

Reads the dict of ``scalinglab.analysis.param_map.map_study`` (plus the maps themselves for Fig. 10) and writes:

- ``patterns_maps.png`` (Fig. 10): per D_in the input pattern, the D map and, if predicted, the J map, with the
  inner/outer boundary drawn;
- ``region_boxplots.png`` (Fig. 11(b)): boxplots of the D estimates in R1-R4 against D_in, truth in green;
- ``roc.png`` (Fig. 12): inner-vs-outer ROC curves with their AUC per D_in;
- ``J_boxplots.png`` (Fig. 13): J estimates per D_in and region against the true J (when the model predicts J);
- ``summary.csv`` (one row per D_in), ``regions.csv`` (one row per D_in and region) and ``index.html``.

Boxes span the quartiles with the median marked; whiskers are the 5th and 95th percentiles (computed from all map
pixels of a region, so no outlier points are drawn).

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. III B, Figs. 10-13.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REGIONS = ("R1", "R2", "R3", "R4")
REGION_TITLES = {"R1": "R1 (inner, core)", "R2": "R2 (inner, near boundary)", "R3": "R3 (outer, near boundary)",
                 "R4": "R4 (outer, far)"}


def _box(stats: dict, label: str) -> dict:
    return {"label": label, "med": stats["median"], "q1": stats["q1"], "q3": stats["q3"],
            "whislo": stats["p5"], "whishi": stats["p95"], "fliers": []}


def _box_panels(study: dict, key: str, truth, ylabel: str, out_png: Path, title: str,
                regions: Sequence[str] = REGIONS) -> None:
    rows = study["rows"]
    labels = [f"{r['D_in']:g}" for r in rows]
    fig, axes = plt.subplots(1, len(regions), figsize=(3.3 * len(regions), 3.4), sharey=True, squeeze=False)
    for ax, reg in zip(axes[0], regions, strict=True):
        ax.bxp([_box(r[key][reg], lab) for r, lab in zip(rows, labels, strict=True)], showfliers=False)
        ys = [truth(r, reg) for r in rows]
        if all(y is not None for y in ys):
            ax.plot(range(1, len(rows) + 1), ys, "g-", lw=1.5, label="truth")
        ax.set_title(REGION_TITLES.get(reg, reg), fontsize=9)
        ax.set_xlabel("$D_{in}$")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def region_boxplots(study: dict, out_png: str | Path) -> None:
    """Fig. 11(b): D estimates in R1-R4 per D_in (quartile boxes, 5-95 % whiskers), true D as green lines."""
    _box_panels(study, "regions", lambda r, reg: r["regions"][reg]["true_D"], "estimated D", Path(out_png),
                f"D estimates by region (band {study['band']} px; R1/R2 inner, R3/R4 outer)")


def j_boxplots(study: dict, out_png: str | Path) -> None:
    """Fig. 13: J estimates per D_in in R1-R4 and over the whole map, true J (campaign's) as a green line."""
    jt = study.get("J_true")
    _box_panels(study, "J_regions", lambda r, reg: jt, "estimated J", Path(out_png),
                f"J estimates (true J = {jt if jt is not None else 'unknown'})", regions=(*REGIONS, "all"))


def roc_figure(study: dict, out_png: str | Path) -> None:
    """Fig. 12: inner-vs-outer ROC curve per D_in (positive = region with the larger true D), AUC in the legend."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    cmap = plt.get_cmap("viridis")
    rows = [r for r in study["rows"] if r["roc"] is not None]
    for i, r in enumerate(rows):
        ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], color=cmap(i / max(1, len(rows) - 1)),
                label=f"$D_{{in}}$ = {r['D_in']:g}: AUC {r['auc']:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("inner vs outer D estimates (positive: larger true D)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def pattern_grid(images: Sequence[np.ndarray], estimates: Sequence[np.ndarray], target_names: Sequence[str],
                 d_in: Sequence[float], out_png: str | Path, inner: np.ndarray | None = None,
                 stride: int = 1) -> None:
    """Fig. 10 (and the maps of Fig. 13): one column per pattern; rows: pattern, then one map per target.

    Maps of a target share one colour scale (1st-99th percentile over all patterns) so columns compare.
    """
    names = list(target_names)
    n = len(images)
    fig, axes = plt.subplots(1 + len(names), n, figsize=(2.2 * n + 0.8, 2.2 * (1 + len(names))), squeeze=False)
    lims = {}
    for i, name in enumerate(names):
        allv = np.concatenate([np.asarray(e[i]).ravel() for e in estimates])
        lims[name] = np.percentile(allv, [1, 99])
    for col in range(n):
        axes[0][col].imshow(np.asarray(images[col]).squeeze(), cmap="gray", interpolation="nearest")
        axes[0][col].set_title(f"$D_{{in}}$ = {d_in[col]:g}", fontsize=9)
        for i, name in enumerate(names):
            ax = axes[1 + i][col]
            im = ax.imshow(estimates[col][i], cmap="viridis", vmin=lims[name][0], vmax=lims[name][1])
            if inner is not None:
                ax.contour(np.asarray(inner)[::stride, ::stride].astype(float), levels=[0.5], colors="w",
                           linewidths=0.6)
            if col == n - 1:
                fig.colorbar(im, ax=axes[1 + i].tolist(), fraction=0.02, pad=0.01, label=f"estimated {name}")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("pattern")
    for i, name in enumerate(names):
        axes[1 + i][0].set_ylabel(f"{name} map")
    fig.savefig(out_png, dpi=100, bbox_inches="tight")
    plt.close(fig)


def write_tables(study: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """``summary.csv`` (per D_in: AUC, D medians/IQR of R1-R4, J median) and ``regions.csv`` (per D_in and region)."""
    out = Path(out_dir)
    has_j = any("J_regions" in r for r in study["rows"])
    summary, regions = out / "summary.csv", out / "regions.csv"
    with open(summary, "w", newline="") as fh:
        w = csv.writer(fh)
        head = ["D_in", "D_out", "num_patterns", "auc"]
        for reg in REGIONS:
            head += [f"{reg}_true_D", f"{reg}_median_D", f"{reg}_iqr_D"]
        if has_j:
            head += ["J_true", "median_J", "iqr_J"]
        w.writerow(head)
        for r in study["rows"]:
            line = [f"{r['D_in']:g}", f"{r['D_out']:g}", r["num_patterns"],
                    "" if r["auc"] is None else f"{r['auc']:.4f}"]
            for reg in REGIONS:
                s = r["regions"][reg]
                line += [f"{s['true_D']:g}", f"{s['median']:.4f}", f"{s['q3'] - s['q1']:.4f}"]
            if has_j:
                a = r["J_regions"]["all"]
                jt = study.get("J_true")
                line += ["" if jt is None else f"{jt:g}", f"{a['median']:.4f}", f"{a['q3'] - a['q1']:.4f}"]
            w.writerow(line)
    with open(regions, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["D_in", "target", "region", "true", "num_pixels", "median", "q1", "q3", "p5", "p95", "mean"])
        for r in study["rows"]:
            for target, key in (("D", "regions"), ("J", "J_regions")):
                for reg, s in r.get(key, {}).items():
                    true = s["true_D"] if target == "D" else study.get("J_true")
                    w.writerow([f"{r['D_in']:g}", target, reg, "" if true is None else f"{true:g}", s["num_pixels"],
                                *(f"{s[k]:.4f}" for k in ("median", "q1", "q3", "p5", "p95", "mean"))])
    return summary, regions


def format_table(study: dict) -> str:
    """Plain-text table: per D_in the AUC and the median D (truth) of R1-R4, and the median J."""
    has_j = any("J_regions" in r for r in study["rows"])
    head = f"{'D_in':>5} {'AUC':>6}" + "".join(f" {reg + ' D (true)':>15}" for reg in REGIONS)
    head += f" {'J (true ' + str(study.get('J_true')) + ')':>14}" if has_j else ""
    lines = [head]
    for r in study["rows"]:
        a = "   n/a" if r["auc"] is None else f"{r['auc']:6.3f}"
        cells = "".join(f" {r['regions'][reg]['median']:7.3f} ({r['regions'][reg]['true_D']:4.2f})"
                        for reg in REGIONS)
        j = f" {r['J_regions']['all']['median']:14.3f}" if has_j else ""
        lines.append(f"{r['D_in']:5.2f} {a}{cells}{j}")
    return "\n".join(lines)


def write_index(study: dict, out_dir: str | Path, figures: Sequence[str], header: dict) -> Path:
    """``index.html``: the run's settings, the per-D_in table and the figures."""
    out = Path(out_dir)
    esc = html.escape
    rows_html = []
    has_j = any("J_regions" in r for r in study["rows"])
    for r in study["rows"]:
        cells = [f"{r['D_in']:g}", f"{r['D_out']:g}", str(r["num_patterns"]),
                 "n/a" if r["auc"] is None else f"{r['auc']:.3f}"]
        for reg in REGIONS:
            s = r["regions"][reg]
            cells.append(f"{s['median']:.3f} [{s['q1']:.3f}, {s['q3']:.3f}] (true {s['true_D']:g})")
        if has_j:
            s = r["J_regions"]["all"]
            cells.append(f"{s['median']:.3f} [{s['q1']:.3f}, {s['q3']:.3f}]")
        rows_html.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    head = ["D_in", "D_out", "patterns", "AUC", *(f"{reg} median D [q1, q3]" for reg in REGIONS)]
    if has_j:
        head.append(f"J median [q1, q3] (true {study.get('J_true')})")
    settings = "".join(f"<li><b>{esc(str(k))}</b>: {esc(str(v))}</li>" for k, v in header.items())
    figs = "".join(f'<h3>{esc(f)}</h3><img src="{esc(f)}" style="max-width:100%">' for f in figures)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>parameter-map study</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}</style></head><body>"
        "<h1>Parameter-map study (paper 4 Sec. III B)</h1>"
        f"<ul>{settings}</ul>"
        "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + "".join(rows_html) + "</table>"
        "<p>AUC: inner (R1+R2) vs outer (R3+R4) D estimates, positive = the region with the larger true D. "
        "Boxes: quartiles; whiskers: 5th-95th percentiles of all map pixels of a region.</p>"
        f"{figs}"
        "<p>files: summary.json, summary.csv, regions.csv, maps.npy</p></body></html>"
    )
    path = out / "index.html"
    path.write_text(page)
    return path

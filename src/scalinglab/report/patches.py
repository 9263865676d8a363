"""Report of a patch-study sweep (``[sweep] mode = "patches"``): paper 4's Table II and Figs. 7-8.

Reads the records of ``scalinglab.sweeps.patches`` (one per model x N_data x repeat, test MAE per target in
physical units) and writes, instead of the scaling-law figures and fits that have no meaning for two values of
N_data:

- ``median_mae.csv`` (Table II): the median over repeats of the test MAE per model label, target and N_data
  (header ``model, <target> N=<n> ..., repeats``, as ``scalinglab train-patches`` writes it);
- ``records.csv``: one row per repeat (label, N_data, repeat, training seeds, test and baseline MAE per target,
  status);
- ``mae_boxplot.png`` (Fig. 7): boxplots of the test MAE over repeats per model and N_data, one panel per
  target, with the median predict-the-training-mean MAE dotted;
- ``pred_vs_true.png`` (Fig. 8): predicted against true value at the largest N_data, all repeats pooled;
- ``index.html``: the table, the figures (embedded), the notes, the spec and the run log.

No torch and no sweeps import: records come from ``report.loader``.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. III A, Table II, Figs. 7-8.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.report.loader import SweepResults

__all__ = ["is_patch_study", "median_mae_table", "mae_boxplot", "pred_vs_true_plot", "build_patch_report"]


def is_patch_study(records: Sequence[dict[str, Any]]) -> bool:
    """Whether the records are those of a patch study; a mix with other sweeps is a one-line ValueError."""
    kinds = {r.get("mode") == "patches" for r in records}
    if len(kinds) > 1:
        raise ValueError("these results mix a patch study (mode patches) with other sweeps: report them apart")
    return kinds == {True}


def _label(r: dict[str, Any]) -> str:
    return str(r.get("model_label") or r.get("label") or r["family"])


def _num_data(r: dict[str, Any]) -> int:
    """N_data of a record: ``num_train`` in sweep records, ``num_data`` in those of ``train-patches``."""
    return int(r["num_train"] if "num_train" in r else r["num_data"])


def _targets(records: Sequence[dict[str, Any]]) -> list[str]:
    return list(records[0]["target_names"])


def median_mae_table(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Table II: the median over repeats of the test MAE per model label, target and N_data.

    Returns:
        ``(header, rows)``: header ``["model", "<target> N=<n>", ..., "repeats"]`` (targets in record order,
        N_data ascending within a target); one row per label in first-seen order, ``None`` where no record;
        ``repeats`` is the smallest number of repeats of a cell of that row.
    """
    if not records:
        raise ValueError("no patch-study records to tabulate")
    labels = list(dict.fromkeys(_label(r) for r in records))
    targets = _targets(records)
    nums = sorted({_num_data(r) for r in records})
    header = ["model"] + [f"{t} N={n}" for t in targets for n in nums] + ["repeats"]
    rows = []
    for lab in labels:
        row: list[Any] = [lab]
        counts = []
        for t in targets:
            for n in nums:
                vals = [float(r["test_mae"][t]) for r in records if _label(r) == lab and _num_data(r) == n]
                row.append(float(np.median(vals)) if vals else None)
                counts.append(len(vals))
        row.append(min(c for c in counts if c) if any(counts) else 0)
        rows.append(row)
    return header, rows


def write_tables(records: Sequence[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    """``median_mae.csv`` (Table II) and ``records.csv`` (one row per repeat) in ``out``."""
    header, rows = median_mae_table(records)
    table = out / "median_mae.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([r[0]] + ["" if v is None else repr(v) for v in r[1:-1]] + [r[-1]])
    targets = _targets(records)
    per_run = out / "records.csv"
    with open(per_run, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "num_data", "repeat", "train_seeds", "seed", "num_params", "steps", "epochs_run",
                    "status", *[f"test_mae_{t}" for t in targets], *[f"baseline_mae_{t}" for t in targets],
                    "checkpoint"])
        for r in records:
            w.writerow([_label(r), _num_data(r), r.get("realization", r.get("repeat")),
                        " ".join(map(str, r.get("train_seeds", []))),
                        r.get("seed"), r.get("num_params"), r.get("steps"), r.get("epochs_run"), r.get("status"),
                        *[repr(float(r["test_mae"][t])) for t in targets],
                        *[repr(float(r["baseline_mae"][t])) for t in targets], r.get("checkpoint", "")])
    return table, per_run


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """Fixed-width text of :func:`median_mae_table` (as ``scalinglab train-patches`` prints it)."""
    cells = [header] + [[r[0]] + ["-" if v is None else f"{v:.3f}" for v in r[1:-1]] + [str(r[-1])] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join("  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i])
                               for i in range(len(header))) for c in cells)


def mae_boxplot(records: Sequence[dict[str, Any]], out_png: str | Path) -> Path:
    """Fig. 7: boxplots of the test MAE over repeats per model label and N_data, one panel per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(_label(r) for r in records))
    targets = _targets(records)
    nums = sorted({_num_data(r) for r in records})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / len(nums)
    fig, axes = plt.subplots(1, len(targets), figsize=(max(4.0, 1.2 * len(labels) * len(nums) + 1.5) + 1.0, 4.0),
                             squeeze=False)
    for ax, t in zip(axes[0], targets, strict=True):
        for j, n in enumerate(nums):
            data, pos = [], []
            for i, lab in enumerate(labels):
                vals = [float(r["test_mae"][t]) for r in records if _label(r) == lab and _num_data(r) == n]
                if vals:
                    data.append(vals)
                    pos.append(i - 0.4 + width * (j + 0.5))
            if data:
                bp = ax.boxplot(data, positions=pos, widths=width * 0.85, patch_artist=True, manage_ticks=False)
                for box in bp["boxes"]:
                    box.set_facecolor(colors[j % len(colors)])
                    box.set_alpha(0.6)
                ax.plot([], [], "s", color=colors[j % len(colors)], alpha=0.6, label=f"$N_{{data}}$ = {n}")
        base = [float(r["baseline_mae"][t]) for r in records]
        ax.axhline(float(np.median(base)), color="gray", ls=":", lw=1, label="predict the mean")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20, ha="right")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylabel(f"test MAE of {t}")
        ax.set_title(f"target {t}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)


def pred_vs_true_plot(records: Sequence[dict[str, Any]], out_png: str | Path, num_data: int | None = None) -> Path:
    """Fig. 8: boxplots of the predicted value at each true value (rows: targets, columns: models), pooling the
    rotation-averaged test predictions of every repeat with ``N_data = num_data`` (default: the largest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_data = num_data if num_data is not None else max(_num_data(r) for r in records)
    sel = [r for r in records if _num_data(r) == num_data and r.get("test_true") is not None]
    if not sel:
        raise ValueError(f"no records with test predictions at N_data = {num_data}")
    labels = list(dict.fromkeys(_label(r) for r in sel))
    targets = _targets(sel)
    fig, axes = plt.subplots(len(targets), len(labels), figsize=(3.6 * len(labels), 3.2 * len(targets)),
                             squeeze=False)
    for i, t in enumerate(targets):
        for j, lab in enumerate(labels):
            ax = axes[i, j]
            true = np.concatenate([np.asarray(r["test_true"])[:, i] for r in sel if _label(r) == lab])
            pred = np.concatenate([np.asarray(r["test_pred"])[:, i] for r in sel if _label(r) == lab])
            values = np.unique(np.round(true, 6))
            groups = [pred[np.isclose(true, v)] for v in values]
            span = float(values.max() - values.min()) if len(values) > 1 else 1.0
            ax.boxplot(groups, positions=values, widths=0.6 * span / max(len(values), 2), manage_ticks=False)
            lo, hi = values.min() - 0.1 * span, values.max() + 0.1 * span
            ax.plot([lo, hi], [lo, hi], "g-", lw=1)
            ax.set_xlim(lo, hi)
            ax.set_xlabel(f"true {t}")
            ax.set_ylabel(f"predicted {t}")
            ax.set_title(f"{lab} ($N_{{data}}$ = {num_data})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)


def notes(records: Sequence[dict[str, Any]]) -> list[str]:
    """What the reader should know: flagged repeats (they stay in the medians, as in the paper) and gaps."""
    msgs = []
    flagged: dict[str, int] = {}
    for r in records:
        if r.get("status") not in (None, "ok"):
            flagged[str(r["status"])] = flagged.get(str(r["status"]), 0) + 1
    if flagged:
        what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(flagged.items()))
        msgs.append(f"{sum(flagged.values())} of {len(records)} repeats are flagged ({what}; not better than the "
                    "mean: some target's test MAE is not below that of predicting the training mean). They are "
                    "kept in the medians and boxplots, as the paper reports every repeat.")
    header, rows = median_mae_table(records)
    counts = {(_label(r), _num_data(r)) for r in records}
    labels = [row[0] for row in rows]
    nums = sorted({n for _, n in counts})
    missing = [f"{lab} N_data={n}" for lab in labels for n in nums if (lab, n) not in counts]
    if missing:
        msgs.append("No finished repeat yet for " + ", ".join(missing) + " (resume the sweep).")
    msgs.append("A patch study has two or so values of N_data: no scaling-law fit or figure is drawn.")
    return msgs


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img style='max-width:100%' alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"


def build_patch_report(results: SweepResults, out: Path) -> Path:
    """Write the patch-study report of ``results`` into ``out`` (module docstring); returns ``index.html``."""
    records = results.records
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table_csv, records_csv = write_tables(records, out)
    header, rows = median_mae_table(records)
    figures = [(mae_boxplot(records, out / "mae_boxplot.png"), "Fig. 7: test MAE over repeats",
                "Boxplots of the test MAE (physical units; centre crop of every test-seed image, averaged over its "
                "four rotations) over the repeats, per model and N_data; dotted: median MAE of predicting the "
                "training mean.")]
    if any(r.get("test_true") is not None for r in records):
        n_top = max(_num_data(r) for r in records)
        figures.append((pred_vs_true_plot(records, out / "pred_vs_true.png"), f"Fig. 8: prediction vs truth "
                        f"(N_data = {n_top})", "Rotation-averaged test predictions of every repeat pooled, per "
                        "true value; green: y = x."))
    units = (results.resolved_spec.get("target_units") or {})
    unit_text = ", ".join(f"{t} in {u}" for t, u in units.items() if u)
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + f"<td>{html.escape(str(r[0]))}</td>" + "".join(
        f"<td>{'-' if v is None else f'{v:.4g}'}</td>" for v in r[1:-1]) + f"<td>{r[-1]}</td></tr>" for r in rows)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(results.name)}: patch study</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
        ".meta{color:#555}pre{background:#f6f6f6;padding:8px;overflow:auto}</style></head><body>",
        f"<h1>{html.escape(results.name)}: patch regression study (paper 4, Experiment I)</h1>",
        f"<p class='meta'>{len(records)} runs from {html.escape(str(results.root))}. "
        + (f"Units: {html.escape(unit_text)}." if unit_text else "") + "</p>",
        "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in notes(records)) + "</ul>",
        "<h2>Table II: median test MAE over repeats</h2>",
        f"<p class='meta'>Also written as {table_csv.name}; every repeat in {records_csv.name}.</p>",
        f"<table><tr>{cells}</tr>{body}</table>",
    ]
    for path, title, caption in figures:
        parts += [f"<h2>{html.escape(title)}</h2>", _img(path), f"<p class='meta'>{html.escape(caption)}</p>"]
    parts += ["<h2>Spec</h2>", f"<pre>{html.escape(results.spec_text or json.dumps(results.resolved_spec, indent=1))}"
              "</pre>", "<h2>Runs</h2>",
              f"<pre>{html.escape(json.dumps(results.environment, indent=1, default=str))}</pre></body></html>"]
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index

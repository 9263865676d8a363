"""One self-contained ``index.html``: figures embedded as base64 PNG, tables of every fit, spec, environment.

The page loads nothing from anywhere (no external ``src`` or ``href``, inline CSS, no scripts), so it opens
offline, can be mailed as one file, and renders the same in any browser.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from scalinglab import __version__
from scalinglab.report.analysis import Analysis, fit_rows, point_rows
from scalinglab.report.figures import Figure

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1320px;
       color: #222; line-height: 1.45; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 1.6em; }
.meta { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 8px 0 16px; }
th, td { border: 1px solid #d4d4d4; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f1f3f6; } td.l, th.l { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 18px 0 28px; } figure img { max-width: 100%; border: 1px solid #e4e4e4; }
figcaption { font-size: 0.9em; color: #444; max-width: 1100px; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px; font-size: 0.8em; overflow-x: auto; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; }
.flag { background: #fdecea; border-left: 4px solid #d32f2f; padding: 6px 10px; }
.scroll { overflow-x: auto; }
td.wrap { white-space: normal; text-align: left; min-width: 280px; font-size: 0.95em; }
"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))  # dataset sizes and parameter counts read better in full
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}g}" if abs(value) >= 100 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def _interval(lo: Any, hi: Any) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _table(header: list[str], rows: list[list[Any]], left: int = 1, wrap_last: bool = False) -> str:
    """An HTML table; the first ``left`` columns are left-aligned text; ``wrap_last``: the last column wraps."""
    out = ["<div class='scroll'><table><tr>"]
    out += [f"<th class='{'l' if i < left else ''}'>{escape(h)}</th>" for i, h in enumerate(header)]
    out.append("</tr>")
    for row in rows:
        cls = ["l" if i < left else "" for i in range(len(row))]
        if wrap_last and cls:
            cls[-1] = "wrap"
        out.append("<tr>" + "".join(
            f"<td class='{c}'>{escape(_fmt(v) if not isinstance(v, str) else v)}</td>"
            for c, v in zip(cls, row, strict=True)) + "</tr>")
    out.append("</table></div>")
    return "".join(out)


def _compact_json(obj: Any) -> str:
    """Indented JSON with lists of scalars kept on one line (sizes and targets stay readable)."""

    def walk(o: Any, depth: int) -> str:
        pad, inner = " " * depth, " " * (depth + 1)
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f"{inner}{json.dumps(str(k))}: {walk(v, depth + 1)}" for k, v in o.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(o, list) and any(isinstance(v, dict | list) for v in o):
            return "[\n" + ",\n".join(f"{inner}{walk(v, depth + 1)}" for v in o) + f"\n{pad}]"
        return json.dumps(o, default=str)

    return walk(obj, 0)


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img alt='{escape(Path(path).name)}' src='data:image/png;base64,{data}'>"


def _exponent_matrix(analysis: Analysis) -> str:
    """Compact alpha_D table: one row per model, one column per target."""
    targets = analysis.targets
    rows: dict[str, list[Any]] = {}
    for c in analysis.data_curves:
        label = c.model_label + (f" ({c.points[0].compute_key}={c.compute_value})" if c.compute_value is not None
                                 else "")
        row = rows.setdefault(label, [label, _fmt(c.num_params)] + [""] * len(targets))
        f = c.exponent_fit()  # the automatic law choice where made (it survives a floor)
        if f is not None:
            cell = f"{f.exponent_:.3f} [{f.exponent_interval_[0]:.3f}, {f.exponent_interval_[1]:.3f}]"
            if getattr(f, "flags_", ()):
                cell += " (flagged)"
        else:
            cell = "not fitted"
        row[2 + targets.index(c.target)] = cell
    if not rows:
        return "<p>No data-scaling curve (the sweep has fewer than 2 training set sizes per model).</p>"
    return _table(["model", "N_M [parameters]"] + [f"alpha_D {t}" for t in targets], list(rows.values()), left=1)


def _fits_table(analysis: Analysis) -> str:
    rows = []
    for r in fit_rows(analysis):
        if r["law"] == "log_trend":
            est = f"a = {_fmt(r.get('slope_a'))} ± {_fmt(r.get('slope_a_stderr'))}"
            iv = _interval(r.get("slope_a_lo"), r.get("slope_a_hi"))
            second = f"b = {_fmt(r.get('intercept_b'))} ± {_fmt(r.get('intercept_b_stderr'))}"
            rng = ""
        else:
            est = "" if r.get("exponent") is None else f"{_fmt(r['exponent'])} ± {_fmt(r.get('exponent_stderr'))}"
            iv = _interval(r.get("exponent_lo"), r.get("exponent_hi"))
            if r["law"] == "joint" and r.get("exponent") is not None:
                est = f"a_D = {_fmt(r['exponent'])}"
                second = (f"a_M = {_fmt(r.get('exponent_model'))} "
                          f"{_interval(r.get('exponent_model_lo'), r.get('exponent_model_hi'))}, "
                          f"K = {_fmt(r.get('floor'))}")
            elif r["law"] == "joint optimum":
                est = f"N_opt = {_fmt(r.get('n_model_opt'))}"
                iv = _interval(r.get("n_model_opt_lo"), r.get("n_model_opt_hi"))
                d_iv = _interval(r.get("n_data_opt_lo"), r.get("n_data_opt_hi"))
                second = (f"D_opt = {_fmt(r.get('n_data_opt'))} {d_iv}"
                          f", L = {_fmt(r.get('loss_at_optimum'))} at C = {_fmt(r.get('compute_budget'))}; "
                          f"a = {_fmt(r.get('exponent_model'))}, b = {_fmt(r.get('exponent'))}")
            elif r["law"] == "auto" and r.get("exponent") is not None:
                second = (f"chosen: {r.get('chosen_law')}" + (f", K = {_fmt(r.get('floor'))}"
                                                              if r.get("chosen_law") == "saturating" else ""))
            elif r["law"] == "saturating":
                second = (f"X_c = {_fmt(r.get('prefactor'))}, K = {_fmt(r.get('floor'))} "
                          f"{_interval(r.get('floor_lo'), r.get('floor_hi'))}")
            else:
                second = "" if r.get("prefactor") is None else f"A = {_fmt(r['prefactor'])}"
            rng = "" if r.get("fit_min") is None else f"{_fmt(r['fit_min'])} .. {_fmt(r['fit_max'])}"
        flags = "; ".join(s for s in (
            f"FLAG: {r['flags']}" if r.get("flags") else "",
            f"float32: {r['flagged_precision']}" if r.get("flagged_precision") else "",
            f"dropped: {r['dropped']}" if r.get("dropped") else "",
            r.get("note") or "",
        ) if s)
        rows.append([
            r["axis"], r["law"], str(r.get("model") or ""), r["target"],
            "" if r.get("num_train") is None else str(r["num_train"]),
            "" if r.get("compute_value") is None else str(r["compute_value"]),
            est, iv, second, rng,
            "" if r.get("num_points_in_fit") is None else f"{r['num_points_in_fit']}/{r['num_points']}",
            _fmt(r.get("chi2")), "" if r.get("dof") is None else str(r["dof"]), _fmt(r.get("chi2_dof")),
            _fmt(r.get("gof_p_value")), _fmt(r.get("rms_log_residual")),
            _fmt(r.get("curvature_p_value")), flags,
        ])
    header = ["axis", "law", "model", "target", "N_D", "compute", "exponent ± SE (or a)", "95% interval",
              "other parameters", "fit range", "points", "chi2", "dof", "chi2/dof", "fit p", "rms log resid.",
              "curvature p", "flags and notes"]
    return _table(header, rows, left=6, wrap_last=True)


def _points_table(analysis: Analysis) -> str:
    rows = []
    for r in point_rows(analysis):
        rows.append([
            str(r["model"]), r["target"], str(r["num_train"]),
            "" if r.get("compute_value") is None else str(r["compute_value"]), r["realizations"],
            r.get("mean"), r.get("mean_stderr"), r.get("geometric_mean"), r.get("geometric_mean_stderr"),
            _interval(r.get("geometric_mean_lo"), r.get("geometric_mean_hi")), r.get("median"),
            r.get("median_mad"), "yes" if r.get("near_float32_resolution") else "", r.get("wall_time_s"),
        ])
    header = ["model", "target", "N_D", "compute", "R", "AM", "SE(AM)", "GM", "SE(GM)", "GM 95% interval",
              "median", "MAD", "near float32", "train time [s]"]
    return _table(header, rows, left=4)


def _timings(analysis: Analysis) -> str:
    env = analysis.results.environment
    parts = []
    runs = env.get("runs") or []
    if runs:
        rows = [[str(r.get("started", "")), str(r.get("executor", "")), r.get("tasks_pending"),
                 r.get("tasks_skipped"), r.get("wall_time_s")] for r in runs]
        parts.append("<h3>Sweep runs</h3>" + _table(["started (UTC)", "executor", "tasks run", "tasks skipped",
                                                     "wall time [s]"], rows, left=2))
    per_model: dict[str, list[float]] = {}
    for p in analysis.points:
        per_model.setdefault(p.model_label, []).append(p.wall_time_s)
    rows = [[m, len(v), sum(v), sum(v) / max(1, len(v))] for m, v in per_model.items()]
    total = sum(sum(v) for v in per_model.values())
    parts.append("<h3>Training time per model (sum over realizations, all targets and N_D)</h3>"
                 + _table(["model", "design points", "total [s]", "per point [s]"], rows)
                 + f"<p>Total recorded training time: {_fmt(total)} s.</p>")
    return "".join(parts)


def write_html(analysis: Analysis, figures: list[Figure], out_dir: Path, *, messages: list[str] | None = None,
               table_files: list[str] | None = None, links: list[tuple[str, str]] | None = None) -> Path:
    """Write ``out_dir/index.html`` and return its path.

    Args:
        analysis: the analysis to show.
        figures: the written figures, embedded in this order.
        out_dir: report directory.
        messages: notes shown near the top (e.g. why a figure is missing).
        table_files: names of the table files written next to the page (mentioned, not linked).
        links: (text, relative href) of related pages, e.g. the ``scalinglab analyze`` pages of this sweep.
    """
    res = analysis.results
    spec = res.resolved_spec.get("spec") or {}
    n_sizes = sorted({p.num_train for p in analysis.points})
    models = list(dict.fromkeys(p.model_label for p in analysis.points))
    realizations = sorted({int(p.losses.size) for p in analysis.points})
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>Scaling study: {escape(res.name)}</h1>",
        f"<p class='meta'>Report generated {now} by scalinglab {escape(__version__)} from "
        f"<code>{escape(str(res.root))}</code>. Dataset: <code>{escape(str(spec.get('dataset', '?')))}</code>.</p>",
        "<h2>Summary</h2><ul>",
        f"<li>{len(res.records)} trained realizations in {len(analysis.points)} design points; "
        f"realizations per point: {', '.join(map(str, realizations))}.</li>",
        f"<li>Targets: {escape(', '.join(analysis.targets))}. Models: {escape(', '.join(models))}.</li>",
        f"<li>Training set sizes N_D: {escape(', '.join(map(str, n_sizes)))}.</li>",
        f"<li>Loss: <code>test_normalized.{escape(res.loss_key)}</code> (standardized target units), averaged "
        "over realizations by the geometric mean (paper 1). Intervals: "
        f"{analysis.options.confidence:.0%} percentile bootstrap over realizations within each design point, or "
        "over points where a point has a single run "
        f"({analysis.options.num_bootstrap} replicates, seed {analysis.options.seed}). Quoted exponents (law "
        "'auto') come from the power-law / floored-law choice, repeated in every replicate.</li>",
        "</ul>",
    ]
    for msg in messages or []:
        # fit flags and training warnings in red: a flagged fit must not read as a good one
        cls = "flag" if msg.startswith(("FLAG:", "WARNING:")) else "note"
        body.append(f"<p class='{cls}'>{escape(msg)}</p>")
    if links:
        items = "".join(f"<li><a href='{escape(href)}'>{escape(text)}</a></li>" for text, href in links)
        body.append(f"<h2>Error analyses</h2><ul>{items}</ul>")
    body.append("<h2>Data-scaling exponents alpha_D</h2>" + _exponent_matrix(analysis))
    body.append("<h2>Figures</h2>")
    for fig in figures:
        body.append(f"<figure>{_img(fig.path)}<figcaption><b>{escape(fig.title)}.</b> "
                    f"{escape(fig.caption)}</figcaption></figure>")
    body.append("<h2>All fits</h2><p>Power laws eps = A x^-alpha (weighted least squares on log geometric means), "
                "saturating laws L = (X_c/X)^alpha + K, and exponent trends alpha = a log10(N/N0) + b. "
                "Fit-range rule: see the range_rule column of fits.csv.</p>" + _fits_table(analysis))
    if table_files:
        body.append(f"<p class='meta'>Machine-readable tables next to this page: "
                    f"{escape(', '.join(table_files))}.</p>")
    body.append("<h2>Design points</h2><details><summary>Aggregates of every design point "
                f"({len(analysis.points)})</summary>" + _points_table(analysis) + "</details>")
    body.append("<h2>Timings</h2>" + _timings(analysis))
    body.append("<h2>Resolved specification</h2><pre>"
                + escape(_compact_json(res.resolved_spec)) + "</pre>")
    if res.spec_text:
        body.append("<h2>Sweep file (spec.toml)</h2><pre>" + escape(res.spec_text) + "</pre>")
    body.append("<h2>Environment</h2><pre>" + escape(_compact_json(res.environment)) + "</pre>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>scalinglab report: {escape(res.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    path = Path(out_dir) / "index.html"
    path.write_text(page, encoding="utf-8")
    return path

"""Amplitude-surrogate figures: exponents vs final-state multiplicity with the 4/d bound, and the TwoNN
intrinsic dimension of the learned features vs training size against the phase-space dimension d.

Inputs are sweep records (``scalinglab.report.loader``) that carry ``n_f`` and ``phase_space_dim`` (written by
the experiment layer from the dataset's metadata: d = 3 n_f - 4 for hadron-collider samples, 3 n_f - 5 at one
fixed sqrt(s)) and, for MLP-I, ``intrinsic_dimension`` (TwoNN on last-hidden-layer activations of test points).
No torch: this module reads records and fits through ``scalinglab.stats``.

Also: alpha_C per model at its largest N_D from the report's compute curves (:func:`compute_exponents`), the
App. C tables of (X_c, alpha, K) per curve (:func:`paper3_table_rows`, ``paper3_table.csv``) and the Eq. 23
error eps = sum |A_NN - A_true| / sum A_true vs N_D (:func:`epsilon_scaling`, :func:`epsilon_figure`).

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 2 (Eqs. 4-8: alpha >= 4/d, d = 3 n_f - 4),
Fig. 10 (exponents vs n_f), App. A.1 (Eq. 23), App. B / Figs. 3, 18-19 (intrinsic dimension) and App. C
(Tables 2-13).
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are written by batch jobs and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scalinglab.stats import fit_power_law, fit_scaling_curve  # noqa: E402

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


def data_exponent(records: list[dict[str, Any]], *, loss_key: str = "mse", num_bootstrap: int = 400,
                  seed: int = 0, fit_range: str = "all") -> dict[str, Any]:
    """alpha_D of one amplitude sweep, the exponent the report quotes for the test loss
    (``test_normalized[loss_key]``) vs N_D.

    With 4 or more data sizes: the automatic power-law / floored-law choice (:func:`stats.fit_scaling_curve`,
    the law re-chosen in every bootstrap replicate), as the report's data curves; with 3, or when the choice
    cannot be made (fewer than 4 points above the float32 loss resolution): the power law.

    Args:
        records: realization records of one process and one model configuration, each with ``n_f``.
        loss_key: metric in ``test_normalized`` (paper 3: MSE of log-standardized |M|^2).
        num_bootstrap, seed: bootstrap of the fit; fit_range: the power law's range rule (3 sizes only).

    Returns:
        {"n_f", "d", "exponent", "ci95", "stderr", "bound", "law", "fit_range", "num_points"}.

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
    losses = [by_n[n] for n in sizes]
    fit = None
    if len(sizes) >= 4:
        try:
            fit = fit_scaling_curve(sizes, losses, num_bootstrap=num_bootstrap, seed=seed)
            law, used = fit.law_, [float(sizes[0]), float(sizes[-1])]
        except ValueError:
            fit = None  # e.g. fewer than 4 points above the float32 resolution: the power law, as the report
    if fit is None:
        fit = fit_power_law(sizes, losses, fit_range=fit_range, num_bootstrap=num_bootstrap, seed=seed)
        law, used = "power_law", [float(v) for v in fit.fit_range_]
    return {"n_f": n_f, "d": d, "exponent": float(fit.exponent_), "ci95": [float(v) for v in fit.exponent_interval_],
            "stderr": float(fit.exponent_stderr_), "bound": exponent_bound(d), "law": law,
            "fit_range": used, "num_points": len(sizes)}


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


def dimension_label(n_f: int, d: int) -> str:
    """Legend text of a phase-space dimension line: which d it is (hadronic 3 n_f - 4, fixed sqrt(s) 3 n_f - 5)."""
    k = 3 * int(n_f) - int(d)
    what = {4: "hadronic, 3 n_f - 4", 5: "fixed sqrt(s), 3 n_f - 5"}.get(k, f"3 n_f - {k}")
    return f"d = {d} ({what}; n_f = {n_f})"


def intrinsic_dimension_series(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TwoNN dimension vs N_D per process and model size (paper 3 Fig. 3 left: one line per N).

    Records of a compute-axis sweep are taken at each model's largest compute value.

    Returns:
        One dict per (source, n_f, model): ``n_f``, ``d``, ``model``, ``num_params``, ``source``, ``sizes`` [P],
        ``median`` / ``lo`` / ``hi`` [P] (median, min and max over realizations), sorted by n_f and model size.
    """
    recs = at_largest_compute([r for r in records if r.get("n_f") is not None
                               and r.get("intrinsic_dimension") is not None])
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault((str(r.get("source") or ""), int(r["n_f"]), _model_of(r)), []).append(r)
    series = []
    for (source, n_f, model), rs in groups.items():
        by_n: dict[int, list[float]] = {}
        for r in rs:
            by_n.setdefault(int(r["num_train"]), []).append(float(r["intrinsic_dimension"]))
        sizes = sorted(by_n)
        params = [float(r["num_params"]) for r in rs if r.get("num_params") is not None]
        series.append({
            "source": source, "n_f": n_f, "d": sorted({record_dimension(r) for r in rs}), "model": model,
            "num_params": float(np.median(params)) if params else None, "sizes": np.array(sizes, float),
            "median": np.array([np.median(by_n[n]) for n in sizes]), "lo": np.array([min(by_n[n]) for n in sizes]),
            "hi": np.array([max(by_n[n]) for n in sizes]),
        })
    series.sort(key=lambda s: (s["n_f"], s["source"], math.inf if s["num_params"] is None else s["num_params"],
                               s["model"]))
    return series


def intrinsic_dimension_figure(records: list[dict[str, Any]], out_path: str | Path) -> Path:
    """TwoNN dimension of the last hidden layer vs N_D, one line per process and model size (median and range
    over realizations), with the dataset's phase-space dimension d as a dashed line whose legend says which d
    it is (paper 3 Fig. 3, App. B, Figs. 18-19).

    Raises:
        ValueError: no record carries both ``n_f`` and ``intrinsic_dimension``.
    """
    series = intrinsic_dimension_series(records)
    if not series:
        raise ValueError("no records with n_f and intrinsic_dimension (MLP-I on an amplitude dataset)")
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(series)))
    several_nf = len({s["n_f"] for s in series}) > 1
    several_sources = len({s["source"] for s in series}) > 1
    markers = dict(zip(sorted({s["n_f"] for s in series}), "osD^vP"))
    for color, s in zip(colors, series):
        size = "" if s["num_params"] is None else f"N = {s['num_params']:.3g}, "
        label = (f"n_f = {s['n_f']}, " if several_nf else "") + size + s["model"]
        if several_sources and s["source"]:  # several sweeps (processes): name each line's directory
            label += f" ({Path(s['source']).name})"
        ax.errorbar(s["sizes"], s["median"], yerr=[s["median"] - s["lo"], s["hi"] - s["median"]],
                    fmt=markers.get(s["n_f"], "o") + "-", color=color, capsize=3, label=label)
    lines = sorted({(s["n_f"], d) for s in series for d in s["d"]})
    for (n_f, d), ls in zip(lines, ("--", ":", "-.", (0, (5, 1)), (0, (1, 3)), (0, (3, 2, 1, 2)))):
        ax.axhline(d, color="k", ls=ls, lw=1, label=dimension_label(n_f, d))
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # 2x10^2, 3x10^2... overlap
    ax.set_xlabel("training size N_D")
    ax.set_ylabel("TwoNN dimension (last hidden layer)")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def _model_of(record: dict[str, Any]) -> str:
    return str(record.get("model_label") or record.get("family") or "model")


def _value_key(value: Any) -> tuple:
    """Numbers before strings, numbers numerically (as the report orders compute values)."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def at_largest_compute(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a compute-axis sweep at each model's largest compute value; other records unchanged.

    Pooling every compute value into one N_D point would mix under-trained networks with converged ones.
    """
    largest: dict[tuple, Any] = {}
    for r in records:
        if r.get("compute_key"):
            key = (str(r.get("source") or ""), _model_of(r), str(r.get("target")))
            if key not in largest or _value_key(r.get("compute_value")) > _value_key(largest[key]):
                largest[key] = r.get("compute_value")
    return [r for r in records if not r.get("compute_key")
            or r.get("compute_value") == largest[(str(r.get("source") or ""), _model_of(r), str(r.get("target")))]]


def amplitude_families(records: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(source, family): (n_f, d)}`` of the records that carry ``n_f`` (families with one n_f and d only)."""
    found: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for r in records:
        if r.get("n_f") is not None:
            found.setdefault((str(r.get("source") or ""), str(r.get("family"))), set()).add(
                (int(r["n_f"]), record_dimension(r)))
    return {k: next(iter(v)) for k, v in found.items() if len(v) == 1}


def compute_exponents(compute_curves: list[Any], records: list[dict[str, Any]], *,
                      all_sizes: bool = False) -> list[dict[str, Any]]:
    """alpha_C of every amplitude model: the exponent the report quotes on its compute curve at the largest
    fitted N_D (paper 3 Fig. 10 right: alpha_C at the largest dataset), or at every N_D with ``all_sizes``.

    Args:
        compute_curves: ``Analysis.compute_curves`` (``scalinglab.report.analysis.CurveFit``, axis "compute");
            the exponent is ``curve.exponent_fit()``: the automatic power-law / saturating choice where made,
            else the power law.
        records: the sweep records (for ``n_f`` and d per results directory and family).

    Returns:
        Rows for :func:`exponents_vs_nf_figure` with ``axis = "compute"``: ``n_f``, ``d``, ``exponent``, ``ci95``
        (the fit's interval), ``stderr``, ``bound``, ``label``, ``target``, ``num_train``,
        ``largest_num_train``, ``law``, ``x_name``, ``source``.
    """
    families = amplitude_families(records)
    groups: dict[tuple, list[Any]] = {}
    for c in compute_curves:
        source = str(c.points[0].source or "")
        if (source, c.family) in families and c.exponent_fit() is not None:
            groups.setdefault((source, c.family, str(c.size_value), c.target), []).append(c)
    rows = []
    for (source, family, _, target), curves in groups.items():
        largest = max(c.num_train for c in curves)
        for c in curves:
            if not all_sizes and c.num_train != largest:
                continue
            fit = c.exponent_fit()
            n_f, d = families[(source, family)]
            rows.append({
                "axis": "compute", "n_f": n_f, "d": d, "exponent": float(fit.exponent_),
                "ci95": [float(v) for v in fit.exponent_interval_], "stderr": float(fit.exponent_stderr_),
                "confidence": float(fit.confidence), "bound": exponent_bound(d), "label": str(c.model_label),
                "target": target, "num_train": int(c.num_train), "largest_num_train": c.num_train == largest,
                "law": getattr(fit, "law_", "power_law"), "x_name": c.x_name, "source": source,
            })
    rows.sort(key=lambda r: (r["n_f"], r["source"], r["label"], r["target"], r["num_train"]))
    return rows


#: Columns of paper3_table.csv.
TABLE_COLUMNS = [
    "source", "n_f", "d", "model", "target", "axis", "param", "second_param", "second_value", "compute_value",
    "law", "x_c", "x_c_lo", "x_c_hi", "alpha", "alpha_stderr", "alpha_lo", "alpha_hi", "floor", "floor_lo",
    "floor_hi", "floor_zero", "confidence", "num_points", "fit", "interval",
]


def _log_interval(log_values: np.ndarray, confidence: float) -> tuple[float, float]:
    v = np.asarray(log_values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return (math.nan, math.nan)
    tail = 50.0 * (1.0 - confidence)  # equal-tailed, as the fits' own intervals
    lo, hi = np.percentile(v, [tail, 100.0 - tail])
    return (float(np.exp(lo)), float(np.exp(hi)))


def _quoted_params(q: Any) -> dict[str, Any]:
    """(X_c, alpha, K) of an automatic law choice (``stats.model_choice.ScalingCurveFit``).

    X_c of the power law A x^-alpha is A^(1/alpha) (where it reaches one loss unit, like the saturating X_c);
    its interval comes from the replicates' ``bootstrap_params_`` rows, each in the law that replicate chose.
    """
    if q.law_ == "power_law":
        x_c, floor = q.prefactor_ ** (1.0 / q.exponent_), 0.0
    else:
        x_c, floor = q.x_c_, q.floor_
    bp = np.asarray(q.bootstrap_params_, float)
    sat = np.asarray(q.bootstrap_saturating_, bool)
    if bp.size and sat.size == bp.shape[0]:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_xc = np.where(sat, bp[:, 1], bp[:, 1] / bp[:, 0])
        xc_iv = _log_interval(log_xc, q.confidence)
    else:
        xc_iv = (math.nan, math.nan)
    return {"law": q.law_, "x_c": float(x_c), "x_c_iv": xc_iv, "alpha": float(q.exponent_),
            "alpha_stderr": float(q.exponent_stderr_), "alpha_iv": tuple(q.exponent_interval_),
            "floor": float(floor), "floor_iv": tuple(q.floor_interval_), "floor_zero": q.law_ == "power_law",
            "confidence": float(q.confidence), "fit": "automatic power-law / saturating choice",
            "interval": f"bootstrap over {q.resampling_}, law chosen in every replicate"}


def _power_params(f: Any) -> dict[str, Any]:
    """(X_c = A^(1/alpha), alpha, K = 0) of a power law (``stats.power_law.PowerLawFit``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_xc = np.asarray(f.bootstrap_log_prefactors_, float) / np.asarray(f.bootstrap_exponents_, float)
    return {"law": "power_law", "x_c": float(f.prefactor_ ** (1.0 / f.exponent_)),
            "x_c_iv": _log_interval(log_xc, f.confidence), "alpha": float(f.exponent_),
            "alpha_stderr": float(f.exponent_stderr_), "alpha_iv": tuple(f.exponent_interval_), "floor": 0.0,
            "floor_iv": (math.nan, math.nan), "floor_zero": True, "confidence": float(f.confidence),
            "fit": "realization-weighted power law (no law choice: < 4 points)",
            "interval": "bootstrap over realizations"}


def _saturating_params(s: Any) -> dict[str, Any]:
    """(X_c, alpha, K) of a saturating fit (``stats.saturating.SaturatingFit``); K ~ 0 when unconstrained."""
    return {"law": "saturating", "x_c": float(s.x_c_), "x_c_iv": tuple(s.x_c_interval_),
            "alpha": float(s.exponent_), "alpha_stderr": float(s.exponent_stderr_),
            "alpha_iv": tuple(s.exponent_interval_), "floor": float(s.floor_), "floor_iv": tuple(s.floor_interval_),
            "floor_zero": bool(s.floor_unconstrained_), "confidence": float(s.confidence),
            "fit": "saturating fit of the compute curve" + ("" if s.converged_ else ", NOT converged"),
            "interval": "bootstrap over realizations"}


def paper3_table_rows(analysis: Any, records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per scaling curve of the amplitude sweeps with (X_c, alpha, K) of L(X) = (X_c / X)^alpha + K
    (paper 3 App. C, Tables 2-13).

    Data and model curves take the fit the report quotes (``curve.quoted``: the automatic power-law /
    saturating choice; the realization-weighted power law where no choice was made); on a compute-axis sweep
    only the curves at each model's largest compute value. Compute curves take their saturating fit (the
    quoted fit where that is missing). A power law has K ~ 0 (``floor_zero``) and X_c = A^(1/alpha).

    Args:
        analysis: ``scalinglab.report.analysis.Analysis``.
        records: records to take n_f from (default: ``analysis.results.records``); curves of families
            without ``n_f`` are left out.

    Returns:
        Rows with the keys of :data:`TABLE_COLUMNS` (intervals at the fit's confidence; NaN where unknown).
    """
    records = analysis.results.records if records is None else records
    families = amplitude_families(records)
    largest: dict[tuple, Any] = {}
    for p in analysis.points:
        if p.compute_key:
            key = (p.source, p.family)
            if key not in largest or _value_key(p.compute_value) > _value_key(largest[key]):
                largest[key] = p.compute_value
    rows = []
    for c in analysis.data_curves + analysis.model_curves + analysis.compute_curves:
        source = str(c.points[0].source or "")
        if (source, c.family) not in families:
            continue
        if c.axis != "compute" and (source, c.family) in largest and c.compute_value != largest[(source, c.family)]:
            continue
        if c.axis == "model" and np.unique(c.x).size < 3:
            continue  # two model sizes make a line, not a fit
        if c.axis == "compute" and c.saturating is not None:
            par = _saturating_params(c.saturating)
        elif c.quoted is not None:
            par = _quoted_params(c.quoted)
        elif c.power_law is not None:
            par = _power_params(c.power_law)
        else:
            continue
        if c.axis == "data":
            param, second, value = "N_D", "N_M", c.num_params
        elif c.axis == "model":
            param, second, value = "N_M", "N_D", c.num_train
        else:
            param, second, value = c.x_name, "N_D", c.num_train
        n_f, d = families[(source, c.family)]
        rows.append({
            "source": source, "n_f": n_f, "d": d, "model": c.model_label, "target": c.target, "axis": c.axis,
            "param": param, "second_param": second, "second_value": value,
            "compute_value": None if c.axis == "compute" else c.compute_value, "law": par["law"],
            "x_c": par["x_c"], "x_c_lo": par["x_c_iv"][0], "x_c_hi": par["x_c_iv"][1], "alpha": par["alpha"],
            "alpha_stderr": par["alpha_stderr"], "alpha_lo": par["alpha_iv"][0], "alpha_hi": par["alpha_iv"][1],
            "floor": par["floor"], "floor_lo": par["floor_iv"][0], "floor_hi": par["floor_iv"][1],
            "floor_zero": par["floor_zero"], "confidence": par["confidence"], "num_points": int(c.x.size),
            "fit": par["fit"], "interval": par["interval"],
        })
    order = {"compute": 0, "data": 1, "model": 2}  # paper 3's tables: C, then D_train, then N
    rows.sort(key=lambda r: (r["n_f"], r["source"], r["target"], order[r["axis"]],
                             math.inf if r["second_value"] is None else float(r["second_value"]), str(r["model"])))
    return rows


def write_paper3_table(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write :func:`paper3_table_rows` as CSV (NaN and None as empty cells)."""
    from scalinglab.report.tables import write_csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, rows, TABLE_COLUMNS)
    return path


def _num(v: Any) -> str:
    if v is None or not math.isfinite(float(v)):
        return "?"
    return f"{float(v):.3g}"


def _count(v: Any) -> str:
    """Dataset sizes and parameter counts in full below 10^7 (4096, not 4.1e+03)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e7 else _num(v)


def _with_interval(v: float, lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _num(v)
    return f"{_num(v)} [{_num(lo)}, {_num(hi)}]"


def paper3_table_html(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`paper3_table_rows` as an HTML table (one per process: n_f, results directory)."""
    head = ("<tr><th class='l'>model</th><th class='l'>target</th><th>param. X</th><th>2nd param.</th>"
            "<th>X_c</th><th>alpha_X</th><th>K_X</th><th class='l'>law</th><th>points</th></tr>")
    blocks = []
    for key in dict.fromkeys((r["n_f"], r["d"], r["source"]) for r in rows):
        sel = [r for r in rows if (r["n_f"], r["d"], r["source"]) == key]
        body = []
        for r in sel:
            second = "" if r["second_value"] is None else f"{r['second_param']} = {_count(r['second_value'])}"
            if r.get("compute_value") is not None:
                second += f" (compute {r['compute_value']})"
            floor = ("~0" if r["floor_zero"] else _with_interval(r["floor"], r["floor_lo"], r["floor_hi"]))
            alpha = (f"{r['alpha']:.3f} ± {r['alpha_stderr']:.3f} "
                     f"[{_num(r['alpha_lo'])}, {_num(r['alpha_hi'])}]")
            body.append(
                f"<tr><td class='l'>{escape(str(r['model']))}</td><td class='l'>{escape(str(r['target']))}</td>"
                f"<td>{escape(str(r['param']))}</td><td>{escape(second)}</td>"
                f"<td>{escape(_with_interval(r['x_c'], r['x_c_lo'], r['x_c_hi']))}</td><td>{escape(alpha)}</td>"
                f"<td>{escape(floor)}</td><td class='l'>{escape(r['law'])}: {escape(r['fit'])}</td>"
                f"<td>{r['num_points']}</td></tr>")
        n_f, d, source = key
        title = f"n_f = {n_f}, d = {d}" + (f", {source}" if source else "")
        blocks.append(f"<h3>{escape(title)}</h3><div class='scroll'><table>{head}{''.join(body)}</table></div>")
    return "".join(blocks)


def epsilon_scaling(records: list[dict[str, Any]], *, num_bootstrap: int = 2000, confidence: float = 0.95,
                    fit_range: str = "auto", seed: int = 0) -> list[dict[str, Any]]:
    """Eq. 23 error eps = sum |A_NN - A_true| / sum A_true vs N_D per model, with a power-law fit.

    Records of a compute-axis sweep are taken at each model's largest compute value.

    Args:
        records: records carrying ``n_f`` and ``test_epsilon`` (others are ignored).
        num_bootstrap, confidence, fit_range, seed: passed to :func:`scalinglab.stats.fit_power_law`.

    Returns:
        One dict per (source, model, target): ``model``, ``source``, ``target``, ``n_f``, ``num_params``,
        ``sizes`` [P],
        ``geometric_mean`` / ``lo`` / ``hi`` [P] (geometric mean, min and max over realizations), ``slope``
        (d ln eps / d ln N_D = -alpha), ``slope_interval`` and ``fit`` (None with ``error`` when no fit was
        possible: fewer than 3 sizes or a single realization per point).

    Reference: paper 3 App. A.1, Eq. (23).
    """
    recs = at_largest_compute([r for r in records if r.get("n_f") is not None
                               and r.get("test_epsilon") is not None
                               and math.isfinite(float(r["test_epsilon"])) and float(r["test_epsilon"]) > 0])
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault((str(r.get("source") or ""), _model_of(r), str(r.get("target"))), []).append(r)
    series = []
    for (source, model, target), rs in groups.items():
        by_n: dict[int, list[float]] = {}
        for r in rs:
            by_n.setdefault(int(r["num_train"]), []).append(float(r["test_epsilon"]))
        sizes = sorted(by_n)
        params = [float(r["num_params"]) for r in rs if r.get("num_params") is not None]
        row = {"source": source, "model": model, "target": target, "n_f": int(rs[0]["n_f"]),
               "num_params": float(np.median(params)) if params else None, "sizes": np.array(sizes, float),
               "geometric_mean": np.array([np.exp(np.mean(np.log(by_n[n]))) for n in sizes]),
               "lo": np.array([min(by_n[n]) for n in sizes]), "hi": np.array([max(by_n[n]) for n in sizes]),
               "slope": math.nan, "slope_interval": (math.nan, math.nan), "fit": None, "error": None}
        try:
            fit = fit_power_law(sizes, [by_n[n] for n in sizes], fit_range=fit_range, num_bootstrap=num_bootstrap,
                                confidence=confidence, seed=seed)
            lo, hi = fit.exponent_interval_
            row.update(slope=-float(fit.exponent_), slope_interval=(-float(hi), -float(lo)), fit=fit)
        except ValueError as exc:
            row["error"] = str(exc)
        series.append(row)
    series.sort(key=lambda s: (s["n_f"], s["source"], s["target"],
                               math.inf if s["num_params"] is None else s["num_params"], s["model"]))
    return series


def epsilon_figure(series: list[dict[str, Any]], out_path: str | Path) -> Path:
    """eps (Eq. 23) vs N_D, log-log: geometric mean over realizations with the min-max range per model, the
    fitted power law dashed, its slope and interval in the legend (paper 3 App. A.1).

    Args:
        series: from :func:`epsilon_scaling`.
        out_path: PNG path.
    """
    if not series:
        raise ValueError("no records with n_f and test_epsilon (amplitude runs since test_epsilon was recorded)")
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(series)))
    several = len({(s["source"], s["target"]) for s in series}) > 1
    for color, s in zip(colors, series):
        gm = s["geometric_mean"]
        name = s["model"] + (f" ({s['source'] or 'n_f = ' + str(s['n_f'])}, {s['target']})" if several else "")
        if s["fit"] is not None:
            lo, hi = s["slope_interval"]
            name += f": slope {s['slope']:.2f} [{lo:.2f}, {hi:.2f}]"
        ax.errorbar(s["sizes"], gm, yerr=[gm - s["lo"], s["hi"] - gm], fmt="o", color=color, capsize=3,
                    label=name)
        if s["fit"] is not None:
            a, b = s["fit"].fit_range_
            xs = np.geomspace(a, b, 50)
            ax.plot(xs, s["fit"].predict(xs), "--", color=color, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training size N_D")
    ax.set_ylabel("eps = sum |A_NN - A_true| / sum A_true")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3, ls=":")
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return out_path

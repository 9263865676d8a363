"""``build_report``: results directory -> figures, tables and one self-contained ``index.html``."""

from __future__ import annotations

import os
from pathlib import Path

from scalinglab.progress import progress_bar
from scalinglab.report.analysis import Analysis, ReportOptions, analyze, fit_rows, num_progress_units
from scalinglab.report.figures import FIGURE_BUILDERS, Figure, make_figures
from scalinglab.report.html import write_html
from scalinglab.report.loader import SweepResults, load_many, load_results
from scalinglab.report.tables import write_tables


def report_notes(analysis: Analysis) -> list[str]:
    """Notes on what the sweep does not allow (so a missing figure is never a silent surprise)."""
    msgs = []
    sizes_per_family: dict[str, set[str]] = {}
    for p in analysis.points:
        if p.size_axis is not None:  # a family without a size axis (e.g. resnet18) has no alpha_M by design
            sizes_per_family.setdefault(p.family, set()).add(str(p.size_value))
    few = [f"{fam} ({len(s)})" for fam, s in sizes_per_family.items() if len(s) < 3]
    if few:
        msgs.append("Model-size exponents alpha_M need at least 3 model sizes per family; not fitted for: "
                    + ", ".join(few) + ".")
    if not analysis.data_curves:
        msgs.append("No data-scaling curve: every model has a single training set size.")
    failed = [c for c in analysis.data_curves if c.power_law is None]
    for c in failed:
        msgs.append(f"No power law for {c.model_label}, {c.target}: {c.error}")
    excluded = [p for p in analysis.points if p.num_excluded]
    if excluded:
        total = sum(p.num_excluded for p in excluded)
        where = "; ".join(f"{p.model_label} {p.target} N_D={p.num_train}: {p.num_excluded}" for p in excluded[:8])
        more = f"; and {len(excluded) - 8} more points" if len(excluded) > 8 else ""
        msgs.append(f"{total} realization(s) with a NaN, infinite or non-positive test loss (diverged) were left "
                    f"out of the statistics ({where}{more}).")
    if not analysis.has_compute_axis:
        msgs.append("The sweep has no compute axis: no loss-vs-FLOPs figure.")
    msgs += guard_notes(analysis)
    return msgs


def _where(points, count_of, total_of=None) -> str:
    total_of = total_of or (lambda p: p.losses.size)
    where = "; ".join(f"{p.model_label} {p.target} N_D={p.num_train}: {count_of(p)}/{total_of(p)}"
                      for p in points[:6])
    return where + (f"; and {len(points) - 6} more points" if len(points) > 6 else "")


def guard_notes(analysis: Analysis) -> list[str]:
    """Warnings about what enters the fits: networks still at the epoch cap, networks without skill, points
    left out, and every fit flag (poor fit, parameter at a bound, unconstrained exponent, extrapolation)."""
    msgs = []
    msgs += status_notes(analysis)
    for count_of, what, why in (
        (lambda p: p.num_at_epoch_cap, "trained for the full epoch budget without early stopping",
         "they may still be improving, so their losses overstate what the models reach and the exponents are "
         "biased; train longer"
         + ("" if analysis.options.exclude_at_cap else " (they are kept in the fits; --exclude-at-cap leaves "
            "them out)")),
        (lambda p: p.num_no_skill, "are no better than predicting the mean (status not_better_than_mean kept by "
         "--include-flagged, or for records without a status standardized MSE >= 1 or R^2 <= 0)",
         "they have not learned the target and their points do not belong on a scaling law"),
    ):
        hit = [p for p in analysis.points if count_of(p)]
        if hit:
            total = sum(count_of(p) for p in hit)
            msgs.append(f"WARNING: {total} realization(s) {what} ({_where(hit, count_of)}): {why}.")
    left_out = [p for p in analysis.points if p.excluded]
    if left_out:
        msgs.append(f"{len(left_out)} point(s) left out of every fit by --exclude (grey crosses in the figures): "
                    + "; ".join(f"{p.model_label} {p.target} N_D={p.num_train}" for p in left_out[:8]) + ".")
    for c in analysis.all_curves():
        if c.error and c.error.startswith("unconstrained"):
            msgs.append(f"FLAG: no {c.axis}-scaling exponent for {c.model_label} {c.target}"
                        + ("" if c.num_train is None else f" (N_D={c.num_train})") + f": {c.error}.")
    for row in fit_rows(analysis):
        if row.get("flags"):
            what = f"{row['law']} fit of {row.get('model')} {row.get('target')} along {row.get('axis')}"
            if row.get("num_train") is not None and row.get("axis") != "data":
                what += f" (N_D={row['num_train']})"
            msgs.append(f"FLAG: {what}: {row['flags']}.")
    return msgs


_STATUS_WORDS = {"diverged": "diverged", "not_better_than_mean": "not better than predicting the training mean",
                 "at_epoch_cap": "at the epoch cap"}


def status_notes(analysis: Analysis) -> list[str]:
    """How many realizations their status flag kept out of the fits (``scalinglab.record_status``), and how
    many records carry no status at all."""
    msgs = []
    total = sum(p.num_records for p in analysis.points)
    counts: dict[str, int] = {}
    for p in analysis.points:
        for k, v in p.num_flagged.items():
            counts[k] = counts.get(k, 0) + v
    if counts:
        what = ", ".join(f"{v} {_STATUS_WORDS.get(k, k)}" for k, v in sorted(counts.items()))
        hit = [p for p in analysis.points if p.num_flagged]
        msgs.append(f"{sum(counts.values())} of {total} realizations excluded from the fits by their status: {what} "
                    f"({_where(hit, lambda p: sum(p.num_flagged.values()), lambda p: p.num_records)}). "
                    "--include-flagged fits them anyway.")
    elif analysis.options.include_flagged:
        msgs.append("--include-flagged: realizations flagged diverged or not better than the mean enter the fits.")
    unknown = sum(p.num_unknown_status for p in analysis.points)
    if unknown:
        msgs.append(f"{unknown} of {total} records carry no status flag (written before status flags existed): "
                    "they are kept in the fits; the epoch-cap and mean-predictor checks below use their metrics.")
    return msgs


def amplitude_figures(records: list[dict], out: Path, options: ReportOptions) -> list[Figure]:
    """Paper 3's extra figures when the records allow them: pull calibration (heteroscedastic runs),
    TwoNN dimension vs N_D and alpha_D vs n_f against the 4/d bound (amplitude datasets)."""
    from scalinglab.report.amplitudes import data_exponent, exponents_vs_nf_figure, intrinsic_dimension_figure
    from scalinglab.report.calibration import calibration_figure, calibration_records

    figs = []
    if calibration_records(records):
        figs.append(Figure(calibration_figure(records, out / "calibration.png"), "Calibration of learned sigma",
                           "Pull distributions (prediction - truth) / sigma against a unit Gaussian and the "
                           "distributions of the learned sigma, per training-set size (paper 3 Figs. 4-6)."))
    with_nf = [r for r in records if r.get("n_f") is not None]
    if any(r.get("intrinsic_dimension") is not None for r in with_nf):
        figs.append(Figure(intrinsic_dimension_figure(with_nf, out / "intrinsic_dimension.png"),
                           "Intrinsic dimension", "TwoNN dimension of the last hidden layer vs N_D (median and "
                           "range over realizations); dashed: the dataset's phase-space dimension d (3 n_f - 4 for "
                           "hadron-collider samples, 3 n_f - 5 at one fixed sqrt(s); paper 3 App. B)."))
    rows = []
    for label in sorted({r["model_label"] for r in with_nf}):
        try:
            row = data_exponent([r for r in with_nf if r["model_label"] == label],
                                num_bootstrap=options.num_bootstrap, seed=options.seed)
        except ValueError:
            continue  # fewer than 3 data sizes or mixed n_f: no exponent to draw
        rows.append(dict(row, label=label))
    if rows:
        figs.append(Figure(exponents_vs_nf_figure(rows, out / "alpha_vs_nf.png"), "alpha_D vs n_f",
                           "Data-scaling exponent with its 95% interval against the bound alpha >= 4/d, d the "
                           "dataset's phase-space dimension (paper 3 Fig. 10)."))
    return figs


def analysis_links(results_root: Path, out: Path) -> list[tuple[str, str]]:
    """Links (text, href relative to ``out``) to the ``scalinglab analyze`` pages kept inside the results directory.

    The report only reads them (``*/analysis.json`` next to an ``index.html``); it never runs an analysis.
    """
    links = []
    for marker in sorted(Path(results_root).glob("*/analysis.json")):
        page = marker.with_name("index.html")
        if page.is_file():
            links.append((f"paper 2 error analyses: {marker.parent.name}/index.html",
                          os.path.relpath(page, out)))
    return links


def build_report(
    results_dir: str | Path | list[str | Path] | SweepResults,
    out_dir: str | Path,
    *,
    options: ReportOptions | None = None,
    quiet: bool = False,
) -> Path:
    """Analyze a sweep results directory and write its report.

    Writes into ``out_dir``: PNG figures (paper 1 Figs. 1, 3-7 as the sweep allows, loss vs FLOPs with a
    compute axis), ``fits.csv`` / ``fits.json`` (every fit with its intervals), ``points.csv`` (aggregates
    per design point) and ``index.html`` (self-contained: figures embedded, spec, environment, timings).

    Args:
        results_dir: a sweep results directory (docs/architecture.md, "Sweep results"), or a list of them:
            their records are drawn in the same figures and tables (paper 1 Fig. 1: FCN, ResNet-18 and ViT
            sweeps together; see ``load_many``).
        out_dir: report directory (created; existing report files are overwritten).
        options: analysis settings (bootstrap replicates, confidence, fit-range rule, seed).
        quiet: no progress bar.

    Returns:
        The path of ``index.html``.

    Raises:
        FileNotFoundError: ``results_dir`` does not exist.
        ValueError: it is not a results directory, a record is corrupt, or no task has finished yet.

    Reference:
        Paper 1 (scaling-laws-deep-regression), Figs. 1, 3-7; paper 3 (scaling-laws-amplitude-surrogates),
        Sec. 3.2.
    """
    options = options or ReportOptions()
    if isinstance(results_dir, SweepResults):  # records built in memory (scalinglab fit)
        results = results_dir
    elif isinstance(results_dir, list | tuple):
        results = load_many(results_dir) if len(results_dir) > 1 else load_results(results_dir[0])
    else:
        results = load_results(results_dir)
    if not results.records:
        raise ValueError(
            f"{results.root} holds no finished records yet: nothing to report (run or resume the sweep first)"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    total = num_progress_units(results) + len(FIGURE_BUILDERS) + 1
    with progress_bar(total, "report", quiet=quiet) as bar:
        bar.set_description("report: fits")
        analysis = analyze(results, options, progress=bar)
        bar.set_description("report: figures")
        figures = make_figures(analysis, out, progress=bar) + amplitude_figures(results.records, out, options)
        tables = write_tables(analysis, out)
        path = write_html(analysis, figures, out, messages=report_notes(analysis),
                          table_files=[p.name for p in tables.values()],
                          links=[link for root in results.sources for link in analysis_links(root, out)])
        bar.advance(1)
    return path

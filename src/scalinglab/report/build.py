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


def amplitude_figures(records: list[dict], out: Path, options: ReportOptions,
                      analysis: Analysis | None = None) -> list[Figure]:
    """Paper 3's extra figures when the records allow them: pull calibration (heteroscedastic runs; per N_D,
    and on a compute-axis sweep per compute value at each N_D), TwoNN dimension vs N_D, alpha_D and alpha_C vs
    n_f against the 4/d bound and the Eq. 23 error vs N_D (amplitude datasets).

    Args:
        records: the sweep records.
        out: report directory.
        options: analysis settings (bootstrap replicates, seed, fit range).
        analysis: the report's analysis; its compute curves give alpha_C (None: no alpha_C).
    """
    from scalinglab.report.amplitudes import (
        at_largest_compute,
        compute_exponents,
        data_exponent,
        epsilon_figure,
        epsilon_scaling,
        exponents_vs_nf_figure,
        intrinsic_dimension_figure,
    )
    from scalinglab.report.calibration import calibration_by_compute, calibration_figure, largest_compute_records

    figs = []
    cal = largest_compute_records(records)
    if cal:
        tops = sorted({f"{r['compute_key']} = {r['compute_value']}" for r in cal if r.get("compute_key")})
        at = f" At each model's largest compute value ({', '.join(tops)})." if tops else ""
        figs.append(Figure(calibration_figure(cal, out / "calibration.png"), "Calibration of learned sigma",
                           "Pull distributions (prediction - truth) / sigma against a unit Gaussian and the "
                           "distributions of the learned sigma, per training-set size (paper 3 Figs. 5-6 right)."
                           + at))
        for entry in calibration_by_compute(records, out):
            figs.append(Figure(
                entry["path"], f"Calibration vs compute at N_D = {entry['num_train']}"
                + (f" ({entry['model']})" if entry["model"] else ""),
                f"Pull distributions against a unit Gaussian and learned-sigma quantiles at N_D = "
                f"{entry['num_train']}, one line per {entry['compute_key']} "
                f"({', '.join(map(str, entry['compute_values']))}) (paper 3 Figs. 5-6 left)."))
    with_nf = [r for r in records if r.get("n_f") is not None]
    if any(r.get("intrinsic_dimension") is not None for r in with_nf):
        figs.append(Figure(intrinsic_dimension_figure(with_nf, out / "intrinsic_dimension.png"),
                           "Intrinsic dimension", "TwoNN dimension of the last hidden layer vs N_D, one line per "
                           "model size (median and min-max range over realizations; a compute-axis sweep at its "
                           "largest compute value); black lines: the dataset's phase-space dimension d, the legend "
                           "says which (3 n_f - 4 for hadron-collider samples, 3 n_f - 5 at one fixed sqrt(s)) "
                           "(paper 3 Fig. 3 left, App. B, Figs. 18-19)."))
    rows = []
    nf_top = at_largest_compute(with_nf)
    for key in sorted({(str(r.get("source") or ""), str(r.get("model_label"))) for r in nf_top}):
        try:
            row = data_exponent([r for r in nf_top if (str(r.get("source") or ""), str(r.get("model_label"))) == key],
                                num_bootstrap=options.num_choice_bootstrap, seed=options.seed)
        except ValueError:
            continue  # fewer than 3 data sizes or mixed n_f: no exponent to draw
        rows.append(dict(row, label=key[1], source=key[0], axis="data"))
    compute_rows = compute_exponents(analysis.compute_curves, records) if analysis is not None else []
    if rows or compute_rows:
        has_c = bool(compute_rows)
        figs.append(Figure(
            exponents_vs_nf_figure(rows + compute_rows, out / "alpha_vs_nf.png"),
            "alpha_D and alpha_C vs n_f" if has_c else "alpha_D vs n_f",
            "Data-scaling exponent alpha_D (power law in N_D, at the largest compute value of a compute-axis "
            "sweep)" + (" and compute-scaling exponent alpha_C (the exponent the report quotes on the compute "
                        "curve at each model's largest N_D)" if has_c else "")
            + f" with their {options.confidence:.0%} intervals against the bound alpha >= 4/d, d the dataset's "
            "phase-space dimension (paper 3 Fig. 10" + (")." if has_c else ", left).")))
    eps = epsilon_scaling(with_nf, num_bootstrap=options.num_bootstrap, confidence=options.confidence,
                          fit_range=options.fit_range, seed=options.seed)
    if eps:
        figs.append(Figure(epsilon_figure(eps, out / "epsilon_vs_nd.png"), "Relative amplitude error eps vs N_D",
                           "eps = sum |A_NN - A_true| / sum A_true on the test set (paper 3 App. A.1, Eq. 23), "
                           "geometric mean over realizations with the min-max range per model (a compute-axis "
                           "sweep at its largest compute value); dashed: power-law fit, its slope d ln eps / "
                           f"d ln N_D with {options.confidence:.0%} bootstrap interval in the legend."))
    return figs


def amplitude_tables(analysis: Analysis, out: Path) -> tuple[list[Path], str]:
    """Paper 3 App. C tables (X_c, alpha, K per curve) of the amplitude sweeps: ``paper3_table.csv`` and the
    HTML block for the page. Nothing (``([], "")``) when no record carries ``n_f``."""
    from scalinglab.report.amplitudes import paper3_table_html, paper3_table_rows, write_paper3_table

    rows = paper3_table_rows(analysis)
    if not rows:
        return [], ""
    path = write_paper3_table(rows, out / "paper3_table.csv")
    conf = f"{analysis.options.confidence:.0%}"
    caption = (
        "<h2>Scaling parameters (X_c, alpha_X, K_X) per curve</h2><p class='meta'>L(X) = (X_c / X)^alpha_X + "
        "K_X for every curve of the amplitude sweeps, as paper 3 App. C Tables 2-13: X = training FLOPs C (or "
        "the compute value) at fixed N_D (saturating fit of the compute curve), X = N_D at fixed model size "
        "N_M, X = N_M at fixed N_D (data and model curves: the law the report quotes, i.e. the automatic "
        "power-law / saturating choice; on a compute-axis sweep at the largest compute value). "
        "For a power law A X^-alpha, X_c = A^(1/alpha) and K is written ~0; a saturating compute fit whose "
        "floor is compatible with 0 also reads ~0. alpha is given as value ± bootstrap standard deviation "
        f"[{conf} interval]; X_c and K as value [{conf} interval]. Every interval is an equal-tailed "
        "percentile interval over bootstrap replicates (over realizations within each point, or over points "
        "where a point has one run); for the automatic choice each replicate refits both laws and keeps the "
        "one the deviance test picks, so the X_c interval mixes both laws' X_c. Also written as "
        "paper3_table.csv.</p>"
    )
    return [path], caption + paper3_table_html(rows)


def _insert_html(index: Path, block: str, before: str = "<h2>All fits</h2>") -> None:
    """Insert an HTML block into the written page before ``before`` (at the end of the body without it)."""
    page = index.read_text(encoding="utf-8")
    at = page.find(before)
    if at < 0:
        at = page.rfind("</body>")
    index.write_text(page[:at] + block + "\n" + page[at:], encoding="utf-8")


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
    per design point), for amplitude sweeps paper 3's figures and ``paper3_table.csv`` (``amplitude_figures``,
    ``amplitude_tables``) and ``index.html`` (self-contained: figures embedded, spec, environment, timings).
    A patch study (``[sweep] mode = "patches"``) gets paper 4's Table II and Figs. 7-8 instead
    (``report.patches.build_patch_report``).

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
    from scalinglab.report.patches import build_patch_report, is_patch_study

    if is_patch_study(results.records):  # paper 4's Table II and Figs. 7-8: no scaling-law fits or figures
        return build_patch_report(results, out)
    total = num_progress_units(results) + len(FIGURE_BUILDERS) + 1
    with progress_bar(total, "report", quiet=quiet) as bar:
        bar.set_description("report: fits")
        analysis = analyze(results, options, progress=bar)
        bar.set_description("report: figures")
        figures = make_figures(analysis, out, progress=bar) + amplitude_figures(results.records, out, options,
                                                                                analysis)
        tables = write_tables(analysis, out)
        extra_tables, extra_html = amplitude_tables(analysis, out)
        path = write_html(analysis, figures, out, messages=report_notes(analysis),
                          table_files=[p.name for p in tables.values()] + [p.name for p in extra_tables],
                          links=[link for root in results.sources for link in analysis_links(root, out)])
        if extra_html:
            _insert_html(path, extra_html)
        bar.advance(1)
    return path

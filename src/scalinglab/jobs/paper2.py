"""Paper 2's analyses of trained CrI3 estimators and generators: ``scalinglab analyze``.

Given what a training kept (a sweep results directory with ``save = ["models", "predictions"]``, a ``train --out``
directory, or one checkpoint) and the dataset it was trained on, this job evaluates the networks and writes every
figure and table of paper 2's error analyses (twisted-magnets-regression-and-generation.txt), plus what the paper
did not offer:

- regression (Sec. III.1): MAE / MAPE / R^2 per parameter with the spread over realizations (Fig. 3), MAE and the
  number of training samples binned along each normalized parameter (Fig. 4, Eq. 2), PCA of the error vectors
  (Eqs. 5-6, Fig. 5), MAE against the Euclidean distance to the FM-NCD and NCD-MD phase boundaries (Eq. 3, Fig. 6);
- noise robustness (Sec. II.4, III.1.3): MAPE against SNR from 20 to -10 dB (Eqs. 7-10, Fig. 7) for networks
  trained on clean data and, side by side, for networks trained with noise augmentation;
- uncertainty (beyond the paper): coverage of nominal 68 / 95 % intervals and pulls, from the spread of the
  trained realizations and from a heteroscedastic head (``loss = "gaussian_nll"``) where one was trained;
- the generator (Sec. III.2): per-image MAE by phase and along each parameter (Fig. 8), against the distance to
  each boundary (Fig. 9), the MAPE of the layer-averaged magnetization (Fig. 10) and a true / generated /
  |difference| gallery.

Phase boundaries come from the phase labels the simulator recorded: the dataset's ``aux/phase`` plus the FM side
store (``<name>_fm``), all in normalized parameter space.

Reference: paper 2 Secs. II.3-II.4, III, Figs. 3-10.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.analysis import (
    CRI3_RANGES,
    binned_mae,
    boundary_points,
    distance_to_boundary,
    ensemble_spread,
    error_pca,
    interval_coverage,
    magnetization_errors,
    normalize_parameters,
    pulls,
    regression_summary,
)
from scalinglab.data.store import DatasetStore
from scalinglab.data.transforms import add_noise_snr
from scalinglab.progress import progress_bar
from scalinglab.seeding import derive_seed

#: SNR grid of paper 2 (Sec. II.4): 20 dB down to -10 dB.
DEFAULT_SNR_DB = (20.0, 15.0, 10.0, 5.0, 0.0, -5.0, -10.0)
#: Paper 2's regression MAPEs (Sec. III.1.1, percent), quoted next to ours.
PAPER_MAPE = {"J": 1.22, "D": 2.23}
#: Paper 2's leading error-PCA share (Sec. III.1.2).
PAPER_PCA_SHARE = 0.7786
#: Phase codes of the moire simulator (``simulators/moire/phases.py``; the job reads labels, it does not simulate).
FM, NCD, MD, MD2 = 0, 1, 2, 3
PHASE_NAMES = {FM: "FM", NCD: "NCD", MD: "MD", MD2: "MD2"}  # MD2: reversed domains in both layers
BOUNDARIES = {"FM-NCD": ({FM}, {NCD}), "NCD-MD": ({NCD}, {MD})}


@dataclass
class NetworkRef:
    """One trained realization and where its artifacts are."""

    family: str
    mode: str
    targets: list[str]
    num_train: int
    realization: int
    folder: Path
    checkpoint: str | None = None
    predictions: str | None = None
    loss: str = "mse"

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint is None else self.folder / self.checkpoint

    @property
    def predictions_path(self) -> Path | None:
        return None if self.predictions is None else self.folder / self.predictions


@dataclass
class AnalyzeConfig:
    """Settings of ``analyze`` (every field has a CLI flag)."""

    snr_db: tuple[float, ...] = DEFAULT_SNR_DB
    fm_store: str | None = None  # default: the dataset's sibling <name>_fm
    boundaries: bool = True
    num_bins: int = 10
    num_gallery: int = 4
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False


@dataclass
class _Family:
    """The realizations of one regression family at its largest N_D, predictions per target."""

    name: str
    nets: dict[str, list[NetworkRef]] = field(default_factory=dict)  # target -> realizations
    noise: list[float] | None = None
    loss: str = "mse"


# ----------------------------------------------------------------------------------------------- discovery


def collect_networks(source: str | os.PathLike) -> tuple[list[NetworkRef], str | None]:
    """The trained realizations kept under ``source`` and the dataset path they were trained on.

    Args:
        source: a sweep results directory (``records/``), a ``train --out`` directory (``metrics.json``) or a
            checkpoint file (``.pt``).

    Returns:
        (networks, dataset path recorded with them or None).
    """
    source = Path(source)
    if source.is_file():
        from scalinglab.training.checkpoint import load_checkpoint

        info = load_checkpoint(source).info
        targets = info["input_names"] if info["mode"] == "generate" else info["target_names"]
        ref = NetworkRef(family=info["model"], mode=info["mode"], targets=list(targets),
                         num_train=int(info["meta"].get("num_train", 0)), realization=0, folder=source.parent,
                         checkpoint=source.name, loss=info.get("loss", "mse"))
        return [ref], info["meta"].get("data")
    if (source / "records").is_dir():
        from scalinglab.sweeps.results import ResultsStore

        store = ResultsStore(source)
        data = (store.resolved_spec().get("spec") or {}).get("dataset")
        nets = []
        for rec in store.records():
            arts = rec.get("artifacts") or {}
            if not arts:
                continue
            mode = rec.get("mode", "regress")
            targets = str(rec["target"]).split(",") if mode == "generate" else [str(rec["target"])]
            nets.append(NetworkRef(family=rec.get("model_label") or rec["family"], mode=mode, targets=targets,
                                   num_train=int(rec["num_train"]), realization=int(rec["realization"]),
                                   folder=source / rec["artifacts_dir"], checkpoint=arts.get("checkpoint"),
                                   predictions=arts.get("predictions")))
        if not nets:
            raise ValueError(f"{source} holds no saved models or predictions: run the sweep with "
                             "save = [\"models\", \"predictions\"] in [sweep]")
        return nets, data
    if (source / "metrics.json").is_file():
        metrics = json.loads((source / "metrics.json").read_text())
        config = json.loads((source / "config.json").read_text()) if (source / "config.json").is_file() else {}
        spec = config.get("spec", {})
        mode = spec.get("mode", "regress")
        target = spec.get("target")
        targets = [target] if isinstance(target, str) else list(target or [])
        nets = []
        for rec in metrics.get("records", []):
            arts = rec.get("artifacts") or {}
            if arts:
                nets.append(NetworkRef(family=spec.get("model", "model"), mode=mode, targets=targets,
                                       num_train=int(rec["num_train"]), realization=int(rec["realization"]),
                                       folder=source, checkpoint=arts.get("checkpoint"),
                                       predictions=arts.get("predictions"),
                                       loss=(spec.get("train") or {}).get("loss", "mse")))
        if not nets:
            raise ValueError(f"{source} holds no saved models or predictions: train with --save models,predictions")
        return nets, spec.get("data")
    raise FileNotFoundError(f"{source} is neither a sweep results directory, a train output directory nor a "
                            "checkpoint file")


def _check_compatible(nets: list[NetworkRef], store: DatasetStore, data: str) -> None:
    """Shapes and targets of every checkpoint against the dataset (one line naming the mismatch)."""
    from scalinglab.training.checkpoint import load_checkpoint

    seen = set()
    for ref in nets:
        missing = [t for t in ref.targets if t not in store.target_names]
        if missing:
            raise ValueError(f"{ref.family} was trained on target(s) {', '.join(missing)} that dataset {data} does "
                             f"not have (it has {', '.join(store.target_names)})")
        path = ref.checkpoint_path
        if path is None or (ref.family, ref.mode) in seen:
            continue
        seen.add((ref.family, ref.mode))
        info = load_checkpoint(path).info
        ref_shape = tuple(info["config"]["out_shape"]) if ref.mode == "generate" else tuple(info["input_shape"])
        if ref_shape != tuple(store.input_shape):
            what = "makes" if ref.mode == "generate" else "takes"
            raise ValueError(f"checkpoint {path} {what} images of shape {list(ref_shape)} but dataset {data} has "
                             f"{list(store.input_shape)}: analyze it with the dataset it was trained on")


# ----------------------------------------------------------------------------------------------- helpers


def _ranges(store: DatasetStore, names: list[str]) -> list[tuple[float, float]]:
    """Normalization ranges (Eq. 2): paper 2's for theta, J, D; the observed range for any other target."""
    out = []
    for n in names:
        if n in CRI3_RANGES:
            out.append(CRI3_RANGES[n])
        else:
            y = store.targets([n])[:, 0]
            out.append((float(y.min()), float(y.max()) if y.max() > y.min() else float(y.min()) + 1.0))
    return out


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    tmp.replace(path)
    return path


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(np.mean(a)), float(np.std(a, ddof=1)) if len(a) > 1 else math.nan


def _pm(values: list[float], digits: int = 3) -> str:
    m, s = _mean_sd(values)
    return f"{m:.{digits}g}" if not math.isfinite(s) else f"{m:.{digits}g} ± {s:.2g}"


def _test_indices(net, store: DatasetStore) -> np.ndarray:
    """The fixed test set a checkpoint was evaluated on (its recorded test_size and split_seed)."""
    from scalinglab.data.splits import make_split

    meta = net.info["meta"]
    return make_split(store.num_samples, meta.get("test_size", 0.1), meta.get("split_seed", 0)).test_indices


def _network(ref: NetworkRef, device: str, cache: dict):
    from scalinglab.training.checkpoint import load_checkpoint

    key = str(ref.checkpoint_path)
    if key not in cache:
        cache[key] = load_checkpoint(ref.checkpoint_path, device=device)
    return cache[key]


def _families(nets: list[NetworkRef], device: str, cache: dict, order: list[str]) -> list[_Family]:
    """Regression families at their largest N_D, realizations present for every target of the family."""
    by_family: dict[str, list[NetworkRef]] = defaultdict(list)
    for ref in nets:
        if ref.mode == "regress":
            by_family[ref.family].append(ref)
    out = []
    for name, refs in by_family.items():
        top = max(r.num_train for r in refs)
        refs = [r for r in refs if r.num_train == top]
        fam = _Family(name=name)
        for r in refs:
            for t in r.targets:
                fam.nets.setdefault(t, []).append(r)
        common = set.intersection(*({r.realization for r in v} for v in fam.nets.values()))
        rank = {n: i for i, n in enumerate(order)}  # the dataset's target order (theta, J, D)
        fam.nets = {t: sorted((r for r in v if r.realization in common), key=lambda r: r.realization)
                    for t, v in sorted(fam.nets.items(), key=lambda kv: rank.get(kv[0], len(rank)))}
        first = next(iter(fam.nets.values()))[0]
        if first.checkpoint_path is not None:
            info = _network(first, device, cache).info
            fam.noise = info["meta"].get("train", {}).get("noise_snr_db")
            fam.loss = info.get("loss", "mse")
        out.append(fam)
    # clean networks first: the paper's analyses are of networks trained on noiseless images
    return sorted(out, key=lambda f: (f.noise is not None, f.name))


def _predictions(fam: _Family, store: DatasetStore, device: str, cache: dict) -> dict[str, Any]:
    """Test predictions of every realization: {"names", "test_indices", "train_indices", "pred" [R, n, P],
    "sigma" [R, n, P] or None, "true" [n, P]} in physical units, from saved predictions or recomputed."""
    names = list(fam.nets)
    R = len(next(iter(fam.nets.values())))
    preds, sigmas, test_idx, train_idx = [], [], None, None
    images = None
    for t in names:
        cols, scols = [], []
        for ref in fam.nets[t]:
            col = ref.targets.index(t)
            if ref.predictions_path is not None and ref.predictions_path.is_file():
                saved = np.load(ref.predictions_path)
                idx = saved["test_indices"]
                p = saved["pred"][:, col]
                s = saved["sigma"][:, col] if "sigma" in saved.files else None
                if train_idx is None:
                    train_idx = saved["train_indices"]
            else:
                net = _network(ref, device, cache)
                idx = _test_indices(net, store)
                if images is None or len(images) != len(idx):
                    images = store.inputs(indices=idx)
                p, s = net.predict(images)
                p, s = p[:, col], None if s is None else s[:, col]
            if test_idx is None:
                test_idx = idx
            elif not np.array_equal(test_idx, idx):
                raise ValueError(f"family {fam.name}: realizations were tested on different test sets "
                                 "(different split_seed or test_size); analyze them separately")
            cols.append(p)
            scols.append(s)
        preds.append(np.stack(cols))
        sigmas.append(None if any(s is None for s in scols) else np.stack(scols))
    pred = np.stack(preds, axis=-1)  # [R, n, P]
    sigma = None if any(s is None for s in sigmas) else np.stack(sigmas, axis=-1)
    return {"names": names, "test_indices": test_idx, "train_indices": train_idx, "pred": pred, "sigma": sigma,
            "true": store.targets(names, indices=test_idx), "num_realizations": R}


def _phase_points(store: DatasetStore, fm_path: Path | None, names: list[str], ranges) -> tuple[np.ndarray, np.ndarray]:
    """Normalized parameters [n, P] and phase labels [n] of every simulated sample (dataset + FM side store)."""
    if "phase" not in store.aux_names:
        raise ValueError(f"dataset {store.path} has no aux 'phase' labels: phase-boundary distances need the "
                         "simulator's labels (or pass --no-boundaries)")
    pts = [store.targets(names)]
    phase = [store.aux("phase").astype(int)]
    if fm_path is not None:
        if not fm_path.exists():
            raise FileNotFoundError(f"FM side store {fm_path} not found: the FM-NCD boundary needs the FM samples "
                                    "the simulator recorded (pass --fm-store PATH, or --no-boundaries)")
        fm = DatasetStore.open(fm_path)
        try:
            if fm.num_samples:
                pts.append(fm.targets(names))
                phase.append(fm.aux("phase").astype(int))
        finally:
            fm.close()
    return normalize_parameters(np.concatenate(pts), ranges), np.concatenate(phase)


def _default_fm_path(data: str) -> Path:
    p = Path(data)
    return p.with_name(p.stem + "_fm" + p.suffix)


# ----------------------------------------------------------------------------------------------- the job


def analyze(source: str | os.PathLike, out: str | os.PathLike, data: str | None = None,
            config: AnalyzeConfig = AnalyzeConfig()) -> dict[str, Any]:
    """Run every analysis that the kept artifacts allow and write figures, CSV tables and ``index.html``.

    Args:
        source: sweep results directory, ``train --out`` directory or checkpoint file.
        out: output directory (created).
        data: dataset store; default the one recorded with the networks.
        config: settings.

    Returns:
        The summary written to ``out/analysis.json``.
    """
    from scalinglab.report import paper2 as figs
    from scalinglab.report.analysis_page import Section, write_page

    nets, recorded = collect_networks(source)
    data = data or recorded
    if data is None:
        raise ValueError("no dataset recorded with these networks: pass --data STORE")
    if not Path(data).exists():
        raise FileNotFoundError(f"dataset store not found: {data}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = DatasetStore.open(data)
    _check_compatible(nets, store, data)
    cache: dict = {}
    summary: dict[str, Any] = {"source": str(source), "data": str(data), "regression": {}, "noise": {},
                               "uncertainty": {}, "generator": {}}
    sections: list[Section] = []
    families = _families(nets, config.device, cache, list(store.target_names))
    gens = [r for r in nets if r.mode == "generate"]
    all_names = [n for n in ("theta", "J", "D") if n in store.target_names] or list(store.target_names)
    ranges_all = _ranges(store, all_names)
    distances_all = None
    if config.boundaries:
        fm_path = Path(config.fm_store) if config.fm_store else _default_fm_path(data)
        pts, phase = _phase_points(store, fm_path, all_names, ranges_all)
        bpts = {}
        for label, (a, b) in BOUNDARIES.items():
            try:
                bpts[label] = boundary_points(pts, phase, a, b)
            except ValueError as exc:
                sections.append(Section(f"Phase boundary {label}", notes=[f"not found: {exc}"]))
        summary["boundary_points"] = {k: int(len(v)) for k, v in bpts.items()}
        # distances of every stored sample (the test points are picked from them below)
        own = normalize_parameters(store.targets(all_names), ranges_all)
        distances_all = {k: distance_to_boundary(own, v) for k, v in bpts.items()}

    steps = len(families) * (1 + len(config.snr_db)) + len(gens)
    with progress_bar(max(steps, 1), "analyze", quiet=config.quiet) as bar:
        for i, fam in enumerate(families):
            res = _predictions(fam, store, config.device, cache)
            bar.advance(1)
            sec = _regression_section(fam, res, store, out, config, distances_all, summary, figs, primary=i == 0)
            sections.append(sec)
        noise_curves = _noise(families, store, config, cache, bar, summary)
        if noise_curves:
            sections.append(_noise_section(noise_curves, out, config, figs, summary))
        if gens:
            sections.append(_generator_section(gens, store, out, config, cache, distances_all, summary, figs, bar))
    store.close()
    page = write_page(out / "index.html", "scalinglab analyze: paper 2 error analyses",
                      f"networks from {source}, dataset {data}", sections)
    summary["page"] = str(page)
    tmp = out / "analysis.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=float))
    tmp.replace(out / "analysis.json")
    return summary


def _regression_section(fam: _Family, res: dict, store: DatasetStore, out: Path, config: AnalyzeConfig,
                        distances_all, summary: dict, figs, primary: bool):
    from scalinglab.report.analysis_page import Section

    names, R = res["names"], res["num_realizations"]
    units = [dict(zip(store.target_names, store.target_units, strict=True))[n] for n in names]
    ranges = _ranges(store, names)
    tag = "".join(c if c.isalnum() else "_" for c in fam.name).strip("_")
    per_r = [regression_summary(res["pred"][r], res["true"], names) for r in range(R)]
    rows, fam_sum = [], {}
    for n in names:
        vals = {m: [p[n][m] for p in per_r] for m in ("mae", "mape", "r2")}
        fam_sum[n] = {m: _mean_sd(v) for m, v in vals.items()}
        rows.append([n, _pm(vals["mae"]), _pm(vals["mape"]), _pm(vals["r2"], 4),
                     f"{PAPER_MAPE[n]:.2f}" if n in PAPER_MAPE else ""])
    header = ["parameter", "MAE", "MAPE (%)", "R^2", "paper 2 MAPE (%)"]
    _write_csv(out / f"regression_metrics_{tag}.csv", ["parameter", "mae_mean", "mae_sd", "mape_mean", "mape_sd",
                                                      "r2_mean", "r2_sd"],
               [[n, *fam_sum[n]["mae"], *fam_sum[n]["mape"], *fam_sum[n]["r2"]] for n in names])
    sec = Section(f"Regression: {fam.name} (N_D = {fam.nets[names[0]][0].num_train}, {R} realizations"
                  f"{', trained with noise ' + str(fam.noise) + ' dB' if fam.noise else ''})",
                  paragraphs=[f"Test set: {len(res['test_indices'])} samples. Values are mean ± standard deviation "
                              "over the independently trained realizations; figures show realization 0."],
                  tables=[("Test metrics (physical units)", header, rows)])
    summary["regression"][fam.name] = {"metrics": fam_sum, "num_realizations": R,
                                       "num_test": int(len(res["test_indices"])), "noise_snr_db": fam.noise}
    true, pred0 = res["true"], res["pred"][0]
    p = figs.fig_pred_vs_true(true, pred0, names, units, out / f"fig3_pred_vs_true_{tag}.png")
    sec.figures.append((p, "Fig. 3: predicted vs true with y = x; MAPE binned along each true value."))
    true_n = normalize_parameters(true, ranges)
    err_n = normalize_parameters(pred0, ranges) - true_n
    if res["train_indices"] is not None:
        train_n = normalize_parameters(store.targets(names, indices=res["train_indices"]), ranges)
        binned = binned_mae(np.abs(err_n), true_n, train_n, num_bins=config.num_bins)
        p = figs.fig_binned_mae(binned, names, out / f"fig4_binned_mae_{tag}.png")
        sec.figures.append((p, "Fig. 4: MAE of each normalized parameter binned along each normalized true "
                               "parameter (Eq. 2), with the number of training samples per bin."))
        _write_csv(out / f"binned_mae_{tag}.csv", ["error_of", "along", "bin_center", "mae", "sem", "count_test",
                                                   "count_train"],
                   [[names[i], names[j], binned.centers[b], binned.mae[i, j, b], binned.sem[i, j, b],
                     binned.count_test[j, b], binned.count_train[j, b]]
                    for i in range(len(names)) for j in range(len(names)) for b in range(len(binned.centers))])
    if len(names) >= 2:
        pcas = [error_pca(normalize_parameters(res["pred"][r], ranges) - true_n) for r in range(R)]
        pca = pcas[0]
        share = [float(q.explained_variance_ratio_[0]) for q in pcas]
        p = figs.fig_error_pca(err_n, pca, names, out / f"fig5_error_pca_{tag}.png")
        sec.figures.append((p, f"Fig. 5: normalized error vectors with their principal axes (Eqs. 5-6). Leading "
                               f"component: {pca.relation(names)}."))
        rows = [[f"PC{k + 1}", _pm([float(q.explained_variance_ratio_[k]) for q in pcas]),
                 *(f"{pca.components_[k, j]:+.3f}" for j in range(len(names)))] for k in range(len(names))]
        sec.tables.append((f"PCA of the error vectors (paper 2: leading share {PAPER_PCA_SHARE:.4f}, mostly J-D)",
                           ["component", "variance ratio", *[f"axis {n}" for n in names]], rows))
        _write_csv(out / f"error_pca_{tag}.csv", ["component", "ratio_mean", "ratio_sd",
                                                  *[f"axis_{n}" for n in names]],
                   [[f"PC{k + 1}", *_mean_sd([float(q.explained_variance_ratio_[k]) for q in pcas]),
                     *pca.components_[k]] for k in range(len(names))])
        summary["regression"][fam.name]["pca_leading_share"] = _mean_sd(share)
        summary["regression"][fam.name]["pca_relation"] = pca.relation(names)
    if distances_all:
        dist = {k: v[res["test_indices"]] for k, v in distances_all.items()}
        p = figs.fig_mae_vs_distance(dist, np.abs(err_n), names, out / f"fig6_mae_vs_boundary_{tag}.png",
                                     num_bins=config.num_bins)
        sec.figures.append((p, "Fig. 6: MAE of each normalized parameter against the Euclidean distance (Eq. 3) "
                               "to the FM-NCD and NCD-MD phase boundaries, with the test-sample count per bin."))
    if R >= 2 or res["sigma"] is not None:
        sec_unc = _uncertainty(fam, res, names, out, tag, figs, summary)
        sec.tables += sec_unc.tables
        sec.figures += sec_unc.figures
        sec.notes += sec_unc.notes
    return sec


def _uncertainty(fam: _Family, res: dict, names: list[str], out: Path, tag: str, figs, summary: dict):
    """Coverage of nominal intervals from the realization spread and from a heteroscedastic head."""
    from scalinglab.report.analysis_page import Section

    sec = Section("uncertainty")
    true = res["true"]
    sources = {}
    if res["num_realizations"] >= 2:
        mean, std = ensemble_spread(res["pred"])
        sources["realization spread"] = (mean, std)
    if res["sigma"] is not None:
        sources["heteroscedastic head (realization 0)"] = (res["pred"][0], res["sigma"][0])
    rows = []
    summary["uncertainty"][fam.name] = {}
    for label, (mean, sigma) in sources.items():
        cov = interval_coverage(mean, sigma, true, levels=(0.68, 0.95))
        pull = pulls(mean, sigma, true)
        key = "spread" if label.startswith("realization") else "head"
        p = figs.fig_calibration(pull, cov, names, out / f"calibration_{key}_{tag}.png")
        sec.figures.append((p, f"Calibration from the {label}: pull histograms against a unit Gaussian and "
                               "coverage of the nominal 68 / 95 % intervals."))
        for i, n in enumerate(names):
            rows.append([label, n, f"{100 * cov[0.68][i]:.1f}", f"{100 * cov[0.95][i]:.1f}",
                         f"{np.std(pull[:, i]):.2f}"])
        summary["uncertainty"][fam.name][label] = {n: {"cov68": float(cov[0.68][i]), "cov95": float(cov[0.95][i]),
                                                       "pull_std": float(np.std(pull[:, i]))}
                                                   for i, n in enumerate(names)}
    sec.tables.append(("Interval coverage on the test set (nominal 68 / 95 %)",
                       ["uncertainty from", "parameter", "68 % covers", "95 % covers", "pull std"], rows))
    if "realization spread" in sources:
        sec.notes.append("The realization spread measures how much independently trained networks disagree "
                         "(model uncertainty only); it does not contain the irreducible error, so it under-covers "
                         "when that dominates.")
    return sec


def _noise(families: list[_Family], store: DatasetStore, config: AnalyzeConfig, cache: dict, bar,
           summary: dict) -> dict[str, Any]:
    """MAPE per SNR [S, P] (mean over realizations) for each family with checkpoints, plus low-SNR predictions."""
    curves = {}
    fams = [f for f in families if all(r.checkpoint_path is not None for v in f.nets.values() for r in v)]
    if not fams:
        for _ in families:
            bar.advance(len(config.snr_db))
        return curves
    names = list(fams[0].nets)
    first = next(iter(fams[0].nets.values()))[0]
    idx = _test_indices(_network(first, config.device, cache), store)
    clean = store.inputs(indices=idx)
    for fam in families:
        if fam not in fams:
            bar.advance(len(config.snr_db))
            continue
        fam_names = [n for n in names if n in fam.nets]
        true = store.targets(fam_names, indices=idx)
        mape = np.zeros((len(config.snr_db), len(fam_names)))
        mape_sd = np.zeros_like(mape)
        lowest = None
        for s, snr in enumerate(config.snr_db):
            # the same noisy test set for every family: the noise depends on the SNR index and the seed only
            noisy = add_noise_snr(clean, snr, np.random.default_rng(derive_seed(config.seed, "snr", s)))
            per_r = defaultdict(list)
            pred0 = np.zeros_like(true)
            for j, t in enumerate(fam_names):
                for ref in fam.nets[t]:
                    p, _ = _network(ref, config.device, cache).predict(noisy)
                    p = p[:, ref.targets.index(t)]
                    per_r[t].append(100 * np.mean(np.abs(p - true[:, j]) / np.abs(true[:, j])))
                    if ref.realization == fam.nets[t][0].realization:
                        pred0[:, j] = p
            mape[s] = [np.mean(per_r[t]) for t in fam_names]
            mape_sd[s] = [np.std(per_r[t], ddof=1) if len(per_r[t]) > 1 else np.nan for t in fam_names]
            if snr == min(config.snr_db):
                lowest = (true, pred0, snr)
            bar.advance(1)
        label = "trained clean" if fam.noise is None else f"noise-trained ({fam.noise[0]:g}..{fam.noise[1]:g} dB)"
        if sum((f.noise is None) == (fam.noise is None) for f in fams) > 1:  # several of a kind: name them
            label = f"{fam.name}, {label}"
        curves[label] = {"mape": mape, "sd": mape_sd, "names": fam_names, "lowest": lowest}
        summary["noise"][label] = {"snr_db": list(config.snr_db),
                                   "mape": {t: mape[:, j].tolist() for j, t in enumerate(fam_names)}}
    return curves


def _noise_section(curves: dict, out: Path, config: AnalyzeConfig, figs, summary: dict):
    from scalinglab.report.analysis_page import Section

    names = next(iter(curves.values()))["names"]
    mape = {k: v["mape"] for k, v in curves.items() if v["names"] == names}
    pvt = {k: v["lowest"] for k, v in curves.items() if v["lowest"] is not None and v["names"] == names}
    p = figs.fig_noise(np.asarray(config.snr_db), mape, names, out / "fig7_noise_robustness.png", pred_vs_true=pvt)
    rows = []
    for label, v in curves.items():
        for s, snr in enumerate(config.snr_db):
            rows.append([label, f"{snr:g}", *(f"{v['mape'][s, j]:.3g}" for j in range(len(v["names"])))])
    _write_csv(out / "noise_robustness.csv", ["networks", "snr_db", *[f"mape_{n}" for n in names]],
               [[r[0], r[1], *r[2:]] for r in rows])
    return Section("Noise robustness (Figs. 7, beyond the paper: noise-augmented training)",
                   paragraphs=["Noisy test sets: white Gaussian noise at each SNR (Eqs. 7-10, signal power of each "
                               "clean image); MAPE in percent, mean over realizations."],
                   tables=[("MAPE (%) against SNR", ["networks", "SNR (dB)", *names], rows)],
                   figures=[(p, "Fig. 7: MAPE against SNR for each set of networks; predicted vs true at the "
                                f"lowest SNR ({min(config.snr_db):g} dB).")])


def _generator_section(gens: list[NetworkRef], store: DatasetStore, out: Path, config: AnalyzeConfig, cache: dict,
                       distances_all, summary: dict, figs, bar):
    from scalinglab.report.analysis_page import Section

    top = max(g.num_train for g in gens)
    refs = sorted((g for g in gens if g.num_train == top and g.checkpoint_path is not None),
                  key=lambda g: g.realization)
    if not refs:
        bar.advance(len(gens))
        return Section("Generator", notes=["no generator checkpoints were kept: train with --save models"])
    net = _network(refs[0], config.device, cache)
    names = net.input_names
    idx = _test_indices(net, store)
    params = store.targets(names, indices=idx)
    true = store.inputs(indices=idx)
    phase = store.aux("phase", indices=idx).astype(int) if "phase" in store.aux_names else np.ones(len(idx), int)
    per_r = []
    for ref in refs:
        gen = _network(ref, config.device, cache).generate(params)
        per_r.append(np.abs(gen - true).reshape(len(idx), true.shape[1], -1).mean(-1))  # [n, C]
        if ref is refs[0]:
            generated = gen
        bar.advance(1)
    bar.advance(len(gens) - len(refs))
    mae_img = per_r[0].mean(1)
    ranges = _ranges(store, names)
    params_n = normalize_parameters(params, ranges)
    phase_names = PHASE_NAMES
    p8 = figs.fig_generator_errors(mae_img, phase, phase_names, params_n, names, out / "fig8_generator_errors.png")
    rows = []
    summary["generator"] = {"num_realizations": len(refs), "num_test": int(len(idx)), "mae_by_phase": {}}
    for code in sorted(set(phase.tolist())):
        sel = phase == code
        vals = [float(m[sel].mean()) for m in per_r]
        rows.append([phase_names.get(code, str(code)), int(sel.sum()), _pm(vals),
                     f"{per_r[0][sel, 0].mean():.3g}", f"{per_r[0][sel, 1].mean():.3g}" if true.shape[1] > 1 else ""])
        summary["generator"]["mae_by_phase"][phase_names.get(code, str(code))] = _mean_sd(vals)
    # gallery: for each phase, the test sample of median error
    picks, titles = [], []
    for code in sorted(set(phase.tolist())):
        sel = np.flatnonzero(phase == code)
        order = sel[np.argsort(mae_img[sel])]
        for q in np.linspace(0.25, 0.75, max(1, config.num_gallery // max(1, len(set(phase.tolist()))))):
            k = order[int(q * (len(order) - 1))]
            if k not in picks:
                picks.append(int(k))
                titles.append(f"{phase_names.get(code, code)}: " + ", ".join(f"{n}={v:.3g}"
                                                                             for n, v in zip(names, params[k])))
    p_gal = figs.fig_gallery(true[picks], generated[picks], titles, out / "generator_gallery.png")
    mag = magnetization_errors(generated, true)
    sec = Section(f"Generator: parameters -> images (N_D = {top}, {len(refs)} realizations)",
                  paragraphs=["Per-image MAE of the generated m_z images against the simulated ones (pixel values in "
                              "[-1, 1]); mean ± standard deviation over realizations."],
                  tables=[("Generated-image MAE by phase", ["phase", "test samples", "MAE", "MAE top (r0)",
                                                            "MAE bottom (r0)"], rows)],
                  figures=[(p8, "Fig. 8c-e: per-image MAE by phase and along each normalized parameter."),
                           (p_gal, "True / generated / |difference| images per layer (median-error samples).")])
    if distances_all:
        dist = {k: v[idx] for k, v in distances_all.items()}
        p9 = figs.fig_mae_vs_distance(dist, mae_img, ["image MAE"], out / "fig9_generator_mae_vs_boundary.png",
                                      num_bins=config.num_bins)
        sec.figures.append((p9, "Fig. 9: generated-image MAE against the distance to each phase boundary."))
    else:
        dist = None
    p10 = figs.fig_magnetization(mag["ape"], params, names,
                                 [dict(zip(store.target_names, store.target_units, strict=True))[n] for n in names],
                                 out / "fig10_magnetization.png", distances=dist, abs_err=mag["abs"])
    sec.figures.append((p10, "Fig. 10: MAPE of the layer-averaged magnetization along each parameter and its MAE "
                             "against the distance to each boundary."))
    m_true, m_gen = mag["m_true"], mag["m_pred"]  # layer-averaged magnetizations [n, C]
    ok = np.abs(m_true) > 1e-12
    summary["generator"]["magnetization_mape"] = [float(np.nanmean(np.where(ok[:, c], mag["ape"][:, c], np.nan)))
                                                  for c in range(true.shape[1])]
    _write_csv(out / "generator_errors.csv", ["index", "phase", *names, "mae", *[f"mae_layer{c}" for c in range(
        true.shape[1])], *[f"m_true_layer{c}" for c in range(true.shape[1])],
        *[f"m_gen_layer{c}" for c in range(true.shape[1])]],
        [[int(i), int(ph), *pv, float(mi), *per_r[0][k], *m_true[k], *m_gen[k]]
         for k, (i, ph, pv, mi) in enumerate(zip(idx, phase, params, mae_img))])
    return sec


# ----------------------------------------------------------------------------------------------- generator vs simulator


def image_phases(images: np.ndarray) -> np.ndarray:
    """Phase codes read off m_z image pairs [n, 2, H, W] with the simulator's rule (``phases.classify``): pixel
    means stand in for the layer magnetizations and the share of pixels pointing against the background
    (``sign * m_z < -0.5``) for the reversed-site fractions. Applied alike to simulated and generated images."""
    from scalinglab.simulators.moire.phases import REVERSED_Z, background_sign, classify

    m = images.reshape(len(images), images.shape[1], -1)
    mt, mb = m[:, 0].mean(1), m[:, 1].mean(1)
    sign = background_sign(mt, mb)[:, None]
    rt, rb = (sign * m[:, 0] < -REVERSED_Z).mean(1), (sign * m[:, 1] < -REVERSED_Z).mean(1)
    return classify(mt, mb, rt, rb)


def compare_with_simulator(checkpoint: str | os.PathLike, params: np.ndarray, data: str | None = None,
                           profile: str | None = None, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Generated images against freshly simulated ground states for the same (theta, J, D).

    The simulation uses the image settings (grid, field of view, quadrant, interlayer model) of the dataset the
    generator was trained on and the search of ``profile`` (default: the dataset's profile).

    Args:
        checkpoint: generator checkpoint.
        params: [n, 3] theta (deg, a commensurate angle), J, D (meV).
        data: the training dataset (default: the one recorded in the checkpoint).
        profile: simulator profile of the ground-state search.
        seed: seed of the random starts.
        device: torch device of the generator and the simulation.

    Returns:
        {"mae" [n], "mae_per_layer" [n, 2], "phase_simulated" [n] (the simulator's label),
        "phase_sim_images" [n], "phase_gen_images" [n], "seconds_generate", "seconds_simulate" (per image),
        "generated", "simulated" [n, 2, H, W]}.
    """
    import time

    from scalinglab.simulators.moire.campaign import CampaignConfig, simulate_chunk
    from scalinglab.simulators.moire.lattice import m_for_angle
    from scalinglab.training.checkpoint import load_checkpoint

    net = load_checkpoint(checkpoint, device=device)
    if net.mode != "generate" or net.input_names != ["theta", "J", "D"]:
        raise ValueError(f"{checkpoint} is not a (theta, J, D) -> images generator")
    data = data or net.info["meta"].get("data")
    if data is None or not Path(data).exists():
        raise FileNotFoundError(f"training dataset {data} not found: pass --data to read its image settings")
    store = DatasetStore.open(data)
    cfg = dict(store.metadata.get("config") or {})
    store.close()
    rows = []
    for k, (theta, J, D) in enumerate(np.asarray(params, dtype=float)):
        try:
            m = m_for_angle(float(theta))
        except ValueError as exc:
            raise ValueError(f"row {k}: {exc}") from None
        rows.append((m, float(J), float(D)))
    keep = {k: cfg[k] for k in ("grid", "fov_nm", "quadrant", "interlayer") if k in cfg}
    config = CampaignConfig.from_profile(profile or cfg.get("profile", "quick"), seed, params=tuple(rows),
                                         device=device, **keep)
    t0 = time.perf_counter()
    sim = simulate_chunk(config, 0, len(rows))
    t_sim = (time.perf_counter() - t0) / len(rows)
    t0 = time.perf_counter()
    gen = net.generate(sim["targets"])
    t_gen = (time.perf_counter() - t0) / len(rows)
    if gen.shape != sim["images"].shape:
        raise ValueError(f"generator makes images {list(gen.shape[1:])}, the simulator {list(sim['images'].shape[1:])}")
    per_layer = np.abs(gen - sim["images"]).reshape(len(rows), gen.shape[1], -1).mean(-1)
    return {"mae": per_layer.mean(1), "mae_per_layer": per_layer, "phase_simulated": sim["phase"].astype(int),
            "phase_sim_images": image_phases(sim["images"]), "phase_gen_images": image_phases(gen),
            "seconds_generate": t_gen, "seconds_simulate": t_sim, "generated": gen, "simulated": sim["images"],
            "targets": sim["targets"], "profile": config.profile}

"""One experiment: R realizations of one (model, N_D, target) trained on a dataset store, evaluated on its test set.

This is the unit of work of the sweep runner and of ``scalinglab train``:

1. open the store; the fixed test set comes from ``split_seed`` (``make_split``);
2. per realization, from its seed: draw a training subset of N_D samples from the pool (7/8 train, 1/8
   validation), fit input standardization (per feature/pixel or global) and target standardization (per
   parameter) on its training part only, and initialize its network;
3. train all realizations at once (``train_ensemble``; sequential fallback when the model cannot be stacked);
4. evaluate each on the test set in physical units (inverse standardization) and in standardized units.

Seeds: realization r with seed ``s`` uses ``derive_seed(s, "subset")`` for its data subset,
``derive_seed(s, "init")`` for its weights and ``derive_seed(s, "shuffle")`` for its minibatch order, so one
realization can be rerun alone with identical numbers.

Reference: paper 1 Methods (scaling-laws-deep-regression.txt), "Deep learning algorithms".
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalinglab.data.splits import draw_training_subset, make_split
from scalinglab.data.store import DatasetStore
from scalinglab.data.transforms import Standardizer
from scalinglab.models import MODELS, count_parameters, get_model
from scalinglab.progress import progress_bar
from scalinglab.record_status import classify
from scalinglab.seeding import derive_seed
from scalinglab.training.config import TrainConfig
from scalinglab.training.ensemble import train_ensemble
from scalinglab.training.flops import forward_flops, train_step_flops, training_flops
from scalinglab.training.losses import outputs_per_target, point_prediction, split_mean_sigma
from scalinglab.training.metrics import per_target_dict, regression_metrics, summarize
from scalinglab.training.trainer import EpochProgress, TrainData

INPUT_NORMS = ("per_feature", "global", "none")
# "regress": images/features -> parameters (papers 1-4); "generate": parameters -> images (paper 2's generator).
MODES = ("regress", "generate")
# What a run can keep next to its records (ExperimentSpec.save): the trained weights of every realization
# (training.checkpoint) and its per-sample test predictions with the sample indices.
SAVE_KINDS = ("models", "predictions")
# "log": targets are learned as log(y) then standardized (paper 3: |M|^2 spans orders of magnitude).
TARGET_TRANSFORMS = ("none", "log")
# Fixed pull-histogram bin edges (pull = (pred - true) / sigma, standardized units) for gaussian_nll records.
PULL_BINS = np.linspace(-5.0, 5.0, 41)
SIGMA_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Test points whose last-hidden-layer activations enter the TwoNN estimate (paper 3 App. B uses >= 1e4).
ID_POINTS = 10000
# Rows read from the store at a time when fitting standardization statistics (bounded memory).
_FIT_CHUNK = 4096


@dataclass(frozen=True)
class ExperimentSpec:
    """What to train and on which data.

    Attributes:
        data: path of a dataset store.
        model: registry name (``scalinglab.models.list_models()``).
        model_config: builder keyword arguments; ``in_features``/``in_channels``/``out_features`` are filled
            from the data when the builder accepts them and they are not given.
        target: one target name or a list of names (one network predicts all of them).
        num_train: N_D, samples drawn per realization (training + validation).
        seeds: one seed per realization.
        test_size: test-set size, a count or a fraction of the dataset.
        split_seed: seed of the fixed test set.
        train: training configuration.
        input_norm: "per_feature" (per pixel), "global" or "none".
        device: torch device ("cpu", "cuda", "cuda:1", ...).
        val_fraction: validation share of each subset (paper 1: 1/8).
        target_transform: "none", or "log": learn log(y) standardized (paper 3 Sec. 3); then
            ``test_normalized`` is in log-standardized units (the scaling loss) and ``test`` in physical units.
        mode: "regress" (inputs -> targets) or "generate": the targets named by ``target`` are the network's
            inputs and the stored images its outputs (paper 2 Sec. II.2.2; trained on raw pixel values, no
            target standardization; ``loss = "mae"`` is the paper's).
        save: what to keep in ``save_dir``: "models" (``r<k>.pt`` checkpoints) and/or "predictions"
            (``predictions_r<k>.npz``: test indices, predictions, truth, training/validation indices).
        save_dir: directory of the saved artifacts (required when ``save`` is not empty).
    """

    data: str
    model: str
    target: str | list[str]
    num_train: int
    seeds: list[int]
    model_config: dict[str, Any] = field(default_factory=dict)
    test_size: int | float = 0.1
    split_seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    input_norm: str = "per_feature"
    device: str = "cpu"
    val_fraction: float = 1 / 8
    target_transform: str = "none"
    mode: str = "regress"
    save: tuple[str, ...] = ()
    save_dir: str | None = None

    @property
    def targets(self) -> list[str]:
        return [self.target] if isinstance(self.target, str) else list(self.target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (the resolved configuration written next to results)."""
        out = dataclasses.asdict(self)
        out["train"] = self.train.to_dict()
        out["seeds"] = [int(s) for s in self.seeds]
        out["save"] = list(self.save)
        return out


def _fill_model_config(spec: ExperimentSpec, input_shape: tuple[int, ...], num_outputs: int,
                       image_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    accepted = set(MODELS.accepted_keys(spec.model))  # unknown model -> one-line UnknownNameError
    cfg = dict(spec.model_config)
    if image_shape is not None:  # generate mode: the network makes the stored images
        if "out_shape" not in accepted:
            raise ValueError(f"model '{spec.model}' cannot generate images (mode 'generate' needs e.g. generator_fcn)")
        cfg.setdefault("out_shape", [int(s) for s in image_shape])
        if [int(s) for s in cfg["out_shape"]] != [int(s) for s in image_shape]:
            raise ValueError(f"model out_shape {list(cfg['out_shape'])} differs from the dataset's images "
                             f"{list(image_shape)}")
    # a model given num_particles derives its own feature count from the momenta (mlp_invariants)
    if "in_features" in accepted and "in_features" not in cfg and not cfg.get("num_particles"):
        cfg["in_features"] = int(math.prod(input_shape))
    if "in_channels" in accepted and "in_channels" not in cfg and len(input_shape) == 3:
        cfg["in_channels"] = int(input_shape[0])
    if "out_features" in accepted and "out_features" not in cfg:
        cfg["out_features"] = num_outputs
    return cfg


def _fit_standardizer(mode: str, rows: np.ndarray, read) -> Standardizer:
    """Standardizer fitted on ``read(rows)`` in bounded-memory chunks."""
    norm = Standardizer(mode=mode)
    for a in range(0, len(rows), _FIT_CHUNK):
        norm.partial_fit(read(rows[a:a + _FIT_CHUNK]))
    return norm


def _check_finite(x: np.ndarray, rows: np.ndarray, what: str) -> None:
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        bad = int(rows[int(np.argmin(finite))])
        raise ValueError(f"{what} contain NaN or inf (first bad sample index {bad})")


def _forward_target(spec: ExperimentSpec, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Targets in the units the network learns before standardization ([n, P]; log(y) for "log")."""
    if spec.target_transform == "log":
        positive = (y > 0).all(axis=1)
        if not positive.all():
            bad = int(rows[int(np.argmin(positive))])
            raise ValueError(f"target_transform 'log' needs targets > 0 (first bad sample index {bad})")
        return np.log(y)
    return y


def _inverse_target(spec: ExperimentSpec, y: np.ndarray) -> np.ndarray:
    """Back to physical units ([n, P])."""
    return np.exp(y) if spec.target_transform == "log" else y


@torch.no_grad()
def _hidden_dimension(model: torch.nn.Module, x: np.ndarray, norm: Standardizer | None,
                      device: torch.device) -> float | None:
    """TwoNN intrinsic dimension of the last-hidden-layer activations on test inputs [n, F] (None if n < 3).

    Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) App. B; Facco et al., Sci. Rep. 7, 12140 (2017).
    """
    from scalinglab.analysis.intrinsic_dimension import intrinsic_dimension

    if len(x) < 3:
        return None
    xt = x if norm is None else norm.transform(x.astype(np.float64))
    h = model.hidden_activations(torch.as_tensor(np.asarray(xt), dtype=torch.float32, device=device))
    h = h.double().cpu().numpy()
    h = np.unique(h, axis=0)  # dead units can collapse points; TwoNN needs distinct neighbours
    try:
        return float(intrinsic_dimension(h))
    except ValueError:
        return None


def calibration_summary(mean: np.ndarray, sigma: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Pull histogram and learned-sigma quantiles of a heteroscedastic network (paper 3 Figs. 4-6).

    Args:
        mean: [n, P] predicted means, standardized (transformed) target units.
        sigma: [n, P] predicted standard deviations, same units.
        target: [n, P] true targets, same units.

    Returns:
        {"pull_bins": [41] edges, "pull_counts": [40] counts (pulls outside [-5, 5] are not counted),
        "pull_mean", "pull_std", "sigma_quantiles": {q: value} for q in SIGMA_QUANTILES, "sigma_mean"};
        pull = (mean - target) / sigma, ~N(0, 1) for a calibrated network.

    Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eq. 15 and Figs. 4-6.
    """
    pull = ((mean - target) / sigma).ravel()
    counts, _ = np.histogram(pull, bins=PULL_BINS)
    return {
        "pull_bins": PULL_BINS.tolist(),
        "pull_counts": counts.astype(int).tolist(),
        "pull_mean": float(pull.mean()),
        "pull_std": float(pull.std()),
        "sigma_quantiles": {str(q): float(np.quantile(sigma, q)) for q in SIGMA_QUANTILES},
        "sigma_mean": float(sigma.mean()),
    }


def run_experiment(spec: ExperimentSpec, *, progress: bool = True,
                   epoch_progress: Callable[[EpochProgress], None] | None = None) -> list[dict[str, Any]]:
    """Train and evaluate the realizations of ``spec``.

    Args:
        spec: the experiment.
        progress: show a progress bar over epochs (silent when SCALINGLAB_QUIET=1).
        epoch_progress: optional callback after every training epoch (``train_ensemble``'s), e.g. for the
            sweep's in-task progress.

    Returns:
        One JSON-serializable dict per realization (see docs/architecture.md, "Training"): realization, seed,
        target, num_train, num_params, flops (training forward+backward, counted), flops_validation,
        train_steps, best_epoch, epochs_run, wall_time_s (ensemble time / R), ensemble_wall_time_s, trainer,
        path, seeds (subset, init, shuffle), max_epochs, stop_reason (``trainer.STOP_REASONS``),
        mean_predictor_mse (test MSE of predicting the training mean, the units of test_normalized), status
        (``scalinglab.record_status``), test and test_normalized metrics (mean over targets) and, for
        several targets, test_per_target / test_normalized_per_target.

    Raises:
        FileNotFoundError: no store at ``spec.data``.
        ValueError: unknown model or config key, target not in the dataset, N_D larger than the pool, NaN in
            the inputs, inputs of a shape the model does not accept (one-line messages).
    """
    if not spec.seeds:
        raise ValueError("an experiment needs at least one seed (one per realization)")
    if spec.input_norm not in INPUT_NORMS:
        raise ValueError(f"input_norm '{spec.input_norm}' unknown (known: {', '.join(INPUT_NORMS)})")
    if spec.target_transform not in TARGET_TRANSFORMS:
        raise ValueError(
            f"target_transform '{spec.target_transform}' unknown (known: {', '.join(TARGET_TRANSFORMS)})"
        )
    if spec.mode not in MODES:
        raise ValueError(f"mode '{spec.mode}' unknown (known: {', '.join(MODES)})")
    bad = [k for k in spec.save if k not in SAVE_KINDS]
    if bad:
        raise ValueError(f"unknown save kind(s) {', '.join(bad)} (known: {', '.join(SAVE_KINDS)})")
    if spec.save and not spec.save_dir:
        raise ValueError("save needs save_dir: the directory for checkpoints and predictions")
    if spec.mode == "generate" and spec.target_transform != "none":
        raise ValueError("mode 'generate' takes the parameters as inputs: target_transform must be 'none'")
    store = DatasetStore.open(spec.data)
    try:
        return _run(spec, store, progress, epoch_progress)
    finally:
        store.close()


def _reader(spec: ExperimentSpec, store: DatasetStore):
    """``read(rows) -> (x [n, *in], y [n, O])`` in the layout the network trains on (before standardization).

    regress: x = stored inputs, y = targets (log for the "log" transform); generate: x = the targets named by
    ``spec.target`` (physical units), y = the stored images flattened to [n, C * H * W].
    """
    targets = spec.targets

    def read(rows: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        images = store.inputs(indices=rows)
        _check_finite(images, rows, f"{what}inputs of dataset {spec.data}")
        params = store.targets(targets, indices=rows)
        _check_finite(params, rows, f"{what}targets of dataset {spec.data}")
        if spec.mode == "generate":
            return params, images.reshape(len(rows), -1)
        return images, _forward_target(spec, params, rows)

    return read


def _probe(spec: ExperimentSpec, store: DatasetStore, model: torch.nn.Module, x: torch.Tensor,
           num_pixels: int | None) -> None:
    """Forward ``x`` [2, *in] through ``model``; a shape the model refuses or a wrong output width is one line."""
    targets = spec.targets
    generate = spec.mode == "generate"
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        shape = [len(targets)] if generate else list(store.input_shape)
        raise ValueError(
            f"model '{spec.model}' does not accept inputs of shape {shape} from {spec.data}: {first}"
        ) from None
    expected = num_pixels if generate else len(targets) * outputs_per_target(spec.train.loss)
    if out.dim() != 2 or out.shape[1] != expected:
        raise ValueError(
            f"model '{spec.model}' returns {list(out.shape[1:])} outputs per sample; the targets "
            f"{targets} with loss {spec.train.loss} need {expected}"
        )


def check_experiment(spec: ExperimentSpec) -> dict[str, Any]:
    """Everything :func:`run_experiment` checks before training, without training: fail fast, cheaply.

    Opens the dataset, checks the targets, builds the model with its filled-in configuration and runs it
    on a zero batch of the dataset's input shape (output width checked against targets and loss).

    Returns:
        ``{"num_params": P, "model_config": resolved model configuration}``.

    Raises:
        ValueError: the same one-line messages as :func:`run_experiment`.
    """
    store = DatasetStore.open(spec.data)
    try:
        model_cfg = _check_targets_and_config(spec, store)
        try:
            model = get_model(spec.model, **model_cfg)
        except (RuntimeError, TypeError, ValueError) as exc:  # e.g. width = -8: torch refuses the layer
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"model '{spec.model}' cannot be built with config {spec.model_config}: {first}") from None
        generate = spec.mode == "generate"
        in_shape = (len(spec.targets),) if generate else tuple(store.input_shape)
        _probe(spec, store, model, torch.zeros((2, *in_shape)), math.prod(store.input_shape) if generate else None)
        return {"num_params": int(count_parameters(model)), "model_config": model_cfg}
    finally:
        store.close()


def _check_targets_and_config(spec: ExperimentSpec, store: DatasetStore) -> dict[str, Any]:
    """Targets present, store not empty; returns the model configuration filled in from the dataset."""
    targets = spec.targets
    cfg = spec.train
    generate = spec.mode == "generate"
    missing = [t for t in targets if t not in store.target_names]
    if missing:
        raise ValueError(
            f"target(s) {', '.join(missing)} not in dataset {spec.data} (it has: {', '.join(store.target_names)})"
        )
    if store.num_samples == 0:
        raise ValueError(f"dataset {spec.data} holds no samples")
    if generate:
        if len(store.input_shape) != 3:
            raise ValueError(f"mode 'generate' needs image inputs [C, H, W]; {spec.data} has {list(store.input_shape)}")
        return _fill_model_config(spec, (len(targets),), 0, image_shape=store.input_shape)
    return _fill_model_config(spec, store.input_shape, len(targets) * outputs_per_target(cfg.loss))


def _run(spec: ExperimentSpec, store: DatasetStore, progress: bool,
         epoch_progress: Callable[[EpochProgress], None] | None = None) -> list[dict[str, Any]]:
    targets = spec.targets
    cfg = spec.train
    generate = spec.mode == "generate"
    model_cfg = _check_targets_and_config(spec, store)
    split = make_split(store.num_samples, spec.test_size, spec.split_seed)
    R = len(spec.seeds)
    seeds = [int(s) for s in spec.seeds]
    subset_seeds = [derive_seed(s, "subset") for s in seeds]
    init_seeds = [derive_seed(s, "init") for s in seeds]
    shuffle_seeds = [derive_seed(s, "shuffle") for s in seeds]
    subsets = [draw_training_subset(split.pool_indices, spec.num_train, ss, spec.val_fraction) for ss in subset_seeds]
    if any(len(v) == 0 for _, v in subsets):
        raise ValueError("each realization needs a validation part: val_fraction must be > 0")
    cfg = cfg.for_train_size(len(subsets[0][0]))  # min_steps: more epochs for a small training set

    # Read every row any realization uses once; map store indices to positions in the loaded block.
    read = _reader(spec, store)
    used = np.unique(np.concatenate([np.concatenate([t, v]) for t, v in subsets]))
    x_np, y_np = read(used, "")
    pos = lambda rows: np.searchsorted(used, rows)
    read_x = lambda rows: x_np[pos(rows)]
    read_y = lambda rows: y_np[pos(rows)]

    x_norms = [None if spec.input_norm == "none" else _fit_standardizer(spec.input_norm, t, read_x)
               for t, _ in subsets]
    # the generator learns raw pixel values (m_z in [-1, 1]) with the paper's MAE: no target standardization
    y_norms = [None if generate else _fit_standardizer("per_feature", t, read_y) for t, _ in subsets]

    device = torch.device(spec.device)
    as_t = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype)
    x_stats = None
    if spec.input_norm != "none":
        x_stats = (torch.stack([as_t(n.mean_) for n in x_norms]), torch.stack([as_t(n.std_) for n in x_norms]))
    data = TrainData(
        x=as_t(x_np), y=as_t(y_np),
        train_idx=torch.stack([as_t(pos(t), torch.long) for t, _ in subsets]),
        val_idx=torch.stack([as_t(pos(v), torch.long) for _, v in subsets]),
        x_mean=None if x_stats is None else x_stats[0], x_std=None if x_stats is None else x_stats[1],
        y_mean=None if generate else torch.stack([as_t(n.mean_) for n in y_norms]),
        y_std=None if generate else torch.stack([as_t(n.std_) for n in y_norms]),
        noise_snr_db=None if generate else cfg.noise_snr_db, noise_fraction=cfg.noise_fraction,
        noise_seed=derive_seed(seeds[0], "noise"),
    ).to(device)

    models = []
    for s in init_seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            models.append(get_model(spec.model, **model_cfg).to(device))
    if spec.input_norm == "none":
        # models that compute their own features (mlp_invariants on momenta) fit their standardization on
        # each realization's training rows only, like the data-side Standardizer
        for m, (t, _) in zip(models, subsets):
            if hasattr(m, "fit_input_standardization"):
                m.fit_input_standardization(read_x(t).astype(np.float64))
    probe_x, probe_y = data.batch(data.train_idx[:1, :2])
    _probe(spec, store, models[0], probe_x[0], y_np.shape[1] if generate else None)
    num_params = count_parameters(models[0])

    # FLOPs counted on real steps of one member (all members share the architecture).
    B = min(cfg.batch_size, data.num_train)
    last = data.num_train - (-(-data.num_train // cfg.batch_size) - 1) * cfg.batch_size
    xb, yb = data.batch(data.train_idx[:1, :B])
    full_flops = train_step_flops(models[0], xb[0], yb[0], cfg.loss)
    last_flops = full_flops if last == B else train_step_flops(models[0], xb[0, :last], yb[0, :last], cfg.loss)
    val_chunk = min(data.num_val, cfg.eval_batch_size)
    val_flops_per_sample = forward_flops(models[0], data.batch(data.val_idx[:1, :val_chunk])[0][0]) / val_chunk

    start = time.perf_counter()
    with progress_bar(cfg.epochs, f"{spec.model} N_D={spec.num_train} x{R}", quiet=not progress) as bar:
        result = train_ensemble(models, data, cfg, shuffle_seeds, progress=bar, epoch_progress=epoch_progress)
    wall = time.perf_counter() - start

    # Test set: read once, evaluate every member, metrics in physical and standardized units.
    test_rows = split.test_indices
    if len(test_rows) == 0:
        raise ValueError("the test set is empty: increase test_size")
    x_test, y_test = read(test_rows, "test ")
    if not generate:
        y_test = store.targets(targets, indices=test_rows)  # physical units (before any log transform)
    save_dir = Path(spec.save_dir) if spec.save else None
    records = []
    for r, model in enumerate(result.models):
        preds, sigmas = [], []
        with torch.no_grad():
            for a in range(0, len(test_rows), cfg.eval_batch_size):
                xt = x_test[a:a + cfg.eval_batch_size]
                xt = xt if x_norms[r] is None else x_norms[r].transform(xt.astype(np.float64))
                out = model(torch.as_tensor(np.asarray(xt), dtype=torch.float32, device=device))
                preds.append(point_prediction(cfg.loss, out).double().cpu().numpy())
                if cfg.loss == "gaussian_nll":
                    sigmas.append(split_mean_sigma(out)[1].double().cpu().numpy())
        rec: dict[str, Any] = {
            "realization": r,
            "seed": seeds[r],
            "target": spec.target if isinstance(spec.target, str) else list(spec.target),
            "num_train": int(spec.num_train),
            "num_params": int(num_params),
            "flops": training_flops(result.steps[r], data.num_train, cfg.batch_size, full_flops, last_flops),
            "flops_validation": int(round(val_flops_per_sample * data.num_val * result.epochs_run[r])),
            "train_steps": int(result.steps[r]),
            "best_epoch": int(result.best_epoch[r]),
            "epochs_run": int(result.epochs_run[r]),
            "best_val_loss": float(result.best_val_loss[r]),
            "wall_time_s": wall / R,
            "ensemble_wall_time_s": wall,
            "trainer": result.trainer,
            "path": result.path,
            "seeds": {"subset": subset_seeds[r], "init": init_seeds[r], "shuffle": shuffle_seeds[r]},
            "max_epochs": int(cfg.epochs),
            "stop_reason": result.stop_reason[r],
        }
        pred_norm = np.concatenate(preds)  # [n_test, O] standardized (transformed) units
        if generate:
            artifacts = {"test_indices": test_rows, **_generator_record(rec, pred_norm, y_test, store.input_shape)}
            # the mean predictor of a generator: the mean training image, pixel by pixel
            mean_image = read_y(subsets[r][0]).astype(np.float64).mean(axis=0)
            rec["mean_predictor_mse"] = float(np.mean((np.asarray(y_test, dtype=np.float64) - mean_image) ** 2))
        else:
            pred_phys = _inverse_target(spec, y_norms[r].inverse_transform(pred_norm))
            sigma_phys = None
            phys = regression_metrics(pred_phys, y_test)
            y_test_norm = y_norms[r].transform(_forward_target(spec, y_test, test_rows))
            normed = regression_metrics(pred_norm, y_test_norm)
            rec["test"] = summarize(phys)
            rec["test_normalized"] = summarize(normed)
            # predicting the training mean is 0 in standardized units: its test MSE is the mean square of the
            # standardized test targets (mean over targets, as test_normalized.mse)
            rec["mean_predictor_mse"] = float(np.mean(np.square(np.asarray(y_test_norm, dtype=np.float64))))
            if spec.target_transform != "none":
                rec["target_transform"] = spec.target_transform
                rel = np.abs(pred_phys - y_test) / np.abs(y_test)
                rec["test_relative_error"] = {"mean": float(rel.mean()), "median": float(np.median(rel)),
                                              "q90": float(np.quantile(rel, 0.9))}
                # paper 3 Eq. 23: eps = sum |A_NN - A_true| / sum A_true (physical units, pooled over targets)
                rec["test_epsilon"] = float(np.sum(np.abs(pred_phys - y_test)) / np.sum(np.abs(y_test)))
            num_final = store.metadata.get("num_final")
            if num_final is not None:  # amplitude datasets: n_f, d and the TwoNN dimension of the learned features
                rec["n_f"] = int(num_final)
                if "phase_space_dimension" in store.metadata:  # d as the dataset's sampling implies it; readers
                    # of records without it (older stores, all fixed sqrt(s)) take report.record_dimension's rule
                    rec["phase_space_dim"] = int(store.metadata["phase_space_dimension"])
            if hasattr(model, "hidden_activations"):
                rec["intrinsic_dimension"] = _hidden_dimension(model, x_test[:ID_POINTS], x_norms[r], device)
            if sigmas:
                sigma_norm = np.concatenate(sigmas)
                rec["calibration"] = calibration_summary(pred_norm, sigma_norm, y_test_norm)
                sigma_phys = sigma_norm * y_norms[r].std_  # physical units (log units for a log transform)
            if len(targets) > 1:
                rec["test_per_target"] = per_target_dict(phys, targets)
                rec["test_normalized_per_target"] = per_target_dict(normed, targets)
            artifacts = {"test_indices": test_rows, "pred": pred_phys, "true": y_test}
            if sigma_phys is not None:
                artifacts["sigma"] = sigma_phys
        rec["status"] = classify(
            stop_reason=rec["stop_reason"], best_val_loss=rec["best_val_loss"], best_epoch=rec["best_epoch"],
            test_mse=rec["test_normalized"].get("mse"), mean_predictor_mse=rec.get("mean_predictor_mse"),
            early_stopping=cfg.patience is not None,
            other_metrics=[rec["test_normalized"].get(k) for k in ("mae", "r2")],
        )
        if save_dir is not None:
            rec["artifacts"] = _save_artifacts(spec, save_dir, r, model, model_cfg, store, x_norms[r], y_norms[r],
                                               subsets[r], artifacts)
        records.append(rec)
    return records


def _generator_record(rec: dict[str, Any], pred: np.ndarray, true_flat: np.ndarray,
                      image_shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Test metrics of a generator (pixel MSE / MAE / R^2 over all test images) and its per-image errors.

    Pixel-wise MAPE is not defined for m_z values that cross zero: it is reported as NaN.
    """
    err = pred - true_flat
    sst = float(np.sum((true_flat - true_flat.mean()) ** 2))
    metrics = {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "mape": math.nan,
               "r2": 1.0 - float(np.sum(err**2)) / sst if sst > 0 else math.nan}
    rec["test"] = dict(metrics)
    rec["test_normalized"] = dict(metrics)  # the generator learns raw pixel values
    n, C = len(pred), image_shape[0]
    per_layer = np.abs(err).reshape(n, C, -1).mean(-1)  # [n, C]
    return {"mae_per_layer": per_layer,
            "m_pred": pred.reshape(n, C, -1).mean(-1), "m_true": true_flat.reshape(n, C, -1).mean(-1)}


def _save_artifacts(spec: ExperimentSpec, save_dir: Path, r: int, model: torch.nn.Module, model_cfg: dict,
                    store: DatasetStore, x_norm: Standardizer | None, y_norm: Standardizer | None,
                    subset: tuple[np.ndarray, np.ndarray], arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write realization ``r``'s checkpoint and/or test predictions; returns their file names in ``save_dir``."""
    from scalinglab.training.checkpoint import save_checkpoint

    save_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    generate = spec.mode == "generate"
    if "models" in spec.save:
        units = dict(zip(store.target_names, store.target_units, strict=True))
        meta = {"seed": int(spec.seeds[r]), "realization": r, "data": str(spec.data), "split_seed": spec.split_seed,
                "test_size": spec.test_size, "num_train": int(spec.num_train), "input_norm": spec.input_norm,
                "train": spec.train.to_dict(), "target_ranges": _target_ranges(store, spec.targets)}
        save_checkpoint(
            save_dir / f"r{r}.pt", mode=spec.mode, model_name=spec.model, model_config=model_cfg, model=model,
            input_shape=(len(spec.targets),) if generate else store.input_shape,
            input_names=spec.targets if generate else None,
            input_mean=None if x_norm is None else x_norm.mean_, input_std=None if x_norm is None else x_norm.std_,
            target_names=["image"] if generate else spec.targets,
            target_units=[""] if generate else [units[t] for t in spec.targets],
            target_mean=None if y_norm is None else y_norm.mean_, target_std=None if y_norm is None else y_norm.std_,
            target_transform=spec.target_transform, loss=spec.train.loss, meta=meta,
        )
        out["checkpoint"] = f"r{r}.pt"
    if "predictions" in spec.save:
        name = f"predictions_r{r}.npz"
        tmp = save_dir / (name + ".tmp.npz")
        np.savez_compressed(tmp, train_indices=np.sort(subset[0]), val_indices=np.sort(subset[1]),
                            target_names=np.array(spec.targets), **arrays)
        os.replace(tmp, save_dir / name)
        out["predictions"] = name
    return out


def _target_ranges(store: DatasetStore, names: list[str]) -> dict[str, list[float]]:
    """Observed [min, max] of each named target over the whole store (provenance for generators and analyses)."""
    y = store.targets(names)
    return {n: [float(y[:, i].min()), float(y[:, i].max())] for i, n in enumerate(names)}

"""Patch regression of paper 4 (Experiment I): estimate (D, J) from 64 x 64 crops of TDGL domain patterns.

Recipe (paper 4, Sec. II C 2):

- data: one binarized pattern per (D, J, seed); the images of ``N_data`` seeds drawn at random from the training
  seeds (paper: {3, ..., 12}) train the model, the seed-2 images validate it and the seed-1 images test it;
- training: random 64 x 64 crops, each turned by a random multiple of 90 degrees, MAE loss, SGD with momentum,
  learning rate 1e-3 multiplied by 0.8 every 500 steps; early stopping when the validation error (on patches of
  the seed-2 images) has not decreased for 3 consecutive epochs, at most 100 epochs;
- test: the central 64 x 64 crop of every seed-1 image in its four rotations (0, 90, 180, 270 degrees); the test
  error is the average of the four prediction errors;
- the whole procedure (seed draw, initialization, training, test) is repeated (paper: 20 times) for every model
  and ``N_data`` in {1, 4}; Fig. 7 / Table II report the distribution / median of the test MAE.

Choices the paper leaves open (all in :class:`PatchConfig`): the minibatch size (32), the momentum (0.9), what
an "epoch" of random crops is (default: as many crops as cover the training images' area once,
``num_images * H * W / patch^2`` crops, at least 50 steps), and how many validation patches to draw (4 fixed
random crops, with rotations, per seed-2 image, drawn once per run). Targets are standardized with the mean and
standard deviation of the training images' (D, J); inputs with the global mean and standard deviation of the
training pixels (a scalar affine map, which the dense parameter maps of ``scalinglab.analysis.param_map``
require). Metrics are in physical units. ``cnn_small`` is built unpadded (``padding=0``) by default so that its
sliding-window map is exact; pass ``padding=1`` in the model configuration for the "same"-padded variant.

Checkpoints hold ``{"model", "config", "conv_padding", "state_dict", "input_scale", "input_shift",
"target_names", "target_scale", "target_shift"}`` (plus provenance entries), load with
``torch.load(weights_only=True)`` and are read by ``scalinglab map`` (``scalinglab.cli.map.load_checkpoint``):
``physical = network(x * input_scale + input_shift) * target_scale + target_shift``.

Reference: Mamada et al., arXiv:2305.14764 (paper 4, ``domain-pattern-nonuniform-parameters.txt``), Sec. II C 1-2,
Sec. III A (Fig. 7, Table II, Fig. 8), Appendix B (Fig. 14).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scalinglab.data.transforms import Standardizer, center_crop, random_patches, rotations4
from scalinglab.seeding import derive_seed
from scalinglab.training.config import TrainConfig
from scalinglab.training.losses import get_loss
from scalinglab.training.metrics import per_target_dict, regression_metrics
from scalinglab.training.optim import make_torch_optimizer, set_lr

# Model configuration entries added unless the user sets them: unpadded cnn_small (exact dense maps).
DEFAULT_MODEL_CONFIG: dict[str, dict[str, Any]] = {"cnn_small": {"padding": 0}}
# Floor of the default epoch length in SGD steps (see default_steps_per_epoch).
MIN_STEPS_PER_EPOCH = 50


@dataclass(frozen=True)
class PatchConfig:
    """Paper 4's patch-training recipe; every default is the paper's value unless its comment says otherwise."""

    # Side of the square training / test patches in pixels. Paper: 64.
    patch_size: int = 64
    # Patches per SGD step. Not stated in the paper.
    batch_size: int = 32
    # Initial learning rate, and the step decay lr * lr_gamma ** (step // lr_step_size). Paper: 1e-3, 0.8, 500.
    lr: float = 1e-3
    lr_gamma: float = 0.8
    lr_step_size: int = 500
    # SGD momentum. The paper says "momentum SGD" without the value; 0.9 is the usual one.
    momentum: float = 0.9
    # Early stopping: stop after `patience` epochs without a new best validation MAE, or after max_epochs.
    # Paper: 3 and 100. The best-validation weights are restored.
    patience: int = 3
    max_epochs: int = 100
    # SGD steps per epoch; None = as many patches as cover the training images' area once, at least 50
    # (default_steps_per_epoch).
    steps_per_epoch: int | None = None
    # Hard cap on the SGD steps of one run (None: only the epoch limits apply).
    max_steps: int | None = None
    # Fixed random validation patches (with rotations) per seed-2 image.
    val_patches_per_image: int = 4
    # Wrap crops around the image edges (valid for periodic simulations such as TDGL). Paper: crops inside.
    periodic_crops: bool = False
    # Seeds of the test and validation images. Paper: 1 and 2; training seeds are all the others.
    test_seed: int = 1
    val_seed: int = 2
    # Regressed targets (store target names). Paper: D and J.
    targets: tuple[str, ...] = ("D", "J")
    # Forward-pass batch for validation / test (memory only).
    eval_batch_size: int = 256
    # torch device of the model.
    device: str = "cpu"
    # Mixed precision: "auto" = bfloat16 autocast on CUDA (forward passes; weights, optimizer and the loss
    # stay float32), off on CPU; "bf16" forces it (CUDA only); "off" disables it.
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"invalid patch training config: {msg}")

        for name in ("patch_size", "batch_size", "lr_step_size", "patience", "max_epochs",
                     "val_patches_per_image", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("steps_per_epoch", "max_steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                bad(f"{name} must be an integer >= 1 or None, got {v!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad(f"lr must be > 0, got {self.lr}")
        if not 0 < self.lr_gamma <= 1:
            bad(f"lr_gamma must be in (0, 1], got {self.lr_gamma}")
        if not 0 <= self.momentum < 1:
            bad(f"momentum must be in [0, 1), got {self.momentum}")
        if self.test_seed == self.val_seed:
            bad(f"test_seed and val_seed must differ, both are {self.test_seed}")
        if not self.targets or len(set(self.targets)) != len(self.targets):
            bad(f"targets must be distinct names, got {self.targets}")
        if self.mixed_precision not in ("auto", "bf16", "off"):
            bad(f"mixed_precision must be auto, bf16 or off, got {self.mixed_precision!r}")
        if self.mixed_precision == "bf16" and not str(self.device).startswith("cuda"):
            bad(f"mixed_precision 'bf16' needs a CUDA device (device is {self.device!r}); use auto or off")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of forward passes, or None for plain float32."""
        on = self.mixed_precision == "bf16" or (self.mixed_precision == "auto" and str(self.device).startswith("cuda"))
        return torch.bfloat16 if on else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatchConfig:
        """Build from a mapping; an unknown key is a one-line ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown patch training key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(data)
        if "targets" in values:
            t = values["targets"]
            values["targets"] = (t,) if isinstance(t, str) else tuple(t)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable mapping (``from_dict`` reads it back)."""
        out = dataclasses.asdict(self)
        out["targets"] = list(self.targets)
        if out["mixed_precision"] == "auto":
            del out["mixed_precision"]  # the default: studies written before the option compare equal
        return out


# ---------------------------------------------------------------------------------------------- data
@dataclass
class PatternData:
    """Uniform-parameter patterns of one store, split by simulation seed.

    Attributes:
        images: ``[N, C, H, W]`` float32 patterns (TDGL: +-1 binarized).
        targets: ``[N, P]`` float64 targets in physical units, columns ``target_names``.
        seeds: ``[N]`` int64 simulation seed of each image.
        target_names, target_units: the P target columns.
    """

    images: np.ndarray
    targets: np.ndarray
    seeds: np.ndarray
    target_names: list[str]
    target_units: list[str] = field(default_factory=list)

    @classmethod
    def from_store(cls, path: str | Path, targets: Sequence[str] = ("D", "J")) -> PatternData:
        """Read a TDGL campaign store (``scalinglab simulate tdgl``): inputs, the ``targets`` and ``aux/seed``.

        Raises:
            FileNotFoundError: no store at ``path``.
            ValueError: the store lacks a target, the ``seed`` aux array, or holds non-image inputs.
        """
        from scalinglab.data.store import DatasetStore

        if not Path(path).exists():
            raise FileNotFoundError(f"dataset store {path} does not exist")
        with DatasetStore.open(path) as store:
            check_pattern_store(store, path, targets)
            if store.num_samples == 0:
                raise ValueError(f"store {path} holds no samples")
            units = dict(zip(store.target_names, store.target_units))
            return cls(images=np.asarray(store.inputs(), dtype=np.float32),
                       targets=np.asarray(store.targets(list(targets)), dtype=np.float64),
                       seeds=np.asarray(store.aux("seed"), dtype=np.int64).reshape(-1),
                       target_names=list(targets), target_units=[units[t] for t in targets])

    def rows(self, seeds: Sequence[int]) -> np.ndarray:
        """Indices ``[n]`` of the images simulated with any of ``seeds``."""
        return np.flatnonzero(np.isin(self.seeds, np.asarray(list(seeds), dtype=np.int64)))

    def training_seeds(self, config: PatchConfig) -> list[int]:
        """The seeds available for training: all seeds of the store except the test and validation seeds."""
        return sorted(int(s) for s in np.unique(self.seeds) if s not in (config.test_seed, config.val_seed))


def check_pattern_store(store, path: str | Path, targets: Sequence[str]) -> None:
    """ValueError unless an open store holds images ``[C, H, W]`` with the ``targets`` and the ``seed`` aux array
    (the split into train / validation / test is by simulation seed). Shared by ``PatternData.from_store`` and the
    sweep planner, which checks a store without reading its images."""
    missing = [t for t in targets if t not in store.target_names]
    if missing:
        raise ValueError(f"store {path} has no target(s) {', '.join(missing)} (it has {store.target_names}); "
                         f"patch regression needs {list(targets)}")
    if "seed" not in store.aux_names:
        raise ValueError(f"store {path} has no aux array 'seed' (needed to split train/validation/test by "
                         f"simulation seed; scalinglab simulate tdgl writes it)")
    if len(store.input_shape) != 3:
        raise ValueError(f"store {path} holds inputs of shape {list(store.input_shape)}, not images [C, H, W]")


def draw_training_seeds(available: Sequence[int], num_data: int, root_seed: int, repeat: int) -> list[int]:
    """``num_data`` distinct training seeds drawn at random for repeat ``repeat`` (paper: from {3, ..., 12}).

    The draw depends only on (root_seed, num_data, repeat), so every model of a study sees the same seeds in the
    same repeat (paired comparison).
    """
    available = sorted(int(s) for s in available)
    if isinstance(num_data, bool) or not isinstance(num_data, int | np.integer) or num_data < 1:
        raise ValueError(f"num_data must be a positive integer, got {num_data!r}")
    if num_data > len(available):
        raise ValueError(f"num_data={num_data} is larger than the {len(available)} training seeds available "
                         f"({available}); simulate more seeds (e.g. --seeds 1..12)")
    gen = np.random.default_rng(derive_seed(root_seed, "patch-seeds", int(num_data), int(repeat)))
    return sorted(int(s) for s in gen.choice(available, size=num_data, replace=False))


def study_seeds(available: Sequence[int], num_data: int, root_seed: int, repeat: int) -> tuple[list[int], int]:
    """(training seeds, run seed) of repeat ``repeat`` at ``N_data = num_data`` of a study with ``root_seed``.

    The one rule shared by :func:`run_patch_study` and the sweep engine's patch tasks
    (``scalinglab.sweeps.task``), so that both train the same runs from the same seeds: the training seeds are
    :func:`draw_training_seeds`, the run seed (initialization, crops, validation patches) is
    ``derive_seed(root_seed, "patch-run", num_data, repeat)``. Neither depends on the model (paired comparison).
    """
    return (draw_training_seeds(available, num_data, root_seed, repeat),
            run_seed(num_data, root_seed, repeat))


def run_seed(num_data: int, root_seed: int, repeat: int) -> int:
    """The run seed of repeat ``repeat`` at ``N_data = num_data`` (see :func:`study_seeds`)."""
    return derive_seed(root_seed, "patch-run", int(num_data), int(repeat))


# ---------------------------------------------------------------------------------------------- models
def resolve_model_config(name: str, config: dict[str, Any] | None, in_channels: int, num_targets: int
                         ) -> dict[str, Any]:
    """The model configuration used for training: defaults of this recipe, then the user's entries."""
    cfg = {"in_channels": in_channels, "out_features": num_targets, **DEFAULT_MODEL_CONFIG.get(name, {})}
    cfg.update(config or {})
    return cfg


def build_patch_model(name: str, config: dict[str, Any], pretrained: str | None = None) -> nn.Module:
    """A model of ``scalinglab.models`` (``pretrained`` = a local weights file for the torchvision backbones)."""
    from scalinglab.models import get_model

    if pretrained is not None:
        if "pretrained" in config:
            raise ValueError("give pretrained weights either as pretrained=PATH or in the model config, not both")
        return get_model(name, **config, pretrained=pretrained)
    return get_model(name, **config)


def model_label(name: str, pretrained: str | None) -> str:
    """Paper-style label: the model name, with ``_pret`` for pretrained weights (``regnet_x_16gf_pret``)."""
    return f"{name}_pret" if pretrained else name


# ---------------------------------------------------------------------------------------------- training
@dataclass
class PatchRun:
    """One trained patch model: the network (best validation weights, eval mode), its record and checkpoint."""

    model: nn.Module
    record: dict[str, Any]
    checkpoint: dict[str, Any]


def default_steps_per_epoch(num_images: int, height: int, width: int, patch_size: int, batch_size: int) -> int:
    """Steps of one "epoch" of random crops: as many crops as cover the training images' area once,
    ``num_images * H * W / patch^2 / batch_size``, but at least ``MIN_STEPS_PER_EPOCH``.

    The floor keeps early stopping (patience counted in epochs) from ending a run on small stores after a
    handful of steps: the quick TDGL profile's 22 images of 64 x 64 would otherwise make 1-step epochs.
    Paper 4's data (about 290 images of 256 x 256 per seed) gives 145 steps per seed at batch 32.
    """
    return max(MIN_STEPS_PER_EPOCH, round(num_images * height * width / patch_size**2 / batch_size))


def _lr_at_step(config: PatchConfig, step: int) -> float:
    """Step decay lr * gamma ** (step // step_size) (paper 4: 1e-3 x 0.8 every 500 steps), step 0-based."""
    return config.lr * config.lr_gamma ** (step // config.lr_step_size)


def _autocast(device: str, dtype: torch.dtype | None):
    """bfloat16 autocast on CUDA when ``dtype`` is set, else a no-op context."""
    import contextlib

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@torch.no_grad()
def _predict(model: nn.Module, x: np.ndarray, scale: float, shift: float, batch: int, device: str,
             autocast_dtype: torch.dtype | None = None) -> np.ndarray:
    """Network outputs ``[n, P]`` (standardized units) for raw patches ``x`` ``[n, C, p, p]``."""
    model.eval()
    outs = []
    for a in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[a : a + batch])).to(device=device, dtype=torch.float32)
        with _autocast(device, autocast_dtype):
            out = model(xb * scale + shift)
        outs.append(out.double().cpu())
    return torch.cat(outs).numpy()


def evaluate_test(model: nn.Module, data: PatternData, rows: np.ndarray, patch_size: int, input_scale: float,
                  input_shift: float, target_mean: np.ndarray, target_std: np.ndarray, batch: int = 256,
                  device: str = "cpu") -> dict[str, Any]:
    """Paper 4's test: central crop of each image in its 4 rotations; errors averaged over the rotations.

    Args:
        model: trained network (standardized inputs -> standardized targets).
        data: the patterns; ``rows`` ``[n]`` are the test images.
        patch_size: crop side (paper: 64).
        input_scale, input_shift: input map ``x * scale + shift``.
        target_mean, target_std: ``[P]`` target standardization (physical = out * std + mean).

    Returns:
        ``{"per_target": {name: {"mae", "mse", "mape", "r2"}}, "mae": {name: value}, "true": [n, P],
        "pred": [n, P] (rotation-averaged predictions), "pred_rotations": [n, 4, P]}``; MAE, MSE, MAPE are
        means over all n x 4 rotated predictions, so the MAE is the average of the four rotations' errors.
    """
    crops = center_crop(data.images[rows], patch_size)  # [n, C, p, p]
    rot = rotations4(crops)  # [4, n, C, p, p]
    n = len(rows)
    flat = np.ascontiguousarray(np.swapaxes(rot, 0, 1)).reshape(n * 4, *crops.shape[1:])  # image-major
    out = _predict(model, flat, input_scale, input_shift, batch, device)  # [4n, P]
    pred = out * target_std + target_mean  # physical units
    true = data.targets[rows]
    metrics = regression_metrics(pred, np.repeat(true, 4, axis=0))
    pred_rot = pred.reshape(n, 4, -1)
    return {"per_target": per_target_dict(metrics, data.target_names),
            "mae": {t: float(metrics["mae"][i]) for i, t in enumerate(data.target_names)},
            "true": true.tolist(), "pred": pred_rot.mean(axis=1).tolist(), "pred_rotations": pred_rot.tolist()}


def train_patch_model(data: PatternData, model_name: str, *, train_seeds: Sequence[int], seed: int,
                      config: PatchConfig | None = None, model_config: dict[str, Any] | None = None,
                      pretrained: str | None = None, progress=None) -> PatchRun:
    """Train one patch regressor with paper 4's recipe and test it on the seed-1 images.

    Args:
        data: patterns with targets and simulation seeds.
        model_name: a ``scalinglab.models`` name (``cnn_small``, ``regnet_x_16gf``, ...).
        train_seeds: simulation seeds whose images train the model (``N_data`` of them).
        seed: seed of the initialization (``torch.manual_seed``), the crops and the validation patches.
        config: the recipe (default :class:`PatchConfig`).
        model_config: model configuration entries (``in_channels`` / ``out_features`` are filled in).
        pretrained: local weights file for a torchvision backbone (paper: ImageNet weights, "reg_pret").
        progress: optional progress bar; advanced by one per SGD step.

    Returns:
        :class:`PatchRun` with the best-validation model, a JSON-serializable record (test MAE per target in
        physical units, the predict-the-training-mean baseline MAE, steps, epochs, ...) and the checkpoint dict.
    """
    cfg = config or PatchConfig()
    if list(data.target_names) != list(cfg.targets):
        raise ValueError(f"data targets {data.target_names} differ from the config's targets {list(cfg.targets)}")
    train_seeds = sorted(int(s) for s in train_seeds)
    if not train_seeds:
        raise ValueError("train_seeds is empty")
    forbidden = {cfg.test_seed, cfg.val_seed} & set(train_seeds)
    if forbidden:
        raise ValueError(f"training seeds {sorted(forbidden)} are the test/validation seeds "
                         f"({cfg.test_seed}/{cfg.val_seed})")
    present = set(int(s) for s in np.unique(data.seeds))
    for what, seeds in (("training", train_seeds), ("test", [cfg.test_seed]), ("validation", [cfg.val_seed])):
        absent = sorted(set(seeds) - present)
        if absent:
            raise ValueError(f"{what} seed(s) {absent} have no images in the store (seeds present: {sorted(present)})")
    train_rows, val_rows, test_rows = data.rows(train_seeds), data.rows([cfg.val_seed]), data.rows([cfg.test_seed])
    h, w = data.images.shape[-2:]
    p = cfg.patch_size
    if p > min(h, w):
        raise ValueError(f"patch_size {p} is larger than the images ({h} x {w})")
    device = cfg.device
    t0 = time.perf_counter()

    # Standardization from the training images only: a global (scalar) input map, per-target output map.
    x_train = data.images[train_rows]  # [n, C, H, W]
    in_norm = Standardizer("global").fit(x_train)
    input_scale, input_shift = float(1.0 / in_norm.std_), float(-in_norm.mean_ / in_norm.std_)
    t_norm = Standardizer("per_feature").fit(data.targets[train_rows])
    t_mean, t_std = np.asarray(t_norm.mean_, np.float64), np.asarray(t_norm.std_, np.float64)
    y_train = torch.as_tensor((data.targets[train_rows] - t_mean) / t_std, dtype=torch.float32, device=device)

    mcfg = resolve_model_config(model_name, model_config, data.images.shape[1], len(data.target_names))
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_patch_model(model_name, mcfg, pretrained).to(device)
    amp = cfg.autocast_dtype  # bfloat16 forward passes on CUDA (cfg.mixed_precision)
    loss_fn = get_loss("mae")
    optimizer = make_torch_optimizer(model.parameters(), TrainConfig(optimizer="sgd", lr=cfg.lr,
                                                                     momentum=cfg.momentum, weight_decay=0.0))
    crop_rng = np.random.default_rng(derive_seed(seed, "crops"))
    val_rng = np.random.default_rng(derive_seed(seed, "validation"))
    val_x, val_src = random_patches(data.images[val_rows], p, cfg.val_patches_per_image * len(val_rows), val_rng,
                                    rotate=True, periodic=cfg.periodic_crops)
    val_y = (data.targets[val_rows][val_src] - t_mean) / t_std  # [n_val, P] standardized

    steps_per_epoch = cfg.steps_per_epoch or default_steps_per_epoch(len(train_rows), h, w, p, cfg.batch_size)
    step, epochs_run, best_epoch, bad_epochs = 0, 0, -1, 0
    best_val, best_state = math.inf, None
    val_history: list[float] = []
    for epoch in range(cfg.max_epochs):
        model.train()
        for _ in range(steps_per_epoch):
            set_lr(optimizer, _lr_at_step(cfg, step))
            xb, src = random_patches(x_train, p, cfg.batch_size, crop_rng, rotate=True, periodic=cfg.periodic_crops)
            xb = torch.from_numpy(xb).to(device=device, dtype=torch.float32) * input_scale + input_shift
            with _autocast(device, amp):
                out = model(xb)
            loss = loss_fn(out.float(), y_train[torch.from_numpy(src).to(device)])  # the loss in float32
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if progress is not None:
                progress.advance(1)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        epochs_run = epoch + 1
        val_pred = _predict(model, val_x, input_scale, input_shift, cfg.eval_batch_size, device, amp)
        val_loss = float(np.mean(np.abs(val_pred - val_y)))  # MAE in standardized units (the training loss)
        if not math.isfinite(val_loss):
            raise ValueError(f"{model_name}: validation loss is {val_loss} at epoch {epoch} (training diverged; "
                             f"lower lr)")
        val_history.append(val_loss)
        if val_loss < best_val:
            best_val, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        if bad_epochs >= cfg.patience or (cfg.max_steps is not None and step >= cfg.max_steps):
            break
    model.load_state_dict(best_state)
    model.eval()

    test = evaluate_test(model, data, test_rows, p, input_scale, input_shift, t_mean, t_std,
                         cfg.eval_batch_size, device)
    # Predict-the-training-mean baseline on the same test images: what a model that learned nothing scores.
    base = np.mean(np.abs(data.targets[test_rows] - t_mean), axis=0)
    from scalinglab.models import count_parameters

    ckpt_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in mcfg.items()}
    record = {
        "model": model_name, "label": model_label(model_name, pretrained), "model_config": ckpt_config,
        "pretrained": None if pretrained is None else str(pretrained), "num_data": len(train_seeds),
        "train_seeds": train_seeds, "seed": int(seed), "num_params": count_parameters(model),
        "num_train_images": int(len(train_rows)), "num_val_patches": int(len(val_x)),
        "num_test_images": int(len(test_rows)), "steps": step, "steps_per_epoch": steps_per_epoch,
        "mixed_precision": "off" if amp is None else "bf16",  # training and validation; test in float32
        "epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_mae_normalized": best_val,
        "val_history": val_history, "wall_time_s": time.perf_counter() - t0,
        "target_names": list(data.target_names), "target_units": list(data.target_units),
        "test_mae": test["mae"], "test": test["per_target"],
        "baseline_mae": {t: float(base[i]) for i, t in enumerate(data.target_names)},
        "test_true": test["true"], "test_pred": test["pred"],
    }
    checkpoint = {
        "model": model_name, "config": ckpt_config, "conv_padding": None,
        "state_dict": _cpu_state_dict(model),
        "input_scale": input_scale, "input_shift": input_shift, "target_names": list(data.target_names),
        "target_scale": t_std.tolist(), "target_shift": t_mean.tolist(), "patch_size": p,
        "label": record["label"], "pretrained": record["pretrained"], "num_data": len(train_seeds),
        "train_seeds": train_seeds, "seed": int(seed), "test_mae": test["mae"],
    }
    return PatchRun(model=model, record=record, checkpoint=checkpoint)


def _cpu_state_dict(model: nn.Module) -> collections.OrderedDict:
    """A CPU copy of ``model.state_dict()`` that keeps its per-module ``_metadata`` (layout versions): some
    torchvision modules (MNASNet) refuse to load a state dict without them."""
    sd = model.state_dict()
    out = collections.OrderedDict((k, v.detach().cpu().clone()) for k, v in sd.items())
    out._metadata = getattr(sd, "_metadata", None)  # type: ignore[attr-defined]
    return out


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint atomically (temp file + rename); it loads with ``torch.load(weights_only=True)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class ModelSpec:
    """One model variant of a study: registry name, configuration, optional local pretrained weights."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    label: str | None = None

    @property
    def display(self) -> str:
        """The label used in tables and figures (``name`` or ``name_pret`` unless given)."""
        return self.label or model_label(self.name, self.pretrained)


def run_key(label: str, num_data: int, repeat: int) -> str:
    """File stem of one run's record and checkpoint: ``<label>_n<N_data>_r<repeat>``."""
    return f"{label}_n{int(num_data)}_r{int(repeat)}"


def run_patch_study(data: PatternData, models: Sequence[ModelSpec], num_data: Sequence[int], repeats: int,
                    config: PatchConfig | None = None, root_seed: int = 0, out_dir: str | Path | None = None,
                    quiet: bool = False) -> list[dict[str, Any]]:
    """Experiment I of paper 4: every model x ``N_data`` x repeat, each with its own seed draw and training.

    Repeat r with ``N_data = n`` draws its training seeds and its run seed from ``(root_seed, n, r)`` only, so
    all models of a study see the same training images and crops in the same repeat (paired comparison).
    With ``out_dir`` every finished run writes ``checkpoints/<key>.pt`` then ``records/<key>.json`` (atomically);
    a rerun skips runs whose record exists (resumable).

    Returns:
        The records of all runs (finished before or now), in study order.
    """
    import json
    import os

    from scalinglab.progress import progress_bar

    cfg = config or PatchConfig()
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if not models:
        raise ValueError("no models given")
    nums = [int(n) for n in num_data]
    available = data.training_seeds(cfg)
    for n in nums:  # fail before any training if a requested N_data cannot be served
        draw_training_seeds(available, n, root_seed, 0)
    labels = [m.display for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be distinct, got {labels} (give a label to each variant)")
    out = Path(out_dir) if out_dir is not None else None
    plan = [(m, n, r) for m in models for n in nums for r in range(repeats)]
    records: list[dict[str, Any]] = []
    with progress_bar(len(plan), "patch regression", quiet=quiet) as bar:
        for m, n, r in plan:
            key = run_key(m.display, n, r)
            rec_path = out / "records" / f"{key}.json" if out is not None else None
            if rec_path is not None and rec_path.is_file():
                done = json.loads(rec_path.read_text())
                wanted = resolve_model_config(m.name, m.config, data.images.shape[1], len(data.target_names))
                wanted = {k: (list(v) if isinstance(v, tuple) else v) for k, v in wanted.items()}
                if (done.get("model"), done.get("model_config"), done.get("pretrained")) != (
                        m.name, wanted, None if m.pretrained is None else str(m.pretrained)):
                    raise ValueError(f"{rec_path} was trained with another model configuration than "
                                     f"{m.display} now; give this variant another label or use another out_dir")
                records.append(done)
                bar.advance(1)
                continue
            bar.set_description(f"{m.display} N={n} repeat {r}")
            seeds, seed = study_seeds(available, n, root_seed, r)
            run = train_patch_model(data, m.name, train_seeds=seeds, seed=seed, config=cfg, model_config=m.config,
                                    pretrained=m.pretrained)
            run.record.update({"label": m.display, "repeat": r, "root_seed": int(root_seed)})
            run.checkpoint.update({"label": m.display, "repeat": r})
            if out is not None:
                ckpt_path = out / "checkpoints" / f"{key}.pt"
                save_checkpoint(run.checkpoint, ckpt_path)
                run.record["checkpoint"] = str(ckpt_path.relative_to(out))
                rec_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = rec_path.with_name(rec_path.name + ".tmp")
                tmp.write_text(json.dumps(run.record, indent=1))
                os.replace(tmp, rec_path)
            records.append(run.record)
            bar.advance(1)
    return records

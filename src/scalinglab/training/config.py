"""Training configuration: one frozen dataclass shared by the single-model and the ensemble trainer.

Defaults follow paper 1 Methods (scaling-laws-deep-regression.txt, "Deep learning algorithms"): Adam,
learning rate 1e-3 decreased by a factor 0.98 after every epoch, 200 epochs, early-stopping patience 100, MSE.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("exponential", "cosine", "step", "constant")
LOSSES = ("mse", "mae", "gaussian_nll")
PATHS = ("auto", "stacked", "vmap", "sequential")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one network (or R realizations of it at once).

    Units: learning rates are per optimizer step; epochs are full passes over a member's training split.
    """

    # Passes over the training split. Paper 1: 200.
    epochs: int = 200
    # Optional limit in optimizer steps (iterations); training stops at whichever limit comes first.
    max_steps: int | None = None
    # Optional floor in optimizer steps: a small training set gets more epochs, ceil(min_steps / steps per
    # epoch), so that it is not step-starved (paper 3 trains 1e4 epochs at every size); None: epochs as given.
    min_steps: int | None = None
    # Minibatch size. Paper 1 does not state it; 256 is the size of the benchmark regime in issue 2.
    batch_size: int = 256
    # Minibatch size for validation/test forward passes only (memory, not numerics).
    eval_batch_size: int = 4096
    # "adam" (paper 1), "adamw" (decoupled weight decay) or "sgd" (with momentum).
    optimizer: str = "adam"
    # Initial learning rate. Paper 1: 1e-3.
    lr: float = 1e-3
    # Adam/AdamW moment decay rates and denominator epsilon (torch defaults).
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    # L2 penalty (adam, sgd) or decoupled decay (adamw). Paper 1 found L2 did not help: 0.
    weight_decay: float = 0.0
    # SGD momentum (ignored by adam/adamw).
    momentum: float = 0.9
    # "exponential": lr * lr_decay**epoch (paper 1: 0.98); "cosine": anneal to min_lr over `epochs`;
    # "step": multiply by step_gamma every step_epochs epochs; "constant".
    schedule: str = "exponential"
    lr_decay: float = 0.98
    step_epochs: int = 50
    step_gamma: float = 0.1
    min_lr: float = 0.0
    # Early stopping: stop a member after this many epochs without a new best validation loss;
    # its best-validation weights are restored. None disables early stopping. Paper 1: 100.
    patience: int | None = 100
    # Relative-improvement stopping (off when None): an epoch counts as an improvement for early stopping only
    # when its validation loss is below (1 - min_rel_improvement) x the loss of the last epoch that counted, and
    # a member stops after `patience` epochs without one. A validation loss still creeping down (lr decaying by
    # 0.98 per epoch) then no longer postpones the stop forever. The restored weights are still those of the
    # lowest validation loss seen (any improvement). Needs `patience`; 0 is the plain patience rule.
    min_rel_improvement: float | None = None
    # "mse" (paper 1), "mae" (paper 2 generator) or "gaussian_nll" (two outputs per target: mean, sigma).
    loss: str = "mse"
    # Per-member gradient clipping by total L2 norm (as torch.nn.utils.clip_grad_norm_); None = off.
    grad_clip: float | None = None
    # Noise augmentation (paper 2 Sec. II.4, beyond the paper's recipe): each training sample of a minibatch is
    # given white Gaussian noise at an SNR drawn uniformly in dB from this (low, high) range, with the noise power
    # set from the sample's own signal power (Eqs. 7-10), before standardization. None = train on clean inputs.
    noise_snr_db: tuple[float, float] | None = None
    # Share of training samples that get noise (the rest stay clean, so clean accuracy is kept). Validation and
    # test inputs are never augmented.
    noise_fraction: float = 1.0
    # Ensemble execution: "auto" picks stacked batched layers for plain MLPs, torch.func.vmap for other
    # models, and a sequential loop when a model cannot be stacked. The others force one path.
    path: str = "auto"

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"invalid training config: {msg}")

        if self.epochs < 1:
            bad(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            bad(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.min_steps is not None and self.min_steps < 1:
            bad(f"min_steps must be >= 1 or None, got {self.min_steps}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            bad("batch_size and eval_batch_size must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer '{self.optimizer}' unknown (known: {', '.join(OPTIMIZERS)})")
        if self.schedule not in SCHEDULES:
            bad(f"schedule '{self.schedule}' unknown (known: {', '.join(SCHEDULES)})")
        if self.loss not in LOSSES:
            bad(f"loss '{self.loss}' unknown (known: {', '.join(LOSSES)})")
        if self.path not in PATHS:
            bad(f"path '{self.path}' unknown (known: {', '.join(PATHS)})")
        if not self.lr > 0:
            bad(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            bad(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.eps <= 0 or not 0 <= self.momentum < 1:
            bad("weight_decay must be >= 0, eps > 0 and momentum in [0, 1)")
        if not 0 < self.lr_decay <= 1 or not 0 < self.step_gamma <= 1 or self.step_epochs < 1:
            bad("lr_decay and step_gamma must be in (0, 1] and step_epochs >= 1")
        if self.patience is not None and self.patience < 1:
            bad(f"patience must be >= 1 or None, got {self.patience}")
        if self.min_rel_improvement is not None:
            if not 0 <= self.min_rel_improvement < 1:
                bad(f"min_rel_improvement must be in [0, 1) or None, got {self.min_rel_improvement}")
            if self.patience is None:
                bad("min_rel_improvement needs patience (the number of epochs it waits for an improvement)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            bad(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.noise_snr_db is not None:
            if len(self.noise_snr_db) != 2 or not all(math.isfinite(v) for v in self.noise_snr_db):
                bad(f"noise_snr_db must be two finite numbers [low, high] in dB, got {self.noise_snr_db}")
            if self.noise_snr_db[0] > self.noise_snr_db[1]:
                bad(f"noise_snr_db must be [low, high] with low <= high, got {self.noise_snr_db}")
        if not 0 < self.noise_fraction <= 1:
            bad(f"noise_fraction must be in (0, 1], got {self.noise_fraction}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a plain mapping (TOML/JSON); an unknown key is a one-line ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown training config key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        values = dict(data)
        _check_scalar_types(values)
        if "betas" in values:
            values["betas"] = tuple(float(b) for b in values["betas"])
        if values.get("noise_snr_db") is not None:
            try:
                values["noise_snr_db"] = tuple(float(b) for b in values["noise_snr_db"])
            except (TypeError, ValueError):
                raise ValueError(
                    f"invalid training config: noise_snr_db must be [low, high] in dB, got {values['noise_snr_db']!r}"
                ) from None
        return cls(**values)

    def for_train_size(self, num_train: int) -> TrainConfig:
        """This config with ``epochs`` raised so that ``num_train`` samples get at least ``min_steps`` steps."""
        if self.min_steps is None:
            return self
        steps_per_epoch = -(-int(num_train) // self.batch_size)
        epochs = max(self.epochs, -(-self.min_steps // steps_per_epoch))
        return self if epochs == self.epochs else dataclasses.replace(self, epochs=epochs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable mapping that ``from_dict`` reads back to an equal config."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        if self.noise_snr_db is not None:
            out["noise_snr_db"] = list(self.noise_snr_db)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (unknown keys rejected like ``from_dict``)."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **changes})


# TOML gives strings for quoted values (epochs = "two"); the comparisons in __post_init__ would then fail
# with a TypeError that names no key. Scalar fields are checked against their annotation first.
_SCALAR_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_KIND_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def _check_scalar_types(values: dict[str, Any]) -> None:
    for f in dataclasses.fields(TrainConfig):
        if f.name not in values:
            continue
        kinds = [k.strip() for k in str(f.type).split("|")]
        base = next((k for k in kinds if k in _SCALAR_KINDS), None)
        if base is None:
            continue  # tuples and other structured fields are checked where they are converted
        value = values[f.name]
        if value is None and "None" in kinds:
            continue
        ok = isinstance(value, _SCALAR_KINDS[base]) and (base == "bool" or not isinstance(value, bool))
        if not ok:
            allowed = _KIND_WORDS[base] + (" or none" if "None" in kinds else "")
            raise ValueError(f"invalid training config: {f.name} must be {allowed}, got {value!r}")

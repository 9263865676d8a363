"""Single-network trainer: minibatch training with per-epoch validation, early stopping and weight restore.

This is the reference the ensemble trainer (``scalinglab.training.ensemble``) must reproduce member by member:
both read the data through :class:`TrainData`, shuffle with :func:`epoch_order` from a per-member seed,
standardize minibatches with the same fused operation and evaluate validation loss with the same reduction.

Reference: paper 1 Methods (scaling-laws-deep-regression.txt): Adam, lr 1e-3 x 0.98 per epoch, 200 epochs,
early-stopping patience 100, 7/8 train and 1/8 validation, standardization from training data only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scalinglab.training.config import TrainConfig
from scalinglab.training.losses import get_loss
from scalinglab.training.optim import lr_at_epoch, make_torch_optimizer


def lr_multiplier_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Optimizer parameter groups of ``model`` with a per-parameter learning-rate multiplier.

    A model that exposes ``lr_multipliers`` ({parameter name: factor}, e.g. muP's ``eta * base_width / n`` for
    hidden and output weights) trains each parameter at ``base lr x factor``; every other parameter at the base
    rate. Groups keep the model's parameter order within each distinct factor.

    Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eq. 21.
    """
    mult = getattr(model, "lr_multipliers", None) or {}
    groups: dict[float, list[Tensor]] = {}
    for name, p in model.named_parameters():
        groups.setdefault(float(mult.get(name, 1.0)), []).append(p)
    return [{"params": ps, "lr_multiplier": m} for m, ps in groups.items()]


def set_group_lrs(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set each parameter group's learning rate to ``lr x`` its ``lr_multiplier`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_multiplier", 1.0)


def _affine(mean: Tensor | None, std: Tensor | None, num_members: int, item_ndim: int):
    """Turn (mean, std) into (shift, scale) with ``x_norm = x * scale + shift``, shaped [R, 1, ...].

    ``mean``/``std`` are [R, *item_shape] (per feature/pixel) or [R] (global); the extra 1 broadcasts over the
    minibatch dimension. One fused ``addcmul`` then standardizes a gathered minibatch [R, B, *item_shape].
    """
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        raise ValueError("standardization needs both mean and std")
    mean = mean.reshape(num_members, -1) if mean.dim() == 1 else mean
    std = std.reshape(num_members, -1) if std.dim() == 1 else std
    if mean.shape[0] != num_members or std.shape[0] != num_members:
        raise ValueError(f"standardization statistics need a leading dimension of {num_members} members")
    if (std <= 0).any() or not torch.isfinite(std).all():
        raise ValueError("standardization std must be finite and > 0")

    def shaped(t: Tensor) -> Tensor:
        if t.dim() == 2 and t.shape[1] == 1 and item_ndim > 1:  # global statistic
            t = t.reshape(num_members, *([1] * item_ndim))
        return t.unsqueeze(1)  # [R, 1, *item]

    scale = 1.0 / std.to(torch.float32)
    shift = -mean.to(torch.float32) * scale
    return shaped(shift).contiguous(), shaped(scale).contiguous()


@dataclass
class TrainData:
    """Data of R realizations that share one sample pool (R = 1 for the single-model trainer).

    Attributes:
        x: [N, *input_shape] float32 inputs of the whole pool (raw units), on the training device.
        y: [N, P] float32 targets of the pool (physical units).
        train_idx: [R, n_train] int64 rows of ``x``/``y`` used for training by each member.
        val_idx: [R, n_val] int64 validation rows of each member.
        x_mean, x_std: [R, *input_shape] (per feature/pixel) or [R] (global) input standardization fitted on
            each member's training rows; None for inputs already standardized.
        y_mean, y_std: [R, P] target standardization; None to train on raw targets.
        noise_snr_db: (low, high) SNR range in dB of the training-input noise augmentation, or None
            (``TrainConfig.noise_snr_db``; paper 2 Eqs. 7-10).
        noise_fraction: share of training samples that get noise.
        noise_seed: seed of the augmentation noise (its own generator on the data's device).
    """

    x: Tensor
    y: Tensor
    train_idx: Tensor
    val_idx: Tensor
    x_mean: Tensor | None = None
    x_std: Tensor | None = None
    y_mean: Tensor | None = None
    y_std: Tensor | None = None
    noise_snr_db: tuple[float, float] | None = None
    noise_fraction: float = 1.0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        if self.train_idx.dim() == 1:
            self.train_idx = self.train_idx.unsqueeze(0)
        if self.val_idx.dim() == 1:
            self.val_idx = self.val_idx.unsqueeze(0)
        if self.y.dim() != 2:
            raise ValueError(f"targets must be [N, P], got shape {tuple(self.y.shape)}")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"inputs have {self.x.shape[0]} samples but targets have {self.y.shape[0]}")
        if self.train_idx.shape[0] != self.val_idx.shape[0]:
            raise ValueError("train_idx and val_idx must have the same number of members")
        if self.train_idx.shape[1] < 1 or self.val_idx.shape[1] < 1:
            raise ValueError("every member needs at least one training and one validation sample")
        R = self.num_members
        self.x_shift, self.x_scale = _affine(self.x_mean, self.x_std, R, self.x.dim() - 1)
        self.y_shift, self.y_scale = _affine(self.y_mean, self.y_std, R, 1)
        self._noise_gen = None
        if self.noise_snr_db is not None:
            self._noise_gen = torch.Generator(device=self.x.device).manual_seed(int(self.noise_seed))

    @property
    def num_members(self) -> int:
        return int(self.train_idx.shape[0])

    @property
    def num_train(self) -> int:
        return int(self.train_idx.shape[1])

    @property
    def num_val(self) -> int:
        return int(self.val_idx.shape[1])

    def member(self, r: int) -> TrainData:
        """The data of member ``r`` alone (R = 1), sharing the pool tensors."""
        sl = slice(r, r + 1)
        pick = lambda t: None if t is None else t[sl]
        return TrainData(self.x, self.y, self.train_idx[sl], self.val_idx[sl], pick(self.x_mean),
                         pick(self.x_std), pick(self.y_mean), pick(self.y_std), self.noise_snr_db,
                         self.noise_fraction, self.noise_seed + r)

    def to(self, device: torch.device | str) -> TrainData:
        mv = lambda t: None if t is None else t.to(device)
        return TrainData(self.x.to(device), self.y.to(device), self.train_idx.to(device),
                         self.val_idx.to(device), mv(self.x_mean), mv(self.x_std), mv(self.y_mean),
                         mv(self.y_std), self.noise_snr_db, self.noise_fraction, self.noise_seed)

    def _add_noise(self, xb: Tensor) -> Tensor:
        """White Gaussian noise at a per-sample SNR drawn uniformly in dB (raw units, before standardization).

        sigma^2 = P_s / 10^(SNR_dB / 10) with P_s the mean squared value of the sample itself (paper 2,
        Eqs. 7-10, as ``data.transforms.add_noise_snr``); a share ``1 - noise_fraction`` of samples stays clean.
        """
        lo, hi = self.noise_snr_db
        lead = xb.shape[:2]  # (G, b)
        power = xb.reshape(*lead, -1).pow(2).mean(-1)
        snr_db = lo + (hi - lo) * torch.rand(lead, generator=self._noise_gen, device=xb.device)
        sigma = torch.sqrt(power / torch.pow(10.0, snr_db / 10.0))
        if self.noise_fraction < 1:
            keep = torch.rand(lead, generator=self._noise_gen, device=xb.device) < self.noise_fraction
            sigma = sigma * keep
        noise = torch.randn(xb.shape, generator=self._noise_gen, device=xb.device, dtype=xb.dtype)
        return xb + noise * sigma.reshape(*lead, *([1] * (xb.dim() - 2))).to(xb.dtype)

    def batch(self, rows: Tensor, g0: int = 0, g1: int | None = None, augment: bool = False) -> tuple[Tensor, Tensor]:
        """Gather and standardize rows -> inputs [G, b, *input_shape], targets [G, b, P].

        Args:
            rows: [G, b] pool rows of members g0 .. g1 - 1 (all members by default).
            g0, g1: which members' standardization statistics to apply.
            augment: apply the training-input noise augmentation (training minibatches only).
        """
        g1 = self.num_members if g1 is None else g1
        # index_select on the flattened pool copies whole rows (faster than advanced indexing)
        flat_rows = rows.reshape(-1)
        xb = torch.index_select(self.x, 0, flat_rows).view(*rows.shape, *self.x.shape[1:])
        yb = torch.index_select(self.y, 0, flat_rows).view(*rows.shape, self.y.shape[1])
        if augment and self._noise_gen is not None:
            xb = self._add_noise(xb)
        if self.x_scale is not None:
            xb = torch.addcmul(self.x_shift[g0:g1], xb, self.x_scale[g0:g1])
        if self.y_scale is not None:
            yb = torch.addcmul(self.y_shift[g0:g1], yb, self.y_scale[g0:g1])
        return xb, yb


@dataclass(frozen=True)
class EpochProgress:
    """Where a training stands after an epoch (what an in-task progress display shows).

    Attributes:
        epoch: 1-based epoch just finished (of the member being trained, on the sequential path).
        epochs: the epoch budget (``TrainConfig.epochs``).
        active: members still training after this epoch.
        members: members of the ensemble (R).
        member: 0-based member trained on the sequential path (one member at a time), else None.
    """

    epoch: int
    epochs: int
    active: int
    members: int
    member: int | None = None


def make_generators(shuffle_seeds: list[int]) -> list[torch.Generator]:
    """One CPU ``torch.Generator`` per member: its own reproducible shuffling stream."""
    return [torch.Generator().manual_seed(int(s)) for s in shuffle_seeds]


def epoch_order(data: TrainData, generators: list[torch.Generator]) -> Tensor:
    """Rows of the next epoch for each member, [R, n_train], each member shuffled by its own generator.

    Generated on the CPU (same stream on every device), moved once per epoch.
    """
    n = data.num_train
    perms = torch.stack([torch.randperm(n, generator=g) for g in generators])  # [R, n]
    return data.train_idx.gather(1, perms.to(data.train_idx.device))


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (the last minibatch may be smaller: nothing is dropped)."""
    return -(-num_train // batch_size)


#: Why a network stopped training (``TrainResult.stop_reason``, ``EnsembleResult.stop_reason``):
#: the early-stopping rule fired (patience, with ``min_rel_improvement`` when set), the epoch budget ran out
#: while the rule had not fired, the step budget (``max_steps``) ran out, or a validation loss was NaN or
#: infinite (training stops there: the parameters do not come back from NaN).
STOP_REASONS = ("early_stopping", "epoch_cap", "step_cap", "diverged")


def stopping_improved(val: float, reference: float, config: TrainConfig) -> bool:
    """Whether ``val`` counts as an improvement for early stopping over the reference loss.

    With ``config.min_rel_improvement = d`` an improvement must reach ``val < (1 - d) x reference``
    (``reference``: the loss of the last epoch that counted, +inf before the first); without it, any decrease.
    """
    return val < reference * (1.0 - (config.min_rel_improvement or 0.0))


@dataclass
class TrainResult:
    """Outcome of training one network; the model holds its best-validation weights.

    Attributes:
        best_epoch: 1-based epoch with the lowest validation loss (0 if no epoch improved on +inf).
        epochs_run: epochs trained (fewer than ``config.epochs`` after early stopping or a step limit).
        steps: optimizer steps taken.
        best_val_loss: validation loss at ``best_epoch`` (loss of the standardized targets).
        val_history: validation loss after every epoch.
        wall_time_s: seconds spent training.
        stop_reason: one of :data:`STOP_REASONS`.
    """

    best_epoch: int
    epochs_run: int
    steps: int
    best_val_loss: float
    val_history: list[float]
    wall_time_s: float
    stop_reason: str = "epoch_cap"


@torch.no_grad()
def validation_loss(forward: Callable[[Tensor], Tensor], data: TrainData, loss_name: str,
                    eval_batch_size: int, stacked: bool) -> Tensor:
    """Mean validation loss of each member, [R] (stacked) or [1] (single network), in eval mode.

    Args:
        forward: maps standardized inputs [R, b, *in] (stacked) or [b, *in] to outputs.
        data: the members' data.
        loss_name: loss used for training (early stopping watches the same quantity).
        eval_batch_size: samples per chunk.
        stacked: whether ``forward`` takes the member dimension.
    """
    loss_fn = get_loss(loss_name)
    n = data.num_val
    total = None
    for a in range(0, n, eval_batch_size):
        rows = data.val_idx[:, a:a + eval_batch_size]  # [R, b]
        xb, yb = data.batch(rows)
        if stacked:
            part = loss_fn(forward(xb), yb)  # [R]
        else:
            part = loss_fn(forward(xb[0]), yb[0]).reshape(1)
        part = part * rows.shape[1]
        total = part if total is None else total + part
    return total / n


def train_model(
    model: nn.Module,
    data: TrainData,
    config: TrainConfig,
    shuffle_seed: int,
    *,
    on_epoch_end: Callable[[int, nn.Module, torch.optim.Optimizer], None] | None = None,
    progress: Any = None,
    epoch_progress: Callable[[EpochProgress], None] | None = None,
) -> TrainResult:
    """Train one network with early stopping and restore its best-validation weights.

    Args:
        model: network mapping [B, *input_shape] -> [B, O], already on ``data``'s device.
        data: one member's data (R = 1).
        config: training configuration.
        shuffle_seed: seed of this network's minibatch shuffling.
        on_epoch_end: optional ``f(epoch, model, optimizer)`` after each epoch (1-based), e.g. for tests.
        progress: optional progress bar (``advance(1)`` per epoch).
        epoch_progress: optional callback receiving an :class:`EpochProgress` after each epoch.

    Returns:
        TrainResult; ``model`` is left in eval mode with its best weights and buffers.
    """
    if data.num_members != 1:
        raise ValueError(f"train_model trains one network; got data for {data.num_members} members")
    start = time.perf_counter()
    loss_fn = get_loss(config.loss)
    opt = make_torch_optimizer(lr_multiplier_groups(model), config)
    gens = make_generators([shuffle_seed])
    spe = steps_per_epoch(data.num_train, config.batch_size)
    best_val, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    ref_val, ref_epoch = float("inf"), 0  # the last epoch that counted as an improvement for early stopping
    history: list[float] = []
    steps = 0
    epochs_run = 0
    stop_reason = "epoch_cap"
    for epoch in range(config.epochs):
        set_group_lrs(opt, lr_at_epoch(config, epoch))
        order = epoch_order(data, gens)  # [1, n_train]
        model.train()
        for s in range(spe):
            if config.max_steps is not None and steps >= config.max_steps:
                break
            xb, yb = data.batch(order[:, s * config.batch_size:(s + 1) * config.batch_size], augment=True)
            loss = loss_fn(model(xb[0]), yb[0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=False)
            opt.step()
            steps += 1
        epochs_run = epoch + 1
        model.eval()
        val = float(validation_loss(model, data, config.loss, config.eval_batch_size, stacked=False)[0])
        history.append(val)
        if val < best_val:
            best_val, best_epoch = val, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        if stopping_improved(val, ref_val, config):
            ref_val, ref_epoch = val, epoch + 1
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, model, opt)
        if progress is not None:
            progress.advance(1)
        if epoch_progress is not None:
            epoch_progress(EpochProgress(epoch + 1, config.epochs, 1, 1))
        if not math.isfinite(val):
            stop_reason = "diverged"
            break
        if config.patience is not None and epoch + 1 - ref_epoch >= config.patience:
            stop_reason = "early_stopping"
            break
        if config.max_steps is not None and steps >= config.max_steps:
            stop_reason = "step_cap"
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_epoch, epochs_run, steps, best_val, history, time.perf_counter() - start, stop_reason)

"""Optimizers and learning-rate schedules for one network and for R stacked networks.

The single-model trainer uses ``torch.optim`` (:func:`make_torch_optimizer`). The ensemble trainer keeps the
parameters of all R members in one flat ``[R, P]`` tensor and updates it with :class:`StackedOptimizer`, which
performs the same arithmetic as the torch implementation (same operation order, so the two agree to float
rounding) in a handful of fused tensor operations, and masks members that have stopped: a stopped member's
parameters *and* optimizer moments are left bit-for-bit unchanged.

Schedules are per epoch (paper 1 Methods: start at 1e-3, multiply by 0.98 after each epoch).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from scalinglab.training.config import TrainConfig

# Bytes of one member block of the stacked optimizer update (see StackedOptimizer.step).
BLOCK_BYTES = 2**20


def lr_at_epoch(config: TrainConfig, epoch: int) -> float:
    """Learning rate used during epoch ``epoch`` (0-based).

    Args:
        config: training configuration (``lr``, ``schedule`` and its parameters).
        epoch: 0 for the first epoch.

    Returns:
        exponential: ``lr * lr_decay**epoch`` (paper 1: 1e-3 x 0.98 per epoch);
        cosine: ``min_lr + (lr - min_lr) (1 + cos(pi epoch / epochs)) / 2`` (SGDR without restarts);
        step: ``lr * step_gamma**(epoch // step_epochs)``; constant: ``lr``.
    """
    if config.schedule == "exponential":
        return config.lr * config.lr_decay**epoch
    if config.schedule == "cosine":
        return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    if config.schedule == "step":
        return config.lr * config.step_gamma ** (epoch // config.step_epochs)
    return config.lr


def make_torch_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer for one network (single-tensor implementation, as the reference)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay,
            foreach=False,
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay,
            foreach=False,
        )
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, foreach=False
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_grad_norm_stacked(grad: Tensor, max_norm: float) -> Tensor:
    """Clip each member's gradient to total L2 norm ``max_norm``, in place.

    Args:
        grad: [R, P] flat gradients, one row per member.
        max_norm: threshold, as in ``torch.nn.utils.clip_grad_norm_`` (coefficient
            ``max_norm / (norm + 1e-6)`` clamped to 1).

    Returns:
        [R] the norms before clipping.
    """
    norms = torch.linalg.vector_norm(grad, dim=1)  # [R]
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    grad.mul_(coef.unsqueeze(1))
    return norms


class StackedOptimizer:
    """Adam / AdamW / SGD-with-momentum on a flat ``[R, P]`` parameter tensor, with a per-member mask.

    The update for active members matches ``torch.optim`` (single-tensor implementation) operation by
    operation; for a member whose mask is 0 nothing changes (parameters, moments). The step count is shared:
    all members that are still active have taken the same number of steps.

    Args:
        flat: [R, P] parameters, updated in place.
        config: optimizer and its hyperparameters.
    """

    def __init__(self, flat: Tensor, config: TrainConfig) -> None:
        self.flat = flat
        self.config = config
        self.step_count = 0
        if config.optimizer in ("adam", "adamw"):
            self.state = {"exp_avg": torch.zeros_like(flat), "exp_avg_sq": torch.zeros_like(flat)}
        else:
            self.state = {"momentum_buffer": torch.zeros_like(flat)}

    @torch.no_grad()
    def step(self, grad: Tensor, lr: float, active: Tensor, all_active: bool) -> None:
        """One update.

        Args:
            grad: [R, P] gradients (modified in place by weight decay).
            lr: learning rate of this step.
            active: [R, 1] float mask, 1 for members that still train, 0 for stopped ones.
            all_active: True when no member has stopped (skips the masking arithmetic).
        """
        self.begin_step()
        R, P = self.flat.shape
        # Update blocks of members whose state fits in cache: the ~10 elementwise passes of Adam then stream
        # from cache instead of memory (for large models 3-4x faster than one pass over all of [R, P]).
        rows = max(1, min(R, BLOCK_BYTES // max(1, P * self.flat.element_size())))
        for a in range(0, R, rows):
            b = min(R, a + rows)
            state = {k: v[a:b] for k, v in self.state.items()}
            self._update(self.flat[a:b], grad[a:b], state, lr, active[a:b], all_active)

    def begin_step(self) -> None:
        """Count one step; then :meth:`update_slices` for every member group (or call :meth:`step` instead)."""
        self.step_count += 1

    @torch.no_grad()
    def update_slices(self, columns: list[tuple[int, int]], g0: int, g1: int, grads: list[Tensor], lr: float,
                      active: Tensor, all_active: bool) -> None:
        """Update members g0..g1-1 from per-parameter gradients, without packing them into one [R, P] tensor.

        Args:
            columns: (offset, size) of each parameter in the flat layout.
            g0, g1: member range.
            grads: per parameter, [g1 - g0, *shape] gradients (modified in place by weight decay).
            lr: learning rate of this step.
            active: [R, 1] float mask of all members.
            all_active: True when no member has stopped.
        """
        G = g1 - g0
        for (o, z), g in zip(columns, grads):
            g = g.reshape(G, z)
            rows = max(1, min(G, BLOCK_BYTES // max(1, z * self.flat.element_size())))  # cache-sized blocks
            for a in range(0, G, rows):
                b = min(G, a + rows)
                state = {k: v[g0 + a:g0 + b, o:o + z] for k, v in self.state.items()}
                self._update(self.flat[g0 + a:g0 + b, o:o + z], g[a:b], state, lr, active[g0 + a:g0 + b],
                             all_active)

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], lr: float, active: Tensor,
                all_active: bool) -> None:
        cfg = self.config
        t = self.step_count
        if cfg.optimizer in ("adam", "adamw"):
            beta1, beta2 = cfg.betas
            m, v = state["exp_avg"], state["exp_avg_sq"]
            if cfg.weight_decay:
                if cfg.optimizer == "adamw":
                    decay = 1 - lr * cfg.weight_decay
                    p.mul_(decay if all_active else torch.where(active > 0, decay, 1.0))
                else:
                    grad.add_(p, alpha=cfg.weight_decay)
            if all_active:
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            else:
                m.lerp_(grad, (1 - beta1) * active)
                v.mul_(torch.where(active > 0, beta2, 1.0)).addcmul_(grad, grad * active, value=1 - beta2)
            bias_correction1 = 1 - beta1**t
            bias_correction2_sqrt = math.sqrt(1 - beta2**t)
            step_size = lr / bias_correction1
            denom = (v.sqrt() / bias_correction2_sqrt).add_(cfg.eps)
            if all_active:
                p.addcdiv_(m, denom, value=-step_size)
            else:
                p.addcmul_(m / denom, active, value=-step_size)
        else:
            buf = state["momentum_buffer"]
            if cfg.weight_decay:
                grad.add_(p, alpha=cfg.weight_decay)
            if cfg.momentum:
                if t == 1:
                    buf.copy_(grad)  # torch initializes the buffer with the first gradient
                elif all_active:
                    buf.mul_(cfg.momentum).add_(grad)
                else:
                    buf.mul_(torch.where(active > 0, cfg.momentum, 1.0)).add_(grad * active)
                direction = buf
            else:
                direction = grad
            if all_active:
                p.add_(direction, alpha=-lr)
            else:
                p.addcmul_(direction, active, value=-lr)

"""Train R independently initialized realizations of one architecture in a single pass.

All R members' parameters live in one flat tensor ``[R, P]``; each step gathers an ``[R, B]`` minibatch (every
member its own training subset, in its own shuffled order), runs one batched forward/backward, clips each
member's gradient on its own, and applies one fused optimizer update (:class:`StackedOptimizer`). Members stop
independently: early-stopping bookkeeping stays on the device (one host sync per epoch to know whether anyone
is still training), a stopped member is masked out of the update (parameters and optimizer moments frozen,
batch-norm running statistics held), and its best-validation weights are restored at the end.

Execution paths (``TrainConfig.path``):

- ``stacked``: plain MLPs (Linear + elementwise activations, e.g. the ``fcn`` model) run as batched matrix
  products ``baddbmm`` on ``[R, B, F]`` activations: one kernel per layer for all members.
- ``vmap``: any other model through ``torch.func.functional_call`` + ``vmap`` over stacked parameters and
  buffers (batch norm keeps per-member running statistics).
- ``sequential``: the single-model trainer, once per member (the fallback when a model cannot be stacked,
  e.g. data-dependent control flow or random ops; the reason is logged).

``auto`` picks ``stacked`` when the model is a plain MLP (its leaf modules are Linear / PReLU / elementwise
activations and its forward agrees with the stacked evaluation on a probe batch; a forward with data-dependent
branches around such layers is not detected and should be trained with ``path="vmap"``), else ``vmap`` when a
probe forward/backward succeeds, else ``sequential``. The stacked path is never slower than vmap for MLPs (vmap
lowers Linear to the same batched products, plus overhead).

Large inputs (images) are processed a few members at a time (``GROUP_BYTES``) so that each gathered minibatch is
still in cache when the weight gradient reads it (optionally tuned by timing, ``TUNE_GROUP_SIZE``); the optimizer
update runs in cache-sized member blocks (``scalinglab.training.optim.BLOCK_BYTES``). Results agree across group
sizes to float rounding; with the defaults they are bit-identical run to run.

For the same seeds every path reproduces :func:`scalinglab.training.trainer.train_model` run on each member
alone, to float rounding (tests/training/test_ensemble.py).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from scalinglab.training.config import TrainConfig
from scalinglab.training.losses import get_loss
from scalinglab.training.optim import StackedOptimizer, clip_grad_norm_stacked, lr_at_epoch
from scalinglab.training.trainer import (
    STOP_REASONS,
    EpochProgress,
    TrainData,
    epoch_order,
    make_generators,
    steps_per_epoch,
    train_model,
    validation_loss,
)

log = logging.getLogger(__name__)

# Members per forward/backward group are chosen so that a group's gathered input minibatch holds about this
# many bytes: small inputs (features) put all R members in one group (fewest kernel launches); large inputs
# (images) are processed a few members at a time, so the gathered block is still in cache when the weight
# gradient reads it again. Measured on a 2-core EPYC (2 x 50 x 50 inputs, batch 256): 4 members per group
# beat both 1 (a plain loop) and 20 (one group) by 10-25%.
GROUP_BYTES = 24 * 2**20
# Bound on the gathered validation block of all R members (memory, not numerics).
EVAL_BYTES = 2**28
# Time the candidate group sizes (1 and the GROUP_BYTES size) on the first steps and keep the faster one. Off by
# default: the group size changes float rounding (bmm over 4 members vs 1, ~1e-6 relative), so a choice made by
# timing would make results depend on machine load; with it off, the same seeds give bit-identical results.
TUNE_GROUP_SIZE = False

# Elementwise activation modules that act identically on [B, C] and on stacked [R, B, C] activations.
_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.ELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Softplus, nn.Mish,
                nn.CELU, nn.SELU, nn.Hardtanh, nn.Identity)


@dataclass
class EnsembleResult:
    """Outcome of training R members; ``models[r]`` holds member r's best-validation weights (eval mode).

    Attributes:
        models: the R trained networks.
        best_epoch: [R] 1-based epoch of the best validation loss per member.
        epochs_run: [R] epochs each member trained before stopping.
        steps: [R] optimizer steps each member took.
        best_val_loss: [R] best validation loss (standardized targets).
        val_history: per epoch, the [R] validation losses (NaN once a member has stopped).
        trainer: "ensemble" (one pass) or "sequential" (loop over members).
        path: "stacked", "vmap" or "sequential".
        wall_time_s: seconds for the whole ensemble.
        stop_reason: [R] why each member stopped (``scalinglab.training.trainer.STOP_REASONS``).
    """

    models: list[nn.Module]
    best_epoch: list[int]
    epochs_run: list[int]
    steps: list[int]
    best_val_loss: list[float]
    val_history: list[list[float]]
    trainer: str
    path: str
    wall_time_s: float
    stop_reason: list[str] = field(default_factory=list)


@dataclass
class EpochState:
    """What ``on_epoch_end`` sees after each epoch of the one-pass trainer (live tensors: copy to keep).

    Attributes:
        epoch: 1-based epoch just finished.
        flat: [R, P] current parameters of all members.
        opt_state: optimizer moments, each [R, P].
        buffers: stacked buffers (batch-norm running statistics), each [R, ...].
        active: [R] bool, members still training after this epoch.
        val_loss: [R] validation losses of this epoch.
    """

    epoch: int
    flat: Tensor
    opt_state: dict[str, Tensor]
    buffers: dict[str, Tensor]
    active: Tensor
    val_loss: Tensor


class _Stack:
    """Parameters of R same-architecture models in one flat [R, P] tensor, with per-parameter leaf views."""

    def __init__(self, models: list[nn.Module], device: torch.device) -> None:
        self.names = [n for n, _ in models[0].named_parameters()]
        shapes = [p.shape for _, p in models[0].named_parameters()]
        R = len(models)
        for m in models[1:]:
            if [(n, p.shape) for n, p in m.named_parameters()] != list(zip(self.names, shapes)):
                raise ValueError("ensemble members must share one architecture (parameter names and shapes)")
        sizes = [math.prod(s) for s in shapes]
        self.num_params = sum(sizes)
        with torch.no_grad():
            self.flat = torch.cat(
                [torch.cat([p.detach().reshape(-1) for p in m.parameters()]).unsqueeze(0) for m in models]
            ).to(device=device, dtype=torch.float32)  # [R, P]
        offsets, offset = [], 0
        for size in sizes:
            offsets.append(offset)
            offset += size
        self.shapes, self.sizes = shapes, sizes
        self.views = {n: self.flat[:, o:o + z].view(R, *sh) for n, sh, o, z in zip(self.names, shapes, offsets, sizes)}
        self.offsets = offsets
        buffer_names = [n for n, _ in models[0].named_buffers()]
        self.buffers = {
            n: torch.stack([dict(m.named_buffers())[n].detach() for m in models]).to(device).clone()
            for n in buffer_names
        }

    def leaf_views(self, g0: int, g1: int) -> dict[str, Tensor]:
        """Parameters of members g0..g1-1 as autograd leaves sharing storage with ``flat`` ([G, *shape]).

        In-place updates of ``flat`` (the optimizer) are seen by these views; gradients with respect to them
        are each member's own.
        """
        out = {}
        for n, sh, o, z in zip(self.names, self.shapes, self.offsets, self.sizes):
            out[n] = self.flat[g0:g1, o:o + z].view(g1 - g0, *sh).requires_grad_(True)
        return out

    def write_back(self, models: list[nn.Module], flat: Tensor, buffers: dict[str, Tensor]) -> None:
        """Copy row r of ``flat`` and ``buffers`` into ``models[r]``."""
        with torch.no_grad():
            for r, m in enumerate(models):
                offset = 0
                for p in m.parameters():
                    p.copy_(flat[r, offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
                for n, b in m.named_buffers():
                    b.copy_(buffers[n][r])


def _mlp_ops(model: nn.Module) -> list[tuple[str, Any]] | None:
    """The layer sequence of a plain MLP, or None when the model is not one.

    A plain MLP is a module tree whose leaves, in registration order, are Flatten, Linear, PReLU and
    elementwise activations, and whose parameters all belong to those leaves. Whether ``forward`` really
    applies them in that order is checked numerically by the caller.
    """
    ops: list[tuple[str, Any]] = []
    covered: set[str] = set()
    for name, mod in model.named_modules():
        if any(True for _ in mod.children()):
            continue
        prefix = f"{name}." if name else ""
        if isinstance(mod, nn.Linear):
            ops.append(("linear", (prefix + "weight", prefix + "bias" if mod.bias is not None else None)))
        elif isinstance(mod, nn.PReLU):
            ops.append(("prelu", prefix + "weight"))
        elif isinstance(mod, nn.Flatten):
            continue
        elif isinstance(mod, nn.Dropout):
            if mod.p > 0:
                return None
        elif isinstance(mod, _ELEMENTWISE):
            ops.append(("act", mod))
        else:
            return None
        covered.update(prefix + n for n, _ in mod.named_parameters(recurse=False))
    if {n for n, _ in model.named_parameters()} != covered or any(True for _ in model.buffers()):
        return None
    if not any(kind == "linear" for kind, _ in ops):
        return None
    return ops


class _StackedLinear(torch.autograd.Function):
    """``h W^T + b`` for R stacked members, [R, B, in] -> [R, B, out], with weight gradients laid out like W.

    Autograd through ``baddbmm(b, h, W.transpose(1, 2))`` returns dW as a transposed (non-contiguous) view,
    which costs one extra copy of every weight gradient per step; here dW = dz^T h is produced as [R, out, in]
    directly (as nn.Linear's own backward does).
    """

    @staticmethod
    def forward(h: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        if b is None:
            return torch.bmm(h, w.transpose(1, 2))
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        h, w, b = inputs
        ctx.save_for_backward(h, w)
        ctx.has_bias = b is not None

    @staticmethod
    def backward(ctx, dz: Tensor):
        h, w = ctx.saved_tensors
        dh = torch.bmm(dz, w) if ctx.needs_input_grad[0] else None
        dw = torch.bmm(dz.transpose(1, 2), h) if ctx.needs_input_grad[1] else None  # (R, out, in)
        db = dz.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dh, dw, db


def _stacked_mlp_forward(ops: list[tuple[str, Any]]) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
    """Forward of R stacked MLPs: x [R, B, *in] -> [R, B, O] with one baddbmm per layer for all members."""

    def forward(params: dict[str, Tensor], x: Tensor) -> Tensor:
        h = x.reshape(x.shape[0], x.shape[1], -1)  # (R, B, F)
        for kind, arg in ops:
            if kind == "linear":
                w = params[arg[0]]  # (R, out, in)
                h = _StackedLinear.apply(h, w, None if arg[1] is None else params[arg[1]])
            elif kind == "prelu":
                a = params[arg].unsqueeze(1)  # (R, 1, C or 1): slope of each member
                h = h.clamp(min=0) + a * h.clamp(max=0)
            else:
                h = arg(h)
        return h

    return forward


def _probe_input(data: TrainData, num: int) -> Tensor:
    xb, _ = data.batch(data.train_idx[:, :num])
    return xb


def _choose_path(template: nn.Module, stack: _Stack, data: TrainData, config: TrainConfig):
    """Pick the execution path; returns (path, forward(params, buffers, x) or None, reason)."""
    want = config.path
    if want == "sequential":
        return "sequential", None, "requested"
    xb = _probe_input(data, min(4, data.num_train))[:1]  # (1, b, *in) member 0
    params0 = {n: v[:1].detach() for n, v in stack.views.items()}
    with torch.no_grad():
        template.eval()
        reference = template(xb[0])
    if want in ("auto", "stacked"):
        ops = _mlp_ops(template)
        if ops is not None:
            fwd = _stacked_mlp_forward(ops)
            try:
                with torch.no_grad():
                    ok = torch.allclose(fwd(params0, xb)[0], reference, rtol=1e-4, atol=1e-5)
            except RuntimeError:
                ok = False
            if ok:
                return "stacked", (lambda params, buffers, x, train: fwd(params, x)), "plain MLP"
        if want == "stacked":
            raise ValueError(f"model {type(template).__name__} is not a plain MLP: cannot use path 'stacked'")
    from torch.func import functional_call, vmap

    def one(params, buffers, x):
        return functional_call(template, (params, buffers), (x,))

    batched = vmap(one, in_dims=(0, 0, 0), randomness="error")

    def forward(params, buffers, x, train):
        template.train(train)
        return batched(params, buffers, x)

    try:  # probe: batched forward + backward on two members, on copies of the buffers
        R2 = min(2, stack.flat.shape[0])
        probe_x = _probe_input(data, min(4, data.num_train))[:R2]
        p2 = {n: v[:R2].detach().clone().requires_grad_(True) for n, v in stack.views.items()}
        b2 = {n: b[:R2].clone() for n, b in stack.buffers.items()}
        out = forward(p2, b2, probe_x, True)
        torch.autograd.grad(out.square().sum(), list(p2.values()), allow_unused=True)
        with torch.no_grad():
            ok = torch.allclose(forward(p2, b2, probe_x, False)[0], template.eval()(probe_x[0]),
                                rtol=1e-3, atol=1e-4) if not b2 else True
        if not ok:
            raise RuntimeError("vmap output differs from the model's own forward")
    except Exception as exc:  # noqa: BLE001 - any failure to stack means: train one by one
        if want == "vmap":
            raise ValueError(f"model {type(template).__name__} cannot be stacked with vmap: {exc}") from None
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return "sequential", None, reason
    return "vmap", forward, "torch.func.vmap"


def _clip_group(grads: tuple[Tensor, ...], max_norm: float) -> None:
    """Per-member gradient clipping on per-parameter gradients [G, *shape] (as clip_grad_norm_stacked)."""
    G = grads[0].shape[0]
    sq = sum(g.reshape(G, -1).square().sum(dim=1) for g in grads)  # (G,)
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(G, *([1] * (g.dim() - 1))))


def _lr_scale(model: nn.Module, stack: _Stack) -> Tensor | None:
    """[1, P] learning-rate multiplier of every flat parameter column (``model.lr_multipliers``, muP).

    Every optimizer here moves a parameter by an amount proportional to its learning rate (Adam, AdamW with
    its decoupled decay, SGD), so training at ``lr x m`` equals scaling each step's change by ``m``.
    Returns None when the model has no multipliers or all are 1 (no extra work).

    Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eq. 21.
    """
    mult = getattr(model, "lr_multipliers", None) or {}
    if all(float(mult.get(n, 1.0)) == 1.0 for n in stack.names):
        return None
    scale = torch.ones(1, stack.num_params, dtype=stack.flat.dtype, device=stack.flat.device)
    for n, o, z in zip(stack.names, stack.offsets, stack.sizes):
        scale[:, o:o + z] = float(mult.get(n, 1.0))
    return scale


class _GroupTuner:
    """Pick the fastest member-group size by timing the first training steps (results do not depend on it).

    Each candidate runs ``2 * repeats`` steps; the first ones warm up, the fastest of the rest counts. With fewer
    steps than that, or a single candidate, the heuristic size is used throughout.
    """

    repeats = 2

    def __init__(self, candidates: list[int], default: int, device: torch.device, total_steps: int) -> None:
        self.plan = [c for c in candidates for _ in range(2 * self.repeats)]
        if len(candidates) < 2 or total_steps < len(self.plan) + 1:
            self.plan = []
        self.size = self.plan[0] if self.plan else default
        self.device = device
        self.times: dict[int, list[float]] = {c: [] for c in candidates}
        self._t0 = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        if self.plan:
            self._sync()
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if not self.plan:
            return
        self._sync()
        self.times[self.plan.pop(0)].append(time.perf_counter() - self._t0)
        if self.plan:
            self.size = self.plan[0]
        else:
            best = {c: min(t[self.repeats:]) for c, t in self.times.items()}
            self.size = min(best, key=best.get)
            log.info("ensemble: %d members per group (step times %s)", self.size,
                     {c: round(t, 5) for c, t in best.items()})


def train_ensemble(
    models: list[nn.Module],
    data: TrainData,
    config: TrainConfig,
    shuffle_seeds: list[int],
    *,
    on_epoch_end: Callable[[EpochState], None] | None = None,
    progress: Any = None,
    epoch_progress: Callable[[EpochProgress], None] | None = None,
) -> EnsembleResult:
    """Train R realizations at once (or one by one when they cannot be stacked).

    Args:
        models: R networks of one architecture, each independently initialized (by its own seed), mapping
            [B, *input_shape] -> [B, O]. They receive their best-validation weights and are left in eval mode.
        data: the R members' data (``data.num_members == R``), on the training device.
        config: training configuration (``config.path`` chooses the execution path).
        shuffle_seeds: R seeds, one per member, for its minibatch order (as ``train_model``'s).
        on_epoch_end: optional callback receiving an :class:`EpochState` after each epoch (one-pass paths).
        progress: optional progress bar; ``advance(1)`` per epoch.
        epoch_progress: optional callback receiving an :class:`~scalinglab.training.trainer.EpochProgress`
            after every epoch, on every path (the sequential path reports each member's epochs in turn).

    Returns:
        EnsembleResult with per-member best epoch, epochs run, steps and validation history.
    """
    R = len(models)
    if R < 1:
        raise ValueError("train_ensemble needs at least one model")
    if data.num_members != R or len(shuffle_seeds) != R:
        raise ValueError(
            f"got {R} models, data for {data.num_members} members and {len(shuffle_seeds)} shuffle seeds"
        )
    start = time.perf_counter()
    device = data.x.device
    stack = _Stack(models, device)
    template = copy.deepcopy(models[0]).to(device)
    path, forward, reason = _choose_path(template, stack, data, config)
    if path == "sequential":
        if config.path != "sequential":
            log.warning("ensemble: model %s cannot be stacked (%s); training %d members sequentially",
                        type(models[0]).__name__, reason, R)
        results = []
        for r, m in enumerate(models):
            relay = None
            if epoch_progress is not None:  # member r's epochs, the members after it still to train
                relay = (lambda p, r=r: epoch_progress(EpochProgress(p.epoch, p.epochs, R - r, R, member=r)))
            results.append(train_model(m, data.member(r), config, shuffle_seeds[r], epoch_progress=relay))
        if progress is not None:
            progress.advance(config.epochs)
        hist = [[r.val_history[e] if e < len(r.val_history) else math.nan for r in results]
                for e in range(max(len(r.val_history) for r in results))]
        return EnsembleResult(models, [r.best_epoch for r in results], [r.epochs_run for r in results],
                              [r.steps for r in results], [r.best_val_loss for r in results], hist,
                              "sequential", "sequential", time.perf_counter() - start,
                              [r.stop_reason for r in results])
    log.info("ensemble: training %d members in one pass (path %s: %s)", R, path, reason)

    loss_fn = get_loss(config.loss)
    flat, views, buffers = stack.flat, stack.views, stack.buffers
    opt = StackedOptimizer(flat, config)
    lr_scale = _lr_scale(models[0], stack)  # (1, P) muP learning-rate multipliers, or None when all are 1
    gens = make_generators(shuffle_seeds)
    spe = steps_per_epoch(data.num_train, config.batch_size)
    B = config.batch_size
    item_bytes = data.x[0].numel() * data.x.element_size()
    # Members per forward/backward group: the gathered minibatch of a group stays cache-sized (see GROUP_BYTES).
    # When that splits the members (large inputs), the group size can be tuned on the first steps (_GroupTuner).
    group = max(1, min(R, GROUP_BYTES // max(1, B * item_bytes)))
    # (one group of all R members is not a candidate then: measured 30% slower than either for images)
    candidates = sorted({1, group}) if group < R and TUNE_GROUP_SIZE else [group]
    layouts = {}
    for size in candidates:
        bounds = [(g0, min(R, g0 + size)) for g0 in range(0, R, size)]
        layouts[size] = [(g0, g1, stack.leaf_views(g0, g1), {n: b[g0:g1] for n, b in buffers.items()})
                         for g0, g1 in bounds]
    total_steps = spe * config.epochs if config.max_steps is None else min(spe * config.epochs, config.max_steps)
    tuner = _GroupTuner(candidates, group, device, total_steps)
    grad = torch.empty_like(flat)  # (R, P)
    columns = list(zip(stack.offsets, stack.sizes))
    eval_rows = max(1, min(config.eval_batch_size, EVAL_BYTES // max(1, R * item_bytes)))

    active = torch.ones(R, dtype=torch.bool, device=device)
    active_f = torch.ones(R, 1, dtype=torch.float32, device=device)
    all_active = True
    prev_active = R
    held_buffers: dict[str, Tensor] = {}
    best_val = torch.full((R,), math.inf, device=device)
    best_epoch = torch.zeros(R, dtype=torch.long, device=device)
    # early-stopping reference: the last epoch that counted as an improvement (min_rel_improvement; with it
    # off this is the best epoch) and, per member, the index of its stop reason in STOP_REASONS
    ref_val = torch.full((R,), math.inf, device=device)
    ref_epoch = torch.zeros(R, dtype=torch.long, device=device)
    keep_factor = 1.0 - (config.min_rel_improvement or 0.0)
    reason = torch.full((R,), STOP_REASONS.index("epoch_cap"), dtype=torch.long, device=device)
    epochs_run = torch.zeros(R, dtype=torch.long, device=device)
    steps_taken = torch.zeros(R, dtype=torch.long, device=device)
    best_flat = flat.clone()
    best_buffers = {n: b.clone() for n, b in buffers.items()}
    history: list[Tensor] = []
    steps = 0

    def eval_forward(x: Tensor) -> Tensor:
        return forward(views, buffers, x, False)

    for epoch in range(config.epochs):
        lr = lr_at_epoch(config, epoch)
        order = epoch_order(data, gens)  # (R, n_train) global rows, one shuffled order per member
        epoch_steps = 0
        for s in range(spe):
            if config.max_steps is not None and steps >= config.max_steps:
                break
            rows = order[:, s * B:(s + 1) * B]  # (R, b)
            tuner.start()
            layout = layouts[tuner.size]
            if len(layout) > 1:
                opt.begin_step()
            for g0, g1, leaves, bufs in layout:
                xb, yb = data.batch(rows[g0:g1], g0, g1, augment=True)  # (G, b, *in), (G, b, P)
                pred = forward(leaves, bufs, xb, True)  # (G, b, O)
                # members are independent: d(sum of losses)/d(theta_r) = d(loss_r)/d(theta_r)
                loss = loss_fn(pred, yb).sum()
                grads = torch.autograd.grad(loss, list(leaves.values()))
                before = flat.clone() if lr_scale is not None else None
                if len(layout) == 1:  # one group: pack once, then a few fused ops over [R, P]
                    torch.cat([g.reshape(R, -1) for g in grads], dim=1, out=grad)
                    if config.grad_clip is not None:
                        clip_grad_norm_stacked(grad, config.grad_clip)
                    opt.step(grad, lr, active_f, all_active)
                else:  # large models: update this group from its gradients in place, no packing copy
                    if config.grad_clip is not None:
                        _clip_group(grads, config.grad_clip)
                    opt.update_slices(columns, g0, g1, list(grads), lr, active_f, all_active)
                if before is not None:  # per-parameter lr: the whole update (decay included) scales by m
                    with torch.no_grad():
                        flat.sub_(before).mul_(lr_scale).add_(before)
            if held_buffers:  # stopped members keep their running statistics
                with torch.no_grad():
                    for n, b in buffers.items():
                        keep = active.view(R, *([1] * (b.dim() - 1)))
                        b.copy_(torch.where(keep, b, held_buffers[n]))
            tuner.stop()
            steps += 1
            epoch_steps += 1
        with torch.no_grad():
            steps_taken += epoch_steps * active
            epochs_run += active.long()
            val = validation_loss(eval_forward, data, config.loss, eval_rows, stacked=True)
            history.append(torch.where(active, val, math.nan))
            improved = (val < best_val) & active
            best_val = torch.where(improved, val, best_val)
            best_epoch = torch.where(improved, epoch + 1, best_epoch)
            best_flat = torch.where(improved.unsqueeze(1), flat, best_flat)
            for n, b in buffers.items():
                best_buffers[n] = torch.where(improved.view(R, *([1] * (b.dim() - 1))), b, best_buffers[n])
            counted = (val < ref_val * keep_factor) & active  # as trainer.stopping_improved
            ref_val = torch.where(counted, val, ref_val)
            ref_epoch = torch.where(counted, epoch + 1, ref_epoch)
            # a NaN / inf validation loss ends the member: its parameters do not come back from NaN
            diverged = active & ~torch.isfinite(val)
            stopped = diverged
            if config.patience is not None:
                patience_out = active & ~diverged & (epoch + 1 - ref_epoch >= config.patience)
                reason = torch.where(patience_out, STOP_REASONS.index("early_stopping"), reason)
                stopped = stopped | patience_out
            reason = torch.where(diverged, STOP_REASONS.index("diverged"), reason)
            active = active & ~stopped
            num_active = int(active.sum())  # the one host sync per epoch
            if num_active != prev_active:
                active_f = active.to(torch.float32).unsqueeze(1)
                held_buffers = {n: b.clone() for n, b in buffers.items()}
                prev_active = num_active
            all_active = num_active == R
        if on_epoch_end is not None:
            on_epoch_end(EpochState(epoch + 1, flat, opt.state, buffers, active, val))
        if progress is not None:
            progress.advance(1)
        if epoch_progress is not None:
            epoch_progress(EpochProgress(epoch + 1, config.epochs, num_active, R))
        if num_active == 0 or (config.max_steps is not None and steps >= config.max_steps):
            break
    if config.max_steps is not None and steps >= config.max_steps:  # still training when the steps ran out
        reason = torch.where(active, STOP_REASONS.index("step_cap"), reason)
    if progress is not None and epoch + 1 < config.epochs:
        progress.advance(config.epochs - epoch - 1)
    stack.write_back(models, best_flat, best_buffers)
    for m in models:
        m.eval()
    hist = torch.stack(history).cpu().tolist()
    return EnsembleResult(models, best_epoch.cpu().tolist(), epochs_run.cpu().tolist(),
                          steps_taken.cpu().tolist(), best_val.cpu().tolist(), hist, "ensemble", path,
                          time.perf_counter() - start, [STOP_REASONS[i] for i in reason.cpu().tolist()])

"""FLOPs of training, counted on real forward/backward passes with ``torch.utils.flop_counter``.

``FlopCounterMode`` counts the floating-point operations of matrix products and convolutions (2 per
multiply-add), in the forward and the backward pass, as dispatched. Elementwise work (activations,
normalization, the loss) and the optimizer update are *not* counted: for the networks here they are
O(parameters) per step against O(parameters x batch) for the products, i.e. a fraction ~1/B of the total.
This is the convention of the scaling-law literature (C ~ 6 N D for dense networks).

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt), Section 3: FLOPs counted per training.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.training.losses import get_loss


def train_step_flops(model: nn.Module, x: Tensor, y: Tensor, loss: str = "mse") -> int:
    """FLOPs of one training step (forward + backward) of ``model`` on the minibatch (x, y).

    Runs on a deep copy in train mode, so neither the gradients nor batch-norm statistics of ``model``
    change.

    Args:
        model: network [B, *in] -> [B, O].
        x: [B, *in] inputs.
        y: [B, P] targets.
        loss: loss name (its own elementwise cost is not counted).

    Returns:
        Counted FLOPs (matrix products and convolutions; optimizer update excluded).
    """
    clone = copy.deepcopy(model)
    clone.train()
    with FlopCounterMode(display=False) as counter:
        get_loss(loss)(clone(x), y).backward()
    return int(counter.get_total_flops())


@torch.no_grad()
def forward_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass (eval mode) of ``model`` on ``x`` [B, *in]."""
    clone = copy.deepcopy(model)
    clone.eval()
    with FlopCounterMode(display=False) as counter:
        clone(x)
    return int(counter.get_total_flops())


def training_flops(steps: int, num_train: int, batch_size: int, full_step_flops: int,
                   last_step_flops: int) -> int:
    """Total FLOPs of ``steps`` optimizer steps with the trainer's minibatching.

    Every epoch has ``ceil(num_train / batch_size)`` steps, all of ``batch_size`` samples except the last one,
    whose FLOPs are ``last_step_flops`` (counted at its own size).

    Args:
        steps: optimizer steps taken.
        num_train: training samples per epoch.
        batch_size: minibatch size.
        full_step_flops: counted FLOPs of a step on a full minibatch.
        last_step_flops: counted FLOPs of the epoch's last (possibly smaller) minibatch.
    """
    per_epoch = -(-num_train // batch_size)
    epochs, rest = divmod(int(steps), per_epoch)
    return epochs * ((per_epoch - 1) * full_step_flops + last_step_flops) + rest * full_step_flops

"""Checking a torch device string before any work is done on it."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(device: str) -> torch.device:
    """The ``torch.device`` for ``device``, or a one-line ValueError naming it.

    Catches what torch only reports deep inside the first tensor transfer: a malformed name (``gpu0``),
    ``cuda`` on a machine without a usable GPU, and a CUDA index past the devices present.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device (use e.g. cpu, cuda or cuda:1)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available on this machine (use cpu)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} requested but this machine has {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported here (use cpu or cuda)")
    return dev

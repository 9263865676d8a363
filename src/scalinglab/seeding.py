"""Deterministic seed derivation: every random stream in scalinglab starts from an explicit seed.

Seeds for a sub-task are derived with ``numpy.random.SeedSequence`` from a root seed and a tuple of
integers/strings naming the sub-task, so any piece of a larger job can be rerun alone with the same numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _word(part: int | str) -> int:
    if isinstance(part, (int, np.integer)):
        if part < 0:
            raise ValueError(f"seed path entries must be non-negative, got {part}")
        return int(part)
    digest = hashlib.sha256(str(part).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def derive_seed(root: int, *path: int | str) -> int:
    """A 63-bit seed for the sub-task named by ``path`` under ``root``.

    Example: ``derive_seed(0, "fcn_w16", 1024, 3)`` is the seed of realization 3 at N_D = 1024.
    """
    ss = np.random.SeedSequence([_word(root), *(_word(p) for p in path)])
    hi, lo = (int(w) for w in ss.generate_state(2))
    return ((hi << 32) | lo) >> 1  # 63 bits: fits torch.manual_seed and int64 columns


def rng(root: int, *path: int | str) -> np.random.Generator:
    """A numpy Generator seeded by ``derive_seed(root, *path)``."""
    return np.random.default_rng(derive_seed(root, *path))

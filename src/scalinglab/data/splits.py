"""Test set, pool and per-realization training subsets (paper 1 Methods).

A fixed test set is drawn once by seed; everything else is the pool. Each realization draws its own training
subset of size N_D from the pool (without replacement) and divides it 7/8 training, 1/8 validation.

Reference: scaling-laws-deep-regression (paper 1), Methods: "A test set of 20000 paired images was randomly
selected from the total dataset ... The remaining data was bootstrapped to sizes of N_D = 256, 512, ..., and
each subset was divided into training and validation datasets with an 7/8 and 1/8 split". "Bootstrapped" is
read as random sub-sampling *without* replacement: a duplicate would put one sample in both the training
and the validation part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "make_split", "draw_training_subset"]


@dataclass(frozen=True)
class Split:
    """A fixed test set and the remaining pool, both sorted sample indices into one dataset.

    Attributes:
        test_indices: [n_test] int64, sorted.
        pool_indices: [num_samples - n_test] int64, sorted; training subsets are drawn from here.
    """

    test_indices: np.ndarray
    pool_indices: np.ndarray

    @property
    def num_test(self) -> int:
        return int(self.test_indices.size)

    @property
    def num_pool(self) -> int:
        return int(self.pool_indices.size)


def _count(size: int | float, total: int, what: str) -> int:
    """An absolute count from an int count or a fraction in (0, 1)."""
    if isinstance(size, bool):
        raise ValueError(f"{what} must be an int count or a fraction in (0, 1), got {size!r}")
    if isinstance(size, (int, np.integer)):
        count = int(size)
    elif isinstance(size, (float, np.floating)):
        if not 0.0 < float(size) < 1.0:
            raise ValueError(f"{what} as a fraction must lie in (0, 1), got {size}")
        count = int(round(float(size) * total))
    else:
        raise ValueError(f"{what} must be an int count or a fraction in (0, 1), got {size!r}")
    if not 0 <= count <= total:
        raise ValueError(f"{what} = {count} is not between 0 and the {total} available samples")
    return count


def make_split(num_samples: int, test_size: int | float, seed: int) -> Split:
    """Choose the fixed test set by seed; the rest is the pool.

    Args:
        num_samples: size of the dataset (indices 0 .. num_samples - 1).
        test_size: number of test samples (int) or a fraction of ``num_samples`` in (0, 1).
        seed: the test set is a function of (num_samples, test_size, seed) only.

    Returns:
        ``Split(test_indices, pool_indices)``, disjoint, together covering every index, both sorted.
    """
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    num_test = _count(test_size, num_samples, "test_size")
    perm = np.random.default_rng(seed).permutation(num_samples)
    test = np.sort(perm[:num_test]).astype(np.int64)
    pool = np.sort(perm[num_test:]).astype(np.int64)
    return Split(test_indices=test, pool_indices=pool)


def draw_training_subset(
    pool_indices: np.ndarray, num_train: int, seed: int, val_fraction: float = 1 / 8
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one realization's subset of N_D = ``num_train`` samples from the pool, split train/validation.

    The subset is the first ``num_train`` entries of a seeded permutation of the pool, so for one seed the
    subsets are nested: the subset for N_D = 512 contains the one for N_D = 256. The last
    ``round(num_train * val_fraction)`` of them are the validation part (at least one when
    ``val_fraction > 0``).

    Args:
        pool_indices: [n_pool] distinct sample indices (``Split.pool_indices``).
        num_train: N_D, the number of samples drawn (training + validation).
        seed: per-realization seed.
        val_fraction: validation share of the subset (paper 1: 1/8); 0 for no validation set.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 arrays, disjoint, of sizes N_D - n_val and n_val.

    Raises:
        ValueError: ``num_train`` larger than the pool (the message names both numbers), or bad fractions.
    """
    pool = np.asarray(pool_indices, dtype=np.int64).reshape(-1)
    num_train = int(num_train)
    if num_train <= 0:
        raise ValueError(f"num_train must be positive, got {num_train}")
    if num_train > pool.size:
        raise ValueError(f"num_train = {num_train} is larger than the pool of {pool.size} samples")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    num_val = int(round(num_train * val_fraction))
    if val_fraction > 0:
        num_val = max(1, num_val)
    if num_val >= num_train:
        raise ValueError(f"num_train = {num_train} leaves no training samples after {num_val} for validation")
    chosen = pool[np.random.default_rng(seed).permutation(pool.size)[:num_train]]
    train = np.sort(chosen[: num_train - num_val])
    val = np.sort(chosen[num_train - num_val :])
    return train, val

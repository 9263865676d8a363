"""Fixed test set by seed, pool, per-realization training subsets (paper 1 Methods)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scalinglab.data.splits import Split, draw_training_subset, make_split


def test_make_split_reproducible_disjoint_covering():
    a = make_split(1000, 200, seed=3)
    b = make_split(1000, 200, seed=3)
    c = make_split(1000, 200, seed=4)
    assert isinstance(a, Split) and a.num_test == 200 and a.num_pool == 800
    np.testing.assert_array_equal(a.test_indices, b.test_indices)
    assert not np.array_equal(a.test_indices, c.test_indices)
    assert np.intersect1d(a.test_indices, a.pool_indices).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([a.test_indices, a.pool_indices])), np.arange(1000))
    assert np.all(np.diff(a.test_indices) > 0) and np.all(np.diff(a.pool_indices) > 0)


def test_make_split_fraction_equals_count():
    frac = make_split(1000, 0.1, seed=0)
    count = make_split(1000, 100, seed=0)
    np.testing.assert_array_equal(frac.test_indices, count.test_indices)


@pytest.mark.parametrize("bad", [1.0, 0.0, -3, 1001, "10", True])
def test_make_split_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="test_size"):
        make_split(1000, bad, seed=0)


def test_training_subset_sizes_disjoint_and_from_pool():
    split = make_split(5000, 1000, seed=0)
    train, val = draw_training_subset(split.pool_indices, 256, seed=11)
    assert train.size == 224 and val.size == 32  # 7/8 and 1/8 of N_D = 256
    assert np.intersect1d(train, val).size == 0
    assert np.isin(train, split.pool_indices).all() and np.isin(val, split.pool_indices).all()
    assert np.intersect1d(np.concatenate([train, val]), split.test_indices).size == 0
    t2, v2 = draw_training_subset(split.pool_indices, 256, seed=11)
    np.testing.assert_array_equal(train, t2)
    np.testing.assert_array_equal(val, v2)
    t3, _ = draw_training_subset(split.pool_indices, 256, seed=12)
    assert not np.array_equal(train, t3)


def test_subsets_nested_across_sizes_for_one_seed():
    pool = np.arange(100, 2100)
    small = np.concatenate(draw_training_subset(pool, 256, seed=5))
    large = np.concatenate(draw_training_subset(pool, 1024, seed=5))
    assert np.isin(small, large).all()


def test_subsets_are_uniform_over_the_pool():
    # each pool element is drawn with probability N_D / n_pool: chi-square test of the counts
    pool = np.arange(50)
    counts = np.zeros(50)
    for seed in range(2000):
        train, val = draw_training_subset(pool, 10, seed=seed)
        counts[np.concatenate([train, val])] += 1
    assert counts.sum() == 20000
    _, p = stats.chisquare(counts)
    assert p > 1e-3


def test_num_train_larger_than_pool_names_both_numbers():
    pool = make_split(300, 100, seed=0).pool_indices
    with pytest.raises(ValueError, match="num_train = 512 is larger than the pool of 200 samples"):
        draw_training_subset(pool, 512, seed=0)


def test_val_fraction_options():
    pool = np.arange(1000)
    train, val = draw_training_subset(pool, 100, seed=0, val_fraction=0)
    assert train.size == 100 and val.size == 0
    train, val = draw_training_subset(pool, 3, seed=0)
    assert train.size == 2 and val.size == 1  # at least one validation sample
    with pytest.raises(ValueError, match="val_fraction"):
        draw_training_subset(pool, 100, seed=0, val_fraction=1.0)
    with pytest.raises(ValueError, match="no training samples"):
        draw_training_subset(pool, 1, seed=0)

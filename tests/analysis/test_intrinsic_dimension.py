"""TwoNN intrinsic dimension against scikit-dimension and known manifolds."""

import numpy as np
import pytest

from scalinglab.analysis.intrinsic_dimension import intrinsic_dimension, intrinsic_dimension_subsets

skdim = pytest.importorskip("skdim")


def swiss_roll(n, rng):
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    return np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1)


@pytest.mark.parametrize("name", ["swiss_roll", "gaussian5"])
def test_twonn_matches_scikit_dimension(name):
    rng = np.random.default_rng(0)
    if name == "swiss_roll":
        x, true_d = swiss_roll(4000, rng), 2
    else:
        # a 5-D Gaussian embedded in 12 dimensions by a random isometry
        q, _ = np.linalg.qr(rng.normal(size=(12, 5)))
        x, true_d = rng.normal(size=(4000, 5)) @ q.T, 5
    ours = intrinsic_dimension(x)
    ref = skdim.id.TwoNN().fit(x).dimension_
    assert abs(ours - ref) < 0.02
    assert abs(ours - true_d) < 0.15 * true_d
    ours_mle = intrinsic_dimension(x, method="mle")
    ref_mle = skdim.id.TwoNN(method="mle").fit(x).dimension_
    assert abs(ours_mle - ref_mle) < 0.02


def test_subsets_and_bad_input():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 3))
    mean, std = intrinsic_dimension_subsets(x, num_subsets=5, subset_size=800, seed=0)
    assert abs(mean - 3) < 0.4 and 0 < std < 0.5
    with pytest.raises(ValueError, match="shape"):
        intrinsic_dimension(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        intrinsic_dimension(np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="distinct"):
        intrinsic_dimension(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="method"):
        intrinsic_dimension(x, method="pca")

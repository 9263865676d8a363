"""Parameter normalization to [0, 1] (paper 2, Eq. 2)."""

import numpy as np
import pytest

from scalinglab.analysis.normalization import CRI3_RANGES, denormalize_parameters, normalize_parameters


def test_range_ends_map_to_zero_and_one_and_round_trip():
    names = ["theta", "J", "D"]
    ranges = [CRI3_RANGES[k] for k in names]
    lo, hi = np.array(ranges).T
    x = np.stack([lo, hi, 0.5 * (lo + hi), [2.0, 3.0, 0.1]])
    z = normalize_parameters(x, ranges)
    assert np.allclose(z[0], 0.0) and np.allclose(z[1], 1.0) and np.allclose(z[2], 0.5)
    assert np.allclose(z[3], [(2.0 - 1.01) / 2.88, 2.0 / 9.0, 0.09 / 0.29])
    assert np.allclose(denormalize_parameters(z, ranges), x)
    assert normalize_parameters([[2.0, 11.0, 0.1]], ranges)[0, 1] > 1.0  # out of range is not clipped


def test_bad_input():
    with pytest.raises(ValueError, match="lo < hi"):
        normalize_parameters(np.zeros((2, 2)), [(0, 1), (1, 1)])
    with pytest.raises(ValueError, match="ranges must be 2"):
        normalize_parameters(np.zeros((2, 2)), [(0, 1)])
    with pytest.raises(ValueError, match=r"\[n, P\]"):
        normalize_parameters(np.zeros(3), [(0, 1)])

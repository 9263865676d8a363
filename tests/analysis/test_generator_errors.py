"""Per-image MAE and averaged-magnetization errors of generated images (paper 2, Figs. 8-10)."""

import numpy as np
import pytest

from scalinglab.analysis.generator_errors import image_mae, layer_magnetization, magnetization_errors


def test_known_images():
    true = np.ones((3, 2, 4, 4))
    true[:, 1] = -1.0
    true[2, 0, :2] = -1.0  # layer magnetization 0 for image 2, layer 0
    pred = true.copy()
    pred[0, 0, 0, 0] = 0.0  # one pixel off by 1 in 16: MAE 1/16, m changes by 1/16
    pred[1] += 0.1
    mae = image_mae(pred, true)
    assert mae.shape == (3, 2)
    assert np.allclose(mae, [[1 / 16, 0], [0.1, 0.1], [0, 0]])
    assert np.allclose(layer_magnetization(true), [[1, -1], [1, -1], [0, -1]])
    err = magnetization_errors(pred, true)
    assert np.allclose(err["abs"], [[1 / 16, 0], [0.1, 0.1], [0, 0]])
    assert np.allclose(err["ape"][:2], [[100 / 16, 0], [10, 10]])
    assert np.isnan(err["ape"][2, 0]) and err["ape"][2, 1] == 0  # |m_true| = 0 -> NaN
    assert np.allclose(err["m_pred"] - err["m_true"], [[-1 / 16, 0], [0.1, 0.1], [0, 0]])


def test_random_images_match_direct_formula():
    rng = np.random.default_rng(0)
    true, pred = rng.uniform(-1, 1, (5, 2, 30, 30)), rng.uniform(-1, 1, (5, 2, 30, 30))
    mae = image_mae(pred, true)
    for i in range(5):
        for c in range(2):
            assert np.isclose(mae[i, c], np.mean(np.abs(pred[i, c] - true[i, c])))


def test_bad_shapes():
    with pytest.raises(ValueError, match="differ"):
        image_mae(np.zeros((2, 2, 4, 4)), np.zeros((2, 2, 4, 5)))
    with pytest.raises(ValueError, match=r"\[n, C, H, W\]"):
        layer_magnetization(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="differ"):
        magnetization_errors(np.zeros((2, 1, 4, 4)), np.zeros((3, 1, 4, 4)))

"""Error PCA recovers a planted error correlation (paper 2, Eqs. 5-6, Fig. 5)."""

import numpy as np
import pytest

from scalinglab.analysis.error_pca import error_pca


def _rotation(angle_xy: float, angle_yz: float) -> np.ndarray:
    c, s = np.cos(angle_xy), np.sin(angle_xy)
    r1 = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    c, s = np.cos(angle_yz), np.sin(angle_yz)
    r2 = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    return r1 @ r2


def test_recovers_planted_axes_and_variance_ratios():
    rng = np.random.default_rng(0)
    axes = _rotation(0.3, -0.7)  # columns: planted principal axes
    variances = np.array([4.0, 1.0, 0.1])
    n = 200_000
    errors = (rng.normal(size=(n, 3)) * np.sqrt(variances)) @ axes.T + np.array([0.1, -0.2, 0.05])
    pca = error_pca(errors)
    assert np.allclose(pca.covariance_, np.cov(errors, rowvar=False, ddof=1), atol=1e-12)
    assert np.allclose(pca.mean_, [0.1, -0.2, 0.05], atol=1e-2)
    assert np.allclose(pca.explained_variance_ratio_, variances / variances.sum(), atol=1e-2)
    assert np.isclose(pca.explained_variance_ratio_.sum(), 1.0)
    assert np.all(np.diff(pca.explained_variance_) < 0)
    for k in range(3):
        v = axes[:, k] * np.sign(axes[np.argmax(np.abs(axes[:, k])), k])  # the sign convention
        assert np.allclose(pca.components_[k], v, atol=1e-2)  # measured 6e-4 (ratios 1.3e-3)
        assert pca.components_[k][np.argmax(np.abs(pca.components_[k]))] > 0
    assert np.allclose(pca.components_ @ pca.components_.T, np.eye(3), atol=1e-12)


def test_paper_like_anticorrelation_and_relation_string():
    # e_J and e_D anticorrelated along e_J = -0.8 e_D; e_theta small and independent
    rng = np.random.default_rng(1)
    n = 100_000
    t = rng.normal(size=n)
    errors = np.stack([0.01 * rng.normal(size=n), -0.8 * t, t], axis=1) + 0.05 * rng.normal(size=(n, 3))
    pca = error_pca(errors)
    assert pca.explained_variance_ratio_[0] > 0.95
    assert pca.relation(["theta", "J", "D"]) == "e_J ~ -0.80 e_D"
    with pytest.raises(ValueError, match="names"):
        pca.relation(["J", "D"])


def test_bad_input():
    with pytest.raises(ValueError, match="n >= 2"):
        error_pca(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="n >= 2"):
        error_pca(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        error_pca(np.array([[0.0, np.nan], [1.0, 2.0]]))

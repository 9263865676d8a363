import numpy as np
import pytest

from scalinglab.stats import fit_saturating, saturating_loss

ALPHA, X_C, FLOOR = 1.0, 2.56, 1e-3
SIZES = 256 * 2.0 ** np.arange(8)  # the power term falls from 10x to 0.08x the floor


def law(x):
    return saturating_loss(x, ALPHA, X_C, FLOOR)


def test_saturating_loss_closed_form():
    x = np.array([1.0, 10.0, 1e4])
    np.testing.assert_allclose(saturating_loss(x, 0.5, 4.0, 0.1), (4.0 / x) ** 0.5 + 0.1, rtol=1e-14)
    np.testing.assert_allclose(saturating_loss(x, 2.0, 3.0, 0.0), (3.0 / x) ** 2, rtol=1e-14)


def test_exact_saturating_law_is_recovered(exact_sweep):
    fit = fit_saturating(SIZES, exact_sweep(SIZES, law), num_bootstrap=50, quiet=True)
    assert fit.converged_
    assert fit.exponent_ == pytest.approx(ALPHA, rel=1e-5)
    assert fit.x_c_ == pytest.approx(X_C, rel=1e-4)
    assert fit.floor_ == pytest.approx(FLOOR, rel=1e-5)
    assert not fit.floor_unconstrained_
    np.testing.assert_allclose(fit.predict(SIZES), law(SIZES), rtol=1e-5)
    assert fit.bootstrap_failures_ == 0


def test_saturating_coverage_over_100_sweeps(synthetic_sweep):
    """True alpha, X_c and K inside the 95 % bootstrap intervals in >= 85 of 100 synthetic sweeps."""
    rng = np.random.default_rng(17)
    hits = np.zeros(3, dtype=int)
    estimates, stderrs = [], []
    for i in range(100):
        fit = fit_saturating(SIZES, synthetic_sweep(SIZES, law, 10, 0.2, rng), num_bootstrap=200, seed=i, quiet=True)
        estimates.append(fit.exponent_)
        stderrs.append(fit.exponent_stderr_)
        hits += [
            fit.exponent_interval_[0] <= ALPHA <= fit.exponent_interval_[1],
            fit.x_c_interval_[0] <= X_C <= fit.x_c_interval_[1],
            fit.floor_interval_[0] <= FLOOR <= fit.floor_interval_[1],
        ]
    print(
        f"\nsaturating coverage (alpha, X_c, K): {hits.tolist()} of 100; sd of alpha estimates "
        f"{np.std(estimates):.4f}, median bootstrap sd {np.median(stderrs):.4f}"
    )
    assert hits.min() >= 85, hits
    assert np.median(stderrs) == pytest.approx(np.std(estimates), rel=0.35)


def test_pure_power_law_has_an_unconstrained_floor(synthetic_sweep):
    rng = np.random.default_rng(2)
    pure = lambda x: (X_C / x) ** 1.5
    fit = fit_saturating(SIZES, synthetic_sweep(SIZES, pure, 10, 0.2, rng), num_bootstrap=100, quiet=True)
    assert fit.floor_unconstrained_
    assert fit.floor_interval_[0] < 1e-6 * pure(SIZES[-1])
    assert fit.exponent_interval_[0] <= 1.5 <= fit.exponent_interval_[1]


def test_huber_loss_resists_one_aberrant_point(synthetic_sweep):
    rng = np.random.default_rng(5)
    losses = synthetic_sweep(SIZES, law, 10, 0.2, rng)
    losses[3] = losses[3] * 10.0  # one badly trained design point
    fit = fit_saturating(SIZES, losses, num_bootstrap=50, quiet=True)
    assert fit.exponent_ == pytest.approx(ALPHA, rel=0.15)
    assert fit.floor_ == pytest.approx(FLOOR, rel=0.15)
    assert np.argmax(np.abs(fit.residuals_)) == 3


def test_bad_input():
    with pytest.raises(ValueError, match="distinct"):
        fit_saturating(SIZES[:3], [[1.0, 2.0]] * 3)
    with pytest.raises(ValueError, match="num_starts"):
        fit_saturating(SIZES, [[1.0, 2.0]] * 8, num_starts=1)

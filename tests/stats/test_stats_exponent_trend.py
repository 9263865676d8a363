import numpy as np
import pytest

from scalinglab.stats import fit_exponent_trend

SIZES = np.array([8e4, 3e5, 1.2e6, 5e6, 1e7])
A_TRUE, B_TRUE, N0 = 0.42, 1.38, 1e6  # paper 1 Fig. 5, parameter J


def test_noise_free_trend_is_exact():
    alpha = A_TRUE * np.log10(SIZES / N0) + B_TRUE
    fit = fit_exponent_trend(SIZES, alpha, np.full(5, 0.05), N0)
    assert fit.slope_ == pytest.approx(A_TRUE, rel=1e-12)
    assert fit.intercept_ == pytest.approx(B_TRUE, rel=1e-12)
    assert fit.chi2_ == pytest.approx(0.0, abs=1e-20)
    assert fit.birge_factor_ == 1.0 and fit.dof_ == 3


def test_trend_recovered_with_calibrated_errors():
    rng = np.random.default_rng(1)
    se = np.array([0.05, 0.08, 0.04, 0.06, 0.1])
    pulls_a, pulls_b = [], []
    for _ in range(400):
        alpha = A_TRUE * np.log10(SIZES / N0) + B_TRUE + se * rng.standard_normal(5)
        fit = fit_exponent_trend(SIZES, alpha, se, N0)
        pulls_a.append((fit.slope_ - A_TRUE) / fit.slope_stderr_)
        pulls_b.append((fit.intercept_ - B_TRUE) / fit.intercept_stderr_)
    pulls_a, pulls_b = np.array(pulls_a), np.array(pulls_b)
    # unbiased, and the quoted errors cover at (or, with the Birge inflation, slightly above) nominal
    assert abs(pulls_a.mean()) < 0.15 and abs(pulls_b.mean()) < 0.15
    assert 0.75 < pulls_a.std() < 1.1 and 0.75 < pulls_b.std() < 1.1
    assert np.mean(np.abs(pulls_a) < 1.96) >= 0.93


def test_propagated_prediction_error():
    rng = np.random.default_rng(2)
    se = np.full(5, 0.05)
    alpha = A_TRUE * np.log10(SIZES / N0) + B_TRUE + se * rng.standard_normal(5)
    fit = fit_exponent_trend(SIZES, alpha, se, N0)
    value, err = fit.predict([N0, 1e8])
    assert value[0] == pytest.approx(fit.intercept_)
    assert err[0] == pytest.approx(fit.intercept_stderr_)
    c = fit.covariance_
    assert err[1] == pytest.approx(np.sqrt(4 * c[0, 0] + 4 * c[0, 1] + c[1, 1]))  # t = log10(1e8/1e6) = 2


def test_birge_inflation_when_points_scatter_too_much():
    alpha = A_TRUE * np.log10(SIZES / N0) + B_TRUE + np.array([0.3, -0.3, 0.3, -0.3, 0.3])
    fit = fit_exponent_trend(SIZES, alpha, np.full(5, 0.01), N0)
    assert fit.birge_factor_ == pytest.approx(fit.chi2_ / 3)
    assert fit.birge_factor_ > 100


@pytest.mark.parametrize(
    "sizes, exps, errs, n0, match",
    [
        ([1e5], [1.0], [0.1], 1e6, "distinct"),
        ([1e5, 1e6], [1.0, 1.2], [0.1, 0.0], 1e6, "stderrs"),
        ([1e5, -1e6], [1.0, 1.2], [0.1, 0.1], 1e6, "sizes"),
        ([1e5, 1e6], [1.0, np.nan], [0.1, 0.1], 1e6, "exponents"),
        ([1e5, 1e6], [1.0, 1.2, 1.3], [0.1, 0.1], 1e6, "equal length"),
        ([1e5, 1e6], [1.0, 1.2], [0.1, 0.1], 0.0, "n0"),
    ],
)
def test_bad_input(sizes, exps, errs, n0, match):
    with pytest.raises(ValueError, match=match):
        fit_exponent_trend(sizes, exps, errs, n0)

"""The automatic power-law / floored-law choice: coverage on synthetic sweeps with known truth, flags."""

import numpy as np
import pytest

from scalinglab.stats import fit_scaling_curve
from scalinglab.stats.synthetic import CURVE_CASES, CURVE_X, curve_coverage, floored_power_law_sweep

SIZES = 256 * 2.0 ** np.arange(6)


@pytest.mark.parametrize("case", list(CURVE_CASES))
def test_interval_covers_the_truth_in_every_case(case):
    """40 sweeps per case: coverage >= 33/40 (at a true 95 % that fails with probability < 0.2 %), median
    bias < 0.02 (the 400-sweep study in benchmarks/fit_coverage.py measures 0.95-0.96 and < 0.01)."""
    r = curve_coverage(case, 40, seed=11, num_bootstrap=200)
    print(f"\n{case}: coverage {r['coverage']:.3f}, median bias {r['median_bias']:.4f}, "
          f"saturating chosen {r['saturating_share']:.2f}")
    assert r["coverage"] >= 33 / 40
    assert abs(r["median_bias"]) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CURVE_CASES))
def test_interval_coverage_over_200_sweeps(case):
    r = curve_coverage(case, 200, seed=5, num_bootstrap=300)
    # at a true 95 % the share of 200 lies in [0.91, 0.985] with probability > 99 %
    assert 0.91 <= r["coverage"] <= 0.985, r
    assert abs(r["median_bias"]) < 0.012, r


def test_a_clear_floor_is_found_and_a_pure_power_law_kept(exact_sweep):
    rng = np.random.default_rng(3)
    strong = floored_power_law_sweep(rng, 1.1, 0.7)  # the floor is 70 % of the last loss: unmistakable
    fit = fit_scaling_curve(CURVE_X, strong, num_bootstrap=200, seed=0)
    assert fit.law_ == "saturating" and fit.floor_detected_ and fit.floor_ > 0
    assert abs(fit.exponent_ - 1.1) < 0.15
    pure = fit_scaling_curve(SIZES, exact_sweep(SIZES, lambda x: 50 * x**-1.3), num_bootstrap=100, seed=0)
    assert pure.law_ == "power_law" and not pure.floor_detected_
    assert pure.exponent_ == pytest.approx(1.3, abs=1e-6)
    assert pure.prefactor_ == pytest.approx(50.0, rel=1e-4)
    assert pure.goodness_.kind == "huber" and pure.goodness_.statistic == pytest.approx(0.0, abs=1e-8)


def test_one_run_per_point_resamples_points():
    rng = np.random.default_rng(7)
    x = 100 * 2.0 ** np.arange(10)
    losses = [[v] for v in 20 * x**-0.9 * np.exp(0.03 * rng.standard_normal(x.size))]
    fit = fit_scaling_curve(x, losses, num_bootstrap=300, seed=1)
    assert fit.resampling_ == "points" and fit.goodness_.kind == "residual"
    lo, hi = fit.exponent_interval_
    assert lo < 0.9 < hi and hi - lo < 0.1


def test_poor_and_unconstrained_fits_are_flagged():
    rng = np.random.default_rng(1)
    # a compute curve that is a plateau, then a drop: neither law describes it
    x = np.geomspace(1e12, 1e15, 7)
    mean = np.where(x < 2e14, 1.0, 1e-2)
    plateau = [m * np.exp(0.05 * rng.standard_normal(8)) for m in mean]
    bad = fit_scaling_curve(x, plateau, num_bootstrap=100, seed=0)
    assert bad.goodness_.poor and any(f.startswith("poor fit") for f in bad.flags_)
    # a "depth sweep" whose size moves by 0.7 %
    xs = 1e6 * (1 + np.linspace(0, 0.007, 5))
    flat = [1e-3 * np.exp(0.2 * rng.standard_normal(6)) for _ in xs]
    loose = fit_scaling_curve(xs, flat, num_bootstrap=100, seed=0)
    assert any(f.startswith("unconstrained") for f in loose.flags_)


def test_weights_leave_out_an_outlier():
    rng = np.random.default_rng(2)
    x = 100 * 2.0 ** np.arange(8)
    losses = [[v] for v in 5 * x**-1.0 * np.exp(0.01 * rng.standard_normal(x.size))]
    losses[-1] = [losses[-1][0] * 3.0]  # one wrong point, at the end where it tilts the line most
    with_it = fit_scaling_curve(x, losses, law="power_law", num_bootstrap=50, seed=0)
    weights = np.ones(x.size)
    weights[-1] = 0.0
    without = fit_scaling_curve(x, losses, law="power_law", weights=weights, num_bootstrap=50, seed=0)
    assert abs(without.exponent_ - 1.0) < 0.01 and abs(with_it.exponent_ - 1.0) > 0.05


def test_bad_arguments_fail_with_a_message():
    losses = [[1.0, 1.1]] * 5
    with pytest.raises(ValueError, match="law must be"):
        fit_scaling_curve(SIZES[:5], losses, law="cubic")
    with pytest.raises(ValueError, match="huber_delta"):
        fit_scaling_curve(SIZES[:5], losses, huber_delta=-1.0)
    with pytest.raises(ValueError, match="weights"):
        fit_scaling_curve(SIZES[:5], losses, weights=[1.0, 2.0])

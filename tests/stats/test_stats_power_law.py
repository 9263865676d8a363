import numpy as np
import pytest

from scalinglab.stats import FLOAT32_LOSS_RESOLUTION, curvature_test, fit_power_law

ALPHA, PREFACTOR = 1.3, 50.0
SIZES = 256 * 2.0 ** np.arange(6)  # 256 .. 8192


def power(x):
    return PREFACTOR * x**-ALPHA


def test_exact_power_law_is_recovered(exact_sweep):
    fit = fit_power_law(SIZES, exact_sweep(SIZES, power), num_bootstrap=200)
    assert fit.exponent_ == pytest.approx(ALPHA, rel=1e-10)
    assert fit.prefactor_ == pytest.approx(PREFACTOR, rel=1e-8)
    assert fit.in_fit_.all() and fit.dropped_ == []
    assert fit.fit_range_ == (SIZES[0], SIZES[-1])
    np.testing.assert_allclose(fit.residuals_, 0.0, atol=1e-10)
    np.testing.assert_allclose(fit.predict(SIZES), power(SIZES), rtol=1e-8)
    assert "curvature" in fit.range_rule_ and fit.curvature_ is not None


def test_exponent_interval_coverage_over_100_sweeps(synthetic_sweep):
    """Issue 4 acceptance: true exponent inside the 95 % interval in >= 85 of 100 synthetic sweeps."""
    rng = np.random.default_rng(2024)
    covered = stderr_covered = 0
    estimates, widths = [], []
    for i in range(100):
        losses = synthetic_sweep(SIZES, power, 10, 0.3, rng)
        fit = fit_power_law(SIZES, losses, num_bootstrap=1000, seed=i)
        lo, hi = fit.exponent_interval_
        covered += lo <= ALPHA <= hi
        stderr_covered += abs(fit.exponent_ - ALPHA) <= 1.96 * fit.exponent_stderr_
        estimates.append(fit.exponent_)
        widths.append(hi - lo)
    print(
        f"\npower-law exponent coverage: bootstrap {covered}/100, +-1.96 stderr {stderr_covered}/100; "
        f"sd of estimates {np.std(estimates):.4f}, median interval width / 3.92 {np.median(widths) / 3.92:.4f}"
    )
    assert covered >= 85
    assert stderr_covered >= 85
    # honest, not merely wide: the interval width matches the actual sweep-to-sweep spread
    assert np.median(widths) / 3.92 == pytest.approx(np.std(estimates), rel=0.3)


def test_curvature_test_flags_a_floor_and_not_a_pure_power_law(synthetic_sweep):
    rng = np.random.default_rng(99)
    with_floor = lambda x: power(x) + 2e-3  # the floor overtakes the power law mid-sweep
    flagged_floor = sum(
        curvature_test(SIZES, synthetic_sweep(SIZES, with_floor, 10, 0.3, rng), seed=i).rejects_power_law
        for i in range(50)
    )
    flagged_pure = sum(
        curvature_test(SIZES, synthetic_sweep(SIZES, power, 10, 0.3, rng), seed=i).rejects_power_law for i in range(100)
    )
    print(f"\ncurvature test: floor flagged {flagged_floor}/50, pure power law flagged {flagged_pure}/100")
    assert flagged_floor >= 45  # power: the floor is found almost always (99 % measured over 200)
    assert flagged_pure <= 12  # size: nominal 5 %, at most 12 % false alarms out of 100
    res = curvature_test(SIZES, synthetic_sweep(SIZES, with_floor, 10, 0.3, rng), seed=0)
    assert res.direction == "flattening" and res.curvature > 0


def test_auto_range_drops_the_saturated_end(synthetic_sweep):
    rng = np.random.default_rng(3)
    sizes = 256 * 2.0 ** np.arange(9)  # the last points sit on the floor
    floor = lambda x: power(x) + 2e-5
    losses = synthetic_sweep(sizes, floor, 10, 0.1, rng)
    auto = fit_power_law(sizes, losses, num_bootstrap=300, seed=1)
    everything = fit_power_law(sizes, losses, fit_range="all", num_bootstrap=300, seed=1)
    assert auto.fit_range_[1] < sizes[-1]
    assert all(d["reason"].startswith("curvature") for d in auto.dropped_) and auto.dropped_
    assert not auto.curvature_.rejects_power_law or auto.in_fit_.sum() == 4
    assert abs(auto.exponent_ - ALPHA) < abs(everything.exponent_ - ALPHA)
    assert everything.fit_range_ == (sizes[0], sizes[-1])


def test_points_near_float32_resolution_are_flagged_and_excluded(synthetic_sweep):
    rng = np.random.default_rng(4)
    sizes = 256 * 2.0 ** np.arange(8)
    steep = lambda x: 1e3 * x**-2.0  # reaches ~6e-7 at the largest size
    losses = synthetic_sweep(sizes, steep, 10, 0.1, rng)
    fit = fit_power_law(sizes, losses, num_bootstrap=200, seed=0)
    near = fit.geometric_means_ < 10 * FLOAT32_LOSS_RESOLUTION
    assert near.any()
    np.testing.assert_array_equal(fit.flagged_precision_, near)
    assert not (fit.in_fit_ & near).any()
    assert [d["reason"] for d in fit.dropped_][: near.sum()] == ["precision"] * int(near.sum())
    assert fit.summary()["flagged_precision_x"] == sizes[near].tolist()


def test_input_order_and_ragged_realizations(synthetic_sweep):
    rng = np.random.default_rng(6)
    losses = synthetic_sweep(SIZES, power, 10, 0.3, rng)
    losses = [l[: 4 + i] for i, l in enumerate(losses)]  # 4..9 realizations
    perm = np.array([3, 0, 5, 1, 4, 2])
    a = fit_power_law(SIZES, losses, num_bootstrap=200, seed=0)
    b = fit_power_law(SIZES[perm], [losses[i] for i in perm], num_bootstrap=200, seed=0)
    assert a.exponent_ == pytest.approx(b.exponent_, rel=1e-12)
    assert a.exponent_interval_ == pytest.approx(b.exponent_interval_, rel=1e-12)


def test_given_fit_range(synthetic_sweep):
    rng = np.random.default_rng(8)
    losses = synthetic_sweep(SIZES, power, 10, 0.3, rng)
    fit = fit_power_law(SIZES, losses, fit_range=(300, 5000), num_bootstrap=200)
    assert fit.fit_range_ == (512.0, 4096.0)
    assert fit.in_fit_.tolist() == [False, True, True, True, True, False]
    assert len(fit.dropped_) == 2


@pytest.mark.parametrize(
    "x, losses, kwargs, match",
    [
        (SIZES, [[1.0]] * 6, {}, "realization"),
        (SIZES[:5], [[1.0, 2.0]] * 6, {}, "points"),
        (-SIZES, [[1.0, 2.0]] * 6, {}, "> 0"),
        (SIZES, [[1.0, 2.0]] * 6, {"fit_range": (1e6, 1e7)}, "fit_range"),
        (SIZES, [[1.0, 2.0]] * 6, {"fit_range": "some"}, "fit_range"),
        (SIZES, [[1.0, 2.0]] * 6, {"confidence": 1.5}, "confidence"),
        (SIZES, [[1e-8, 2e-8]] * 6, {}, "resolution"),
        (SIZES, [[1.0, 2.0]] * 6, {"min_points": 2}, "min_points"),
    ],
)
def test_bad_input_gives_one_line_errors(x, losses, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        fit_power_law(x, losses, **kwargs)
    assert "\n" not in str(info.value)

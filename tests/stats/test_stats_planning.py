import numpy as np
import pytest

from scalinglab.stats import (
    conservative_plan,
    exponent_lower_bound,
    fit_joint,
    fit_power_law,
    fit_saturating,
    intrinsic_dimension,
    joint_loss,
    plan,
    saturating_loss,
)

SIZES = 256 * 2.0 ** np.arange(8)


def test_power_law_plan_inverts_the_fit(synthetic_sweep):
    rng = np.random.default_rng(1)
    law = lambda x: 50.0 * x**-1.3
    fit = fit_power_law(SIZES, synthetic_sweep(SIZES, law, 10, 0.2, rng), num_bootstrap=500)
    target = float(fit.predict(1e5))
    p = plan(fit, target)
    assert p.defined and p.reason == ""
    assert p.needed == pytest.approx(1e5, rel=1e-9)
    assert p.interval[0] < 1e5 < p.interval[1]
    assert p.extrapolation_factor == pytest.approx(1e5 / SIZES[-1], rel=1e-9)
    assert p.fraction_undefined == 0.0
    # the interval is the bootstrap fits inverted: it must contain the truth for this well-measured curve
    true_needed = (50.0 / target) ** (1 / 1.3)
    assert p.interval[0] < true_needed < p.interval[1]


def test_saturating_plan_and_undefined_below_floor(exact_sweep, synthetic_sweep):
    law = lambda x: saturating_loss(x, 1.0, 2.56, 1e-3)
    fit = fit_saturating(SIZES, exact_sweep(SIZES, law), num_bootstrap=100, quiet=True)
    target = 1.5e-3
    p = plan(fit, target)
    assert p.defined
    assert p.needed == pytest.approx(2.56 / (target - 1e-3), rel=1e-4)  # X = X_c (L - K)^(-1/alpha)
    assert float(fit.predict(p.needed)) == pytest.approx(target, rel=1e-9)
    below = plan(fit, 0.9e-3)
    assert not below.defined and np.isnan(below.needed)
    assert "floor" in below.reason and "\n" not in below.reason
    assert below.summary()["needed"] is None
    # a target just above a noisy floor: some bootstrap fits cannot reach it -> open upper end
    noisy = fit_saturating(
        SIZES, synthetic_sweep(SIZES, law, 10, 0.3, np.random.default_rng(4)), num_bootstrap=200, quiet=True
    )
    edge = plan(noisy, noisy.floor_ * 1.02)
    assert edge.defined and edge.fraction_undefined > 0.025
    assert edge.interval[1] == np.inf and edge.summary()["interval"][1] == "inf"


def test_joint_plan_along_each_axis():
    truth = (0.7, 50.0, 1.2, 20.0, 1e-3)
    nm, nd = (a.ravel() for a in np.meshgrid([1e3, 4e3, 1.6e4, 6.4e4], 256 * 4.0 ** np.arange(5), indexing="ij"))
    losses = [m * np.exp(0.05 * np.array([1.0, -1.0, 1.0, -1.0])) for m in joint_loss(nm, nd, *truth)]
    fit = fit_joint(nm, nd, losses, num_bootstrap=30)
    target = 1e-2  # above K + (50/1e5)^0.7 = 5.9e-3
    p = plan(fit, target, axis="data", other=1e5)
    assert p.defined
    assert float(fit.predict(1e5, p.needed)) == pytest.approx(target, rel=1e-9)
    q = plan(fit, target, axis="model", other=1e6)
    assert float(fit.predict(q.needed, 1e6)) == pytest.approx(target, rel=1e-9)
    r = plan(fit, 1e-2, axis="data", other=1e3)  # the N_M = 1e3 term alone is (50/1e3)^0.7 = 0.12
    assert not r.defined and "N_M" in r.reason


def test_paper3_recipe():
    # ttH: 2 -> 3, d = 5, bound 4/5 (paper 3 Sec. 3.2)
    assert intrinsic_dimension(3) == 5
    assert exponent_lower_bound(3) == pytest.approx(0.8)
    c = conservative_plan(1e-5, anchor_x=1e3, anchor_loss=1e-2, num_final=3, floor=1e-6, exponent=1.8)
    assert c.defined
    assert saturating_loss(c.needed, c.exponent_bound, c.x_c, 1e-6) == pytest.approx(1e-5, rel=1e-9)
    assert saturating_loss(1e3, c.exponent_bound, c.x_c, 1e-6) == pytest.approx(1e-2, rel=1e-9)
    # a steeper (fitted) exponent needs less: the bound is the conservative budget
    assert c.needed_with_exponent < c.needed
    assert c.needed_with_exponent == pytest.approx(1e3 * ((1e-2 - 1e-6) / (1e-5 - 1e-6)) ** (1 / 1.8))
    low = conservative_plan(1e-7, anchor_x=1e3, anchor_loss=1e-2, num_final=3, floor=1e-6)
    assert not low.defined and "floor" in low.reason
    # at one fixed sqrt(s) the amplitude depends on one variable fewer: d = 3 n_f - 5, a larger bound
    assert intrinsic_dimension(3, "fixed") == 4
    fixed = conservative_plan(1e-5, anchor_x=1e3, anchor_loss=1e-2, dimension=4, floor=1e-6)
    assert fixed.exponent_bound == pytest.approx(1.0) and fixed.needed < c.needed


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: intrinsic_dimension(1), "num_final"),
        (lambda: conservative_plan(1e-3, 1e3, 1e-7, 3, floor=1e-6), "anchor_loss"),
        (lambda: conservative_plan(-1.0, 1e3, 1e-2, 3), "target_loss"),
        (lambda: conservative_plan(1e-3, 1e3, 1e-2, 3, dimension=5), "exactly one"),
        (lambda: conservative_plan(1e-3, 1e3, 1e-2, dimension=0), "dimension"),
        (lambda: intrinsic_dimension(3, "lhc"), "sampling"),
        (lambda: plan(object(), 1e-3), "cannot plan"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plan_scaling_curve_inverts_the_automatically_chosen_law():
    from scalinglab.stats import fit_scaling_curve, plan, plan_scaling_curve
    from scalinglab.stats.synthetic import CURVE_X, floored_power_law_sweep

    rng = np.random.default_rng(5)
    pure = fit_scaling_curve(CURVE_X, floored_power_law_sweep(rng, 1.1, 0.0, sigma=0.1), num_bootstrap=200,
                             seed=1)
    target = 50.0 * 1e5 ** -1.1  # the truth needs x = 1e5
    p = plan(pure, target)
    assert p.law == f"auto: {pure.law_}" and p.defined
    assert p.interval[0] <= p.needed <= p.interval[1] and 0.7 < p.needed / 1e5 < 1.4
    if pure.law_ == "power_law":
        assert p.needed == pytest.approx((pure.prefactor_ / target) ** (1.0 / pure.exponent_))
    # a strong floor: the floored law is chosen, and a target below the floor is unreachable
    floored = fit_scaling_curve(CURVE_X, floored_power_law_sweep(rng, 1.1, 0.5, sigma=0.05), num_bootstrap=200,
                                seed=2)
    assert floored.law_ == "saturating" and floored.bootstrap_params_.shape == (200, 3)
    below = plan_scaling_curve(floored, 0.5 * floored.floor_)
    assert not below.defined and "floor" in below.reason
    above = plan_scaling_curve(floored, 3.0 * floored.floor_)
    assert above.defined and above.law == "auto: saturating"
    assert above.needed == pytest.approx(floored.x_c_ * (2.0 * floored.floor_) ** (-1.0 / floored.exponent_))

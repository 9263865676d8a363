"""Single-run joint fits (point bootstrap) and the compute-optimal allocation, against known truth."""

import numpy as np
import pytest

from scalinglab.stats import FlopModel, compute_frontier, compute_optimal, fit_joint, plan_joint
from scalinglab.stats.synthetic import JointTruth, joint_coverage, joint_single_run


@pytest.fixture(scope="module")
def single_run_fit():
    nm, nd, loss = joint_single_run(np.random.default_rng(0), JointTruth())
    return fit_joint(nm, nd, [[v] for v in loss], num_bootstrap=300, seed=0)


def test_point_bootstrap_intervals_cover_the_truth():
    """40 single-run sweeps: every parameter and N_opt(1e19) covered in >= 32/40 (the 200-sweep study in
    benchmarks/fit_coverage.py measures 0.93-0.94; at a true 93 % this fails with probability < 0.5 %)."""
    r = joint_coverage(40, seed=3, num_bootstrap=150)
    print(f"\njoint single-run coverage: {r['coverage']}, N_opt {r['n_opt_coverage']}")
    assert all(v >= 32 / 40 for v in r["coverage"].values()), r
    assert r["n_opt_coverage"] >= 32 / 40


def test_single_run_fit_is_accepted_and_says_how_it_resampled(single_run_fit):
    f = single_run_fit
    truth = JointTruth()
    assert f.resampling_ == "points" and f.goodness_.kind == "residual"
    assert abs(f.exponent_model_ - truth.alpha) < 0.1 and abs(f.exponent_data_ - truth.beta) < 0.1
    assert f.goodness_.rms_log_residual == pytest.approx(truth.sigma, rel=0.5)
    with pytest.raises(ValueError, match="resampling='realizations'"):
        fit_joint([1, 2, 3, 1, 2, 3], [1, 1, 1, 2, 2, 2], [[1.0]] * 6, resampling="realizations")


def test_closed_form_optimum_matches_a_brute_force_search(single_run_fit):
    f = single_run_fit
    budget = 1e19
    opt = compute_optimal(f, budget)
    # independent check: minimize the fitted law along C = 6 N D on a fine grid of N
    n = np.geomspace(1e5, 1e12, 200001)
    loss = f.predict(n, budget / (6 * n))
    i = int(np.argmin(loss))
    assert opt.n_model == pytest.approx(n[i], rel=1e-3)
    assert opt.n_data == pytest.approx(budget / (6 * opt.n_model), rel=1e-12)
    assert opt.loss == pytest.approx(loss[i], rel=1e-9)
    a, b = f.exponent_model_, f.exponent_data_
    assert opt.exponent_model == pytest.approx(b / (a + b)) and opt.exponent_data == pytest.approx(a / (a + b))
    assert opt.n_model_interval[0] < opt.n_model < opt.n_model_interval[1]


def test_user_flop_model_and_frontier(single_run_fit):
    f = single_run_fit
    cheap, dear = compute_optimal(f, 1e19), compute_optimal(f, 1e19, flop_model=FlopModel(coefficient=60.0))
    # ten times the cost per parameter-sample is a ten times smaller budget under the default model
    assert dear.n_model == pytest.approx(compute_optimal(f, 1e18).n_model, rel=1e-9)
    assert dear.loss > cheap.loss
    front = compute_frontier(f, np.geomspace(1e16, 1e22, 7))
    assert np.all(np.diff(front["n_model"]) > 0) and np.all(np.diff(front["loss"]) < 0)
    assert np.all(front["n_model_lo"] <= front["n_model"]) and np.all(front["n_model"] <= front["n_model_hi"])
    far = compute_optimal(f, 1e25)
    assert far.extrapolation and "extrapolation" in far.extrapolation[0]
    with pytest.raises(ValueError, match="positive"):
        compute_optimal(f, -1.0)


def test_joint_plan_reports_extrapolation(single_run_fit):
    p = plan_joint(single_run_fit, 2.5, "data", other=3e8)
    assert p.defined and p.extrapolation_factor == pytest.approx(p.needed / 6e9)


def test_joint_fit_flags_an_axis_that_barely_varies():
    rng = np.random.default_rng(4)
    nm = np.repeat([1.000e6, 1.003e6, 1.007e6], 4)
    nd = np.tile([1e4, 3e4, 1e5, 3e5], 3)
    loss = (0.1 + 30 * nd**-0.5) * np.exp(0.02 * rng.standard_normal(nm.size))
    f = fit_joint(nm, nd, [[v] for v in loss], num_bootstrap=50, seed=0)
    assert any(s.startswith("unconstrained: N_M") for s in f.flags_)

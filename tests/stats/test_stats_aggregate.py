import numpy as np
import pytest

from scalinglab.stats import geometric_mean_vs_realizations, summarize_point, summarize_points


def test_summary_closed_form_values():
    s = summarize_point([1.0, 2.0, 4.0, 8.0], num_bootstrap=500, seed=1)
    logs = np.log([1.0, 2.0, 4.0, 8.0])
    assert s.num_realizations == 4
    assert s.mean == pytest.approx(3.75)
    assert s.mean_stderr == pytest.approx(np.std([1, 2, 4, 8], ddof=1) / 2)
    assert s.geometric_mean == pytest.approx(2.0**1.5)
    assert s.log_stderr == pytest.approx(logs.std(ddof=1) / 2)
    assert s.geometric_mean_stderr == pytest.approx(2.0**1.5 * logs.std(ddof=1) / 2)
    assert s.median == pytest.approx(3.0)
    assert s.median_mad == pytest.approx(1.5)  # |1-3|, |2-3|, |4-3|, |8-3| -> median of 2, 1, 1, 5
    for value, (lo, hi) in [
        (s.mean, s.mean_interval),
        (s.geometric_mean, s.geometric_mean_interval),
        (s.median, s.median_interval),
    ]:
        assert lo <= value <= hi
    assert set(s.as_dict()) >= {"geometric_mean", "median_mad", "geometric_mean_interval"}


def test_geometric_mean_stderr_matches_monte_carlo():
    """Delta-method SE of the GM equals the spread of GMs over repeated experiments (lognormal, R=20)."""
    rng = np.random.default_rng(5)
    draws = np.exp(np.log(0.01) + 0.5 * rng.standard_normal((2000, 20)))
    gms = np.exp(np.log(draws).mean(axis=1))
    reported = np.mean([summarize_point(d, num_bootstrap=10).geometric_mean_stderr for d in draws[:300]])
    assert reported == pytest.approx(gms.std(ddof=1), rel=0.1)


def test_geometric_mean_interval_covers_truth():
    rng = np.random.default_rng(7)
    truth = 0.02  # the GM of a lognormal exp(mu + sigma Z) is exp(mu)
    hits = 0
    for i in range(200):
        losses = truth * np.exp(0.6 * rng.standard_normal(20))
        lo, hi = summarize_point(losses, num_bootstrap=1000, seed=i).geometric_mean_interval
        hits += lo <= truth <= hi
    assert hits >= 176  # nominal 95 %: at least 88 % of 200 (percentile bootstrap runs slightly narrow at R=20)


def test_summaries_are_seeded_and_per_point():
    pts = [[1.0, 1.1, 0.9], [0.5, 0.4, 0.6, 0.55]]
    a = summarize_points(pts, num_bootstrap=200, seed=3)
    b = summarize_points(pts, num_bootstrap=200, seed=3)
    assert a == b
    assert [s.num_realizations for s in a] == [3, 4]


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, np.nan], [1.0, -2.0], [[1.0, 2.0]]])
def test_bad_losses_are_rejected(bad):
    with pytest.raises(ValueError):
        summarize_point(bad)


def test_gm_vs_realizations_shape():
    rng = np.random.default_rng(11)
    losses = np.exp(np.log(1e-3) + 0.8 * rng.standard_normal(100))
    curve = geometric_mean_vs_realizations(losses, num_bootstrap=200, seed=2)
    gm = np.exp(np.log(losses).mean())
    assert curve.num_realizations.tolist() == list(range(1, 101))
    assert curve.mean.shape == curve.std.shape == (100,)
    # the full set is the only subset of size R: its GM, no spread
    assert curve.mean[-1] == pytest.approx(gm, rel=1e-12)
    assert curve.std[-1] == pytest.approx(0.0, abs=1e-12 * gm)
    # one realization per subset: the spread of single losses
    assert curve.std[0] == pytest.approx(losses.std(ddof=1), rel=0.3)
    # the spread shrinks as more realizations are averaged, and the mean settles at the full GM
    assert curve.std[0] > curve.std[9] > curve.std[49] > curve.std[89]
    assert np.all(np.abs(curve.mean[20:] / gm - 1) < 0.1)
    again = geometric_mean_vs_realizations(losses, num_bootstrap=200, seed=2)
    np.testing.assert_array_equal(curve.mean, again.mean)

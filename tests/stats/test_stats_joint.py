import numpy as np
import pytest

from scalinglab.stats import fit_joint, joint_loss

TRUTH = {"a_m": 0.7, "scale_m": 50.0, "a_d": 1.2, "scale_d": 20.0, "floor": 1e-3}
N_MODEL = np.array([1e3, 4e3, 1.6e4, 6.4e4])
N_DATA = 256 * 4.0 ** np.arange(5)


def grid():
    nm, nd = (a.ravel() for a in np.meshgrid(N_MODEL, N_DATA, indexing="ij"))
    return nm, nd, joint_loss(nm, nd, *TRUTH.values())


def test_exact_joint_law_is_recovered():
    nm, nd, mean = grid()
    losses = [m * np.exp(0.05 * np.array([1.0, -1.0, 1.0, -1.0])) for m in mean]
    fit = fit_joint(nm, nd, losses, num_bootstrap=30)
    assert fit.converged_
    got = [fit.exponent_model_, fit.scale_model_, fit.exponent_data_, fit.scale_data_, fit.floor_]
    np.testing.assert_allclose(got, list(TRUTH.values()), rtol=1e-4)
    np.testing.assert_allclose(fit.predict(nm, nd), mean, rtol=1e-6)


def test_joint_intervals_cover_the_truth():
    rng = np.random.default_rng(3)
    nm, nd, mean = grid()
    hits = np.zeros(3, dtype=int)
    for i in range(10):
        losses = [m * np.exp(0.2 * rng.standard_normal(8)) for m in mean]
        fit = fit_joint(nm, nd, losses, num_bootstrap=150, seed=i)
        iv = fit.intervals_
        hits += [
            iv["exponent_model"][0] <= TRUTH["a_m"] <= iv["exponent_model"][1],
            iv["exponent_data"][0] <= TRUTH["a_d"] <= iv["exponent_data"][1],
            iv["floor"][0] <= TRUTH["floor"] <= iv["floor"][1],
        ]
        assert fit.bootstrap_failures_ <= 3
    print(f"\njoint coverage (a_M, a_D, K): {hits.tolist()} of 10")
    assert hits.min() >= 8, hits  # nominal 95 %: 8 or more of 10 (P(fewer) ~ 1 %)


def test_joint_bad_input():
    nm, nd, mean = grid()
    losses = [[m, 1.1 * m] for m in mean]
    with pytest.raises(ValueError, match="n_data"):
        fit_joint(nm, np.full_like(nd, 256.0), losses)
    with pytest.raises(ValueError, match="6 points"):
        pick = [0, 5, 10, 1, 6]
        fit_joint(nm[pick], nd[pick], [losses[i] for i in pick])
    with pytest.raises(ValueError, match="equal length"):
        fit_joint(nm, nd[:-1], losses)

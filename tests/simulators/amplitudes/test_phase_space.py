"""RAMBO phase space: conservation, on-shell masses, analytic volumes, uniformity, cuts, input validation."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from scalinglab.simulators.amplitudes import Cuts, generate_events, rambo, validate_momenta
from scalinglab.simulators.amplitudes.kinematics import mdot, pairwise_dots
from scalinglab.simulators.amplitudes.phase_space import massless_volume


@pytest.mark.parametrize("masses", [[0, 0, 0, 0, 0], [91.1876, 0, 0], [10.0, 173.0, 125.0]])
def test_momentum_conservation_and_mass_shell(masses):
    sqrt_s = 1000.0
    sample = generate_events(2000, sqrt_s, masses, seed=1)
    p = sample.momenta
    assert p.shape == (2000, 2 + len(masses), 4)
    total = p[:, :2].sum(axis=1) - p[:, 2:].sum(axis=1)
    assert np.max(np.abs(total)) / sqrt_s < 1e-12
    m2 = mdot(p[:, 2:], p[:, 2:])
    np.testing.assert_allclose(m2, np.broadcast_to(np.square(masses), m2.shape), atol=1e-9 * sqrt_s**2)
    assert np.all(p[..., 0] > 0)


def test_massless_volume_matches_known_two_and_three_body_values():
    s = 1000.0**2
    # independent textbook values: Phi_2 = 1/(8 pi), Phi_3 = s / (256 pi^3)
    assert massless_volume(2, s) == pytest.approx(1 / (8 * math.pi), rel=1e-14)
    assert massless_volume(3, s) == pytest.approx(s / (256 * math.pi**3), rel=1e-14)
    _, w = rambo(100, 1000.0, [0.0] * 4, np.random.default_rng(0))
    np.testing.assert_allclose(w, massless_volume(4, s), rtol=1e-14)


def test_three_body_dalitz_plot_is_flat():
    # flat massless 3-body phase space: x = s12/s has density 2 (1 - x)
    sample = generate_events(20000, 100.0, [0, 0, 0], seed=3)
    p = sample.momenta[:, 2:]
    x = 2 * pairwise_dots(p)[:, 0, 1] / 100.0**2
    result = stats.kstest(x, lambda v: 1 - (1 - v) ** 2)
    assert result.pvalue > 1e-3


def test_massive_two_body_weight_is_exact():
    sqrt_s, m1, m2 = 300.0, 91.1876, 50.0
    _, w = rambo(50, sqrt_s, [m1, m2], np.random.default_rng(0))
    s = sqrt_s**2
    beta = math.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / s
    np.testing.assert_allclose(w, beta / (8 * math.pi), rtol=1e-12)


def test_massive_three_body_volume_matches_recursive_integral():
    sqrt_s, m = 300.0, np.array([91.1876, 20.0, 0.0])
    s = sqrt_s**2

    def phi2(s_, ma, mb):
        lam = (s_ - (ma + mb) ** 2) * (s_ - (ma - mb) ** 2)
        return math.sqrt(max(lam, 0.0)) / s_ / (8 * math.pi)

    # Phi_3(s) = int ds23/(2 pi) Phi_2(s; m1, sqrt s23) Phi_2(s23; m2, m3)
    ref, _ = integrate.quad(
        lambda s23: phi2(s, m[0], math.sqrt(s23)) * phi2(s23, m[1], m[2]) / (2 * math.pi),
        (m[1] + m[2]) ** 2, (sqrt_s - m[0]) ** 2, epsabs=0, epsrel=1e-10,
    )
    _, w = rambo(200_000, sqrt_s, m, np.random.default_rng(7))
    err = w.std() / math.sqrt(w.size)
    assert abs(w.mean() - ref) < 4 * err
    assert err / ref < 0.01


def test_same_seed_same_events_and_different_seed_differs():
    a = generate_events(10, 500.0, [0, 0, 0], seed=11).momenta
    b = generate_events(10, 500.0, [0, 0, 0], seed=11).momenta
    c = generate_events(10, 500.0, [0, 0, 0], seed=12).momenta
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_cuts_are_applied_and_recorded():
    cuts = Cuts(min_invariant=2500.0, min_pt=20.0, min_delta_r=0.4, max_abs_eta=2.5)
    sample = generate_events(500, 500.0, [0, 0, 0], seed=2, cuts=cuts)
    p = sample.momenta[:, 2:]
    assert np.all(np.hypot(p[..., 1], p[..., 2]) >= 20.0)
    iu, ju = np.triu_indices(3, k=1)
    assert np.all(2 * pairwise_dots(p)[:, iu, ju] >= 2500.0)
    pabs = np.linalg.norm(p[..., 1:], axis=-1)
    eta = np.arctanh(p[..., 3] / pabs)
    assert np.all(np.abs(eta) <= 2.5)
    phi = np.arctan2(p[..., 2], p[..., 1])
    dphi = np.angle(np.exp(1j * (phi[:, iu] - phi[:, ju])))
    assert np.all(np.hypot(eta[:, iu] - eta[:, ju], dphi) >= 0.4)
    assert sample.metadata["cuts"]["min_delta_r"] == 0.4
    assert 0 < sample.metadata["acceptance"] < 1
    with pytest.raises(ValueError, match="non-negative"):
        Cuts(min_pt=-1.0)


def test_validate_momenta_errors():
    p = generate_events(5, 100.0, [0, 0], seed=0).momenta
    masses = [0, 0, 0, 0]
    validate_momenta(p, masses)
    with pytest.raises(ValueError, match="particle count"):
        validate_momenta(p, [0, 0, 0, 0, 0])
    bad = p.copy()
    bad[2, 3, 1] += 1.0
    with pytest.raises(ValueError, match="conserve"):
        validate_momenta(bad, masses)
    off = p.copy()
    off[1, 2, 0] += 1.0
    off[1, 0, 0] += 1.0  # keep energy conserved so only the mass shell fails
    with pytest.raises(ValueError, match="off-shell"):
        validate_momenta(off, masses)
    nan = p.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        validate_momenta(nan, masses)
    with pytest.raises(ValueError, match="shape"):
        validate_momenta(p[..., :3], masses)
    with pytest.raises(ValueError, match="threshold"):
        rambo(3, 100.0, [60.0, 60.0], np.random.default_rng(0))

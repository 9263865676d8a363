"""TDGL solver: fixed points, linear theory, symmetries, batching, stability limit, divergence, capture."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.tdgl import (
    K0_CONVENTIONS,
    TDGLConfig,
    TDGLSimulator,
    check_time_step,
    dipolar_kernel_fourier,
    disorder,
    field,
    laplacian_eigenvalues,
)


def _coeffs(sim, D, J, eta):
    return sim._coefficients(np.asarray(D, float), np.asarray(J, float), eta)


@pytest.mark.parametrize("k0", K0_CONVENTIONS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_uniform_saturated_state_is_a_fixed_point(k0, sign):
    cfg = TDGLConfig(size=(16, 16), dtype="float64", k0=k0)
    sim = TDGLSimulator(cfg)
    eta = disorder(3, cfg.size)[None]
    a, g, J = _coeffs(sim, [1.7], [0.8], eta)
    m = torch.full((1, 16, 16), sign, dtype=torch.float64)
    for h in (0.3, -0.3, 0.0):
        assert torch.max(torch.abs(sim.rhs(m, h, a, g, J))) == 0.0
    for _ in range(50):
        sim.step(m, 0.2, a, g, J)
    assert torch.all(m == sign)


@pytest.mark.parametrize("k0", K0_CONVENTIONS)
def test_small_fourier_mode_grows_at_the_linear_rate(k0):
    # Around m = 0 with h = 0, D = 0: dm/dt = A0 m - gamma K*m + J lap m, so a cosine mode of wavevector k is
    # multiplied by (1 + dt sigma(k)) per Euler step, sigma = A0 - gamma K_hat(k) + J lambda_lap(k).
    shape = (32, 32)
    cfg = TDGLConfig(size=shape, dtype="float64", k0=k0)
    sim = TDGLSimulator(cfg)
    khat = dipolar_kernel_fourier(shape, k0=k0)
    lam = laplacian_eigenvalues(shape)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    for J, (ky, kx) in [(0.3, (2, 3)), (1.5, (1, 1)), (2.0, (8, 5))]:
        sigma = cfg.A0 - cfg.gamma_over_J * J * khat[ky, kx] + J * lam[ky, kx]
        mode = np.cos(2 * np.pi * (ky * y / shape[0] + kx * x / shape[1]))
        eps = 1e-7
        m = torch.as_tensor(eps * mode[None])
        a, g, Jt = _coeffs(sim, [0.0], [J], np.zeros((1, *shape)))
        num_steps = 40
        for _ in range(num_steps):
            sim.step(m, 0.0, a, g, Jt)
        amp = float((m[0].numpy() * mode).sum() / (mode * mode).sum())
        expected = eps * (1 + cfg.dt * sigma) ** num_steps
        assert amp == pytest.approx(expected, rel=1e-6)
        # The rest of the field stays in that mode (no coupling at linear order).
        np.testing.assert_allclose(m[0].numpy(), amp * mode, atol=1e-12)
    # The rates differ between modes, so the test distinguishes growth from decay.
    s_low = cfg.A0 - cfg.gamma_over_J * 0.3 * khat[2, 3] + 0.3 * lam[2, 3]
    s_high = cfg.A0 - cfg.gamma_over_J * 2.0 * khat[8, 5] + 2.0 * lam[8, 5]
    assert s_low > 0 > s_high


def _small_config(**kw):
    base = dict(size=(16, 16), dtype="float64", ramp_time=10.0, record_every=10, check_every=100)
    base.update(kw)
    return TDGLConfig(**base)


def test_m_to_minus_m_and_h_to_minus_h_symmetry():
    cfg = _small_config()
    sim = TDGLSimulator(cfg)
    gen = np.random.default_rng(0)
    eta = gen.standard_normal((2, 16, 16))
    m0 = gen.uniform(-0.05, 0.05, (2, 16, 16))
    D, J = np.array([0.5, 1.5]), np.array([1.0, 2.0])
    plus = sim.run(D, J, eta=eta, m0=m0, num_steps=400)
    minus = sim.run(D, J, eta=eta, m0=-m0, field_fn=lambda t: -field(t, cfg.H, cfg.ramp_time), num_steps=400)
    np.testing.assert_allclose(minus.final_m, -plus.final_m, atol=1e-12)
    np.testing.assert_allclose(minus.loop_m, -plus.loop_m, atol=1e-12)
    assert np.abs(plus.final_m).max() > 0.5  # domains formed: the comparison is not between two zero fields


def test_batch_equals_one_by_one():
    cfg = _small_config()
    sim = TDGLSimulator(cfg)
    D, J, seeds = np.array([0.3, 1.2, 2.0]), np.array([2.0, 1.0, 1.5]), [1, 2, 3]
    batch = sim.run(D, J, seeds=seeds, num_steps=300)
    for i in range(3):
        one = sim.run(D[i : i + 1], J[i : i + 1], seeds=seeds[i : i + 1], num_steps=300)
        np.testing.assert_allclose(one.final_m[0], batch.final_m[i], atol=1e-10)
        np.testing.assert_allclose(one.loop_m[0], batch.loop_m[i], atol=1e-10)
    # Spatially varying D of a constant value equals the scalar D.
    dmap = np.broadcast_to(D[:, None, None], (3, 16, 16))
    mapped = sim.run(dmap, J, seeds=seeds, num_steps=300)
    np.testing.assert_allclose(mapped.final_m, batch.final_m, atol=1e-10)


def test_dt_beyond_the_stability_limit_is_refused():
    check_time_step(0.1, [2.0])  # 0.1 <= 1/8: accepted
    with pytest.raises(ValueError, match=r"1/\(4 J\) = 0\.125"):
        check_time_step(0.13, [0.5, 2.0])
    sim = TDGLSimulator(_small_config(dt=0.2))
    with pytest.raises(ValueError, match="stability limit"):
        sim.run(np.array([1.0]), np.array([2.0]), seeds=[1], num_steps=10)


def test_divergence_is_detected_and_the_member_is_not_captured():
    # D = 60 makes the local stiffness 2 |A0 (1 + D eta)| >> 2 / dt at many sites: forward Euler blows up.
    cfg = _small_config(check_every=50, dtype="float32")
    sim = TDGLSimulator(cfg)
    res = sim.run(np.array([1.0, 60.0]), np.array([1.5, 1.5]), seeds=[1, 1])
    assert res.diverged.tolist() == [False, True]
    assert not res.captured[1] and np.all(res.patterns[1] == 0)
    assert np.isnan(res.capture_time[1])
    assert np.all(np.isfinite(res.final_m))


def test_pattern_is_captured_on_the_ascending_branch_and_binarized():
    cfg = _small_config(size=(32, 32), ramp_time=200.0, record_every=20)
    sim = TDGLSimulator(cfg)
    res = sim.run(np.array([1.0, 1.5]), np.array([1.0, 2.0]), seeds=[1, 2])
    assert res.captured.all() and not res.diverged.any()
    T = cfg.ramp_time
    assert np.all((res.capture_time > 3 * T) & (res.capture_time < 5 * T))  # second crossing: ascending branch
    assert set(np.unique(res.patterns).tolist()) == {-1, 1}
    # Captured where the mean of the continuous m changes sign: both signs present in comparable amounts.
    assert np.all(np.abs(res.patterns.mean(axis=(1, 2))) < 0.5)


def test_captured_state_is_the_state_at_the_capture_step():
    # Each member's capture is its own state at its own crossing step: integrating that many steps ends in it.
    cfg = _small_config(size=(32, 32), ramp_time=200.0, record_every=20)
    sim = TDGLSimulator(cfg)
    D, J, seeds = np.array([1.0, 1.5]), np.array([1.0, 2.0]), [1, 2]
    res = sim.run(D, J, seeds=seeds)
    steps = np.rint(res.capture_time / cfg.dt).astype(int)
    assert res.captured.all() and steps[0] != steps[1]
    for i in range(2):
        upto = sim.run(D, J, seeds=seeds, num_steps=int(steps[i]))
        np.testing.assert_array_equal(res.capture_m[i], upto.final_m[i])


def test_hysteresis_loop_is_symmetric():
    # Descending branch at t = T + tau has h = H (1 - tau / T); ascending at t = 3T + tau has h = -H (1 - tau / T).
    # Under m -> -m, h -> -h the ascending branch must be the mirror image, m_up(-h) = -m_down(h), once the
    # state at +-H is the (unique) near-saturated one.
    T = 100.0
    # The "lattice" convention: at J = 1, D = 1 it saturates at +-H. With the default, reversed domains pinned
    # by disorder survive +-H (which is how the loop closes at small D), so the two branches start from
    # different histories and need not mirror each other exactly.
    cfg = _small_config(size=(32, 32), ramp_time=T, record_every=50, full_loop=True, dtype="float32", k0="lattice")
    sim = TDGLSimulator(cfg)
    res = sim.run(np.array([1.0]), np.array([1.0]), seeds=[4])
    steps_per_T = int(round(T / cfg.dt)) // cfg.record_every
    down = res.loop_m[0, steps_per_T : 3 * steps_per_T + 1]
    up = res.loop_m[0, 3 * steps_per_T : 5 * steps_per_T + 1]
    np.testing.assert_allclose(res.loop_h[3 * steps_per_T : 5 * steps_per_T + 1],
                               -res.loop_h[steps_per_T : 3 * steps_per_T + 1], atol=1e-9)
    assert down.max() > 0.8 and down.min() < -0.8  # a real loop, not a paramagnetic line
    assert np.max(np.abs(up + down)) < 0.08
    # ... and it is a hysteresis loop: the branches differ at h = 0 (coercivity).
    mid = steps_per_T
    assert down[mid] - up[mid] > 0.3

"""Dipolar kernel: lattice-sum closed form and FFT convolution against a direct real-space image sum."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.tdgl import (
    K0_CONVENTIONS,
    LATTICE_SUM_C,
    dipolar_kernel_fourier,
    dipolar_kernel_real,
    linear_growth_rate,
)
from scalinglab.simulators.tdgl.kernel import laplacian_eigenvalues


@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (64, 64)])
def test_kernel_sum_is_the_square_lattice_constant(shape):
    # sum_{n != 0} |n|^-3 = 4 zeta(3/2) beta(3/2): the periodised kernel summed over one cell must give it.
    kern = dipolar_kernel_real(shape)
    assert kern[0, 0] > 0  # images of the origin contribute at r = 0; the self term itself is excluded
    assert abs(kern.sum() - LATTICE_SUM_C) < 1e-6
    assert abs(dipolar_kernel_fourier(shape, k0="lattice")[0, 0] - LATTICE_SUM_C) < 1e-6
    assert dipolar_kernel_fourier(shape, k0="zero")[0, 0] == 0.0
    # The absorbed conventions remove the local constant C at every k: K_hat(k) - C, times the field factor.
    lattice = dipolar_kernel_fourier(shape, k0="lattice")
    np.testing.assert_allclose(dipolar_kernel_fourier(shape, k0="absorbed"), lattice - lattice[0, 0], atol=1e-12)
    np.testing.assert_allclose(dipolar_kernel_fourier(shape, k0="absorbed_x2.5"),
                               2.5 * (lattice - lattice[0, 0]), atol=1e-12)


def _direct_image_sum(m: np.ndarray, radius: int) -> np.ndarray:
    """sum over all r' of the periodically repeated m within |r - r'| <= radius, of m(r') / |r - r'|^3."""
    h, w = m.shape
    out = np.zeros_like(m)
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    r2 = (dy**2 + dx**2).astype(float)
    inside = (r2 > 0) & (r2 <= radius**2)
    wgt = np.where(inside, r2, 1.0) ** -1.5 * inside
    for y in range(h):
        for x in range(w):
            out[y, x] = np.sum(wgt * m[(y + dy) % h, (x + dx) % w])
    return out


def test_fft_dipolar_equals_direct_real_space_sum():
    # A zero-mean field: far shells cancel, so a direct sum over a disc of radius 100 converges to ~1e-6.
    gen = np.random.default_rng(1)
    m = gen.standard_normal((6, 8))
    m -= m.mean()
    direct = _direct_image_sum(m, radius=100)
    # "zero" and "lattice" differ only at k = 0 (identical for zero-mean m); the absorbed conventions add the
    # local term -C m(r) (the k-independent part moved into A0) and multiply by their field factor.
    expected = {"zero": direct, "lattice": direct, "absorbed": direct - LATTICE_SUM_C * m,
                "absorbed_x2.5": 2.5 * (direct - LATTICE_SUM_C * m),
                "absorbed_x1.5+demag2": 1.5 * (direct - LATTICE_SUM_C * m)}  # zero mean: no uniform field
    assert set(expected) == set(K0_CONVENTIONS)
    for k0, want in expected.items():
        khat = torch.as_tensor(dipolar_kernel_fourier(m.shape, k0=k0))
        fft = torch.fft.irfft2(torch.fft.rfft2(torch.as_tensor(m)) * khat, s=m.shape).numpy()
        np.testing.assert_allclose(fft, want, atol=6e-4)  # 2.5x the direct sum's truncation error
    # The minimum-image kernel alone (no periodic images) is measurably wrong: the test can tell them apart.
    h, w = m.shape
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    y = np.where(y > h // 2, y - h, y)
    x = np.where(x > w // 2, x - w, x)
    r2 = (y**2 + x**2).astype(float)
    min_image = np.where(r2 > 0, np.where(r2 > 0, r2, 1) ** -1.5, 0.0)
    wrong = np.real(np.fft.ifft2(np.fft.fft2(m) * np.fft.fft2(min_image)))
    assert np.max(np.abs(wrong - direct)) > 1e-2


def test_laplacian_eigenvalues_match_the_stencil():
    gen = np.random.default_rng(2)
    m = gen.standard_normal((5, 7))
    lap = np.roll(m, 1, 0) + np.roll(m, -1, 0) + np.roll(m, 1, 1) + np.roll(m, -1, 1) - 4 * m
    spec = np.fft.irfft2(np.fft.rfft2(m) * laplacian_eigenvalues(m.shape), s=m.shape)
    np.testing.assert_allclose(spec, lap, atol=1e-12)


def test_absorbed_kernel_is_minus_two_pi_k_at_small_k():
    # K_hat(k) - C = -2 pi |k| + O(k^2): the slope fixed by the 1/r^3 tail (what the domains feel).
    n = 256
    khat = dipolar_kernel_fourier((n, n), k0="absorbed")
    for i in (1, 2, 4):
        k = 2 * np.pi * i / n
        assert khat[0, i] == pytest.approx(-2 * np.pi * k, rel=0.03)


J_RANGE = np.round(np.arange(0.1, 2.01, 0.1), 10)  # paper 4 Table III


@pytest.mark.parametrize("k0,factor,tol", [("absorbed_x1.5+demag2", 1.5, 0.05), ("absorbed_x2.5", 2.5, 0.10)])
def test_fastest_mode_around_zero_grows_for_every_J(k0, factor, tol):
    # Closed form (continuum limit of "absorbed_x<s>"): sigma(k) = A0 + 2 pi s gamma |k| - J k^2, maximum
    # A0 + pi^2 s^2 gamma^2 / J at |k| = pi s gamma / J for gamma = 0.095 J: 1 + 0.200 J at 0.45 (s = 1.5, the
    # default), 1 + 0.557 J at 0.75 (s = 2.5).
    shape = (128, 128)
    for J in J_RANGE:
        sigma = linear_growth_rate(shape, J, k0=k0)
        assert sigma.max() > 1.0  # > A0: the dipolar term destabilises, exchange only cuts off large k
        closed = 1 + (np.pi * factor * 0.095) ** 2 * J
        # The lattice kernel bends below 2 pi |k| at larger k: measured -8.7% at J = 2 for s = 2.5.
        assert sigma.max() == pytest.approx(closed, rel=tol)
        assert sigma.max() < closed
        ky, kx = np.unravel_index(np.argmax(sigma), sigma.shape)
        k = 2 * np.pi * np.hypot(min(ky, shape[0] - ky) / shape[0], kx / shape[1])
        assert k == pytest.approx(factor * np.pi * 0.095, abs=0.15)
        assert sigma[0, 0] == pytest.approx(1 - 0.095 * J * (2.0 if "demag2" in k0 else 0.0))  # the uniform mode
    # The former default keeps the local part: rate 1 - 0.769 J, negative (no domains) from J = 1.3.
    for J in J_RANGE:
        lat = linear_growth_rate(shape, J, k0="lattice").max()
        assert lat == pytest.approx(1 - 0.769 * J, abs=0.03)
        assert (lat > 0) == (J < 1.3)


def test_parametric_conventions_scale_the_absorbed_kernel_and_set_the_uniform_mode():
    from scalinglab.simulators.tdgl.kernel import parse_convention

    shape = (12, 16)
    absorbed = dipolar_kernel_fourier(shape, k0="absorbed")
    np.testing.assert_allclose(dipolar_kernel_fourier(shape, k0="absorbed_x1.5"), 1.5 * absorbed, atol=1e-12)
    np.testing.assert_allclose(dipolar_kernel_fourier(shape, k0="absorbed_x2.5"),
                               dipolar_kernel_fourier(shape, k0="absorbed_x2.50"), atol=0)
    with_demag = dipolar_kernel_fourier(shape, k0="absorbed_x1.5+demag6")
    assert with_demag[0, 0] == 6.0  # -gamma * 6 * mean(m), not scaled by the factor
    np.testing.assert_allclose(with_demag.ravel()[1:], 1.5 * absorbed.ravel()[1:], atol=1e-12)
    assert dipolar_kernel_fourier(shape, k0="absorbed+demagC")[0, 0] == pytest.approx(LATTICE_SUM_C)
    # On a uniform m the demagnetizing field is -gamma c m; on a zero-mean m the uniform mode does nothing.
    m = np.full(shape, 0.3)
    khat = torch.as_tensor(with_demag)
    field = torch.fft.irfft2(torch.fft.rfft2(torch.as_tensor(m)) * khat, s=shape).numpy()
    np.testing.assert_allclose(field, 6.0 * 0.3, atol=1e-12)
    for bad in ("absorbed_x0", "absorbed_x-1", "absorbed+demag", "lattice+demag3", "x2.5", ""):
        with pytest.raises(ValueError, match="k0 must be one of|must be positive"):
            parse_convention(bad)

"""Dipolar kernel: lattice-sum closed form and FFT convolution against a direct real-space image sum."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.tdgl import LATTICE_SUM_C, dipolar_kernel_fourier, dipolar_kernel_real
from scalinglab.simulators.tdgl.kernel import laplacian_eigenvalues


@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (64, 64)])
def test_kernel_sum_is_the_square_lattice_constant(shape):
    # sum_{n != 0} |n|^-3 = 4 zeta(3/2) beta(3/2): the periodised kernel summed over one cell must give it.
    kern = dipolar_kernel_real(shape)
    assert kern[0, 0] > 0  # images of the origin contribute at r = 0; the self term itself is excluded
    assert abs(kern.sum() - LATTICE_SUM_C) < 1e-6
    assert abs(dipolar_kernel_fourier(shape, k0="lattice")[0, 0] - LATTICE_SUM_C) < 1e-6
    assert dipolar_kernel_fourier(shape, k0="zero")[0, 0] == 0.0


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
    for k0 in ("zero", "lattice"):  # identical for zero-mean m: the conventions differ only at k = 0
        khat = torch.as_tensor(dipolar_kernel_fourier(m.shape, k0=k0))
        fft = torch.fft.irfft2(torch.fft.rfft2(torch.as_tensor(m)) * khat, s=m.shape).numpy()
        np.testing.assert_allclose(fft, direct, atol=2e-4)
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

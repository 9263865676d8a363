"""Dipolar kernel |r|^-3 of a periodic thin film, summed over periodic images, and its Fourier transform.

The dipolar term of paper 4 Eq. 1 is ``gamma * sum_{r' != r} m(r') / |r - r'|^3`` on an infinite film that repeats
the simulated cell periodically. On the periodic grid this is a circular convolution with the *periodised* kernel
``K_per(r) = sum_n |r + n L|^-3`` (self term r = 0, n = 0 removed). Truncating to the minimum image is wrong at the
lowest Fourier modes (the kernel decays only as r^-3, so the far images add up to ~ 4 sqrt(2) / L at k = 0
and reshape the low modes); we sum (2M+1)^2 images explicitly and add the continuum tail beyond them in closed form.

The k = 0 value of the transform, ``K_hat(0) = sum_{r != 0} |r|^-3 = C = 4 zeta(3/2) beta(3/2) ~ 9.0336`` on the
unit square lattice, multiplies the mean magnetization and so acts as a shape anisotropy ``-gamma C <m>``
(a demagnetizing field). Paper 4 does not state its convention; ``k0`` selects it:

- ``"lattice"``: keep ``K_hat(0) = C`` (the plain lattice sum: the uniform state pays its full demagnetizing
  energy, loops are sheared by ``h_eff = h - gamma C <m>``). Default. With it, saturated states become unstable
  at small |h| once ``gamma C = 0.858 J`` approaches A0, so the reversal (and the paper's second zero crossing)
  needs either large J or large D: small D together with small J never completes the loop, which reproduces the
  excluded corner of paper 4 Table III; patterns are labyrinths and islands near zero magnetization.
- ``"zero"``: set ``K_hat(0) = 0`` (the mean magnetization feels no demagnetizing field, as when the uniform
  demagnetizing field is absorbed into the applied field). At H = 0.3 a saturated film then reverses only by
  nucleation on strongly disordered sites, so most of the Table III grid never crosses zero twice.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Eq. 1; Jagla, PRB 72, 094406 (2005).
"""

from __future__ import annotations

import math

import numpy as np

K0_CONVENTIONS = ("lattice", "zero")

# sum_{n in Z^2 \ 0} |n|^-3 = 4 zeta(3/2) beta(3/2) (Dirichlet beta); zeta(3/2) = 2.6123753486854883,
# beta(3/2) = 0.8645026534612020 (Zucker, J. Phys. A 7, 1568 (1974)).
LATTICE_SUM_C = 4.0 * 2.6123753486854883 * 0.8645026534612020


def _tail_outside_rectangle(half_x: float, half_y: float) -> float:
    """Continuum estimate of ``sum |R|^-3`` over unit-density lattice points outside a centred rectangle.

    ``int_{outside} d^2R / |R|^3 = int dphi / rho(phi) = 8 / sqrt(a^2 + b^2)`` for half-sides a, b.
    """
    return 8.0 / math.hypot(half_x, half_y)


def dipolar_kernel_real(shape: tuple[int, int], min_extent: int = 2048) -> np.ndarray:
    """Periodised dipolar kernel ``K_per(r) = sum_n |r + n L|^-3`` with the self term removed.

    Args:
        shape: grid (H, W) in lattice units.
        min_extent: the explicit image sum covers at least this many lattice units per direction; the rest is the
            closed-form continuum tail (error ~ min_extent^-3 per site).

    Returns:
        ``[H, W]`` float64 array; entry (y, x) is the kernel at displacement (y, x) modulo the grid, K[0, 0] = 0.

    Reference: paper 4, Eq. 1 (dipolar integral, discretised on the unit grid).
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f"kernel grid must be positive, got {shape}")
    my = max(1, math.ceil((min_extent / h - 1) / 2))
    mx = max(1, math.ceil((min_extent / w - 1) / 2))
    y = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)[None, :]
    # Shift to the minimum-image cell so the explicit block is centred on r = 0 for every r.
    y = np.where(y > h // 2, y - h, y)
    x = np.where(x > w // 2, x - w, x)
    # All explicit image displacements along each axis: [(2m+1) * L] values, vectorised per row of images.
    xs = (x[None, :] + w * np.arange(-mx, mx + 1)[:, None]).reshape(1, -1)  # [1, (2mx+1) w]
    kern = np.zeros((h, w))
    for ny in range(-my, my + 1):
        r2 = (y + ny * h) ** 2 + xs**2  # [h, (2mx+1) w]
        if ny == 0:
            r2[0, mx * w] = np.inf  # no self interaction (r = 0 in the central image)
        kern += (r2**-1.5).reshape(h, 2 * mx + 1, w).sum(axis=1)
    # Images beyond the explicit block (half-sides (m + 1/2) L, image density 1 / (H W)): continuum tail, nearly
    # constant over the cell because the block is much larger than the cell.
    kern += _tail_outside_rectangle((mx + 0.5) * w, (my + 0.5) * h) / (h * w)
    return kern


def dipolar_kernel_fourier(shape: tuple[int, int], k0: str = "lattice", min_extent: int = 2048) -> np.ndarray:
    """Real Fourier transform of the periodised dipolar kernel, laid out for ``torch.fft.rfft2``.

    Args:
        shape: grid (H, W).
        k0: convention for the k = 0 mode, ``"lattice"`` (K_hat(0) = C ~ 9.03) or ``"zero"`` (K_hat(0) = 0).
        min_extent: see ``dipolar_kernel_real``.

    Returns:
        ``[H, W // 2 + 1]`` float64; the transform is real because the kernel is even.
    """
    if k0 not in K0_CONVENTIONS:
        raise ValueError(f"k0 must be one of {K0_CONVENTIONS}, got {k0!r}")
    kern = dipolar_kernel_real(shape, min_extent=min_extent)
    khat = np.fft.rfft2(kern).real
    if k0 == "zero":
        khat[0, 0] = 0.0
    return khat


def laplacian_eigenvalues(shape: tuple[int, int]) -> np.ndarray:
    """Eigenvalues of the periodic 5-point Laplacian, ``2 cos kx + 2 cos ky - 4``, in rfft2 layout ``[H, W//2+1]``."""
    h, w = shape
    ky = 2 * np.pi * np.fft.fftfreq(h)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(w)[None, :]
    return 2 * np.cos(kx) + 2 * np.cos(ky) - 4

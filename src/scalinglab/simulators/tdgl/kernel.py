"""Dipolar kernel |r|^-3 of a periodic thin film, summed over periodic images, and its Fourier transform.

The dipolar term of paper 4 Eq. 1 is ``gamma * sum_{r' != r} m(r') / |r - r'|^3`` on an infinite film that repeats
the simulated cell periodically. On the periodic grid this is a circular convolution with the *periodised* kernel
``K_per(r) = sum_n |r + n L|^-3`` (self term r = 0, n = 0 removed). Truncating to the minimum image is wrong at the
lowest Fourier modes (the kernel decays only as r^-3, so the far images add up to ~ 4 sqrt(2) / L at k = 0
and reshape the low modes); we sum (2M+1)^2 images explicitly and add the continuum tail beyond them in closed form.

Its transform is ``K_hat(k) = C - 2 pi |k| + O(k^2)`` with ``C = K_hat(0) = sum_{r != 0} |r|^-3 = 4 zeta(3/2)
beta(3/2) ~ 9.0336`` on the unit square lattice. The constant C is the short-distance (local) part of the integral,
which diverges in the continuum (``int_{|r| > a} d^2r e^{ik.r} / r^3 = 2 pi / a - 2 pi |k| + O(k^2 a)``): it acts
on every mode like a local term ``-gamma C m``, i.e. a shape anisotropy that lowers A0 to ``A0 - gamma C``. Paper 4
does not state how it treats it; ``k0`` (the config field keeps its historical name) selects the convention:

- ``"absorbed_x1.5+demag2"`` (default): the local part is absorbed into the anisotropy for every non-uniform mode,
  ``1.5 (K_hat(k) - C)`` (A0 read as the effective anisotropy, so that only the ``-2 pi |k|`` part of the dipolar
  interaction shapes the domains), while the mean magnetization keeps a demagnetizing field ``-2 gamma m_mean``
  (``K(0) = 2``), which shears the loop. Jagla's text, where the model comes from, could not be consulted, so
  both numbers are calibrations, not derivations (paper 4 leaves the scale of gamma relative to its pixel
  implicit). They were chosen with ``scalinglab simulate tdgl --survey`` (2026-12-01, seed 1 and 2, 128^2,
  T = 400) among factors 1-2.5 and uniform coefficients 0-9: (1) the clean film (D = 0.1) ramped to +H and held
  keeps reversed domains, and so can close its loop at the paper's slow ramp, from J = 1.2 on and saturates at
  J = 1.0 (mean m 1.000 / 0.815 / 0.787 / 0.729 / 0.551 at J = 1.0 / 1.2 / 1.3 / 1.5 / 2.0); paper 4 Table III
  keeps every D from J = 1.3 and D >= 0.5 at J = 1.2; (2) |m| > 0.9 on most pixels at J = 2, D = 0.1 (0.73) and
  a median |m| of 0.99; (3) domains finer with J at small D (chord 64 / 55 / 33 / 26 px at J = 1.0 / 1.3 / 1.6
  / 2.0, D = 0.1) and with D everywhere, several domains per 64-px patch at J = 2 (factor 1 with ``+demag3``
  meets (1) and (2) as well but gives a 68 px chord at J = 2, D = 0.1: one domain per patch). The growth rate
  around m = 0 is ``~ A0 + 3 pi gamma |k| - J k^2`` (fastest at ``|k| = 3 pi gamma / (2 J)`` = 0.45, rate
  ``1 + 0.200 J``) for the non-uniform modes and ``A0 - 2 gamma = 1 - 0.19 J`` for the uniform one.
- ``"absorbed_x2.5"`` (the default before 2026-12-01; stores made with it keep it): ``2.5 (K_hat(k) - C)`` at every
  k, no uniform demagnetizing field. The clean film keeps reversed domains at +H from J = 1.3 (mean m 0.995 at
  J = 1.0, 0.771 at J = 1.3, 0.442 at J = 2.0, 128^2, same hold), but the domains are narrow (chord 13.8 px at J =
  2, D = 0.1, |m| > 0.9 on 0.52 of the pixels), lattice-aligned, and hardly finer with J at D >= 0.6. Growth rate
  ``~ A0 + 5 pi gamma |k| - J k^2``, at most ``1 + 0.557 J``.
- ``"absorbed"``: the same with the field coefficient gamma as printed in Eq. 1 (factor 1). Saturated films
  then reverse only by nucleation on strongly disordered sites: at D = 0.1 no J <= 2 completes the loop.
- ``"lattice"`` (the default before): keep ``K_hat(0) = C`` (the plain lattice sum, bare A0). The uniform mode
  then has anisotropy ``A0 - gamma C = 1 - 0.858 J`` and the fastest-growing mode around m = 0 has rate
  ``1 - 0.769 J``: for J >= 1.3 the paramagnetic state is stable (no domains, a linear loop, no hysteresis).
- ``"zero"``: set only ``K_hat(0) = 0`` and keep ``C - 2 pi |k|`` elsewhere (the mean magnetization feels no
  demagnetizing field); most of the Table III grid never crosses zero twice.
- Parametric, for surveys of the conventions (``scalinglab simulate tdgl --k0 ... --survey``):
  ``"absorbed_x<s>"`` for any factor s > 0 (``s (K_hat(k) - C)``; ``absorbed_x1`` is ``"absorbed"``), optionally
  followed by ``"+demag<c>"`` (a number, or ``C`` for the lattice sum): the uniform mode keeps a demagnetizing
  coefficient c, ``K(0) = c``, so the mean magnetization feels ``-gamma c m_mean`` while non-uniform modes keep
  only the absorbed part (the shear of the loop set apart from the local anisotropy of the domains).

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Eq. 1 and Table III; E. A. Jagla, Phys. Rev. B 72, 094406
(2005), arXiv:cond-mat/0412461 (the model and gamma = 0.095 J).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

# Named conventions (the module docstring); any "absorbed_x<s>[+demag<c>]" is accepted as well.
K0_CONVENTIONS = ("absorbed_x1.5+demag2", "absorbed_x2.5", "absorbed", "lattice", "zero")
DEFAULT_K0 = "absorbed_x1.5+demag2"
_PARAMETRIC = re.compile(r"^absorbed(?:_x(?P<factor>\d+(?:\.\d+)?))?(?:\+demag(?P<demag>C|\d+(?:\.\d+)?))?$")

# sum_{n in Z^2 \ 0} |n|^-3 = 4 zeta(3/2) beta(3/2) (Dirichlet beta); zeta(3/2) = 2.6123753486854883,
# beta(3/2) = 0.8645026534612020 (Zucker, J. Phys. A 7, 1568 (1974)).
LATTICE_SUM_C = 4.0 * 2.6123753486854883 * 0.8645026534612020


@dataclass(frozen=True)
class Convention:
    """A parsed dipolar convention: ``base`` ("lattice", "zero" or "absorbed"), the field ``factor`` on the
    kernel and the uniform-mode coefficient ``demag`` (None: whatever the base gives at k = 0)."""

    base: str
    factor: float = 1.0
    demag: float | None = None


def parse_convention(k0: str) -> Convention:
    """Parse a named or parametric convention string (module docstring); ValueError naming the grammar."""
    if k0 in ("lattice", "zero"):
        return Convention(k0)
    match = _PARAMETRIC.match(k0) if isinstance(k0, str) else None
    if match is None:
        raise ValueError(
            f"k0 must be one of {K0_CONVENTIONS} or 'absorbed_x<factor>[+demag<c>]' (c a number or C, e.g. "
            f"absorbed_x1.5+demag6 or absorbed+demagC), got {k0!r}")
    factor = float(match["factor"]) if match["factor"] is not None else 1.0
    if not factor > 0:
        raise ValueError(f"the dipolar field factor of {k0!r} must be positive")
    demag = match["demag"]
    return Convention("absorbed", factor, None if demag is None else (LATTICE_SUM_C if demag == "C" else float(demag)))


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


def dipolar_kernel_fourier(shape: tuple[int, int], k0: str = DEFAULT_K0, min_extent: int = 2048) -> np.ndarray:
    """Real Fourier transform of the dipolar operator of one convention, laid out for ``torch.fft.rfft2``.

    The solver multiplies it by ``-gamma``: the dipolar term of Eq. 1 is ``-gamma irfft2(K_hat * rfft2(m))``.

    Args:
        shape: grid (H, W).
        k0: convention (module docstring): ``"absorbed_x1.5+demag2"`` (default: ``1.5 (K_hat(k) - C)``, K(0) =
            2), ``"absorbed_x2.5"`` (``2.5 (K_hat(k) - C)``), ``"absorbed"`` (``K_hat(k) - C``), ``"lattice"``
            (``K_hat(k)``, K_hat(0) = C ~ 9.03), ``"zero"`` (K_hat(0) = 0) or ``"absorbed_x<s>[+demag<c>]"``.
        min_extent: see ``dipolar_kernel_real``.

    Returns:
        ``[H, W // 2 + 1]`` float64; the transform is real because the kernel is even.
    """
    conv = parse_convention(k0)
    kern = dipolar_kernel_real(shape, min_extent=min_extent)
    khat = np.fft.rfft2(kern).real
    if conv.base == "zero":
        khat[0, 0] = 0.0
    elif conv.base == "absorbed":
        khat = khat - khat[0, 0]  # khat[0, 0] = sum of the periodised kernel = C (to ~1e-6)
    khat = conv.factor * khat
    if conv.demag is not None:
        khat[0, 0] = conv.demag  # the uniform mode: -gamma c m_mean, not scaled by the factor
    return khat


def laplacian_eigenvalues(shape: tuple[int, int]) -> np.ndarray:
    """Eigenvalues of the periodic 5-point Laplacian, ``2 cos kx + 2 cos ky - 4``, in rfft2 layout ``[H, W//2+1]``."""
    h, w = shape
    ky = 2 * np.pi * np.fft.fftfreq(h)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(w)[None, :]
    return 2 * np.cos(kx) + 2 * np.cos(ky) - 4


def linear_growth_rate(shape: tuple[int, int], J: float, k0: str = DEFAULT_K0, A0: float = 1.0,
                       gamma_over_J: float = 0.095) -> np.ndarray:
    """Growth rate of each Fourier mode of Eq. 1 linearised around m = 0 at h = 0, D = 0.

    ``dm/dt = A0 m - gamma K * m + J lap m`` gives ``sigma(k) = A0 - gamma K_hat(k) + J lambda(k)`` with
    ``lambda(k) = 2 cos kx + 2 cos ky - 4`` (K_hat of the convention, factor included). In the continuum limit
    of ``"absorbed_x<s>"``: ``sigma(k) = A0 + 2 pi s gamma |k| - J k^2``, fastest at ``|k| = pi s gamma / J``
    with ``sigma_max = A0 + pi^2 s^2 gamma^2 / J``: ``A0 + 0.200 J`` at |k| = 0.45 for the default s = 1.5,
    ``A0 + 0.557 J`` at |k| = 0.75 for s = 2.5 (> 0 for every J; on the lattice the kernel bends below
    ``2 pi |k|``, which lowers it by a few % at s = 1.5 and up to ~10% at s = 2.5); the default's uniform mode
    grows at ``A0 - 2 gamma``; for ``"lattice"`` the same reasoning gives ``1 - 0.858 J + 0.089 J`` =
    ``1 - 0.769 J``.

    Returns:
        ``[H, W // 2 + 1]`` rates in rfft2 layout (time^-1).
    """
    khat = dipolar_kernel_fourier(shape, k0=k0)
    return A0 - gamma_over_J * J * khat + J * laplacian_eigenvalues(shape)

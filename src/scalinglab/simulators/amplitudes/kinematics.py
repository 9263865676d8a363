"""Four-vector helpers: Minkowski products, invariants, Lorentz transformations, momentum validation.

Conventions used throughout ``scalinglab.simulators.amplitudes``: four-momenta are float64 arrays with the
last axis ``(E, px, py, pz)`` in GeV, the metric is mostly minus ``diag(+1, -1, -1, -1)``, and an event is
``[n, 4]`` with the two incoming particles first (in the order of the process string) followed by the
outgoing ones.
"""

from __future__ import annotations

import numpy as np

METRIC = np.array([1.0, -1.0, -1.0, -1.0])


def mdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minkowski product ``a.b = a0 b0 - a.b`` over the last axis (works for complex arrays too).

    Args:
        a: [..., 4] four-vectors.
        b: [..., 4] four-vectors (broadcast against ``a``).

    Returns:
        [...] products.
    """
    return a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1] - a[..., 2] * b[..., 2] - a[..., 3] * b[..., 3]


def pairwise_dots(momenta: np.ndarray) -> np.ndarray:
    """All Minkowski products ``p_i.p_j``.

    Args:
        momenta: [B, n, 4] four-momenta (GeV).

    Returns:
        [B, n, n] products (GeV^2).
    """
    return np.einsum("bim,bjm->bij", momenta * METRIC, momenta)


def invariant_features(momenta: np.ndarray) -> np.ndarray:
    """The ``n(n-1)/2`` pairwise products ``p_i.p_j`` (i < j), the MLP-I inputs before the logarithm.

    Args:
        momenta: [B, n, 4] four-momenta (GeV).

    Returns:
        [B, n(n-1)/2] products in row-major (i, j) order (GeV^2).

    Reference: Bahl et al., "Scaling laws for amplitude surrogates", Eq. (9).
    """
    n = momenta.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    return pairwise_dots(momenta)[:, iu, ju]


def boost_matrix(beta: np.ndarray) -> np.ndarray:
    """Pure boosts with velocity ``beta``.

    Args:
        beta: [B, 3] velocities, |beta| < 1.

    Returns:
        [B, 4, 4] matrices L with p' = L p (column vectors, contravariant components).
    """
    beta = np.atleast_2d(np.asarray(beta, dtype=np.float64))
    b2 = np.sum(beta**2, axis=-1)
    if np.any(b2 >= 1.0):
        raise ValueError("boost velocity must satisfy |beta| < 1")
    gamma = 1.0 / np.sqrt(1.0 - b2)
    out = np.zeros(beta.shape[:-1] + (4, 4))
    out[..., 0, 0] = gamma
    out[..., 0, 1:] = gamma[..., None] * beta
    out[..., 1:, 0] = gamma[..., None] * beta
    # (gamma - 1) b_i b_j / b^2, with the b -> 0 limit handled by a safe denominator
    safe = np.where(b2 > 0, b2, 1.0)
    coef = np.where(b2 > 0, (gamma - 1.0) / safe, 0.0)
    out[..., 1:, 1:] = np.eye(3) + coef[..., None, None] * beta[..., :, None] * beta[..., None, :]
    return out


def rotation_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Spatial rotations (Rodrigues) embedded in 4x4 Lorentz matrices.

    Args:
        axis_angle: [B, 3] rotation vectors (direction = axis, norm = angle in radians).

    Returns:
        [B, 4, 4] matrices.
    """
    w = np.atleast_2d(np.asarray(axis_angle, dtype=np.float64))
    angle = np.linalg.norm(w, axis=-1)
    k = w / np.where(angle > 0, angle, 1.0)[..., None]
    kx = np.zeros(w.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    r = np.eye(3) + s * kx + (1.0 - c) * kx @ kx
    out = np.zeros(w.shape[:-1] + (4, 4))
    out[..., 0, 0] = 1.0
    out[..., 1:, 1:] = r
    return out


def random_lorentz(num: int, rng: np.random.Generator, max_rapidity: float = 1.0) -> np.ndarray:
    """Random proper orthochronous Lorentz transformations (rotation x boost x rotation).

    Args:
        num: number of matrices.
        rng: random generator.
        max_rapidity: boost rapidities are drawn uniformly in [0, max_rapidity].

    Returns:
        [num, 4, 4] matrices.
    """
    axis = rng.normal(size=(num, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    beta = np.tanh(rng.uniform(0, max_rapidity, size=(num, 1))) * axis
    r1 = rotation_matrix(rng.normal(size=(num, 3)))
    r2 = rotation_matrix(rng.normal(size=(num, 3)))
    return r1 @ boost_matrix(beta) @ r2


def apply_lorentz(lam: np.ndarray, momenta: np.ndarray) -> np.ndarray:
    """Transform momenta ``p' = Lambda p``.

    Args:
        lam: [B, 4, 4] (or [4, 4]) Lorentz matrices.
        momenta: [B, n, 4] four-momenta.

    Returns:
        [B, n, 4] transformed momenta.
    """
    if lam.ndim == 2:
        return np.einsum("mn,bin->bim", lam, momenta)
    return np.einsum("bmn,bin->bim", lam, momenta)


def validate_momenta(
    momenta: np.ndarray,
    masses: np.ndarray | list[float],
    num_incoming: int = 2,
    rtol: float = 1e-6,
) -> np.ndarray:
    """Check user momenta: shape, finiteness, positive energies, on-shell masses, energy-momentum conservation.

    Args:
        momenta: [B, n, 4] four-momenta (E, px, py, pz) in GeV, incoming first.
        masses: [n] masses (GeV) the particles must carry.
        num_incoming: how many leading particles are incoming.
        rtol: tolerance relative to the event's total incoming energy (squared for mass checks).

    Returns:
        The momenta as a C-contiguous float64 array [B, n, 4].

    Raises:
        ValueError: one-line message naming the first failing event and the violated condition.
    """
    masses = np.asarray(masses, dtype=np.float64)
    p = np.asarray(momenta, dtype=np.float64)
    if p.ndim == 2 and p.shape[-1] == 4 * masses.size:
        p = p.reshape(p.shape[0], masses.size, 4)
    if p.ndim != 3 or p.shape[-1] != 4:
        raise ValueError(f"momenta must have shape [B, n, 4], got {tuple(np.shape(momenta))}")
    if p.shape[1] != masses.size:
        raise ValueError(
            f"wrong particle count: momenta have {p.shape[1]} particles per event, the process has {masses.size}"
        )
    if not np.all(np.isfinite(p)):
        bad = int(np.argwhere(~np.isfinite(p).all(axis=(1, 2)))[0, 0])
        raise ValueError(f"momenta contain NaN or inf (first bad event {bad})")
    scale = np.sum(p[:, :num_incoming, 0], axis=1)  # [B] total incoming energy
    if np.any(p[..., 0] <= 0):
        bad = int(np.argwhere((p[..., 0] <= 0).any(axis=1))[0, 0])
        raise ValueError(f"momenta must have positive energies (first bad event {bad})")
    total = p[:, :num_incoming].sum(axis=1) - p[:, num_incoming:].sum(axis=1)  # [B, 4]
    viol = np.max(np.abs(total), axis=1) / scale
    if np.any(viol > rtol):
        bad = int(np.argmax(viol > rtol))
        raise ValueError(
            f"momenta do not conserve energy-momentum (event {bad}: relative violation {viol[bad]:.2e} > {rtol:g})"
        )
    m2 = mdot(p, p)  # [B, n]
    off = np.abs(m2 - masses**2) / scale[:, None] ** 2
    if np.any(off > rtol):
        bad_ev, bad_part = (int(x) for x in np.argwhere(off > rtol)[0])
        raise ValueError(
            f"momenta are off-shell (event {bad_ev}, particle {bad_part}: p^2 = {m2[bad_ev, bad_part]:.6g} GeV^2,"
            f" expected {masses[bad_part] ** 2:.6g})"
        )
    return np.ascontiguousarray(p)

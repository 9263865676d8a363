"""Phase-boundary distance against planted boundaries with exact distances (paper 2, Eq. 3)."""

import numpy as np
import pytest

from scalinglab.analysis.phase_boundary import boundary_points, distance_to_boundary


def _grid(n: int, dim: int) -> tuple[np.ndarray, float]:
    g = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(*[g] * dim, indexing="ij"), -1).reshape(-1, dim), g[1] - g[0]


@pytest.mark.parametrize("dim,n", [(2, 101), (3, 31)])
def test_planted_plane_distance_exact_to_grid_spacing(dim, n):
    rng = np.random.default_rng(dim)
    x, h = _grid(n, dim)
    normal = rng.normal(size=dim)
    normal /= np.linalg.norm(normal)
    offset = 0.5 * normal.sum() + 0.0123  # the plane passes near the centre, not through grid points
    phase = np.where(x @ normal > offset, 2, 1)
    b = boundary_points(x, phase, side_a=[1], side_b=[2])
    # queries in the inner cube, so the foot of each perpendicular lies inside the sampled region
    q = 0.3 + 0.4 * rng.random((3000, dim))
    exact = np.abs(q @ normal - offset)
    err = np.abs(distance_to_boundary(q, b) - exact)
    assert err.max() <= h  # measured: 0.70 h (2-D), 0.65 h (3-D)
    # boundary points lie within half an edge of the plane (edges reach 2h only at the domain's faces)
    assert np.abs(b @ normal - offset).max() <= h


@pytest.mark.parametrize("dim,n", [(2, 101), (3, 31)])
def test_planted_circle_sphere_distance_exact_to_grid_spacing(dim, n):
    rng = np.random.default_rng(10 + dim)
    x, h = _grid(n, dim)
    centre, radius = np.full(dim, 0.5) + 0.013, 0.3
    phase = np.where(np.linalg.norm(x - centre, axis=1) < radius, 0, 1)
    b = boundary_points(x, phase, side_a=[0], side_b=[1])
    q = rng.random((3000, dim))  # inside and outside the circle / sphere
    exact = np.abs(np.linalg.norm(q - centre, axis=1) - radius)
    err = np.abs(distance_to_boundary(q, b) - exact)
    assert err.max() <= h  # measured: 0.70 h (circle), 0.67 h (sphere)


def test_random_points_sphere():
    rng = np.random.default_rng(3)
    x = rng.random((20000, 3))
    centre, radius = np.full(3, 0.5), 0.3
    phase = np.where(np.linalg.norm(x - centre, axis=1) < radius, 5, 7)
    b = boundary_points(x, phase, side_a=[5], side_b=[7])
    spacing = len(x) ** (-1 / 3)  # mean inter-point spacing
    q = rng.random((2000, 3))
    err = np.abs(distance_to_boundary(q, b) - np.abs(np.linalg.norm(q - centre, axis=1) - radius))
    assert err.mean() <= 0.35 * spacing  # measured 0.23
    assert err.max() <= 1.5 * spacing  # measured 1.13


def test_third_phase_blocks_and_is_ignored():
    # three bands along x: phase 0 | 1 | 2. The 0-2 boundary does not exist: no edge crosses the band of 1.
    x, h = _grid(61, 2)
    phase = np.digitize(x[:, 0], [0.405, 0.605])  # off the grid lines
    with_b = boundary_points(x, phase, [0], [1])
    assert np.all(np.abs(with_b[:, 0] - 0.405) <= h)
    assert len(boundary_points(x, phase, [0], [2])) == 0
    b02 = boundary_points(x, phase, [0, 1], [2])  # grouped codes: the x = 0.6 line
    assert np.all(np.abs(b02[:, 0] - 0.605) <= h)


def test_bad_input():
    x, _ = _grid(11, 2)
    phase = (x[:, 0] > 0.5).astype(int)
    with pytest.raises(ValueError, match="side_b .*no points"):
        boundary_points(x, phase, [0], [3])
    with pytest.raises(ValueError, match="side_a .*no points"):
        boundary_points(x, phase, [4], [1])
    with pytest.raises(ValueError, match="share"):
        boundary_points(x, phase, [0, 1], [1])
    with pytest.raises(ValueError, match="phase"):
        boundary_points(x, phase[:-1], [0], [1])
    with pytest.raises(ValueError, match="share P"):
        distance_to_boundary(x, x[:, :1])
    with pytest.raises(ValueError, match="no points"):
        distance_to_boundary(x, np.empty((0, 2)))

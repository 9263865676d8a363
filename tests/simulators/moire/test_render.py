"""Rasterized domain images: field of view, channels, tiling, first-quadrant option."""

import numpy as np
import pytest

from scalinglab.simulators.moire.lattice import bilayer
from scalinglab.simulators.moire.render import Renderer, pixel_weights


def test_uniform_and_channel_order():
    lat = bilayer(8)
    r = Renderer(lat)
    s = np.zeros((2, lat.num_sites, 3))
    s[..., 2] = 1.0
    s[1, lat.layer == 0, 2] = -1.0  # second state: bottom layer down
    img = r(s)
    assert img.shape == (2, 2, 100, 100) and img.dtype == np.float32
    assert np.allclose(img[0], 1.0)
    assert np.allclose(img[1, 0], 1.0) and np.allclose(img[1, 1], -1.0)  # channel 0 top, 1 bottom


def test_pixels_sample_a_smooth_periodic_pattern():
    """m_z = cos(2 pi f1) + 0 (top), sin (bottom), f = fractional supercell coordinates; pixel = value at centre."""
    lat = bilayer(32)  # period 39 nm: the 1 nm pixels resolve the pattern
    inv = np.linalg.inv(lat.superlattice)
    f = lat.positions[:, :2] @ inv
    s = np.zeros((1, lat.num_sites, 3))
    s[0, :, 2] = np.where(lat.layer == 1, np.cos(2 * np.pi * f[:, 0]), np.sin(2 * np.pi * f[:, 1]))
    img = Renderer(lat)(s)[0]
    c = (np.arange(100) + 0.5) * 10.0 - 500.0  # pixel centres (Angstrom), row = y, column = x
    xx, yy = np.meshgrid(c, c)
    fc = np.stack([xx, yy], -1) @ inv
    expect_top, expect_bottom = np.cos(2 * np.pi * fc[..., 0]), np.sin(2 * np.pi * fc[..., 1])
    # Box averaging over a 1 nm pixel of a 39 nm-period cosine changes values by < 2 pi^2 (1/39)^2 / 6 ~ 0.5%;
    # the stacking of the top layer against the box adds sampling noise of a few percent.
    assert np.abs(img[0] - expect_top).mean() < 0.03
    assert np.abs(img[1] - expect_bottom).mean() < 0.03
    assert np.corrcoef(img[0].ravel(), expect_top.ravel())[0, 1] > 0.99


def test_first_quadrant_option():
    lat = bilayer(12)
    rng = np.random.default_rng(0)
    s = np.zeros((1, lat.num_sites, 3))
    s[0, :, 2] = rng.uniform(-1, 1, lat.num_sites)
    full200 = Renderer(lat, grid=200)(s)
    quad = Renderer(lat, grid=200, quadrant=True)(s)
    assert quad.shape == (1, 2, 100, 100)
    assert np.allclose(quad, full200[:, :, 100:, 100:])  # x >= 0, y >= 0
    w = pixel_weights(lat, 1, grid=200)
    assert np.allclose(np.asarray(w.sum(1)).ravel(), 1.0)  # every pixel is a weighted mean of sites (none empty)


def test_bad_image_settings():
    lat = bilayer(8)
    with pytest.raises(ValueError, match="grid"):
        Renderer(lat, grid=101, quadrant=True)
    with pytest.raises(ValueError, match="fov"):
        Renderer(lat, fov_nm=0)
    with pytest.raises(ValueError, match="shape"):
        Renderer(lat)(np.zeros((1, 5, 3)))

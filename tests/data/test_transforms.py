"""Standardizer, Gaussian noise at a given SNR (paper 2 Eqs. 7-10), random patches and rotations (paper 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scalinglab.data.transforms import Standardizer, add_noise_snr, center_crop, random_patches, rotations4


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=2.0, scale=3.0, size=(n, 2, 6, 6)) * rng.uniform(0.5, 2.0, size=(1, 2, 6, 6))
    x[:, 0, 0, 0] = 4.25  # a constant pixel
    return x


def test_per_feature_standardizes_each_feature():
    x = _images()
    norm = Standardizer("per_feature").fit(x)
    z = norm.transform(x)
    assert norm.mean_.shape == (2, 6, 6) and norm.std_.shape == (2, 6, 6)
    mask = np.ones((2, 6, 6), bool)
    mask[0, 0, 0] = False
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0)[mask], 1.0, rtol=1e-12)
    # the constant pixel: std guarded to 1, maps to 0, restored exactly
    assert norm.std_[0, 0, 0] == 1.0 and np.all(z[:, 0, 0, 0] == 0.0)
    np.testing.assert_allclose(norm.inverse_transform(z), x, rtol=1e-13, atol=1e-13)


def test_global_mode_and_float32_round_trip():
    x = _images().astype(np.float32)
    norm = Standardizer("global").fit(x)
    assert np.ndim(norm.mean_) == 0 and np.ndim(norm.std_) == 0
    np.testing.assert_allclose(norm.mean_, x.astype(np.float64).mean(), rtol=1e-12)
    np.testing.assert_allclose(norm.std_, x.astype(np.float64).std(), rtol=1e-12)
    z = norm.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(norm.inverse_transform(z), x, rtol=1e-5, atol=1e-5)


def test_targets_per_parameter_in_physical_units():
    rng = np.random.default_rng(1)
    y = np.column_stack([rng.uniform(1.01, 3.89, 500), rng.uniform(1, 10, 500), rng.uniform(0.01, 0.3, 500)])
    norm = Standardizer().fit(y[:400])  # fitted on training rows only
    np.testing.assert_allclose(norm.mean_, y[:400].mean(axis=0))
    np.testing.assert_allclose(norm.inverse_transform(norm.transform(y[400:])), y[400:], rtol=1e-13)


def test_partial_fit_equals_fit_and_dict_round_trip():
    x = _images(n=103)
    full = Standardizer().fit(x)
    parts = Standardizer()
    for start in range(0, 103, 17):
        parts.partial_fit(x[start : start + 17])
    np.testing.assert_allclose(parts.mean_, full.mean_, rtol=1e-12)
    np.testing.assert_allclose(parts.std_, full.std_, rtol=1e-10)
    restored = Standardizer.from_dict(json.loads(json.dumps(full.to_dict())))
    np.testing.assert_array_equal(restored.transform(x), full.transform(x))
    g = Standardizer("global").fit(x)
    np.testing.assert_array_equal(Standardizer.from_dict(g.to_dict()).transform(x), g.transform(x))


def test_torch_tensors_match_numpy():
    x = _images().astype(np.float32)
    norm = Standardizer().fit(x)
    zt = norm.transform(torch.from_numpy(x))
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), norm.transform(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(norm.inverse_transform(zt).numpy(), x, rtol=1e-5, atol=1e-5)


def test_standardizer_errors():
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown Standardizer mode"):
        Standardizer("per_pixel").fit(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="fitted on features of shape"):
        Standardizer().fit(np.zeros((2, 3))).transform(np.zeros((2, 4)))
    x = np.ones((5, 3))
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="sample index 2"):
        Standardizer().fit(x)


def _measured_snr_db(clean, noisy):
    n = clean.shape[0]
    p_signal = np.mean(clean.reshape(n, -1).astype(np.float64) ** 2, axis=1)
    p_noise = np.mean((noisy.astype(np.float64) - clean).reshape(n, -1) ** 2, axis=1)
    return 10 * np.log10(p_signal / p_noise)


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 7.5, 20.0])
def test_noise_snr_matches_request(snr_db):
    # binary-like domain images with different magnetization levels, 2 x 100 x 100 pixels each
    rng = np.random.default_rng(2)
    clean = np.sign(rng.normal(size=(16, 2, 100, 100))) * rng.uniform(0.2, 1.0, size=(16, 1, 1, 1))
    noisy = add_noise_snr(clean, snr_db, np.random.default_rng(3))
    measured = _measured_snr_db(clean, noisy)
    # the noise power estimate over M = 20000 pixels has relative std sqrt(2/M) = 1%, i.e. 0.043 dB
    np.testing.assert_allclose(measured, snr_db, atol=0.2)
    assert abs(measured.mean() - snr_db) < 0.05
    noise = (noisy - clean).reshape(16, -1)
    sigma = np.sqrt(np.mean(clean.reshape(16, -1) ** 2, axis=1) / 10 ** (snr_db / 10))
    u = noise / sigma[:, None]  # standard normal if the noise is N(0, sigma^2) per image
    assert abs(u.mean()) < 0.01 and abs(u.std() - 1) < 0.01
    assert abs(float(np.mean(u**4)) - 3.0) < 0.05  # Gaussian kurtosis


def test_noise_per_image_snr_scale_invariance_and_seed():
    rng = np.random.default_rng(4)
    clean = rng.normal(size=(3, 1, 64, 64)).astype(np.float32)
    snr = np.array([0.0, 10.0, 30.0])
    noisy = add_noise_snr(clean, snr, np.random.default_rng(5))
    assert noisy.dtype == np.float32
    np.testing.assert_allclose(_measured_snr_db(clean, noisy), snr, atol=0.3)
    # the noise scales with the signal: same SNR for an image 7 times brighter, same seed -> 7x the noise
    noisy7 = add_noise_snr(7 * clean, snr, np.random.default_rng(5))
    np.testing.assert_allclose(noisy7 - 7 * clean, 7 * (noisy - clean), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(add_noise_snr(clean, snr, np.random.default_rng(5)), noisy)
    zero = add_noise_snr(np.zeros((2, 4, 4)), 10.0, np.random.default_rng(0))
    assert np.all(zero == 0.0)
    with pytest.raises(ValueError, match="one value per image"):
        add_noise_snr(clean, [1.0, 2.0], np.random.default_rng(0))


def _find(patch, image, size, periodic):
    """All (top, left, k) such that rot90(crop(image, top, left), k) == patch."""
    h, w = image.shape[-2:]
    tiled = np.concatenate([image, image], axis=-2)
    tiled = np.concatenate([tiled, tiled], axis=-1)
    tops = range(h) if periodic else range(h - size + 1)
    lefts = range(w) if periodic else range(w - size + 1)
    hits = []
    for t in tops:
        for l in lefts:
            crop = tiled[..., t : t + size, l : l + size]
            for k in range(4):
                if np.array_equal(np.rot90(crop, k, axes=(-2, -1)), patch):
                    hits.append((t, l, k))
    return hits


@pytest.mark.parametrize("periodic", [False, True])
def test_random_patches_are_rotated_crops(periodic):
    rng = np.random.default_rng(6)
    images = rng.normal(size=(3, 2, 12, 12))  # continuous values: every crop is unique
    patches, source = random_patches(images, 5, 40, np.random.default_rng(7), rotate=True, periodic=periodic)
    assert patches.shape == (40, 2, 5, 5) and source.shape == (40,)
    ks, wrapped = [], 0
    for p, s in zip(patches, source):
        hits = _find(p, images[s], 5, periodic)
        assert len(hits) == 1
        t, l, k = hits[0]
        ks.append(k)
        wrapped += (t > 12 - 5) or (l > 12 - 5)
    assert set(ks) == {0, 1, 2, 3}
    assert set(source.tolist()) == {0, 1, 2}
    assert (wrapped > 0) == periodic


def test_random_patches_without_rotation_and_2d_images():
    rng = np.random.default_rng(8)
    images = rng.normal(size=(2, 10, 10))
    patches, source = random_patches(images, 4, 20, np.random.default_rng(9), rotate=False)
    assert patches.shape == (20, 4, 4)
    for p, s in zip(patches, source):
        assert [h[2] for h in _find(p, images[s], 4, False)] == [0]
    a, _ = random_patches(images, 4, 20, np.random.default_rng(9), rotate=False)
    np.testing.assert_array_equal(a, patches)
    with pytest.raises(ValueError, match="larger than the images"):
        random_patches(images, 11, 2, np.random.default_rng(0))


def test_center_crop_and_rotations4():
    img = np.arange(256 * 256, dtype=np.float64).reshape(1, 256, 256)
    crop = center_crop(img, 64)
    # paper 4: A[i-32 : i+31] around the centre i = 128 -> rows and columns 96 .. 159
    np.testing.assert_array_equal(crop, img[:, 96:160, 96:160])
    rots = rotations4(crop[0])
    assert rots.shape == (4, 64, 64)
    np.testing.assert_array_equal(rots[1], np.rot90(crop[0]))
    np.testing.assert_array_equal(np.rot90(rots[3]), crop[0])  # four quarter turns are the identity
    sym = np.add.outer(np.abs(np.arange(-3, 4)), np.abs(np.arange(-3, 4)))  # invariant under 90-degree turns
    assert all(np.array_equal(r, sym) for r in rotations4(sym))
    with pytest.raises(ValueError, match="square"):
        rotations4(np.zeros((3, 4)))

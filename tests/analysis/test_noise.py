"""add_noise_snr gives the requested signal-to-noise power ratio (paper 2, Eqs. 7-10).

Paper 2: x'_i = x_i + n_i, n_i ~ N(0, sigma^2); SNR = P_s / P_n with P_s the mean squared pixel value of the
noiseless image and P_n = sigma^2 ~ (1/M) sum n_i^2 for large M; SNR_dB = 10 log10(SNR), 20 dB down to -10 dB.
"""

import numpy as np
import pytest

from scalinglab.data.transforms import add_noise_snr


def _domain_images(num: int, size: int, rng) -> np.ndarray:
    """[num, 2, size, size] m_z-like images: smooth domains in [-1, 1], different levels per image."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((num, 2, size, size))
    for i in range(num):
        phase = rng.random(2) * 2 * np.pi
        out[i, 0] = np.tanh(4 * np.sin(2 * np.pi * 3 * xx + phase[0]) * np.cos(2 * np.pi * 2 * yy))
        out[i, 1] = (0.3 + 0.2 * i) * np.cos(2 * np.pi * 5 * (xx + yy) + phase[1])
    return out


@pytest.mark.parametrize("snr_db", [20.0, 15.0, 10.0, 5.0, 0.0, -5.0, -10.0])
def test_power_ratio_within_one_percent(snr_db):
    rng = np.random.default_rng(int(snr_db) + 100)
    clean = _domain_images(3, 400, rng)  # M = 2 x 400 x 400 = 320000 pixels: sampling error of P_n ~ 0.25 %
    noisy = add_noise_snr(clean, snr_db, np.random.default_rng(7))
    p_signal = np.mean(clean.reshape(3, -1) ** 2, axis=1)
    p_noise = np.mean((noisy - clean).reshape(3, -1) ** 2, axis=1)
    measured = p_signal / p_noise
    assert np.all(np.abs(measured / 10 ** (snr_db / 10) - 1) < 0.01), measured
    assert abs(np.mean(noisy - clean)) < 0.01 * np.sqrt(p_noise.mean())  # zero-mean noise


def test_per_image_snr_and_pooled_layers():
    # one SNR value per image; the signal power pools both layers of a sample (not one power per layer)
    rng = np.random.default_rng(0)
    clean = _domain_images(2, 300, rng)
    snr_db = np.array([10.0, -10.0])
    noise = add_noise_snr(clean, snr_db, np.random.default_rng(1)) - clean
    for i in range(2):
        ratio = np.mean(clean[i] ** 2) / np.mean(noise[i] ** 2)
        assert abs(ratio / 10 ** (snr_db[i] / 10) - 1) < 0.01
        # same noise variance in both layers although their signal powers differ
        assert abs(noise[i, 0].var() / noise[i, 1].var() - 1) < 0.02
    assert np.array_equal(add_noise_snr(np.zeros((1, 2, 8, 8)), 0.0, rng), np.zeros((1, 2, 8, 8)))

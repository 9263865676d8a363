"""Errors of generated domain images: per-image MAE and the averaged magnetization per layer (paper 2, Figs. 8-10).

Images are out-of-plane spin components m_z in [-1, 1], one channel per layer (top, bottom). The averaged
magnetization of a layer is the mean pixel value, m = (1/HW) sum_pixels m_z (cf. Eq. 13, here over image pixels).

Reference: twisted-magnets-regression-and-generation (paper 2), Sec. III.2, Figs. 8-10; Appendix A (Eq. 13).
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_mae", "layer_magnetization", "magnetization_errors"]

_ZERO = 1e-12  # |m_true| below this has no defined percentage error


def _images(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"{what} must be [n, C, H, W], got shape {list(a.shape)}")
    return a


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    p, t = _images(pred, "pred"), _images(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true image shapes differ: {list(p.shape)} vs {list(t.shape)}")
    return p, t


def image_mae(pred, true) -> np.ndarray:
    """Per-image, per-layer MAE, the mean over pixels of |pred - true|: [n, C, H, W] x2 -> [n, C].

    Average over C for the per-image MAE of Figs. 8-9.
    """
    p, t = _pair(pred, true)
    return np.abs(p - t).mean(axis=(2, 3))


def layer_magnetization(images) -> np.ndarray:
    """Averaged magnetization of each layer, the mean pixel value: [n, C, H, W] -> [n, C]."""
    return _images(images, "images").mean(axis=(2, 3))


def magnetization_errors(pred_images, true_images) -> dict[str, np.ndarray]:
    """Errors of the averaged magnetization of generated images (Fig. 10).

    Returns:
        {"abs": [n, C] |m_pred - m_true|, "ape": [n, C] 100 |m_pred - m_true| / |m_true| (percent, NaN where
        |m_true| < 1e-12), "m_pred": [n, C], "m_true": [n, C]}.
    """
    p, t = _pair(pred_images, true_images)
    m_pred, m_true = layer_magnetization(p), layer_magnetization(t)
    err = np.abs(m_pred - m_true)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = 100.0 * err / np.abs(m_true)
    ape = np.where(np.abs(m_true) < _ZERO, np.nan, ape)
    return {"abs": err, "ape": ape, "m_pred": m_pred, "m_true": m_true}

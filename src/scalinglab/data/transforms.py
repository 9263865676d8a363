"""Standardization, noise injection at a given SNR, random patches with 90-degree rotations.

Conventions: images are ``[N, C, H, W]`` (or ``[N, H, W]``); the spatial axes are always the last two.
Randomness only through an explicit ``np.random.Generator``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Standardizer", "add_noise_snr", "random_patches", "center_crop", "rotations4"]

_MODES = ("per_feature", "global")


class Standardizer:
    """``x -> (x - mean_) / std_`` fitted on training data only, invertible for metrics in physical units.

    Modes:
        ``"per_feature"``: one mean/std per feature (per pixel and channel for images, per parameter for
        targets), i.e. statistics over the sample axis only; ``mean_``/``std_`` have shape ``x.shape[1:]``.
        ``"global"``: one scalar mean/std over all entries.

    A feature with zero spread (a pixel that is constant over the training set) gets ``std_ = 1`` so it
    maps to 0 instead of dividing by zero; the inverse still restores it exactly.

    Reference: scaling-laws-deep-regression (paper 1), Methods: inputs and targets standardized.
    """

    def __init__(self, mode: str = "per_feature") -> None:
        self.mode = mode

    # -------------------------------------------------------------- fitting
    def fit(self, x: Any) -> Standardizer:
        """Fit on ``x`` [n, ...] (n >= 1); returns self."""
        self._reset()
        return self.partial_fit(x)

    def _reset(self) -> None:
        for attr in ("count_", "mean_", "std_", "_m2"):
            if hasattr(self, attr):
                delattr(self, attr)

    def partial_fit(self, x: Any) -> Standardizer:
        """Update the statistics with one more batch ``x`` [n, ...] (fit a large store chunk by chunk).

        Batches are merged exactly with the parallel-variance formula (Chan, Golub, LeVeque 1979), in float64.
        """
        if self.mode not in _MODES:
            raise ValueError(f"unknown Standardizer mode {self.mode!r}; choose one of {list(_MODES)}")
        arr = np.asarray(_to_numpy(x), dtype=np.float64)
        if arr.ndim < 1 or arr.shape[0] == 0:
            raise ValueError(f"Standardizer needs at least one sample [n, ...], got shape {list(arr.shape)}")
        if not np.isfinite(arr).all():
            bad = int(np.argmax(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)))
            raise ValueError(f"Standardizer.fit: non-finite value at sample index {bad}")
        if self.mode == "global":
            arr = arr.reshape(-1, 1)
        n_b = arr.shape[0]
        mean_b = arr.mean(axis=0)
        m2_b = ((arr - mean_b) ** 2).sum(axis=0)
        if not hasattr(self, "count_"):
            self.count_, self._mean, self._m2 = n_b, mean_b, m2_b
        else:
            if mean_b.shape != self._mean.shape:
                raise ValueError(f"partial_fit: feature shape {list(mean_b.shape)} != {list(self._mean.shape)}")
            n_a = self.count_
            n = n_a + n_b
            delta = mean_b - self._mean
            self._mean = self._mean + delta * (n_b / n)
            self._m2 = self._m2 + m2_b + delta**2 * (n_a * n_b / n)
            self.count_ = n
        std = np.sqrt(self._m2 / self.count_)  # population std (ddof=0), as in numpy's default
        tiny = 1e-12 * np.maximum(1.0, np.abs(self._mean))
        std = np.where(std > tiny, std, 1.0)
        if self.mode == "global":
            self.mean_, self.std_ = np.float64(self._mean[0]), np.float64(std[0])
        else:
            self.mean_, self.std_ = self._mean.copy(), std
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise ValueError("Standardizer is not fitted: call fit(x_train) first")

    def _check_shape(self, x: Any) -> None:
        if self.mode == "per_feature" and tuple(x.shape[1:]) != tuple(np.shape(self.mean_)):
            raise ValueError(
                f"Standardizer was fitted on features of shape {list(np.shape(self.mean_))}, got {list(x.shape[1:])}"
            )

    # -------------------------------------------------------------- applying
    def transform(self, x: Any) -> Any:
        """Standardize ``x`` [n, ...]; numpy in, numpy out (floating dtype kept); torch tensors also work."""
        self._check_fitted()
        self._check_shape(x)
        mean, std = self._params_like(x)
        return (x - mean) / std

    def inverse_transform(self, z: Any) -> Any:
        """Undo :meth:`transform`: physical units back from standardized values."""
        self._check_fitted()
        self._check_shape(z)
        mean, std = self._params_like(z)
        return z * std + mean

    def _params_like(self, x: Any) -> tuple[Any, Any]:
        if hasattr(x, "detach"):  # torch tensor: same dtype and device, no host round trip per call
            import torch

            return (
                torch.as_tensor(self.mean_, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.std_, dtype=x.dtype, device=x.device),
            )
        x = np.asarray(x)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return np.asarray(self.mean_, dtype=dtype), np.asarray(self.std_, dtype=dtype)

    # -------------------------------------------------------------- saving
    def to_dict(self) -> dict:
        """JSON-serializable state (mode, mean, std, shape)."""
        self._check_fitted()
        return {
            "mode": self.mode,
            "shape": list(np.shape(self.mean_)),
            "mean": np.asarray(self.mean_).reshape(-1).tolist(),
            "std": np.asarray(self.std_).reshape(-1).tolist(),
            "count": int(self.count_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        """Rebuild a fitted Standardizer from :meth:`to_dict` output."""
        try:
            obj = cls(mode=d["mode"])
            shape = tuple(d["shape"])
            mean = np.asarray(d["mean"], dtype=np.float64).reshape(shape)
            std = np.asarray(d["std"], dtype=np.float64).reshape(shape)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"not a Standardizer dictionary: {exc}") from None
        if obj.mode not in _MODES:
            raise ValueError(f"unknown Standardizer mode {obj.mode!r}; choose one of {list(_MODES)}")
        if (std <= 0).any() or not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("Standardizer dictionary holds non-finite mean or non-positive std")
        obj.mean_ = np.float64(mean) if obj.mode == "global" else mean
        obj.std_ = np.float64(std) if obj.mode == "global" else std
        obj.count_ = int(d.get("count", 0))
        # the raw moments are not saved: a restored Standardizer transforms; refit it to update statistics
        obj._mean = np.atleast_1d(mean).astype(np.float64)
        obj._m2 = np.atleast_1d(std).astype(np.float64) ** 2 * obj.count_
        return obj


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


def add_noise_snr(images: Any, snr_db: float | Any, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at a given signal-to-noise ratio, per image.

    For each image (all pixels of all channels of one sample), with M pixels x_i:

        x'_i = x_i + n_i,   n_i ~ N(0, sigma^2)                      (Eqs. 7-8)
        SNR = P_s / P_n,    P_s = (1/M) sum_i x_i^2,  P_n = sigma^2   (Eq. 9, P_n ~ (1/M) sum_i n_i^2 for large M)
        sigma = sqrt(P_s / SNR),   SNR = 10^(SNR_dB / 10)             (Eqs. 9-10)

    The signal power is that of the noiseless image itself, so every image gets the same SNR whatever its
    magnetization level. An all-zero image (P_s = 0) stays noiseless.

    Args:
        images: [N, ...] one image per leading index (e.g. [N, C, H, W]).
        snr_db: SNR in dB, a scalar or one value per image [N].
        rng: numpy Generator (the only source of randomness).

    Returns:
        Noisy images [N, ...], same floating dtype as ``images`` (float64 for integer input).

    Reference: twisted-magnets-regression-and-generation (paper 2), Sec. II.4, Eqs. 7-10.
    """
    x = np.asarray(_to_numpy(images))
    if x.ndim < 2:
        raise ValueError(f"add_noise_snr expects images [N, ...] with N leading, got shape {list(x.shape)}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("add_noise_snr needs an explicit numpy Generator (np.random.default_rng(seed))")
    snr_db = np.asarray(snr_db, dtype=np.float64)
    if snr_db.ndim > 1 or (snr_db.ndim == 1 and snr_db.shape[0] != x.shape[0]):
        raise ValueError(f"snr_db must be a scalar or one value per image [{x.shape[0]}], got {list(snr_db.shape)}")
    if not np.isfinite(snr_db).all():
        raise ValueError("snr_db must be finite")
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    xf = x.astype(np.float64)
    power = np.mean(xf.reshape(len(xf), -1) ** 2, axis=1)  # P_s per image [N]
    sigma = np.sqrt(power / 10.0 ** (snr_db / 10.0))  # [N]
    noise = rng.standard_normal(size=xf.shape) * sigma.reshape((-1,) + (1,) * (x.ndim - 1))
    return (xf + noise).astype(out_dtype)


def _spatial(images: Any, size: int, what: str) -> tuple[np.ndarray, int, int]:
    x = np.asarray(_to_numpy(images))
    if x.ndim < 3:
        raise ValueError(f"{what} expects images [N, (C,) H, W], got shape {list(x.shape)}")
    h, w = x.shape[-2:]
    size = int(size)
    if size <= 0:
        raise ValueError(f"patch size must be positive, got {size}")
    return x, h, w


def random_patches(
    images: Any,
    size: int,
    num: int,
    rng: np.random.Generator,
    rotate: bool = True,
    periodic: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Random square crops, each from a random image, each turned by a random multiple of 90 degrees.

    Crop placement: with ``periodic=False`` (default) the crop lies inside the image (top-left corner
    uniform in [0, H - size] x [0, W - size]), as in paper 4's training crops. With ``periodic=True`` the
    corner is uniform over the whole image and the crop wraps around the edges; this is valid only for
    images with periodic boundary conditions (paper 4's TDGL simulations are periodic, and its sliding
    window wraps in the same way), and gives every pixel the same chance to appear in a patch.

    Args:
        images: [N, C, H, W] or [N, H, W].
        size: patch side in pixels (paper 4: 64); at most H and W unless ``periodic``.
        num: number of patches.
        rng: numpy Generator.
        rotate: apply a rotation by k * 90 degrees, k uniform in {0, 1, 2, 3}, to each patch.
        periodic: wrap crops around the image edges (see above).

    Returns:
        ``(patches, source)``: patches [num, C, size, size] (or [num, size, size]) and source [num] int64,
        the image each patch came from (to pick its targets).

    Reference: domain-pattern-nonuniform-parameters (paper 4), Sec. II C: random 64x64 crops of 256x256
    images with random rotations k in {0, 90, 180, 270} degrees.
    """
    x, h, w = _spatial(images, size, "random_patches")
    num = int(num)
    if num < 0:
        raise ValueError(f"num must be non-negative, got {num}")
    if not periodic and (size > h or size > w):
        raise ValueError(f"patch size {size} is larger than the images ({h} x {w}); use periodic=True to wrap")
    n = x.shape[0]
    if n == 0:
        raise ValueError("random_patches needs at least one image")
    source = rng.integers(0, n, size=num)
    if periodic:
        top, left = rng.integers(0, h, size=num), rng.integers(0, w, size=num)
    else:
        top, left = rng.integers(0, h - size + 1, size=num), rng.integers(0, w - size + 1, size=num)
    ks = rng.integers(0, 4, size=num) if rotate else np.zeros(num, dtype=np.int64)
    offs = np.arange(size)
    rows = (top[:, None] + offs) % h  # [num, size]
    cols = (left[:, None] + offs) % w  # [num, size]
    if x.ndim == 3:
        patches = x[source[:, None, None], rows[:, :, None], cols[:, None, :]]  # [num, size, size]
    else:
        lead = x.reshape(n, -1, h, w)  # [N, C', H, W]
        ch = np.arange(lead.shape[1])
        patches = lead[
            source[:, None, None, None], ch[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ]  # [num, C', size, size]
        patches = patches.reshape((num, *x.shape[1:-2], size, size))
    for k in (1, 2, 3):
        sel = np.flatnonzero(ks == k)
        if sel.size:
            patches[sel] = np.rot90(patches[sel], k=k, axes=(-2, -1))
    return patches, source.astype(np.int64)


def center_crop(images: Any, size: int) -> np.ndarray:
    """The central ``size x size`` pixels of each image ``[..., H, W]``.

    For even H and size the crop spans rows ``H/2 - size/2 .. H/2 + size/2 - 1`` (paper 4: the central
    64 x 64 pixels of the 256 x 256 test image, ``A[i-32 : i+31]`` around i = 128).
    """
    x = np.asarray(_to_numpy(images))
    if x.ndim < 2:
        raise ValueError(f"center_crop expects [..., H, W], got shape {list(x.shape)}")
    h, w = x.shape[-2:]
    size = int(size)
    if not 0 < size <= min(h, w):
        raise ValueError(f"crop size {size} does not fit images of {h} x {w}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def rotations4(patch: Any) -> np.ndarray:
    """The four rotations by 0, 90, 180, 270 degrees of ``patch`` [..., H, W], stacked: [4, ..., H, W] (H = W).

    Test-time averaging (paper 4, Sec. II C): predict on all four and average the predictions.
    """
    x = np.asarray(_to_numpy(patch))
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotations4 expects square patches [..., H, H], got shape {list(x.shape)}")
    return np.stack([np.rot90(x, k=k, axes=(-2, -1)) for k in range(4)], axis=0)

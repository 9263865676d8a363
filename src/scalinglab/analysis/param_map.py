"""Sliding-window parameter maps (paper 4 Algorithm 1), computed exactly and fast, plus region analysis and ROC.

Algorithm 1 evaluates a window regressor (64 x 64 patch -> (D, J)) on the window centred on every pixel, with
periodic wrap. The *naive* evaluation (``naive_map``) crops every window and runs the network on it: H x W forward
passes. ``dense_map`` gives the same numbers from ONE pass over the image: the window network is turned into its
fully convolutional equivalent,

- every convolution / pooling layer runs on the whole (circularly padded) image with stride 1, and the stride it
  had is folded into the dilation of every later layer ("a trous" shift-and-stitch: the dense output at pixel u is
  exactly the window network's feature at the window whose corner is u, for all u at once);
- batch norm in eval mode is a per-channel affine map and activations are pointwise, so they commute with this;
- the final global average pool over the window's n x n feature map becomes an n x n average with the
  accumulated dilation, and the linear head a 1 x 1 convolution.

This is exact (to float rounding) when the window network's convolutions and pools use no zero padding: a zero
padded window network sees zeros at the window border, which no full-image computation reproduces, so such
networks are refused by ``dense_map`` (use ``naive_map``, or a ``conv_padding=0`` variant such as
``cnn_small`` built through ``build_window_model``). Input normalisation must be a global (scalar) affine map.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Algorithm 1, Sec. II C 3, Sec. III B (Figs. 10-13);
Long, Shelhamer, Darrell, CVPR 2015 (fully convolutional networks, shift-and-stitch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.ELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout,
              nn.Hardswish, nn.Hardtanh, nn.PReLU)


# ---------------------------------------------------------------------------------------------- model anatomy
def split_window_model(model: nn.Module) -> tuple[list[nn.Module], nn.Linear]:
    """Split a window regressor into its feature layers and its linear head.

    Supported layouts: a module with ``features`` (Sequential) and ``head`` (Linear) whose forward is
    ``head(features(x).mean((2, 3)))`` (``scalinglab.models.cnn_small``), or an ``nn.Sequential`` ending in
    ``AdaptiveAvgPool2d(1)``, ``Flatten`` and ``Linear``.

    Returns:
        (feature layers in order, head).
    """
    if isinstance(getattr(model, "features", None), nn.Sequential) and isinstance(getattr(model, "head", None),
                                                                                     nn.Linear):
        return list(_flatten(model.features)), model.head
    if isinstance(model, nn.Sequential):
        layers = list(_flatten(model))
        if (len(layers) >= 3 and isinstance(layers[-1], nn.Linear) and isinstance(layers[-2], nn.Flatten)
                and isinstance(layers[-3], nn.AdaptiveAvgPool2d) and _as_pair(layers[-3].output_size) == (1, 1)):
            return layers[:-3], layers[-1]
    raise ValueError(
        f"dense maps support models with .features + .head (global average pool) or Sequential(..., "
        f"AdaptiveAvgPool2d(1), Flatten, Linear); got {type(model).__name__}"
    )


def _flatten(seq: nn.Module):
    for m in seq.children() if isinstance(seq, nn.Sequential) else [seq]:
        if isinstance(m, nn.Sequential):
            yield from _flatten(m)
        else:
            yield m


def _as_pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def check_dense_compatible(model: nn.Module) -> None:
    """Raise ValueError (naming the layer) if the dense evaluation cannot be exact for ``model``."""
    layers, _ = split_window_model(model)
    for i, m in enumerate(layers):
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            pad = _as_pair(m.padding) if not isinstance(m.padding, str) else m.padding
            if pad not in ((0, 0), "valid"):
                raise ValueError(
                    f"layer {i} ({type(m).__name__}) zero-pads the window (padding={m.padding}); the dense map is "
                    f"exact only for unpadded layers: build the model with conv_padding=0 or use the naive map"
                )
            if isinstance(m, nn.MaxPool2d | nn.AvgPool2d) and getattr(m, "ceil_mode", False):
                raise ValueError(f"layer {i} ({type(m).__name__}) uses ceil_mode, unsupported by dense maps")
        elif isinstance(m, nn.BatchNorm2d):
            if m.training:
                raise ValueError("the model is in training mode; call model.eval() (batch norm must be affine)")
        elif not isinstance(m, _POINTWISE):
            raise ValueError(f"layer {i} ({type(m).__name__}) is not supported by dense maps")


# ---------------------------------------------------------------------------------------------- evaluation
def _prepare(image, wrap: bool, window: int, dtype) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image), dtype=dtype)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"image must be [H, W] or [C, H, W], got shape {tuple(x.shape)}")
    _, h, w = x.shape
    if wrap:
        if window > h or window > w:
            raise ValueError(f"window {window} is larger than the image {h}x{w}")
        # Window for pixel i spans i - window//2 .. i + window//2 - 1 (Algorithm 1): roll so its corner is i,
        # then pad circularly so every corner 0..H-1 has a full window.
        x = torch.roll(x, shifts=(window // 2, window // 2), dims=(1, 2))
        x = F.pad(x[None], (0, window - 1, 0, window - 1), mode="circular")[0]
    elif window > h or window > w:
        raise ValueError(f"window {window} is larger than the image {h}x{w}")
    return x


def _map_shape(h: int, w: int, window: int, wrap: bool) -> tuple[int, int]:
    return (h, w) if wrap else (h - window + 1, w - window + 1)


@torch.no_grad()
def naive_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
              batch_size: int = 512, input_scale: float = 1.0, input_shift: float = 0.0,
              positions: np.ndarray | None = None) -> np.ndarray:
    """Reference Algorithm 1: run the network on every window separately.

    Args:
        model: window regressor ``[B, C, window, window] -> [B, P]`` (put in eval mode here).
        image: ``[H, W]`` or ``[C, H, W]``.
        window: window side (paper: 64).
        stride: map spacing in pixels (paper: 1).
        wrap: periodic wrap (Algorithm 1); without it only windows inside the image, map ``[H-w+1, W-w+1]``
            indexed by the window corner.
        batch_size: windows per forward pass.
        input_scale, input_shift: input normalisation ``x * scale + shift`` applied to the window.
        positions: optional ``[n, 2]`` (row, col) map positions to evaluate instead of the full map.

    Returns:
        ``[P, ceil(Hm / stride), ceil(Wm / stride)]`` map, or ``[n, P]`` at ``positions``.
    """
    model.eval()
    dtype = next(model.parameters()).dtype
    x = _prepare(image, wrap, window, dtype)
    h, w = np.asarray(image).shape[-2:]
    hm, wm = _map_shape(h, w, window, wrap)
    if positions is None:
        rows, cols = np.meshgrid(np.arange(0, hm, stride), np.arange(0, wm, stride), indexing="ij")
        pos = np.stack([rows.ravel(), cols.ravel()], axis=1)
    else:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    outs = []
    for start in range(0, len(pos), batch_size):
        chunk = pos[start : start + batch_size]
        patches = torch.stack([x[:, r : r + window, c : c + window] for r, c in chunk])
        outs.append(model(patches * input_scale + input_shift))
    out = torch.cat(outs).numpy()
    if positions is not None:
        return out
    return out.T.reshape(out.shape[1], len(range(0, hm, stride)), len(range(0, wm, stride)))


def _window_feature_size(layers, in_channels: int, window: int, dtype) -> int:
    z = torch.zeros(1, in_channels, window, window, dtype=dtype)
    for m in layers:
        z = m(z)
    if z.shape[-1] != z.shape[-2] or z.shape[-1] < 1:
        raise ValueError(f"window {window} leaves a feature map of shape {tuple(z.shape[-2:])}")
    return int(z.shape[-1])


@torch.no_grad()
def dense_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
              input_scale: float = 1.0, input_shift: float = 0.0) -> np.ndarray:
    """Algorithm 1 from one fully convolutional pass (exact for unpadded window networks, see module doc).

    Args: as ``naive_map``.

    Returns:
        ``[P, ceil(Hm / stride), ceil(Wm / stride)]``, equal to ``naive_map`` up to float rounding.
    """
    model.eval()
    check_dense_compatible(model)
    layers, head = split_window_model(model)
    dtype = next(model.parameters()).dtype
    x = _prepare(image, wrap, window, dtype)[None] * input_scale + input_shift  # [1, C, H', W']
    h, w = np.asarray(image).shape[-2:]
    hm, wm = _map_shape(h, w, window, wrap)
    n_final = _window_feature_size(layers, x.shape[1], window, dtype)
    dil = 1  # accumulated stride of the window network = dilation of the dense equivalent
    for m in layers:
        if isinstance(m, nn.Conv2d):
            d0 = _as_pair(m.dilation)
            s = _as_pair(m.stride)
            if s[0] != s[1]:
                raise ValueError("dense maps need equal strides along both axes")
            x = F.conv2d(x, m.weight, m.bias, stride=1, padding=0, dilation=(d0[0] * dil, d0[1] * dil),
                         groups=m.groups)
            dil *= s[0]
        elif isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
            k = _as_pair(m.kernel_size)
            s = _as_pair(m.stride if m.stride is not None else m.kernel_size)
            if s[0] != s[1]:
                raise ValueError("dense maps need equal strides along both axes")
            if isinstance(m, nn.MaxPool2d):
                d0 = _as_pair(m.dilation)
                x = F.max_pool2d(x, k, stride=1, dilation=(d0[0] * dil, d0[1] * dil))
            else:
                c = x.shape[1]
                box = torch.full((c, 1, *k), 1.0 / (k[0] * k[1]), dtype=x.dtype)
                x = F.conv2d(x, box, stride=1, dilation=dil, groups=c)
            dil *= s[0]
        elif isinstance(m, nn.BatchNorm2d):
            x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)
        else:
            x = m(x)  # pointwise
    # Global average over the window's n x n final feature map = dilated n x n average of the dense map.
    c = x.shape[1]
    box = torch.full((c, 1, n_final, n_final), 1.0 / n_final**2, dtype=x.dtype)
    x = F.conv2d(x, box, stride=1, dilation=dil, groups=c)  # [1, C, >=Hm, >=Wm]
    if x.shape[-2] < hm or x.shape[-1] < wm:
        raise RuntimeError(f"dense map too small ({tuple(x.shape[-2:])} < {(hm, wm)}): unsupported layer layout")
    x = x[0, :, :hm:stride, :wm:stride]
    out = torch.einsum("chw,pc->phw", x, head.weight)
    if head.bias is not None:
        out = out + head.bias[:, None, None]
    return out.numpy()


def build_window_model(name: str, config: dict | None = None, conv_padding: int | None = None) -> nn.Module:
    """A model from ``scalinglab.models`` with, optionally, every conv/pool padding set to ``conv_padding``.

    ``conv_padding=0`` gives the unpadded ("valid") variant whose sliding-window map the dense evaluation
    reproduces exactly; the layer shapes and parameter count are unchanged (padding has no weights).
    """
    from scalinglab.models import get_model

    model = get_model(name, **(config or {}))
    if conv_padding is not None:
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
                m.padding = (conv_padding, conv_padding) if isinstance(m, nn.Conv2d) else conv_padding
    return model


def parameter_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
                  naive: bool = False, **kw) -> np.ndarray:
    """Dense map when exact for ``model``, else (or with ``naive=True``) the per-window reference."""
    if naive:
        return naive_map(model, image, window, stride, wrap, **kw)
    return dense_map(model, image, window, stride, wrap, **kw)


# ---------------------------------------------------------------------------------------------- analysis
def region_masks(d_map: np.ndarray, band: int) -> dict[str, np.ndarray]:
    """Regions R1-R4 of paper 4 Fig. 11 from a two-valued D map (inner square inside an outer frame).

    R1: inner pixels farther than ``band`` from the inner/outer boundary; R2: the other inner pixels;
    R3: outer pixels within ``band`` of the boundary; R4: the other outer pixels (Chebyshev distance).

    Args:
        d_map: ``[H, W]`` true D; the inner region is the value at the image centre.
        band: boundary band width in pixels (e.g. half the window).
    """
    from scipy import ndimage

    d_map = np.asarray(d_map)
    h, w = d_map.shape
    inner = d_map == d_map[h // 2, w // 2]
    # Chebyshev distance to the other region (periodic wrap is irrelevant: the inner square is away from edges).
    dist_in = ndimage.distance_transform_cdt(inner, metric="chessboard")
    dist_out = ndimage.distance_transform_cdt(~inner, metric="chessboard")
    return {"R1": inner & (dist_in > band), "R2": inner & (dist_in <= band),
            "R3": ~inner & (dist_out <= band), "R4": ~inner & (dist_out > band)}


def roc_curve(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve of the score threshold rule "positive if score >= t".

    Returns:
        (false positive rates, true positive rates), both ``[n + 1]`` from (0, 0) to (1, 1).
    """
    pos = np.asarray(positive, float).ravel()
    neg = np.asarray(negative, float).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("ROC needs at least one positive and one negative score")
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    pos_s, neg_s = np.sort(pos), np.sort(neg)
    tpr = 1 - np.searchsorted(pos_s, thresholds, side="left") / pos.size
    fpr = 1 - np.searchsorted(neg_s, thresholds, side="left") / neg.size
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + P(tie) / 2 (Mann-Whitney U, exact)."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, float).ravel()
    neg = np.asarray(negative, float).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUC needs at least one positive and one negative score")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def region_analysis(estimate: np.ndarray, d_map: np.ndarray, band: int) -> dict:
    """Region statistics (Fig. 11) and inner-vs-outer ROC/AUC (Fig. 12) of one D-estimate map.

    The region with the larger true D is the positive class. Returns a JSON-serialisable dict.
    """
    estimate = np.asarray(estimate, float)
    if estimate.shape != np.shape(d_map):
        raise ValueError(f"estimate {estimate.shape} and d_map {np.shape(d_map)} must have the same shape")
    masks = region_masks(d_map, band)
    out: dict = {"regions": {}}
    for name, mask in masks.items():
        v = estimate[mask]
        if v.size == 0:  # e.g. a band wider than half the inner region: report the region as empty (None)
            out["regions"][name] = {"num_pixels": 0, "true_D": None, "median": None, "q1": None, "q3": None,
                                    "mean": None}
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        out["regions"][name] = {"num_pixels": int(mask.sum()), "true_D": float(np.mean(d_map[mask])),
                                "median": float(med), "q1": float(q1), "q3": float(q3), "mean": float(v.mean())}
    inner = masks["R1"] | masks["R2"]
    d_in, d_out = float(d_map[inner].mean()), float(d_map[~inner].mean())
    if d_in != d_out:
        pos, neg = (estimate[inner], estimate[~inner]) if d_in > d_out else (estimate[~inner], estimate[inner])
        out["auc"] = auc(pos, neg)
    else:
        out["auc"] = None
    out["D_in"], out["D_out"] = d_in, d_out
    return out


def map_figure(image: np.ndarray, estimate: np.ndarray, out_png: str, truth: np.ndarray | None = None,
               label: str = "D", analysis: dict | None = None) -> None:
    """Fig. 10-style figure: input pattern, estimate map, and the centre-row profile against the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 3 + (analysis is not None)
    fig, axes = plt.subplots(1, ncols, figsize=(4 * ncols, 3.6))
    axes[0].imshow(np.asarray(image).squeeze(), cmap="gray", interpolation="nearest")
    axes[0].set_title("input pattern")
    im = axes[1].imshow(estimate, cmap="viridis")
    axes[1].set_title(f"estimated {label}")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    row = estimate.shape[0] // 2
    axes[2].plot(estimate[row], label="estimate")
    if truth is not None:
        axes[2].plot(np.asarray(truth)[row * (np.shape(truth)[0] // estimate.shape[0])][:: max(
            1, np.shape(truth)[1] // estimate.shape[1])], "g--", label="truth")
    axes[2].set_xlabel("column")
    axes[2].set_ylabel(label)
    axes[2].legend(fontsize=8)
    axes[2].set_title("centre row")
    if analysis is not None:
        names = [n for n in analysis["regions"] if analysis["regions"][n]["num_pixels"] > 0]
        stats = [analysis["regions"][n] for n in names]
        axes[3].bar(names, [s["median"] for s in stats],
                    yerr=[[s["median"] - s["q1"] for s in stats], [s["q3"] - s["median"] for s in stats]])
        axes[3].plot(names, [s["true_D"] for s in stats], "g_", markersize=20, label="truth")
        auc_text = "n/a" if analysis["auc"] is None else f"{analysis['auc']:.3f}"
        axes[3].set_title(f"regions (AUC inner vs outer = {auc_text})")
        axes[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def stitch_positions(shape: Sequence[int], stride: int) -> np.ndarray:
    """Map positions (row, col) of a strided map, ``[n, 2]`` (helper for spot checks against ``naive_map``)."""
    rows, cols = np.meshgrid(np.arange(0, shape[0], stride), np.arange(0, shape[1], stride), indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)

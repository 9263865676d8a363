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

Every other window regressor (zero-padded CNNs, the torchvision backbones of ``scalinglab.models.backbones``)
goes through ``naive_map``, batched: the image is put on the model's device once and ``batch_size`` windows are
gathered there per forward pass. ``parameter_map`` picks the dense form when it is exact (``map_method`` says
which and why). ``region_masks`` / ``check_regions`` / ``region_analysis`` give the regions R1-R4 of Fig. 11 and
the inner-vs-outer ROC of Fig. 12 for one map, ``map_study`` the per-D_in analysis of a whole map campaign.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Algorithm 1, Sec. II C 3, Sec. III B (Figs. 10-13);
Long, Shelhamer, Darrell, CVPR 2015 (fully convolutional networks, shift-and-stitch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
        f"no exact dense map for {_model_name(model)}: dense maps support models with .features + .head (global "
        f"average pool) or Sequential(..., AdaptiveAvgPool2d(1), Flatten, Linear); use the batched per-window "
        f"path (naive_map, parameter_map(naive=True), --naive), which takes any window regressor"
    )


def _model_name(model: nn.Module) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


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
                    f"exact only for unpadded layers: build the model with conv_padding=0 or use the batched "
                    f"per-window path (naive_map, parameter_map(naive=True), --naive)"
                )
            if isinstance(m, nn.MaxPool2d | nn.AvgPool2d) and getattr(m, "ceil_mode", False):
                raise ValueError(f"layer {i} ({type(m).__name__}) uses ceil_mode, unsupported by dense maps; use "
                                 f"the batched per-window path (naive_map, --naive)")
        elif isinstance(m, nn.BatchNorm2d):
            if m.training:
                raise ValueError("the model is in training mode; call model.eval() (batch norm must be affine)")
        elif not isinstance(m, _POINTWISE):
            raise ValueError(f"layer {i} ({type(m).__name__}) is not supported by dense maps; use the batched "
                             f"per-window path (naive_map, parameter_map(naive=True), --naive)")


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


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)


@torch.no_grad()
def naive_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
              batch_size: int = 512, input_scale: float = 1.0, input_shift: float = 0.0,
              positions: np.ndarray | None = None,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Reference Algorithm 1, batched: the network on every window, ``batch_size`` windows per forward pass.

    Works for any window regressor (padded convolutions, torchvision backbones, ...). The image is moved once to
    the model's device and the windows of a chunk are gathered there by one indexing operation, so a GPU model
    evaluates ``batch_size`` windows per pass without host round trips; only the ``[chunk, P]`` outputs come back.

    Args:
        model: window regressor ``[B, C, window, window] -> [B, P]`` (put in eval mode here).
        image: ``[H, W]`` or ``[C, H, W]``.
        window: window side (paper: 64).
        stride: map spacing in pixels (paper: 1).
        wrap: periodic wrap (Algorithm 1); without it only windows inside the image, map ``[H-w+1, W-w+1]``
            indexed by the window corner.
        batch_size: windows per forward pass (memory: ``batch_size * C * window^2`` inputs plus activations).
        input_scale, input_shift: input normalisation ``x * scale + shift`` applied to the window.
        positions: optional ``[n, 2]`` (row, col) map positions to evaluate instead of the full map.
        progress: optional ``progress(done, total)`` called after every chunk (windows evaluated so far).

    Returns:
        ``[P, ceil(Hm / stride), ceil(Wm / stride)]`` map, or ``[n, P]`` at ``positions``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    device, dtype = _model_device_dtype(model)
    x = _prepare(image, wrap, window, dtype).to(device)  # [C, H', W']
    h, w = np.asarray(image).shape[-2:]
    hm, wm = _map_shape(h, w, window, wrap)
    if positions is None:
        rows, cols = np.meshgrid(np.arange(0, hm, stride), np.arange(0, wm, stride), indexing="ij")
        pos = np.stack([rows.ravel(), cols.ravel()], axis=1)
    else:
        pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    offsets = torch.arange(window, device=device)
    outs = []
    for start in range(0, len(pos), batch_size):
        chunk = torch.as_tensor(pos[start : start + batch_size], device=device)  # [n, 2] window corners
        r = (chunk[:, 0, None] + offsets)[:, :, None]  # [n, window, 1]
        c = (chunk[:, 1, None] + offsets)[:, None, :]  # [n, 1, window]
        patches = x[:, r, c].transpose(0, 1)  # [C, n, window, window] -> [n, C, window, window]
        outs.append(model(patches * input_scale + input_shift).cpu())
        if progress is not None:
            progress(min(start + batch_size, len(pos)), len(pos))
    out = torch.cat(outs).numpy()
    if positions is not None:
        return out
    return out.T.reshape(out.shape[1], len(range(0, hm, stride)), len(range(0, wm, stride)))


def per_window_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
                   input_scale: float = 1.0, input_shift: float = 0.0) -> np.ndarray:
    """Algorithm 1 literally: crop every window with explicit periodic indices and run it alone (slow; tests).

    The window of map pixel ``(i, j)`` is ``image[i - window//2 : i + window//2, j - window//2 : ...]`` with
    indices modulo the image size (``wrap``), or the window with corner ``(i, j)`` (no wrap).
    """
    model.eval()
    device, dtype = _model_device_dtype(model)
    img = np.asarray(image, dtype=np.float64)
    img = img[None] if img.ndim == 2 else img
    _, h, w = img.shape
    hm, wm = _map_shape(h, w, window, wrap)
    rows_out = []
    with torch.no_grad():
        for i in range(0, hm, stride):
            row = []
            for j in range(0, wm, stride):
                if wrap:
                    rr = np.arange(i - window // 2, i - window // 2 + window) % h
                    cc = np.arange(j - window // 2, j - window // 2 + window) % w
                else:
                    rr, cc = np.arange(i, i + window), np.arange(j, j + window)
                patch = torch.as_tensor(img[:, rr][:, :, cc], dtype=dtype, device=device)[None]
                row.append(model(patch * input_scale + input_shift)[0].cpu().numpy())
            rows_out.append(row)
    return np.moveaxis(np.asarray(rows_out), -1, 0)


def _window_feature_size(layers, in_channels: int, window: int, dtype, device=None) -> int:
    z = torch.zeros(1, in_channels, window, window, dtype=dtype, device=device)
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
    device, dtype = _model_device_dtype(model)
    x = _prepare(image, wrap, window, dtype).to(device)[None] * input_scale + input_shift  # [1, C, H', W']
    h, w = np.asarray(image).shape[-2:]
    hm, wm = _map_shape(h, w, window, wrap)
    n_final = _window_feature_size(layers, x.shape[1], window, dtype, device)
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
                box = torch.full((c, 1, *k), 1.0 / (k[0] * k[1]), dtype=x.dtype, device=x.device)
                x = F.conv2d(x, box, stride=1, dilation=dil, groups=c)
            dil *= s[0]
        elif isinstance(m, nn.BatchNorm2d):
            x = F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)
        else:
            x = m(x)  # pointwise
    # Global average over the window's n x n final feature map = dilated n x n average of the dense map.
    c = x.shape[1]
    box = torch.full((c, 1, n_final, n_final), 1.0 / n_final**2, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, box, stride=1, dilation=dil, groups=c)  # [1, C, >=Hm, >=Wm]
    if x.shape[-2] < hm or x.shape[-1] < wm:
        raise RuntimeError(f"dense map too small ({tuple(x.shape[-2:])} < {(hm, wm)}): unsupported layer layout")
    x = x[0, :, :hm:stride, :wm:stride]
    out = torch.einsum("chw,pc->phw", x, head.weight)
    if head.bias is not None:
        out = out + head.bias[:, None, None]
    return out.cpu().numpy()


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


def map_method(model: nn.Module, naive: bool = False) -> tuple[str, str | None]:
    """Which evaluation ``parameter_map`` uses for ``model``: ``("dense", None)`` or ``("naive", reason)``.

    ``reason`` is None when ``naive`` forces the batched per-window path, else the one-line reason why no exact
    dense form exists (a zero-padded layer, a torchvision backbone's layout, ...).
    """
    if naive:
        return "naive", None
    try:
        check_dense_compatible(model.eval())
    except ValueError as exc:
        return "naive", str(exc).split("; ")[0]
    return "dense", None


def parameter_map(model: nn.Module, image, window: int = 64, stride: int = 1, wrap: bool = True,
                  naive: bool = False, batch_size: int = 512,
                  progress: Callable[[int, int], None] | None = None, **kw) -> np.ndarray:
    """Algorithm 1 by the fastest exact route: ``dense_map`` when the architecture has an exact dense form,
    else (or with ``naive=True``) the batched per-window ``naive_map`` (``batch_size`` windows per pass, on the
    model's device). ``map_method`` tells which one is used and why; ``kw``: ``input_scale``, ``input_shift``.
    """
    method, _ = map_method(model, naive)
    if method == "naive":
        return naive_map(model, image, window, stride, wrap, batch_size=batch_size, progress=progress, **kw)
    return dense_map(model, image, window, stride, wrap, **kw)


# ---------------------------------------------------------------------------------------------- analysis
def inner_mask(shape: Sequence[int], border: int) -> np.ndarray:
    """``[H, W]`` bool: the inner square of a map whose outer frame is ``border`` pixels wide (paper 4 Fig. 5)."""
    h, w = shape
    if not 0 <= 2 * border < min(h, w):
        raise ValueError(f"border {border} leaves no inner region in a {h}x{w} map")
    m = np.zeros((h, w), dtype=bool)
    m[border : h - border, border : w - border] = True
    return m


def region_masks(d_map: np.ndarray, band: int, inner: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Regions R1-R4 of paper 4 Fig. 11 from a two-valued D map (inner square inside an outer frame).

    R1: inner pixels farther than ``band`` from the inner/outer boundary; R2: the other inner pixels;
    R3: outer pixels within ``band`` of the boundary; R4: the other outer pixels (Chebyshev distance).

    Args:
        d_map: ``[H, W]`` true D; the inner region is the value at the image centre.
        band: boundary band width in pixels (e.g. half the window).
        inner: optional ``[H, W]`` bool inner region (``inner_mask``), needed when D_in = D_out and the
            regions cannot be read from the values.
    """
    from scipy import ndimage

    d_map = np.asarray(d_map)
    h, w = d_map.shape
    if inner is None:
        inner = d_map == d_map[h // 2, w // 2]
    elif np.shape(inner) != (h, w):
        raise ValueError(f"inner mask {np.shape(inner)} and d_map {(h, w)} must have the same shape")
    inner = np.asarray(inner, dtype=bool)
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


def _inner_extent(inner: np.ndarray) -> tuple[int, int]:
    """(rows, cols) of the bounding box of the inner region."""
    if not inner.any():
        return 0, 0
    rows, cols = np.flatnonzero(inner.any(axis=1)), np.flatnonzero(inner.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def check_regions(d_map: np.ndarray, band: int, window: int | None = None,
                  inner: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``region_masks`` after checking that all four regions are non-empty (one-line ValueError naming the sizes).

    R1 needs an inner region wider than ``2 * band`` (with the default band ``window / 2``: wider than the
    window, so that some windows lie wholly inside it), R4 an outer frame wider than ``band``.
    """
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    masks = region_masks(d_map, band, inner)
    empty = [name for name, m in masks.items() if not m.any()]
    if empty:
        h, w = np.shape(d_map)
        ih, iw = _inner_extent(masks["R1"] | masks["R2"])
        if ih == h and iw == w:
            raise ValueError(f"the {h}x{w} d_map is uniform (D_in = D_out): regions need the inner mask "
                             f"(inner=inner_mask(shape, border), border from the map store's metadata)")
        win = f"window {window} px, " if window is not None else ""
        raise ValueError(
            f"region(s) {', '.join(empty)} empty: the {h}x{w} map has a {ih}x{iw} inner region and a "
            f"{(h - ih) // 2}-px outer frame, too small for the {win}band {band} px (R1 needs an inner side > "
            f"2 x band = {2 * band}, R4 a frame > band); use a larger map (e.g. the quick profile's 384x384) "
            f"or a smaller --band"
        )
    return masks


def region_analysis(estimate: np.ndarray, d_map: np.ndarray, band: int, stride: int = 1,
                    window: int | None = None, inner: np.ndarray | None = None) -> dict:
    """Region statistics (Fig. 11) and inner-vs-outer ROC/AUC (Fig. 12) of one D-estimate map.

    The region with the larger true D is the positive class. Regions are taken from the full-resolution
    ``d_map`` (``band`` in pixels) and sampled like a map of spacing ``stride``. A map whose regions R1-R4 are not
    all non-empty is refused (``check_regions``); ``inner`` as in ``region_masks``. Returns a JSON-serialisable
    dict: per region the pixel count, true D, median, quartiles q1/q3, 5th/95th percentiles p5/p95 and mean;
    ``auc`` (None when D_in = D_out); ``D_in``, ``D_out``.
    """
    estimate = np.asarray(estimate, float)
    d_map = np.asarray(d_map)
    expect = tuple(len(range(0, n, stride)) for n in d_map.shape)
    if estimate.shape != expect:
        raise ValueError(f"estimate {estimate.shape} does not match d_map {d_map.shape} sampled every {stride} px "
                         f"({expect})")
    masks = {k: m[::stride, ::stride] for k, m in check_regions(d_map, band, window, inner).items()}
    d_sub = d_map[::stride, ::stride]
    out: dict = {"regions": {}}
    for name, mask in masks.items():
        v = estimate[mask]
        if v.size == 0:  # a coarse stride can miss a thin region: refuse rather than report nothing
            raise ValueError(f"region {name} has no map pixel at stride {stride}; use a smaller --stride")
        p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        out["regions"][name] = {"num_pixels": int(mask.sum()), "true_D": float(np.mean(d_sub[mask])),
                                "median": float(med), "q1": float(q1), "q3": float(q3), "p5": float(p5),
                                "p95": float(p95), "mean": float(v.mean())}
    inner = masks["R1"] | masks["R2"]
    d_in, d_out = float(d_sub[inner].mean()), float(d_sub[~inner].mean())
    if d_in != d_out:
        pos, neg = (estimate[inner], estimate[~inner]) if d_in > d_out else (estimate[~inner], estimate[inner])
        out["auc"] = auc(pos, neg)
    else:
        out["auc"] = None
    out["D_in"], out["D_out"] = d_in, d_out
    return out


def distribution_summary(values: np.ndarray) -> dict:
    """Pixel count, median, quartiles q1/q3, 5th/95th percentiles p5/p95 and mean of ``values`` (JSON-able)."""
    v = np.asarray(values, float).ravel()
    if v.size == 0:
        raise ValueError("no values to summarize")
    p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
    return {"num_pixels": int(v.size), "median": float(med), "q1": float(q1), "q3": float(q3), "p5": float(p5),
            "p95": float(p95), "mean": float(v.mean())}


def _thin_curve(fpr: np.ndarray, tpr: np.ndarray, num_points: int) -> tuple[list[float], list[float]]:
    """At most ``num_points`` points of a ROC curve, endpoints kept (for plotting; the AUC is computed exactly)."""
    if len(fpr) > num_points:
        idx = np.unique(np.linspace(0, len(fpr) - 1, num_points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return [float(v) for v in fpr], [float(v) for v in tpr]


def map_study(estimates: Sequence[np.ndarray], d_maps: Sequence[np.ndarray], d_in: Sequence[float],
              target_names: Sequence[str], band: int, stride: int = 1, window: int | None = None,
              inner: np.ndarray | None = None, seeds: Sequence[int] | None = None, J_true: float | None = None,
              roc_points: int = 400) -> dict:
    """Paper 4 Sec. III B over a map campaign: per D_in the region statistics (Fig. 11), ROC/AUC (Fig. 12), J (Fig. 13).

    Patterns with the same D_in (several seeds) are pooled: their map pixels of a region form one distribution.
    The ROC compares all inner (R1 + R2) with all outer (R3 + R4) D estimates, the region with the larger true
    D being the positive class (paper 4 Fig. 12); it is undefined (None) where D_in = D_out.

    Args:
        estimates: per pattern ``[P, Hm, Wm]`` maps in physical units (``target_names`` order; must hold D).
        d_maps: per pattern ``[H, W]`` true D (``Hm = ceil(H / stride)``).
        d_in: per pattern inner D.
        target_names: names of the ``P`` map channels (``"D"`` required, ``"J"`` optional).
        band: boundary band of R1-R4 in pixels (paper-like default: window / 2).
        stride: map spacing in pixels.
        window: window side (only for the error message of ``check_regions``).
        inner: ``[H, W]`` inner-region mask (``inner_mask``), required for patterns with D_in = D_out.
        seeds: per pattern simulation seed (recorded).
        J_true: true J of the campaign (recorded with the J statistics).
        roc_points: points kept of each ROC curve (plotting only).

    Returns:
        JSON-serialisable ``{"target_names", "band", "stride", "J_true", "rows": [...]}`` with one row per D_in
        (ascending): ``D_in``, ``D_out``, ``num_patterns``, ``seeds``, ``auc``, ``auc_per_pattern``, ``roc``
        (``fpr``, ``tpr``), ``regions`` (R1-R4: ``true_D`` + ``distribution_summary`` of D) and, with J,
        ``J_regions`` (R1-R4 and ``all``).
    """
    names = list(target_names)
    if "D" not in names:
        raise ValueError(f"the model predicts {names}, not D: a map study needs a D regressor")
    if not (len(estimates) == len(d_maps) == len(d_in)) or not estimates:
        raise ValueError(f"need as many estimates, d_maps and d_in values (got {len(estimates)}, {len(d_maps)}, "
                         f"{len(d_in)}), at least one")
    seeds = list(seeds) if seeds is not None else [None] * len(estimates)
    iD, iJ = names.index("D"), (names.index("J") if "J" in names else None)
    groups: dict[float, list[int]] = {}
    for k, d in enumerate(d_in):
        groups.setdefault(round(float(d), 10), []).append(k)
    rows = []
    for d in sorted(groups):
        vals_D: dict[str, list[np.ndarray]] = {r: [] for r in ("R1", "R2", "R3", "R4")}
        vals_J: dict[str, list[np.ndarray]] = {r: [] for r in ("R1", "R2", "R3", "R4")}
        true_D: dict[str, list[float]] = {r: [] for r in vals_D}
        aucs = []
        for k in groups[d]:
            est = np.asarray(estimates[k], float)
            dm = np.asarray(d_maps[k])
            one = region_analysis(est[iD], dm, band, stride=stride, window=window, inner=inner)
            aucs.append(one["auc"])
            masks = {r: m[::stride, ::stride] for r, m in region_masks(dm, band, inner).items()}
            for r, m in masks.items():
                vals_D[r].append(est[iD][m])
                true_D[r].append(one["regions"][r]["true_D"])
                if iJ is not None:
                    vals_J[r].append(est[iJ][m])
        pooled = {r: np.concatenate(v) for r, v in vals_D.items()}
        row: dict = {"D_in": d, "num_patterns": len(groups[d]), "seeds": [seeds[k] for k in groups[d]],
                     "regions": {r: {"true_D": float(np.mean(true_D[r])), **distribution_summary(pooled[r])}
                                 for r in pooled}}
        row["D_out"] = row["regions"]["R4"]["true_D"]
        pos_in = np.concatenate([pooled["R1"], pooled["R2"]])
        pos_out = np.concatenate([pooled["R3"], pooled["R4"]])
        if d > row["D_out"]:
            pos, neg = pos_in, pos_out
        elif d < row["D_out"]:
            pos, neg = pos_out, pos_in
        else:
            pos = neg = None
        row["auc"] = None if pos is None else auc(pos, neg)
        row["auc_per_pattern"] = aucs
        row["positive"] = None if pos is None else ("inner" if d > row["D_out"] else "outer")
        row["roc"] = None if pos is None else dict(zip(("fpr", "tpr"), _thin_curve(*roc_curve(pos, neg),
                                                                                      roc_points), strict=True))
        if iJ is not None:
            pj = {r: np.concatenate(v) for r, v in vals_J.items()}
            row["J_regions"] = {r: distribution_summary(v) for r, v in pj.items()}
            row["J_regions"]["all"] = distribution_summary(np.concatenate(list(pj.values())))
        rows.append(row)
    return {"target_names": names, "band": int(band), "stride": int(stride), "window": window,
            "J_true": None if J_true is None else float(J_true), "rows": rows}


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

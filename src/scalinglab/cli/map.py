"""``scalinglab map MODEL IMAGE``: sliding-window parameter map (paper 4 Algorithm 1), dense and exact."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "map", help="sliding-window parameter map of a domain image (paper 4 Algorithm 1)",
        description="Estimate parameters in a window around every pixel (periodic wrap) with a trained patch "
                    "regressor. The map is computed in one fully convolutional pass, equal to the per-window "
                    "evaluation for unpadded networks; --naive runs the per-window reference.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint written by `scalinglab train-patches` (.pt)")
    p.add_argument("image", metavar="IMAGE", help="image as .npy [H, W] or a dataset store directory")
    p.add_argument("--index", type=int, default=0, help="sample index when IMAGE is a dataset store (default 0)")
    p.add_argument("--window", type=int, default=None,
                   help="window side in pixels (default: the checkpoint's patch size, else 64); a window other "
                        "than the patch size the model was trained on is refused")
    p.add_argument("--stride", type=int, default=1, help="map spacing in pixels (default 1)")
    p.add_argument("--no-wrap", action="store_true", help="no periodic wrap: only windows inside the image")
    p.add_argument("--naive", action="store_true", help="evaluate every window separately (reference, slow)")
    p.add_argument("--band", type=int, help="boundary band of regions R1-R4 (default: window / 2)")
    p.add_argument("--out", required=True, help="output directory (map.npy, summary.json, figures)")
    p.set_defaults(func=handler)


def load_checkpoint(path: str):
    """Rebuild the model of a patch-regression checkpoint; returns (model, checkpoint dict)."""
    import warnings

    import torch

    from scalinglab.analysis.param_map import build_window_model

    if not Path(path).is_file():
        raise FileNotFoundError(f"model checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files that then fail anyway
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - pickle, zip and torch errors all mean the same; torch's advice to
        # retry with weights_only=False (arbitrary code execution) must not reach the user
        raise ValueError(f"{path} is not a readable checkpoint (expected a .pt file written by train-patches)"
                         ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} is not a train-patches checkpoint (it holds a {type(ckpt).__name__}, not a dict)")
    for key in ("model", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {path} has no {key!r} entry (expected one written by train-patches)")
    try:
        model = build_window_model(ckpt["model"], ckpt.get("config") or {}, ckpt.get("conv_padding"))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"checkpoint {path}: its model cannot be rebuilt ({first[:160]})") from None
    return model.eval(), ckpt


def _input_channels(model) -> int | None:
    """Channels the first convolution of ``model`` takes (None if it has none)."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


def _check_window(model, ckpt: dict, args, image) -> int:
    """The window to use, checked against the checkpoint's patch size, the image and the network (one line)."""
    import torch

    patch = ckpt.get("patch_size")
    window = args.window if args.window is not None else int(patch or 64)
    if window < 1 or args.stride < 1:
        raise ValueError("--window and --stride must be positive")
    if patch is not None and window != int(patch):
        raise ValueError(f"--window {window} differs from the {int(patch)}-pixel patches the model in {args.model} "
                         f"was trained on; omit --window (or give --window {int(patch)})")
    channels = 1 if image.ndim == 2 else image.shape[0]
    want = _input_channels(model)
    if image.ndim in (2, 3) and want is not None and channels != want:
        raise ValueError(f"image {args.image} has {channels} channel(s) (shape {tuple(image.shape)}) but the model "
                         f"in {args.model} takes {want}")
    if image.ndim in (2, 3) and min(image.shape[-2:]) < window:
        raise ValueError(f"--window {window} is larger than the image {args.image} "
                         f"({image.shape[-2]}x{image.shape[-1]} pixels)")
    if image.ndim in (2, 3):
        dtype = next(model.parameters()).dtype
        try:
            with torch.no_grad():
                model(torch.zeros(1, channels, window, window, dtype=dtype))
        except RuntimeError as exc:
            first = (str(exc).splitlines() or ["RuntimeError"])[0]
            raise ValueError(f"--window {window} does not fit the model in {args.model} ({first[:120]})") from None
    return window


def _load_image(path: str, index: int):
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    if p.is_file():
        if p.suffix != ".npy":
            raise ValueError(f"image file must be .npy, got {p.name}")
        try:
            img = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError):  # numpy calls any non-.npy content "pickled data": say what it is
            raise ValueError(f"image {path} is not a readable .npy array (not written by numpy.save, or truncated)"
                             ) from None
        if not isinstance(img, np.ndarray) or img.dtype.kind not in "biuf":
            raise ValueError(f"image {path} must hold a numeric array [H, W] or [C, H, W]")
        return img, None
    from scalinglab.data.store import DatasetStore

    store = DatasetStore.open(p)
    try:
        if not 0 <= index < store.num_samples:
            raise ValueError(f"--index {index} out of range: the store has {store.num_samples} samples")
        img = store.inputs(indices=[index])[0]
        d_map = store.aux("d_map", indices=[index])[0] if "d_map" in store.aux_names else None
    finally:
        store.close()
    return img, d_map


def handler(args) -> int:
    import numpy as np

    from scalinglab.analysis.param_map import map_figure, parameter_map, region_analysis

    if (args.window is not None and args.window < 1) or args.stride < 1:
        raise ValueError("--window and --stride must be positive")
    model, ckpt = load_checkpoint(args.model)
    image, d_map = _load_image(args.image, args.index)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    window = _check_window(model, ckpt, args, image)
    raw = parameter_map(model, image, window=window, stride=args.stride, wrap=not args.no_wrap,
                        naive=args.naive, input_scale=float(ckpt.get("input_scale", 1.0)),
                        input_shift=float(ckpt.get("input_shift", 0.0)))
    scale = np.asarray(ckpt.get("target_scale", [1.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    shift = np.asarray(ckpt.get("target_shift", [0.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    est = raw * scale + shift  # back to physical units
    names = list(ckpt.get("target_names", [f"y{i}" for i in range(est.shape[0])]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "map.npy", est.astype(np.float32))
    summary: dict = {"targets": names, "shape": list(est.shape), "window": window, "stride": args.stride,
                     "wrap": not args.no_wrap, "method": "naive" if args.naive else "dense"}
    truth = None
    if d_map is not None and "D" in names and args.stride == 1 and not args.no_wrap:
        truth = d_map
        summary["regions"] = region_analysis(est[names.index("D")], d_map, band=args.band or window // 2)
    for i, name in enumerate(names):
        map_figure(image, est[i], str(out / f"map_{name}.png"), truth=truth if name == "D" else None, label=name,
                   analysis=summary.get("regions") if name == "D" else None)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'map.npy'} {tuple(est.shape)} and figures to {out}")
    if "regions" in summary and summary["regions"]["auc"] is not None:
        print(f"AUC inner vs outer (D): {summary['regions']['auc']:.3f}")
    return 0

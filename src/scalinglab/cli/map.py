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
    p.add_argument("--window", type=int, default=64, help="window side in pixels (default 64)")
    p.add_argument("--stride", type=int, default=1, help="map spacing in pixels (default 1)")
    p.add_argument("--no-wrap", action="store_true", help="no periodic wrap: only windows inside the image")
    p.add_argument("--naive", action="store_true", help="evaluate every window separately (reference, slow)")
    p.add_argument("--band", type=int, help="boundary band of regions R1-R4 (default: window / 2)")
    p.add_argument("--out", required=True, help="output directory (map.npy, summary.json, figures)")
    p.set_defaults(func=handler)


def load_checkpoint(path: str):
    """Rebuild the model of a patch-regression checkpoint; returns (model, checkpoint dict)."""
    import torch

    from scalinglab.analysis.param_map import build_window_model

    if not Path(path).is_file():
        raise FileNotFoundError(f"model checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {path} has no {key!r} entry (expected one written by train-patches)")
    model = build_window_model(ckpt["model"], ckpt.get("config") or {}, ckpt.get("conv_padding"))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def _load_image(path: str, index: int):
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    if p.is_file():
        if p.suffix != ".npy":
            raise ValueError(f"image file must be .npy, got {p.name}")
        img = np.load(p)
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

    if args.window < 1 or args.stride < 1:
        raise ValueError("--window and --stride must be positive")
    model, ckpt = load_checkpoint(args.model)
    image, d_map = _load_image(args.image, args.index)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    raw = parameter_map(model, image, window=args.window, stride=args.stride, wrap=not args.no_wrap,
                        naive=args.naive, input_scale=float(ckpt.get("input_scale", 1.0)),
                        input_shift=float(ckpt.get("input_shift", 0.0)))
    scale = np.asarray(ckpt.get("target_scale", [1.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    shift = np.asarray(ckpt.get("target_shift", [0.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    est = raw * scale + shift  # back to physical units
    names = list(ckpt.get("target_names", [f"y{i}" for i in range(est.shape[0])]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "map.npy", est.astype(np.float32))
    summary: dict = {"targets": names, "shape": list(est.shape), "window": args.window, "stride": args.stride,
                     "wrap": not args.no_wrap, "method": "naive" if args.naive else "dense"}
    truth = None
    if d_map is not None and "D" in names and args.stride == 1 and not args.no_wrap:
        truth = d_map
        summary["regions"] = region_analysis(est[names.index("D")], d_map, band=args.band or args.window // 2)
    for i, name in enumerate(names):
        map_figure(image, est[i], str(out / f"map_{name}.png"), truth=truth if name == "D" else None, label=name,
                   analysis=summary.get("regions") if name == "D" else None)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'map.npy'} {tuple(est.shape)} and figures to {out}")
    if "regions" in summary and summary["regions"]["auc"] is not None:
        print(f"AUC inner vs outer (D): {summary['regions']['auc']:.3f}")
    return 0

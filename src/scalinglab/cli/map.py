"""``scalinglab map MODEL IMAGE`` and ``scalinglab map-study MODEL MAP_STORE``: sliding-window parameter maps.

``map`` maps one image (paper 4 Algorithm 1); ``map-study`` maps every pattern of a map campaign
(``scalinglab simulate tdgl --maps``) and writes paper 4's Sec. III B analysis (Figs. 10-13, AUC per D_in).
The map is dense and exact (one fully convolutional pass) where the architecture allows it, else the batched
per-window evaluation (many windows per forward pass on the model's device), chosen automatically with a note.
"""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "map", help="sliding-window parameter map of a domain image (paper 4 Algorithm 1)",
        description="Estimate parameters in a window around every pixel (periodic wrap) with a trained patch "
                    "regressor. The map is computed in one fully convolutional pass, equal to the per-window "
                    "evaluation, for unpadded networks; other networks (zero-padded, torchvision backbones) use "
                    "the batched per-window evaluation automatically; --naive forces it.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint written by `scalinglab train-patches` (.pt)")
    p.add_argument("image", metavar="IMAGE", help="image as .npy [H, W] or a dataset store directory")
    p.add_argument("--index", type=int, default=0, help="sample index when IMAGE is a dataset store (default 0)")
    p.add_argument("--window", type=int, default=None,
                   help="window side in pixels (default: the checkpoint's patch size, else 64); a window other "
                        "than the patch size the model was trained on is refused")
    p.add_argument("--stride", type=int, default=1, help="map spacing in pixels (default 1)")
    p.add_argument("--no-wrap", action="store_true", help="no periodic wrap: only windows inside the image")
    _add_eval_options(p)
    p.add_argument("--band", type=int, help="boundary band of regions R1-R4 (default: window / 2)")
    p.add_argument("--out", required=True, help="output directory (map.npy, summary.json, figures)")
    p.set_defaults(func=handler)

    s = subparsers.add_parser(
        "map-study", help="map every pattern of a map campaign: regions, ROC/AUC per D_in (paper 4 Figs. 10-13)",
        description="Paper 4 Sec. III B: sliding-window maps (Algorithm 1, periodic wrap) of every pattern of a "
                    "map-campaign store (`scalinglab simulate tdgl --maps`: inner square at D_in, outer frame at "
                    "D_out), then per D_in the D estimates in regions R1-R4 against the truth (Fig. 11), the "
                    "inner-vs-outer ROC curve and AUC (Fig. 12, positive = region with the larger true D) and, "
                    "when the model predicts J, the J estimates against the campaign's J (Fig. 13). Writes "
                    "maps.npy, summary.json, summary.csv, regions.csv, figures and index.html.",
    )
    s.add_argument("model", metavar="MODEL", help="checkpoint written by `scalinglab train-patches` (.pt)")
    s.add_argument("store", metavar="MAP_STORE", help="map-campaign store (scalinglab simulate tdgl --maps)")
    s.add_argument("--stride", type=int, default=1,
                   help="map spacing in pixels (default 1, the paper's; larger strides sample the regions)")
    _add_eval_options(s)
    s.add_argument("--band", type=int, help="boundary band of regions R1-R4 in pixels (default: window / 2)")
    s.add_argument("--d-in", type=float, nargs="+", metavar="D", help="only the patterns with these D_in")
    s.add_argument("--seeds", type=int, nargs="+", metavar="S", help="only the patterns of these seeds")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--out", required=True, help="output directory")
    s.set_defaults(func=study_handler)


def _add_eval_options(p) -> None:
    p.add_argument("--naive", action="store_true",
                   help="force the batched per-window evaluation (automatic for networks without an exact dense "
                        "form: zero-padded layers, torchvision backbones)")
    p.add_argument("--batch-size", type=int, default=512, metavar="B",
                   help="windows per forward pass of the per-window evaluation (default 512)")
    p.add_argument("--device", default="cpu", help="torch device for the model, e.g. cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def _setup_eval(model, args) -> tuple[object, str]:
    """Move ``model`` to ``--device``, set threads, and pick dense/naive (printing a note when dense is impossible)."""
    import sys

    import torch

    from scalinglab.analysis.param_map import map_method

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
        model = model.to(device)
    except (RuntimeError, AssertionError) as exc:  # unknown or unavailable device: torch's first line
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"--device {args.device}: {first[:160]}") from None
    method, reason = map_method(model, args.naive)
    if reason is not None:
        why = reason if reason.startswith("no exact dense map") else f"no exact dense map: {reason}"
        print(f"note: {why}; using the batched per-window evaluation, {args.batch_size} windows per pass on "
              f"{device}", file=sys.stderr)
    return model, method


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
        return img, None, None
    from scalinglab.data.store import DatasetStore

    store = DatasetStore.open(p)
    try:
        if not 0 <= index < store.num_samples:
            raise ValueError(f"--index {index} out of range: the store has {store.num_samples} samples")
        img = store.inputs(indices=[index])[0]
        d_map = store.aux("d_map", indices=[index])[0] if "d_map" in store.aux_names else None
        border = _store_border(store)
    finally:
        store.close()
    return img, d_map, border


def _store_border(store) -> int | None:
    """Outer-frame width of a map-campaign store (metadata ``border``), None if not recorded."""
    meta = store.metadata
    border = meta.get("border", (meta.get("config") or {}).get("border"))
    return None if border is None else int(border)


def handler(args) -> int:
    import numpy as np

    from scalinglab.analysis.param_map import check_regions, inner_mask, map_figure, parameter_map, region_analysis

    if (args.window is not None and args.window < 1) or args.stride < 1:
        raise ValueError("--window and --stride must be positive")
    model, ckpt = load_checkpoint(args.model)
    image, d_map, border = _load_image(args.image, args.index)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    window = _check_window(model, ckpt, args, image)
    names = list(ckpt.get("target_names", []))
    regions = d_map is not None and "D" in names and args.stride == 1 and not args.no_wrap
    band = args.band if args.band is not None else window // 2
    inner = inner_mask(d_map.shape, border) if regions and border is not None else None
    if regions:  # refuse regions too small for the window/band before the (possibly long) mapping
        check_regions(d_map, band, window, inner)
    model, method = _setup_eval(model, args)
    raw = parameter_map(model, image, window=window, stride=args.stride, wrap=not args.no_wrap,
                        naive=method == "naive", batch_size=args.batch_size,
                        input_scale=float(ckpt.get("input_scale", 1.0)),
                        input_shift=float(ckpt.get("input_shift", 0.0)))
    scale = np.asarray(ckpt.get("target_scale", [1.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    shift = np.asarray(ckpt.get("target_shift", [0.0] * raw.shape[0]), dtype=np.float64)[:, None, None]
    est = raw * scale + shift  # back to physical units
    names = names or [f"y{i}" for i in range(est.shape[0])]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "map.npy", est.astype(np.float32))
    summary: dict = {"targets": names, "shape": list(est.shape), "window": window, "stride": args.stride,
                     "wrap": not args.no_wrap, "method": method}
    truth = None
    if regions:
        truth = d_map
        summary["regions"] = region_analysis(est[names.index("D")], d_map, band=band, window=window, inner=inner)
    for i, name in enumerate(names):
        map_figure(image, est[i], str(out / f"map_{name}.png"), truth=truth if name == "D" else None, label=name,
                   analysis=summary.get("regions") if name == "D" else None)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'map.npy'} {tuple(est.shape)} and figures to {out}")
    if "regions" in summary and summary["regions"]["auc"] is not None:
        print(f"AUC inner vs outer (D): {summary['regions']['auc']:.3f}")
    return 0


def _open_map_store(path: str, args):
    """Read a map-campaign store: images [N, H, W], d_maps, D_in, seeds, border, J truth (one-line errors)."""
    import numpy as np

    from scalinglab.data.store import DatasetStore

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"map store {path} does not exist")
    if p.is_file():
        raise ValueError(f"{path} is a file, not a map-campaign store (scalinglab simulate tdgl --maps --out DIR)")
    store = DatasetStore.open(p)
    try:
        if "d_map" not in store.aux_names or "D_in" not in store.target_names:
            kind = (store.metadata.get("config") or {}).get("kind", "unknown kind")
            raise ValueError(f"{path} is not a map campaign ({kind}: no aux 'd_map' / target 'D_in'); make one with "
                             f"`scalinglab simulate tdgl --maps --out DIR`")
        if store.num_samples == 0:
            raise ValueError(f"map store {path} holds no patterns (all excluded or not yet simulated)")
        d_in = store.targets("D_in")[:, 0]
        seeds = store.aux("seed") if "seed" in store.aux_names else np.zeros(store.num_samples, dtype=int)
        keep = np.ones(store.num_samples, dtype=bool)
        if args.d_in:
            keep &= np.isin(np.round(d_in, 6), np.round(args.d_in, 6))
        if args.seeds:
            keep &= np.isin(seeds, args.seeds)
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise ValueError(f"no pattern of {path} matches --d-in/--seeds (it has D_in "
                             f"{sorted(set(np.round(d_in, 4).tolist()))}, seeds {sorted(set(seeds.tolist()))})")
        images = store.inputs(indices=idx).astype(np.float32)
        d_maps = store.aux("d_map", indices=idx)
        meta = store.metadata
        config = meta.get("config") or {}
        if "J" in config:
            j_true = float(config["J"])
        elif "J" in store.target_names:
            j_true = float(np.median(store.targets("J", indices=idx)))
        else:
            j_true = None
        border = _store_border(store)
    finally:
        store.close()
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    return images, d_maps, d_in[idx], seeds[idx], border, j_true


# Solver settings that may differ between training and map data without changing the physics of a pattern.
_SOLVER_FREE_KEYS = {"size", "record_every", "check_every", "divergence_threshold", "root_seed", "device",
                     "full_loop", "dtype"}


def training_data_mismatch(model_path: str, map_store: str) -> tuple[str | None, dict]:
    """Compare the simulation settings of the model's training store with those of the map store.

    The training store is read from ``study.json`` of the train-patches directory holding the checkpoint
    (``DIR/checkpoints/X.pt``). Returns (training store path or None when unknown, ``{key: [train, map]}`` of the
    solver settings that differ, e.g. the dipolar convention ``k0`` or the ramp time).
    """
    from scalinglab.data.store import DatasetStore

    study = Path(model_path).resolve().parent.parent / "study.json"
    try:
        data = json.loads(study.read_text()).get("data")
        with DatasetStore.open(data) as train, DatasetStore.open(map_store) as maps:
            a = (train.metadata.get("config") or {}).get("solver") or {}
            b = (maps.metadata.get("config") or {}).get("solver") or {}
    except (OSError, ValueError, TypeError, AttributeError):
        return None, {}
    diff = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b))
            if k not in _SOLVER_FREE_KEYS and a.get(k) != b.get(k)}
    return str(data), diff


def study_handler(args) -> int:
    import argparse
    import sys

    import numpy as np

    from scalinglab.analysis.param_map import check_regions, inner_mask, map_study, parameter_map
    from scalinglab.progress import progress_bar
    from scalinglab.report import map_study as figs

    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    if args.band is not None and args.band < 0:
        raise ValueError(f"--band must be >= 0, got {args.band}")
    model, ckpt = load_checkpoint(args.model)
    names = list(ckpt.get("target_names", []))
    if "D" not in names:
        raise ValueError(f"the model in {args.model} predicts {names or 'unnamed targets'}, not D: a map study needs "
                         f"a D regressor (train-patches with targets D, J)")
    images, d_maps, d_in, seeds, border, j_true = _open_map_store(args.store, args)
    shim = argparse.Namespace(window=None, stride=args.stride, model=args.model, image=args.store)
    window = _check_window(model, ckpt, shim, images[0])
    band = args.band if args.band is not None else window // 2
    inner = inner_mask(d_maps[0].shape, border) if border is not None else None
    check_regions(d_maps[0], band, window, inner)  # one line naming the sizes, before any mapping
    train_store, mismatch = training_data_mismatch(args.model, args.store)
    if mismatch:  # a different physics between training and map patterns biases every estimate: say so
        print(f"warning: the model was trained on {train_store}, simulated with other settings than {args.store}: "
              + ", ".join(f"{k} {v[0]!r} vs {v[1]!r}" for k, v in mismatch.items()), file=sys.stderr)
    model, method = _setup_eval(model, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h, w = images.shape[-2:]
    per_map = len(range(0, h, args.stride)) * len(range(0, w, args.stride))
    scale = np.asarray(ckpt.get("target_scale", [1.0] * len(names)), dtype=np.float64)[:, None, None]
    shift = np.asarray(ckpt.get("target_shift", [0.0] * len(names)), dtype=np.float64)[:, None, None]
    estimates = []
    with progress_bar(len(images) * per_map, f"map study ({method})", quiet=args.quiet, unit="windows") as bar:
        for k, image in enumerate(images):
            done_before = k * per_map
            bar.set_description(f"map study ({method}): pattern {k + 1}/{len(images)}, D_in = {d_in[k]:g}")
            raw = parameter_map(model, image, window=window, stride=args.stride, wrap=True,
                                naive=method == "naive", batch_size=args.batch_size,
                                input_scale=float(ckpt.get("input_scale", 1.0)),
                                input_shift=float(ckpt.get("input_shift", 0.0)),
                                progress=lambda n, _t, b=done_before: bar.set_completed(b + n))
            estimates.append((raw * scale + shift).astype(np.float32))  # physical units
            bar.set_completed((k + 1) * per_map)
    study = map_study(estimates, d_maps, d_in, names, band, stride=args.stride, window=window, inner=inner,
                      seeds=[int(s) for s in seeds], J_true=j_true)
    maps = np.stack(estimates)
    np.save(out / "maps.npy", maps)
    header = {"model": str(Path(args.model).resolve()), "map_store": str(Path(args.store).resolve()),
              "method": method, "window": window, "band": band, "stride": args.stride, "wrap": True,
              "map_size": [int(h), int(w)], "border": border, "num_patterns": len(images),
              "targets": names, "J_true": j_true, "checkpoint_model": ckpt.get("model"),
              "training_store": train_store, "solver_mismatch": mismatch}
    study["settings"] = header
    study["patterns"] = [{"index": k, "D_in": float(d_in[k]), "seed": int(seeds[k])} for k in range(len(images))]
    (out / "summary.json").write_text(json.dumps(study, indent=1))
    figs.write_tables(study, out)
    figures = ["patterns_maps.png", "region_boxplots.png", "roc.png"]
    # Fig. 10: one pattern per D_in (the first seed), in D_in order.
    first = {}
    for k in np.argsort(d_in, kind="stable"):
        first.setdefault(round(float(d_in[k]), 10), int(k))
    cols = list(first.values())
    figs.pattern_grid([images[k] for k in cols], [estimates[k] for k in cols], names, [d_in[k] for k in cols],
                      out / "patterns_maps.png", inner=inner, stride=args.stride)
    figs.region_boxplots(study, out / "region_boxplots.png")
    if any(r["roc"] is not None for r in study["rows"]):
        figs.roc_figure(study, out / "roc.png")
    else:
        figures.remove("roc.png")
    if "J" in names:
        figs.j_boxplots(study, out / "J_boxplots.png")
        figures.append("J_boxplots.png")
    figs.write_index(study, out, figures, header)
    print(figs.format_table(study))
    print(f"wrote {out / 'index.html'}, summary.json, summary.csv, regions.csv, maps.npy {tuple(maps.shape)} and "
          f"{', '.join(figures)} to {out}")
    return 0


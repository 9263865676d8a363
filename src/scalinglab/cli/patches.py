"""``scalinglab train-patches``: paper 4's patch regression (Experiment I) with Table II / Fig. 7-8 outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-patches", help="train patch regressors of (D, J) on TDGL patterns (paper 4 Experiment I)",
        description="Paper 4's recipe: random 64x64 crops with random 90-degree rotations from the images of "
                    "N_data training seeds, MAE loss, SGD with momentum, lr 1e-3 x 0.8 every 500 steps, early "
                    "stopping on patches of the seed-2 images, test on the centre crop of the seed-1 images "
                    "averaged over 4 rotations; repeated for every N_data. Writes checkpoints (loadable by "
                    "`scalinglab map`), records, metrics.json, the median-MAE table (Table II) and boxplots "
                    "(Figs. 7-8). Rerun with another --model and the same --out to add it to the table; "
                    "finished runs are skipped (resumable).",
    )
    p.add_argument("--data", required=True, metavar="STORE",
                   help="TDGL dataset store (scalinglab simulate tdgl) with targets D, J and aux seed")
    p.add_argument("--model", required=True, metavar="NAME",
                   help="model name: cnn_small (paper's 'mod'), regnet_x_16gf ('reg'), mobilenet_v3_large, "
                        "efficientnet_b3, mnasnet1_0, resnext50_32x4d, ...")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="model configuration entry, repeatable (e.g. padding=1 for cnn_small; default for "
                        "cnn_small: padding=0, which makes its parameter maps exact)")
    p.add_argument("--pretrained", metavar="NAME|FILE",
                   help="ImageNet weights of a torchvision backbone (paper's 'reg_pret'): a torchvision weights "
                        "name (IMAGENET1K_V2, DEFAULT, RegNet_X_16GF_Weights.IMAGENET1K_V2), read from the local "
                        "torch hub cache, or a state-dict file; never downloaded")
    p.add_argument("--label", help="name of this model variant in tables and figures (default NAME, or "
                                   "NAME_pret with --pretrained)")
    p.add_argument("--num-data", type=int, nargs="+", default=[1, 4], metavar="N",
                   help="numbers of training seeds N_data (default: 1 4, as in the paper)")
    p.add_argument("--repeats", type=int, default=20, metavar="R",
                   help="repeats per N_data, each with its own seed draw and initialization (default 20, paper)")
    p.add_argument("--max-steps", type=int, metavar="N", help="cap on SGD steps per run (default: none)")
    p.add_argument("--max-epochs", type=int, metavar="E", help="maximum epochs (default 100, paper)")
    p.add_argument("--steps-per-epoch", type=int, metavar="S",
                   help="SGD steps per epoch (default: patches covering the training images' area once, at least 50)")
    p.add_argument("--batch-size", type=int, metavar="B", help="patches per step (default 32)")
    p.add_argument("--lr", type=float, help="initial learning rate (default 1e-3, paper)")
    p.add_argument("--patch-size", type=int, metavar="P", help="patch side in pixels (default 64, paper)")
    p.add_argument("--periodic-crops", action="store_true",
                   help="wrap training/validation crops around the image edges (valid for periodic simulations such "
                        "as TDGL; gives random translations when the images are no larger than the patch, e.g. "
                        "the quick profile's 64x64)")
    p.add_argument("--seed", type=int, default=0, help="root seed of the study (default 0)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--out", default="patch_results", metavar="DIR",
                   help="output directory (default patch_results)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)


def write_outputs(records: list[dict], out: Path, config: dict) -> str:
    """metrics.json, median_mae.csv, mae_boxplot.png and pred_vs_true.png for all ``records``; returns the table."""
    from scalinglab.report.patches import format_table, mae_boxplot, median_mae_table, pred_vs_true_plot

    header, rows = median_mae_table(records)
    with open(out / "median_mae.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            writer.writerow([r[0]] + ["" if v is None else f"{v:.6g}" for v in r[1:-1]] + [r[-1]])
    (out / "metrics.json").write_text(json.dumps({
        "config": config, "median_mae": {"header": header, "rows": rows}, "records": records}, indent=1))
    mae_boxplot(records, out / "mae_boxplot.png")
    pred_vs_true_plot(records, out / "pred_vs_true.png")
    return format_table(header, rows)


def handler(args) -> int:
    import torch

    from scalinglab.cli.train import parse_assignments
    from scalinglab.training.patch_regression import ModelSpec, PatchConfig, PatternData, run_patch_study

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if any(n < 1 for n in args.num_data):
        raise ValueError(f"--num-data values must be >= 1, got {args.num_data}")
    if args.pretrained is not None:
        _check_pretrained(args.model, args.pretrained)
    overrides = {"max_steps": args.max_steps, "max_epochs": args.max_epochs, "steps_per_epoch": args.steps_per_epoch,
                 "batch_size": args.batch_size, "lr": args.lr, "patch_size": args.patch_size,
                 "device": args.device}
    cfg = PatchConfig.from_dict({k: v for k, v in overrides.items() if v is not None}
                                | ({"periodic_crops": True} if args.periodic_crops else {}))
    model_config = parse_assignments(args.set, "--set")
    from scalinglab.models import get_model, list_models

    if args.model not in list_models():
        get_model(args.model)  # the registry's one-line UnknownNameError, listing the known names
    data = PatternData.from_store(args.data, cfg.targets)
    spec = ModelSpec(args.model, model_config, args.pretrained, args.label)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Every run in DIR must share the data, recipe and root seed, or the table would compare unlike runs.
    study = {"data": str(Path(args.data).resolve()), "patch": cfg.to_dict(), "seed": args.seed}
    study_path = out / "study.json"
    if study_path.is_file():
        previous = json.loads(study_path.read_text())
        if previous != study:
            diff = sorted(k for k in study if previous.get(k) != study[k])
            raise ValueError(f"{out} holds a study with a different {', '.join(diff)}; use another --out")
    else:
        study_path.write_text(json.dumps(study, indent=1))
    records = run_patch_study(data, [spec], args.num_data, args.repeats, cfg, root_seed=args.seed, out_dir=out,
                              quiet=args.quiet)
    # Tables and figures cover every run in DIR, so studies of several models accumulate in one place.
    all_records = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
    order: dict[str, int] = {}
    for r in all_records:
        order.setdefault(r["label"], len(order))
    all_records.sort(key=lambda r: (order[r["label"]], r["num_data"], r["repeat"]))
    table = write_outputs(all_records, out, study)
    mine = [r for r in records if r["label"] == spec.display]
    print(f"trained {len(mine)} runs of {spec.display}; median test MAE over repeats (Table II):")
    print(table)
    print(f"wrote {out / 'median_mae.csv'}, {out / 'metrics.json'}, {out / 'mae_boxplot.png'}, "
          f"{out / 'pred_vs_true.png'} and checkpoints in {out / 'checkpoints'}")
    return 0


def _check_pretrained(model: str, pretrained: str) -> None:
    """Refuse a --pretrained that cannot load before any data is read (one line: which file or name is missing)."""
    import torchvision

    from scalinglab.models.backbones import resolve_pretrained

    try:
        torchvision.models.get_model_weights(model)
    except ValueError:
        raise ValueError(f"--pretrained: {model} is not a torchvision backbone with ImageNet weights") from None
    resolve_pretrained(model, pretrained)  # FileNotFoundError / ValueError naming the file, cache path or name

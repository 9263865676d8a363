"""``scalinglab train``: train R realizations of one model on a dataset store and report test metrics."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

_METRIC_COLUMNS = ("mse", "mae", "mape", "r2")


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float, bool (true/false), a JSON list/object, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.strip().startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"could not parse {text!r} as JSON") from None
    return text


def parse_assignments(items: list[str] | None, option: str) -> dict[str, Any]:
    """``["width=16", "activation=relu"]`` -> ``{"width": 16, "activation": "relu"}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects key=value, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def summary_rows(records: list[dict[str, Any]], section: str = "test") -> dict[str, dict[str, float]]:
    """Arithmetic mean, geometric mean (NaN unless all values > 0) and median of each metric."""
    out: dict[str, dict[str, float]] = {"mean": {}, "geometric_mean": {}, "median": {}}
    for m in _METRIC_COLUMNS:
        vals = np.array([r[section][m] for r in records], dtype=np.float64)
        out["mean"][m] = float(np.mean(vals))
        out["geometric_mean"][m] = float(np.exp(np.mean(np.log(vals)))) if np.all(vals > 0) else math.nan
        out["median"][m] = float(np.median(vals))
    return out


def _fmt(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _print_table(records: list[dict[str, Any]], summary: dict[str, dict[str, float]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("r", justify="right")
    for m in _METRIC_COLUMNS:
        table.add_column(m, justify="right")
    table.add_column("mse (std.)", justify="right")
    table.add_column("best epoch", justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("status")
    for r in records:
        table.add_row(str(r["realization"]), *(_fmt(r["test"][m]) for m in _METRIC_COLUMNS),
                      _fmt(r["test_normalized"]["mse"]), str(r["best_epoch"]), str(r["epochs_run"]),
                      str(r.get("status", "")))
    norm = summary_rows(records, "test_normalized")
    labels = {"mean": "arith. mean", "geometric_mean": "geom. mean", "median": "median"}
    for key, label in labels.items():
        table.add_row(label, *(_fmt(summary[key][m]) for m in _METRIC_COLUMNS), _fmt(norm[key]["mse"]), "", "", "",
                      style="bold")
    console = Console()
    console.width = max(console.width, 120)  # keep rows on one line when output is not a terminal
    console.print(table)


def _remove_earlier_run(out: Path) -> None:
    """Delete what an earlier ``train`` wrote in ``out`` (so that no stale r<k>.pt mixes with the new run)."""
    for pattern in ("metrics.json", "config.json", "r*.pt", "predictions_r*.npz"):
        for f in out.glob(pattern):
            f.unlink()


def handler(args: argparse.Namespace) -> int:
    from scalinglab.seeding import derive_seed
    from scalinglab.training.config import TrainConfig
    from scalinglab.training.experiment import SAVE_KINDS, ExperimentSpec, run_experiment

    if args.realizations < 1:
        raise ValueError(f"--realizations must be >= 1, got {args.realizations}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"dataset store not found: {args.data}")
    if args.test_size <= 0 or (args.test_size >= 1 and args.test_size != int(args.test_size)):
        raise ValueError(
            f"--test-size {args.test_size:g}: give a fraction in (0, 1) or a whole number of test samples"
        )
    from scalinglab.output_dir import ensure_writable, refuse_non_empty
    from scalinglab.training.device import check_device

    check_device(args.device)
    bad = [k for k in args.save.split(",") if k.strip() not in (*SAVE_KINDS, "none", "")]
    if bad:
        raise ValueError(f"--save: unknown kind(s) {', '.join(bad)} (choose from models, predictions, none)")
    train_cfg = parse_assignments(args.train_set, "--train-set")
    for key, value in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                       ("patience", args.patience), ("min_rel_improvement", args.min_rel_improvement)):
        if value is not None:
            train_cfg[key] = value
    if args.patience is not None and args.patience <= 0:
        train_cfg["patience"] = None  # 0 disables early stopping
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    save = tuple(k.strip() for k in args.save.split(",") if k.strip() and k.strip() != "none")
    generate = args.mode == "generate"
    spec = ExperimentSpec(
        data=str(args.data),
        model=args.model,
        model_config=parse_assignments(args.set, "--set"),
        target=targets if generate or len(targets) > 1 else targets[0],
        num_train=args.num_train,
        seeds=[derive_seed(args.seed, "realization", r) for r in range(args.realizations)],
        test_size=args.test_size if args.test_size < 1 else int(args.test_size),
        split_seed=args.split_seed,
        train=TrainConfig.from_dict(train_cfg),
        input_norm=args.input_norm,
        device=args.device,
        mode=args.mode,
        save=save,
        save_dir=str(args.out) if save else None,
    )
    # checked before training, so that hours of work never end in a refused or failed write
    refuse_non_empty(args.out, overwrite=args.overwrite, what="--out")
    ensure_writable(args.out, "--out")
    if args.overwrite:
        _remove_earlier_run(Path(args.out))
    records = run_experiment(spec, progress=True)
    summary = summary_rows(records, "test")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"spec": spec.to_dict(), "root_seed": args.seed, "realizations": args.realizations,
              "command": "scalinglab train"}
    _write_json(out / "config.json", config)
    _write_json(out / "metrics.json", {
        "records": records,
        "summary": {"test": summary, "test_normalized": summary_rows(records, "test_normalized")},
    })
    _print_table(records, summary, f"{args.model} on {', '.join(targets)}, N_D = {args.num_train}: test metrics")
    kept = ""
    if save:
        files = sorted({f for r in records for f in r.get("artifacts", {}).values()})
        size = sum((out / f).stat().st_size for f in files) / 1e6
        kept = f"; kept {', '.join(save)} ({len(files)} files, {size:.1f} MB)"
    flagged = [r for r in records if r.get("status") not in ("ok", None)]
    if flagged:
        counts: dict[str, int] = {}
        for r in flagged:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        what = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        print(f"WARNING: {len(flagged)} of {len(records)} realizations flagged ({what}): see 'status' in "
              "metrics.json; diverged and not_better_than_mean ones are left out of scaling fits")
    print(f"wrote {out / 'metrics.json'} and {out / 'config.json'}{kept}")
    return 0


def _write_json(path: Path, obj: Any) -> None:
    """Write atomically (temp file + rename): a killed run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, path)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train R realizations of a model on a dataset store and report test metrics",
        description=(
            "Train R independently initialized realizations of one model on a dataset store (all at once "
            "where the model can be stacked), each on its own training subset of N_D samples (7/8 train, "
            "1/8 validation), and evaluate them on the fixed test set. Prints a table of per-realization "
            "test metrics with their arithmetic mean, geometric mean and median; writes metrics.json and "
            "config.json to --out."
        ),
    )
    p.add_argument("--data", required=True, metavar="PATH", help="dataset store (Zarr directory)")
    p.add_argument("--model", required=True, metavar="NAME", help="model name (see scalinglab.models)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="model configuration entry, repeatable (values parsed as int/float/bool/str/JSON)")
    p.add_argument("--target", required=True, metavar="NAME[,NAME]",
                   help="target parameter(s) to regress; several names train one multi-output network")
    p.add_argument("--num-train", required=True, type=int, metavar="N",
                   help="N_D: samples drawn per realization (training + validation)")
    p.add_argument("--realizations", type=int, default=1, metavar="R",
                   help="independent realizations (default 1; paper 1 used about 20)")
    p.add_argument("--epochs", type=int, metavar="E", help="maximum epochs (default 200, paper 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="root seed; realization r uses derive_seed(S, 'realization', r) (default 0)")
    p.add_argument("--lr", type=float, help="initial learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, help="minibatch size (default 256)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs, 0 = off (default 100)")
    p.add_argument("--min-rel-improvement", type=float, metavar="D",
                   help="relative-improvement stopping: an epoch counts as an improvement only when its validation "
                        "loss is below (1 - D) x that of the last epoch that counted; stop after --patience epochs "
                        "without one (default off)")
    p.add_argument("--train-set", action="append", metavar="KEY=VALUE",
                   help="any other training configuration entry (e.g. optimizer=adamw, schedule=cosine, "
                        "loss=gaussian_nll, grad_clip=1.0), repeatable")
    p.add_argument("--test-size", type=float, default=0.1,
                   help="test set: a fraction in (0, 1) or a sample count (default 0.1)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the fixed test set (default 0)")
    p.add_argument("--input-norm", choices=("per_feature", "global", "none"), default="per_feature",
                   help="input standardization fitted on each training subset (default per_feature)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--mode", choices=("regress", "generate"), default="regress",
                   help="regress: images -> --target parameters (default); generate: the --target parameters -> "
                        "images (paper 2's generator, e.g. --model generator_fcn --target theta,J,D "
                        "--train-set loss=mae)")
    p.add_argument("--save", default="models,predictions", metavar="KINDS",
                   help="what to keep in --out: models (r<k>.pt checkpoints, 4 bytes per parameter each), "
                        "predictions (predictions_r<k>.npz, per-sample test predictions with indices), "
                        "both (default) or none")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory for metrics.json and config.json (must be empty or new)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the metrics, config, checkpoints and predictions of an earlier run in --out")
    p.set_defaults(func=handler)

"""``scalinglab mup-check``: test loss vs learning rate of MLP-I at several widths (muP transfer check).

Under the maximal update parametrisation the optimal base learning rate does not move with the width, so a
rate tuned on a narrow network transfers to wide ones. This command trains ``mlp_invariants`` (muP, Adam,
cosine schedule) at each width over a learning-rate grid on one dataset store, reports the test loss
(geometric mean over seeds, standardized target units) and the best rate per width, and draws Fig. 1 (left)
of paper 3.

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eqs. 17-21 and Fig. 1 (left).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise ValueError(f"{what} must be positive numbers, got {text!r}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mup-check", help="test loss vs learning rate of mlp_invariants at several widths (muP transfer)",
        description="Train mlp_invariants with muP at each width over a learning-rate grid on one dataset "
        "store and report the test loss (standardized, optionally log-transformed target units) and the best "
        "learning rate per width. Under muP the optimum should not depend on the width (paper 3, Fig. 1 left).",
    )
    p.add_argument("--data", required=True, help="dataset store (e.g. from 'scalinglab simulate amplitudes')")
    p.add_argument("--widths", default="32,64,128", help="comma-separated hidden widths (default 32,64,128)")
    p.add_argument("--lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2,3e-2",
                   help="comma-separated base learning rates (default 1e-4 ... 3e-2)")
    p.add_argument("--target", default="amp2", help="target name in the store (default amp2)")
    p.add_argument("--num-layers", type=int, default=3, help="hidden layers (default 3)")
    p.add_argument("--base-width", type=int, default=None,
                   help="muP base width (multiplier 1 there; default: the smallest width)")
    p.add_argument("--num-train", type=int, default=2048, help="training samples N_D (default 2048)")
    p.add_argument("--epochs", type=int, default=40, help="epochs per run (default 40)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--seeds", type=int, default=2, help="realizations per (width, lr) point (default 2)")
    p.add_argument("--test-size", type=int, default=2000, help="fixed test-set size (default 2000)")
    p.add_argument("--no-log", action="store_true", help="learn the target as stored, not log(target)")
    p.add_argument("--out", default=None, help="directory for mup_check.json and mup_check.png")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def optimum_shift(result: dict[str, Any]) -> int:
    """Largest distance, in grid steps, between the best learning rates of any two widths."""
    idx = [result["lrs"].index(b) for b in result["best_lr"].values()]
    return max(idx) - min(idx)


def mup_check(data: str, widths: list[int], lrs: list[float], *, target: str = "amp2", num_layers: int = 3,
              base_width: int | None = None, num_train: int = 2048, epochs: int = 40, batch_size: int = 128,
              num_seeds: int = 2, test_size: int = 2000, log_target: bool = True,
              progress: bool = True) -> dict[str, Any]:
    """Test loss of mlp_invariants (muP) for every (width, learning rate).

    Args:
        data: dataset store; momenta inputs [N, 4n] when its metadata lists ``particles`` (amplitudes), else
            generic features [N, F] (standardized per feature).
        widths: hidden widths n.
        lrs: base learning rates eta (hidden/output weights train at eta * base_width / n, Eq. 21).
        target: target name.
        num_layers, base_width, num_train, epochs, batch_size, num_seeds, test_size: training settings.
        log_target: learn log(target) (paper 3) instead of the raw target.
        progress: show a progress bar.

    Returns:
        {"widths", "lrs", "loss": [len(widths)][len(lrs)] geometric-mean test MSE (standardized units; NaN for a
        diverged run), "best_lr": {width: lr}, "base_width", ...settings}.
    """
    from scalinglab.data.store import DatasetStore
    from scalinglab.progress import progress_bar
    from scalinglab.seeding import derive_seed
    from scalinglab.training.config import TrainConfig
    from scalinglab.training.experiment import ExperimentSpec, run_experiment

    if len(widths) < 1 or len(lrs) < 2:
        raise ValueError("mup-check needs at least one width and two learning rates")
    store = DatasetStore.open(data)
    try:
        particles = store.metadata.get("particles")
    finally:
        store.close()
    base = int(base_width or min(widths))
    model_cfg: dict[str, Any] = {"num_layers": num_layers, "mup": True, "base_width": base}
    if particles:
        model_cfg["num_particles"] = len(particles)
    seeds = [derive_seed(0, "mup-check", s) for s in range(num_seeds)]
    losses = np.full((len(widths), len(lrs)), np.nan)
    with progress_bar(len(widths) * len(lrs), "mup-check", quiet=not progress) as bar:
        for i, w in enumerate(widths):
            for j, lr in enumerate(lrs):
                spec = ExperimentSpec(
                    data=data, model="mlp_invariants", model_config={**model_cfg, "width": int(w)},
                    target=target, num_train=num_train, seeds=seeds, test_size=test_size,
                    input_norm="none" if particles else "per_feature",
                    target_transform="log" if log_target else "none",
                    train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule="cosine",
                                      patience=None),
                )
                vals = np.array([r["test_normalized"]["mse"] for r in run_experiment(spec, progress=False)])
                if np.all(np.isfinite(vals)) and np.all(vals > 0):
                    losses[i, j] = float(np.exp(np.mean(np.log(vals))))
                bar.advance(1)
    best = {}
    for i, w in enumerate(widths):
        if np.all(np.isnan(losses[i])):
            raise ValueError(f"every run at width {w} diverged: lower the learning rates")
        best[str(w)] = lrs[int(np.nanargmin(losses[i]))]
    return {"data": data, "target": target, "widths": [int(w) for w in widths], "lrs": list(lrs),
            "loss": [[None if math.isnan(v) else float(v) for v in row] for row in losses], "best_lr": best,
            "base_width": base, "num_layers": num_layers, "num_train": num_train, "epochs": epochs,
            "num_seeds": num_seeds, "log_target": log_target}


def mup_figure(result: dict[str, Any], out_path: str | Path) -> Path:
    """Test loss vs base learning rate, one line per width, best rate marked (paper 3 Fig. 1 left)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, len(result["widths"])))
    for color, w, row in zip(colors, result["widths"], result["loss"]):
        y = np.array([np.nan if v is None else v for v in row])
        ax.plot(result["lrs"], y, "o-", color=color, label=f"width {w}")
        b = result["best_lr"][str(w)]
        ax.plot([b], [y[result["lrs"].index(b)]], "*", color=color, ms=12)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"base learning rate (muP, base width {result['base_width']})")
    ax.set_ylabel("test MSE (standardized" + (", log target)" if result["log_target"] else ")"))
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, ls=":")
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def _run(args) -> int:
    widths = [int(w) for w in _floats(args.widths, "--widths")]
    lrs = _floats(args.lrs, "--lrs")
    for name in ("num_layers", "num_train", "epochs", "batch_size", "seeds", "test_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"no dataset store at {args.data}")
    result = mup_check(args.data, widths, lrs, target=args.target, num_layers=args.num_layers,
                       base_width=args.base_width, num_train=args.num_train, epochs=args.epochs,
                       batch_size=args.batch_size, num_seeds=args.seeds, test_size=args.test_size,
                       log_target=not args.no_log)
    result["optimum_shift_steps"] = optimum_shift(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "mup_check.json").write_text(json.dumps(result, indent=2))
        result["figure"] = str(mup_figure(result, out / "mup_check.png"))
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="muP check: test MSE (standardized) vs base learning rate")
    table.add_column("width")
    for lr in lrs:
        table.add_column(f"{lr:g}", justify="right")
    table.add_column("best lr", justify="right")
    for w, row in zip(result["widths"], result["loss"]):
        table.add_row(str(w), *["diverged" if v is None else f"{v:.3g}" for v in row],
                      f"{result['best_lr'][str(w)]:g}")
    Console().print(table)
    print(f"optimum moves by {result['optimum_shift_steps']} grid step(s) across widths")
    return 0

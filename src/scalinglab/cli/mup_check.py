"""``scalinglab mup-check``: test loss vs learning rate of MLP-I at several widths (muP transfer check).

Under the maximal update parametrisation the optimal base learning rate does not move with the width, so a
rate tuned on a narrow network transfers to wide ones. This command is a front end over the sweep engine: it
writes a sweep spec with ``mlp_invariants`` (muP, Adam, cosine schedule, no early stopping) on a size axis
``width`` and the learning-rate grid as its ``[compute]`` axis (``key = "lr"``), runs it with
``scalinglab.sweeps.runner.run_sweep`` into the results directory (``spec.toml``, ``records/`` ...: a sweep
directory that ``scalinglab sweep status`` and ``scalinglab report`` read), and computes from the records the
test loss (geometric mean over seeds, standardized target units) and the best rate per width
(``scalinglab.report.mup``), and draws Fig. 1 (left) of paper 3.

Rerunning the same command on the same ``--out`` resumes (finished points are not retrained); other settings
in a directory that holds finished records are refused.

Reference: paper 3 (scaling-laws-amplitude-surrogates.txt) Sec. 3.2, Eqs. 17-21 and Fig. 1 (left).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from scalinglab.report.mup import mup_figure, mup_table, optimum_shift

__all__ = ["mup_check", "mup_spec_text", "optimum_shift", "mup_figure"]

FAMILY = "mlp_invariants"


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
        "learning rate per width. Under muP the optimum should not depend on the width (paper 3, Fig. 1 left). "
        "Runs as a sweep (width = size axis, lr = [compute] axis) into --out: rerunning the same command "
        "resumes; 'scalinglab sweep status' and 'scalinglab report' read the directory.",
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
    p.add_argument("--out", default=None,
                   help="results directory: the sweep (spec.toml, records/), mup_check.json and mup_check.png; "
                   "rerun with the same --out to resume. Without it the sweep runs in a temporary directory "
                   "that is removed at the end (the result is only printed; nothing to resume)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: in-process (default); ray: Ray tasks on a local instance or --address")
    p.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a locally started Ray instance")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _toml(value: Any) -> str:
    """A TOML literal of a bool, number, string, list or flat table (the few kinds the spec holds)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: the lr read back is the same float
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def mup_spec_text(data: str, widths: list[int], lrs: list[float], *, target: str, model_config: dict[str, Any],
                  input_norm: str, num_train: int, epochs: int, batch_size: int, num_seeds: int, test_size: int,
                  log_target: bool) -> str:
    """The sweep spec (TOML) of a mup-check: widths on the size axis, the learning rates on the compute axis."""
    lines = [
        "# written by `scalinglab mup-check` (paper 3 Fig. 1 left); rerun the same command, or",
        "# `scalinglab sweep spec.toml --out <this directory> --resume`, to resume",
        "[sweep]",
        'name = "mup-check"',
        f"dataset = {_toml(str(Path(data).resolve()))}",
        f"targets = {_toml([target])}",
        f"realizations = {num_seeds}",
        "root_seed = 0",
        f"test_size = {int(test_size)}",
        "split_seed = 0",
        f"input_norm = {_toml(input_norm)}",
        f"target_transform = {_toml('log' if log_target else 'none')}",
        f"data_sizes = {_toml([int(num_train)])}",
        "",
        "[[models]]",
        f"family = {_toml(FAMILY)}",
        'model = "mlp_invariants"',
        f"config = {_toml(model_config)}",
        'size_key = "width"',
        f"sizes = {_toml([int(w) for w in widths])}",
        "",
        "[train]",
        f"epochs = {int(epochs)}",
        f"batch_size = {int(batch_size)}",
        'schedule = "cosine"',
        # TOML has no None: a patience beyond the epoch budget never fires (the best-validation weights are
        # restored either way, so training is that of patience = None)
        f"patience = {int(epochs) + 1}                 # longer than epochs: no early stopping",
        "",
        "[compute]                        # the learning-rate grid (base rate; muP scales it per layer, Eq. 21)",
        'key = "lr"',
        f"values = {_toml([float(v) for v in lrs])}",
        "",
    ]
    return "\n".join(lines)


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A parsed TOML document as ``{"sweep.dataset": ..., "models[0].sizes": ...}`` (leaves: scalars, lists)."""
    if isinstance(doc, dict):
        return {k: v for key, value in doc.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(doc, list) and doc and all(isinstance(v, dict) for v in doc):
        return {k: v for i, value in enumerate(doc) for k, v in _flat(value, f"{prefix[:-1]}[{i}].").items()}
    return {prefix[:-1]: doc}


def _refuse_other_grid(out: Path, text: str) -> None:
    """A results directory with finished records of other mup-check settings: one-line ValueError."""
    old_path = out / "spec.toml"
    if not old_path.is_file() or not any((out / "records").glob("[!.]*.json")):
        return  # fresh, or a start that failed before any point finished: the new spec replaces it
    try:
        old = tomllib.loads(old_path.read_text())
    except tomllib.TOMLDecodeError:
        old = {}
    new = tomllib.loads(text)
    old_flat, new_flat = _flat(old), _flat(new)
    differing = sorted(k for k in set(old_flat) | set(new_flat) if old_flat.get(k) != new_flat.get(k))
    if not differing:
        return
    raise ValueError(f"results directory {out} holds a sweep with other settings (differs in: "
                     f"{', '.join(differing[:6])}); rerun with the same grid and settings to resume, or use "
                     "another --out")


def mup_check(data: str, widths: list[int], lrs: list[float], *, target: str = "amp2", num_layers: int = 3,
              base_width: int | None = None, num_train: int = 2048, epochs: int = 40, batch_size: int = 128,
              num_seeds: int = 2, test_size: int = 2000, log_target: bool = True, progress: bool = True,
              out: str | Path | None = None, executor: str = "local", address: str | None = None,
              num_cpus: int | None = None) -> dict[str, Any]:
    """Test loss of mlp_invariants (muP) for every (width, learning rate), trained as a sweep.

    Args:
        data: dataset store; momenta inputs [N, 4n] when its metadata lists ``particles`` (amplitudes), else
            generic features [N, F] (standardized per feature).
        widths: hidden widths n (the sweep's size axis ``width``).
        lrs: base learning rates eta (the ``[compute]`` axis ``lr``; hidden/output weights train at
            eta * base_width / n, Eq. 21).
        target: target name.
        num_layers, base_width, num_train, epochs, batch_size, num_seeds, test_size: training settings.
        log_target: learn log(target) (paper 3) instead of the raw target.
        progress: show the sweep's progress bar.
        out: results directory of the sweep (resumed when it holds this mup-check; refused when it holds
            other settings); None: a temporary directory, removed before returning.
        executor, address, num_cpus: the sweep executor ("local" or "ray") and its Ray options.

    Returns:
        {"widths", "lrs", "loss": [len(widths)][len(lrs)] geometric-mean test MSE (standardized units; None
        for a diverged run), "best_lr": {width: lr}, "base_width", ...settings, "results_dir" (None without
        ``out``)}.
    """
    from scalinglab.data.store import DatasetStore
    from scalinglab.sweeps.results import ResultsStore
    from scalinglab.sweeps.runner import run_sweep

    if len(widths) < 1 or len(lrs) < 2:
        raise ValueError("mup-check needs at least one width and two learning rates")
    if len(set(widths)) != len(widths) or len(set(lrs)) != len(lrs):
        raise ValueError("mup-check: a width or learning rate is listed twice")
    store = DatasetStore.open(data)
    try:
        particles = store.metadata.get("particles")
    finally:
        store.close()
    base = int(base_width or min(widths))
    model_cfg: dict[str, Any] = {"num_layers": num_layers, "mup": True, "base_width": base}
    if particles:
        model_cfg["num_particles"] = len(particles)
    text = mup_spec_text(data, widths, lrs, target=target, model_config=model_cfg,
                         input_norm="none" if particles else "per_feature", num_train=num_train, epochs=epochs,
                         batch_size=batch_size, num_seeds=num_seeds, test_size=test_size, log_target=log_target)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="scalinglab-mup-check-"))
    try:
        _refuse_other_grid(root, text)
        with tempfile.TemporaryDirectory(prefix="mup-spec-") as tmp:
            spec_path = Path(tmp) / "spec.toml"  # run_sweep copies it to <root>/spec.toml
            spec_path.write_text(text)
            run_sweep(spec_path, root, executor=executor, address=address, resume=True, quiet=not progress,
                      num_cpus=num_cpus)
        records = [r for r in ResultsStore(root).records() if r.get("family") == FAMILY and r["target"] == target]
    finally:
        if out is None:
            shutil.rmtree(root, ignore_errors=True)
    result = mup_table(records, widths, lrs)
    for w, best in result["best_lr"].items():
        if best is None:
            raise ValueError(f"every run at width {w} diverged: lower the learning rates")
    return {"data": data, "target": target, **result, "base_width": base, "num_layers": num_layers,
            "num_train": num_train, "epochs": epochs, "num_seeds": num_seeds, "log_target": log_target,
            "results_dir": None if out is None else str(root)}


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
                       log_target=not args.no_log, out=args.out, executor=args.executor,
                       address=args.address, num_cpus=args.num_cpus)
    result["optimum_shift_steps"] = optimum_shift(result)
    if args.out:
        out = Path(args.out)
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
    for w, row in zip(result["widths"], result["loss"], strict=True):
        table.add_row(str(w), *["diverged" if v is None else f"{v:.3g}" for v in row],
                      f"{result['best_lr'][str(w)]:g}")
    Console().print(table)
    print(f"optimum moves by {result['optimum_shift_steps']} grid step(s) across widths")
    if args.out:
        print(f"results: {args.out} (sweep records, spec.toml, mup_check.json, mup_check.png)")
    return 0

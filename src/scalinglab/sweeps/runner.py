"""The sweep runner: expand a spec into tasks, skip finished ones, execute the rest, store records durably.

Reference: paper 1 Methods B (data-size and model-size sweeps with ~20 realizations per point).
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scalinglab import __version__
from scalinglab.data.splits import make_split
from scalinglab.data.store import DatasetStore
from scalinglab.progress import progress_bar
from scalinglab.sweeps.executors import get_executor
from scalinglab.sweeps.results import ResultsStore, atomic_write_json
from scalinglab.sweeps.spec import SpecError, SweepSpec, Task, expand_tasks, load_spec


def dataset_fingerprint(store: DatasetStore) -> dict[str, Any]:
    """What identifies the data a sweep trained on (a regenerated dataset is a different sweep)."""
    meta = store.metadata
    return {
        "num_samples": store.num_samples,
        "input_shape": list(store.input_shape),
        "target_names": list(store.target_names),
        "created_at": meta.get("created_at"),
        "producer": meta.get("producer"),
    }


def _diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        out: list[str] = []
        for k in keys:
            out += _diff_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


# Spec keys added after the first release, with the defaults that keep older results directories resumable.
_LATER_SPEC_DEFAULTS = {"mode": "regress", "save": []}
_LATER_MODEL_DEFAULTS = {"train": {}}


def _drop_new_defaults(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Remove keys that an older stored spec lacks when they hold their default (in place)."""
    for key, default in _LATER_SPEC_DEFAULTS.items():
        if key not in old and new.get(key) == default:
            new.pop(key, None)
    old_models = old.get("models") or []
    for i, m in enumerate(new.get("models") or []):
        om = old_models[i] if i < len(old_models) else {}
        for key, default in _LATER_MODEL_DEFAULTS.items():
            if key not in om and m.get(key) == default:
                m.pop(key, None)


def plan_sweep(spec: SweepSpec, out: str | Path | None = None) -> tuple[list[Task], dict[str, Any], dict[str, Any]]:
    """Open the dataset, check the targets, and expand the task list.

    Returns:
        (tasks, common settings for workers, resolved spec document).
    """
    store = DatasetStore.open(spec.dataset)
    missing = [t for t in spec.targets if t not in store.target_names]
    if missing:
        raise SpecError(
            f"dataset {spec.dataset} has no target(s) {', '.join(missing)} (has: {', '.join(store.target_names)})"
        )
    split = make_split(store.num_samples, spec.test_size, spec.split_seed)
    pool_size = len(split.pool_indices)
    tasks = expand_tasks(spec, pool_size)
    common = {
        "dataset": spec.dataset,
        "test_size": spec.test_size,
        "split_seed": spec.split_seed,
        "input_norm": spec.input_norm,
        "device": spec.device,
    }
    if spec.save:
        if out is None:
            raise SpecError("a sweep that saves artifacts needs its results directory")
        common["save"] = list(spec.save)
        common["results_dir"] = str(Path(out).resolve())
    resolved = {
        "spec": spec.to_dict(),
        "dataset": dataset_fingerprint(store),
        "pool_size": pool_size,
        "test_size": len(split.test_indices),
        "data_sizes": spec.resolved_data_sizes(pool_size),
        "num_tasks": len(tasks),
        "target_units": dict(zip(store.target_names, store.target_units, strict=True)),
    }
    return tasks, common, resolved


def _environment(executor: str) -> dict[str, Any]:
    import numpy as np
    import torch

    return {
        "scalinglab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "executor": executor,
    }


def run_sweep(
    spec: SweepSpec | str | Path,
    out: str | Path,
    *,
    executor: str = "local",
    address: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    max_tasks: int | None = None,
    num_cpus: int | None = None,
) -> ResultsStore:
    """Run (or resume) a sweep into the results directory ``out``.

    Args:
        spec: a ``SweepSpec`` or the path of a sweep TOML file.
        out: results directory (created).
        executor: "local" (in-process, default) or "ray".
        address: Ray cluster address (``ray`` executor; default starts a local instance).
        resume: continue a results directory made by the same spec; finished tasks are skipped.
        quiet: no progress bar.
        max_tasks: stop after this many newly finished tasks (for time-boxed runs; resume continues).
        num_cpus: CPUs for a locally started Ray instance.

    Returns:
        The results store.
    """
    spec_path = None
    if not isinstance(spec, SweepSpec):
        spec_path = Path(spec)
        spec = load_spec(spec_path)
    tasks, common, resolved = plan_sweep(spec, out)
    results = ResultsStore(out)
    if results.exists():
        if not resume:
            raise FileExistsError(
                f"results directory {out} already holds a sweep: pass --resume to continue it, or choose another --out"
            )
        old = results.resolved_spec()
        keys = ("spec", "dataset")
        new = json.loads(json.dumps({k: resolved[k] for k in keys}, default=str))  # tuples -> lists, as stored
        _drop_new_defaults(new["spec"], old.get("spec") or {})
        differing = _diff_keys({k: old.get(k) for k in keys}, new)
        if differing:
            raise SpecError(
                f"results directory {out} was made by a different spec or dataset (differs in: "
                f"{', '.join(differing[:6])}); refusing to mix results: use another --out"
            )
    else:
        Path(out).mkdir(parents=True, exist_ok=True)
        if spec_path is not None:
            shutil.copyfile(spec_path, Path(out) / "spec.toml")
        atomic_write_json(Path(out) / "resolved_spec.json", resolved)

    done = results.finished_task_ids()
    pending = [t for t in tasks if t.task_id not in done]
    num_finished = len(tasks) - len(pending)
    if max_tasks is not None:
        pending = pending[:max_tasks]
    env = results.environment() or {"runs": []}
    env.update(_environment(executor))
    run_info = {"started": datetime.now(UTC).isoformat(), "tasks_pending": len(pending),
                "tasks_skipped": len(done), "executor": executor}
    t0 = time.perf_counter()
    num_real = spec.realizations
    units = resolved["target_units"]
    with progress_bar(len(tasks) * num_real, f"sweep {spec.name}", quiet=quiet,
                      completed=num_finished * num_real) as bar:
        runner = get_executor(executor, address=address, num_cpus=num_cpus)
        try:
            for task, records in runner.run(pending, common):
                for rec in records:
                    rec["target_unit"] = units.get(task.target, "")
                results.write_task(task.task_id, asdict(task), records)
                bar.advance(num_real)
                bar.set_description(f"{task.family} {task.size_value} N_D={task.num_train} {task.target}")
        finally:
            runner.close()
    run_info["wall_time_s"] = time.perf_counter() - t0
    env["runs"] = [*env.get("runs", []), run_info]
    atomic_write_json(Path(out) / "environment.json", env)
    return results


def summary_rows(results: ResultsStore, loss_key: str = "mse") -> list[dict[str, Any]]:
    """Per design point (model, N_D, target): number of realizations and AM / GM / median of the test loss."""
    import numpy as np

    groups: dict[tuple, list[float]] = {}
    for r in results.records():
        key = (r["model_label"], r["target"], r["num_train"], str(r.get("compute_value")))
        groups.setdefault(key, []).append(float(r["test_normalized"][loss_key]))
    rows = []
    for (label, target, n, cv), losses in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        arr = np.asarray(losses)
        rows.append({
            "model": label, "target": target, "num_train": n, "compute": None if cv == "None" else cv,
            "realizations": len(arr), "arith_mean": float(arr.mean()),
            "geo_mean": float(np.exp(np.log(np.maximum(arr, 1e-300)).mean())), "median": float(np.median(arr)),
        })
    return rows


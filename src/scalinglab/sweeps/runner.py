"""The sweep runner: expand a spec into tasks, skip finished ones, execute the rest, store records durably.

Reference: paper 1 Methods B (data-size and model-size sweeps with ~20 realizations per point).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scalinglab import __version__
from scalinglab.data.splits import make_split
from scalinglab.data.store import DatasetStore
from scalinglab.output_dir import ensure_writable
from scalinglab.progress import progress_bar
from scalinglab.sweeps.executors import get_executor
from scalinglab.sweeps.results import ResultsStore, atomic_write_json
from scalinglab.sweeps.spec import SpecError, SweepSpec, Task, expand_tasks, load_spec


def artifact_settings(spec: SweepSpec, out: str | os.PathLike | None) -> dict[str, Any]:
    """The ``common`` entries of a sweep that keeps artifacts (``save``, absolute ``results_dir``); {} if none."""
    if not spec.save:
        return {}
    if out is None:
        raise SpecError("a sweep that saves artifacts needs its results directory")
    return {"save": list(spec.save), "results_dir": str(Path(out).resolve())}


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
_LATER_MODEL_DEFAULTS = {"train": {}, "pretrained": None}


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
    if spec.mode == "patches":
        from scalinglab.sweeps.patches import plan_patch_sweep

        return plan_patch_sweep(spec, out)
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
    common.update(artifact_settings(spec, out))
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


def check_tasks(spec: SweepSpec, tasks: list[Task], common: dict[str, Any], executor: str = "local") -> dict[str, int]:
    """Resolve and check every task before any training: fail fast, with the task named.

    Checks the device (on the driver, for the local executor: a Ray cluster may have GPUs the driver lacks),
    every training configuration, and that every model configuration builds and runs on a zero batch of the
    dataset's input shape with the right output width.

    Returns:
        ``{task_id: number of parameters}``.
    """
    if spec.mode == "patches":
        from scalinglab.sweeps.patches import check_patch_tasks

        return check_patch_tasks(spec, tasks, common, executor)
    from scalinglab.training.config import TrainConfig
    from scalinglab.training.device import check_device
    from scalinglab.training.experiment import ExperimentSpec, check_experiment

    if executor == "local":
        try:
            check_device(spec.device)
        except ValueError as exc:
            raise SpecError(f"[sweep] device: {exc}") from None
    params: dict[str, int] = {}
    built: dict[str, int] = {}
    for task in tasks:
        where = f"task {task.family} {task.size_key or 'size'}={task.size_value} N_D={task.num_train}"
        try:
            train = TrainConfig.from_dict(task.train)
        except ValueError as exc:
            raise SpecError(f"[train] of {task.family}: {exc}") from None
        key = json.dumps([task.model, task.model_config, task.target, task.mode, train.loss], sort_keys=True,
                         default=str)
        if key not in built:
            exp = ExperimentSpec(
                data=common["dataset"], model=task.model, model_config=dict(task.model_config),
                target=task.targets if task.mode == "generate" else task.target, num_train=task.num_train,
                seeds=[0], test_size=common["test_size"], split_seed=common["split_seed"], train=train,
                input_norm=common["input_norm"], target_transform=task.target_transform, mode=task.mode,
            )  # fmt: skip
            try:
                built[key] = check_experiment(exp)["num_params"]
            except ValueError as exc:
                raise SpecError(f"{where}: {exc}") from None
        params[task.task_id] = built[key]
    return params


def estimated_flops(task: Task, num_params: int) -> float:
    """Rough training cost of a task: 6 FLOPs per parameter per training sample per epoch, times R.

    6 = forward (2) + backward (4) multiply-adds of dense layers; convolutions reuse weights over positions
    and cost more than this, so the estimate is a floor for them. Early stopping only lowers it.
    """
    if task.mode == "patches":
        from scalinglab.sweeps.patches import patch_flops

        return patch_flops(task, num_params)
    from scalinglab.training.config import TrainConfig

    num_fit = task.num_train - max(1, round(task.num_train / 8))  # 7/8 train, 1/8 validation
    cfg = TrainConfig.from_dict(task.train).for_train_size(num_fit)  # min_steps raises small-N_D epochs
    steps_cap = cfg.max_steps * cfg.batch_size if cfg.max_steps else float("inf")
    samples = min(num_fit * cfg.epochs, steps_cap)
    return 6.0 * num_params * samples * len(task.seeds)


# Spec fields a finished sweep may grow along in place; everything else must stay identical on resume.
_GROWABLE = ("data_sizes", "realizations", "targets")


def _check_growth(old: dict[str, Any], new: dict[str, Any], out: str | Path, old_sizes: list,
                  new_sizes: list) -> list[str]:
    """Refuse a resume whose spec differs other than by growing; return the spec keys that grow."""

    def frozen(doc: dict[str, Any]) -> dict[str, Any]:
        spec = doc.get("spec") or {}
        fixed = {k: v for k, v in spec.items() if k not in _GROWABLE and k != "models"}
        models = {m.get("family"): {k: v for k, v in m.items() if k != "sizes"} for m in spec.get("models", [])}
        return {"spec": fixed, "dataset": doc.get("dataset"), "models": models}

    fo, fn = frozen(old), frozen(new)
    for fam in set(fn["models"]) - set(fo["models"]):  # a new model family is growth
        fn["models"].pop(fam)
    differing = _diff_keys(fo, fn)
    if differing:
        raise SpecError(
            f"results directory {out} was made by a different spec or dataset (differs in: "
            f"{', '.join(differing[:6])}); refusing to mix results: use another --out"
        )
    os_, ns = old["spec"], new["spec"]
    shrunk = []
    if not set(old_sizes) <= set(new_sizes):
        shrunk.append(f"data_sizes lose {sorted(set(old_sizes) - set(new_sizes))}")
    if int(ns["realizations"]) < int(os_["realizations"]):
        shrunk.append(f"realizations {os_['realizations']} -> {ns['realizations']}")
    if not set(os_["targets"]) <= set(ns["targets"]):
        shrunk.append(f"targets lose {sorted(set(os_['targets']) - set(ns['targets']))}")
    new_models = {m["family"]: m for m in ns["models"]}
    for m in os_["models"]:
        if m["family"] not in new_models:
            shrunk.append(f"model family {m['family']} removed")
            continue
        lost = [s for s in (m.get("sizes") or []) if s not in (new_models[m["family"]].get("sizes") or [])]
        if lost:
            shrunk.append(f"{m['family']} sizes lose {lost}")
    if shrunk:
        raise SpecError(
            f"results directory {out} holds a larger sweep ({'; '.join(shrunk)}): a sweep grows in place but "
            "never drops finished points; use another --out"
        )
    return sorted({d.split(".")[1] for d in _diff_keys(old["spec"], new["spec"], "spec.") if d.count(".")})


def pending_tasks(tasks: list[Task], results: ResultsStore) -> tuple[list[Task], int]:
    """The tasks (or realization batches of them) still to train, and the realizations already done.

    A design point whose first k realizations are finished (a sweep extended from k to R realizations)
    gets a task for realizations k .. R-1 only: seeds are derived per realization, so they are the ones a
    sweep run with R from the start would have used, and the finished records stay untouched.
    """
    done = results.realizations_done()
    pending, num_done = [], 0
    for task in tasks:
        got = done.get(task.point_key, {})
        k = 0
        while k < len(task.seeds) and got.get(k) == int(task.seeds[k]):
            k += 1
        num_done += k
        if k < len(task.seeds):
            pending.append(task if k == 0 else replace(task, seeds=task.seeds[k:], first_realization=k))
    return pending, num_done


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
    """Run, resume or extend a sweep into the results directory ``out``.

    Everything is checked before anything is written (spec, dataset, every model and training
    configuration, device, that ``out`` is writable); a directory holding no finished record (a start that
    failed) never blocks a corrected spec. While it runs the directory is locked against a second driver.
    A resume may grow the sweep (more N_D, model sizes, families, targets or realizations): only the new
    tasks train and the finished record files are not touched.

    Args:
        spec: a ``SweepSpec`` or the path of a sweep TOML file.
        out: results directory (created).
        executor: "local" (in-process, default) or "ray".
        address: Ray cluster address (``ray`` executor; default starts a local instance).
        resume: continue (or grow) a results directory made by the same spec; finished tasks are skipped.
        quiet: no progress output.
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
    num_params = check_tasks(spec, tasks, common, executor)
    ensure_writable(out, "results directory")
    results = ResultsStore(out)
    with results.lock():
        grown: list[str] = []
        if results.exists() and results.finished_task_ids():
            if not resume:
                raise FileExistsError(
                    f"results directory {out} already holds a sweep: pass --resume to continue it, or choose "
                    "another --out"
                )
            old = results.resolved_spec()
            keys = ("spec", "dataset")
            new = json.loads(json.dumps({k: resolved[k] for k in keys}, default=str))  # tuples -> lists, as stored
            _drop_new_defaults(new["spec"], old.get("spec") or {})
            grown = _check_growth({k: old.get(k) for k in keys}, new, out, old.get("data_sizes", []),
                                  resolved["data_sizes"])
        if grown or not results.exists() or not results.finished_task_ids():
            # a fresh directory, one left by a start that failed before any task finished, or a grown sweep
            if spec_path is not None:
                shutil.copyfile(spec_path, Path(out) / "spec.toml")
            atomic_write_json(Path(out) / "resolved_spec.json", resolved)
        pending, num_done = pending_tasks(tasks, results)
        total = num_done + sum(len(t.seeds) for t in pending)  # the bar counts the whole sweep
        if max_tasks is not None:
            pending = pending[:max_tasks]
        # for the ETA; by design point, as a batch of a point's remaining realizations is a task of its own
        point_params = {t.point_key: num_params[t.task_id] for t in tasks}
        costs = {t.task_id: estimated_flops(t, point_params[t.point_key]) for t in pending}
        _run_pending(spec, results, pending, (num_done, total), common, resolved, executor, address, num_cpus,
                     quiet, grown, costs)
    return results


def _run_pending(spec: SweepSpec, results: ResultsStore, pending: list[Task], counts: tuple[int, int],
                 common: dict[str, Any], resolved: dict[str, Any], executor: str, address: str | None,
                 num_cpus: int | None, quiet: bool, grown: list[str], costs: dict[str, float] | None = None) -> None:
    """Train ``pending`` and keep the run log (environment.json) current: a killed run stays in it.

    ``counts``: (realizations finished before this run, realizations of the whole sweep). ``costs``: estimated
    FLOPs per pending task (``estimated_flops``): the bar's ETA follows them, as the tasks of a sweep differ in cost
    by orders of magnitude (the largest N_D and width come last).
    """
    num_done, total = counts
    out = results.root
    env = results.environment() or {"runs": []}
    env.update(_environment(executor))
    run_info = {"started": datetime.now(UTC).isoformat(), "tasks_pending": len(pending),
                "realizations_done_before": num_done,
                "executor": executor, "pid": os.getpid(), "status": "running", "tasks_finished": 0,
                "wall_time_s": 0.0}  # fmt: skip
    if grown:
        run_info["grown"] = grown
    runs = [*env.get("runs", []), run_info]

    def log_run() -> None:
        run_info["wall_time_s"] = time.perf_counter() - t0
        atomic_write_json(out / "environment.json", {**env, "runs": runs})

    t0 = time.perf_counter()
    log_run()
    units = resolved["target_units"]
    try:
        with progress_bar(total, f"sweep {spec.name}", quiet=quiet, completed=num_done, unit="realizations") as bar:
            runner = get_executor(executor, address=address, num_cpus=num_cpus)
            work_total = sum((costs or {}).values())
            work_done = 0.0
            if work_total > 0:
                bar.set_work(0.0, work_total)
            on_epoch = None
            if bar.live:
                def on_epoch(task, p) -> None:  # in-task progress: the running task and its epochs
                    bar.set_running(running_text(task, p))
            try:
                for task, records in (runner.run(pending, common, on_epoch=on_epoch) if on_epoch is not None
                                      else runner.run(pending, common)):
                    for rec in records:
                        rec["target_unit"] = units.get(task.target, "")
                    results.write_task(task.task_id, asdict(task), records)
                    bar.advance(len(task.seeds))
                    if work_total > 0:
                        work_done += costs.get(task.task_id, 0.0)
                        bar.set_work(work_done, work_total)
                    bar.set_description(task_name(task))  # the last finished task
                    bar.set_running("")
                    run_info["tasks_finished"] += 1
                    log_run()
            finally:
                runner.close()
        run_info["status"] = "finished"
    except KeyboardInterrupt:
        run_info["status"] = "interrupted"
        raise
    except BaseException as exc:
        run_info["status"] = "failed"
        run_info["error"] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise
    finally:
        run_info["finished"] = datetime.now(UTC).isoformat()
        log_run()


def task_name(task: Task) -> str:
    """Short name of a task for progress displays: family, size, N_D and target."""
    size = "" if task.size_key is None else f" {task.size_value}"  # a family without a size axis: no "None"
    return f"{task.family}{size} N_D={task.num_train} {task.target}"


def running_text(task: Task, p: Any) -> str:
    """In-task progress of the running task: ``fcn_l3 16 N_D=512 J: epoch 37/150, 3/5 training``."""
    who = f"member {p.member + 1}/{p.members} " if p.member is not None else ""
    left = "" if p.member is not None else f", {p.active}/{p.members} training"
    return f"{task_name(task)}: {who}epoch {p.epoch}/{p.epochs}{left}"


def summary_rows(results: ResultsStore, loss_key: str = "mse") -> list[dict[str, Any]]:
    """Per design point (model, N_D, target): number of realizations and AM / GM / median of the test loss."""
    import numpy as np

    groups: dict[tuple, list[float]] = {}
    for r in results.records():
        if r.get("mode") == "patches":  # a patch study: test MAE per target, physical units (Table II)
            for t, mae in r["test_mae"].items():
                groups.setdefault((r["model_label"], t, r["num_train"], "None"), []).append(float(mae))
            continue
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


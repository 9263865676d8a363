"""Paper 4's patch study as a sweep task kind (``[sweep] mode = "patches"``).

One task per (model, N_data) holds the R repeats of that point, exactly as a regression task holds the R
realizations of one (model, N_D, target): the engine's per-realization bookkeeping (resume skips finished
tasks, a sweep grown from R to R' repeats trains only repeats R .. R'-1, ``sweep status``, ``--dry-run``) then
applies unchanged, and the models of one N_data see the same training seeds in every repeat (paired). The cost
of this granularity: a task killed mid-way retrains its repeats on resume (records are written per task).

Repeat r at ``N_data = n`` trains ``train_patch_model`` with the seeds ``run_patch_study`` would use
(``patch_regression.study_seeds(training seeds, n, root_seed, r)``), so the same spec gives the same records
as ``scalinglab train-patches`` with the same root seed.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. II C 2, Table II, Fig. 7.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalinglab.sweeps.spec import SpecError, SweepSpec, Task, expand_tasks

# The last store read by execute_patch_task in this process (a sweep's tasks all read the same store; the
# paper's 3,000 patterns of 256 x 256 are ~0.8 GB, too much to reread for every task).
_DATA_CACHE: dict[tuple, Any] = {}


def plan_patch_sweep(spec: SweepSpec, out: str | Path | None = None
                     ) -> tuple[list[Task], dict[str, Any], dict[str, Any]]:
    """``runner.plan_sweep`` for a patch study: open the store, check it, expand the tasks.

    Returns:
        (tasks, common settings for workers, resolved spec document).
    """
    import numpy as np

    from scalinglab.data.store import DatasetStore
    from scalinglab.sweeps.runner import artifact_settings, dataset_fingerprint
    from scalinglab.training.patch_regression import PatchConfig, check_pattern_store

    if not Path(spec.dataset).exists():
        raise FileNotFoundError(f"dataset store {spec.dataset} does not exist")
    cfg = PatchConfig.from_dict({**spec.train, "targets": list(spec.targets), "device": spec.device})
    with DatasetStore.open(spec.dataset) as store:
        try:
            check_pattern_store(store, spec.dataset, spec.targets)
        except ValueError as exc:
            raise SpecError(f"dataset: {exc}") from None
        seeds = np.asarray(store.aux("seed"), dtype=np.int64).reshape(-1)
        fingerprint = dataset_fingerprint(store)
        units = dict(zip(store.target_names, store.target_units, strict=True))
        input_shape = list(store.input_shape)
    present = sorted(int(s) for s in np.unique(seeds))
    for what, s in (("test_seed", cfg.test_seed), ("val_seed", cfg.val_seed)):
        if s not in present:
            raise SpecError(f"[train] {what} = {s} has no images in {spec.dataset} (seeds present: {present})")
    available = [s for s in present if s not in (cfg.test_seed, cfg.val_seed)]
    tasks = expand_tasks(spec, len(available))
    common: dict[str, Any] = {"dataset": spec.dataset, "device": spec.device, "root_seed": spec.root_seed,
                              "mode": "patches"}
    common.update(artifact_settings(spec, out))
    resolved = {
        "spec": spec.to_dict(), "dataset": fingerprint, "pool_size": len(available),
        "training_seeds": available, "test_size": int(np.sum(seeds == cfg.test_seed)),
        "input_shape": input_shape, "data_sizes": list(spec.data_sizes), "num_tasks": len(tasks),
        "target_units": {t: units[t] for t in spec.targets},
    }
    return tasks, common, resolved


def check_patch_tasks(spec: SweepSpec, tasks: list[Task], common: dict[str, Any], executor: str = "local"
                      ) -> dict[str, int]:
    """``runner.check_tasks`` for a patch study: the device, every recipe, the pretrained weights, and that every
    model builds and maps a zero batch of patches ``[2, C, p, p]`` to ``[2, P]``.

    Returns:
        ``{task_id: number of parameters}``.
    """
    import torch

    from scalinglab.data.store import DatasetStore
    from scalinglab.models import count_parameters
    from scalinglab.training.device import check_device
    from scalinglab.training.patch_regression import PatchConfig, build_patch_model, resolve_model_config

    if executor == "local":
        try:
            check_device(spec.device)
        except ValueError as exc:
            raise SpecError(f"[sweep] device: {exc}") from None
    with DatasetStore.open(common["dataset"]) as store:
        channels, height, width = store.input_shape
    params: dict[str, int] = {}
    built: dict[str, int] = {}
    for task in tasks:
        where = f"task {task.family} N_data={task.num_train}"
        cfg = PatchConfig.from_dict(task.train)
        if cfg.patch_size > min(height, width):
            raise SpecError(f"[train] patch_size {cfg.patch_size} is larger than the images ({height} x {width})")
        key = json.dumps([task.model, task.model_config, task.pretrained, cfg.patch_size], sort_keys=True)
        if key not in built:
            if task.pretrained is not None:
                _check_pretrained(task, where)
            mcfg = resolve_model_config(task.model, task.model_config, channels, len(task.targets))
            try:
                model = build_patch_model(task.model, mcfg).eval()
                with torch.no_grad():
                    out = model(torch.zeros(2, channels, cfg.patch_size, cfg.patch_size))
            except (TypeError, ValueError, RuntimeError, KeyError) as exc:
                raise SpecError(f"{where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            if tuple(out.shape) != (2, len(task.targets)):
                raise SpecError(f"{where}: the model maps patches to shape {list(out.shape)[1:]}, not "
                                f"[{len(task.targets)}] (one output per target)")
            built[key] = count_parameters(model)
        params[task.task_id] = built[key]
    return params


def _check_pretrained(task: Task, where: str) -> None:
    """The pretrained weights of a task resolve to a local file (never downloaded): a one-line SpecError if not."""
    import torchvision

    from scalinglab.models.backbones import resolve_pretrained

    try:
        torchvision.models.get_model_weights(task.model)
    except ValueError:
        raise SpecError(f"{where}: pretrained: {task.model} is not a torchvision backbone with ImageNet "
                        "weights") from None
    try:
        resolve_pretrained(task.model, task.pretrained)
    except (FileNotFoundError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def patch_flops(task: Task, num_params: int) -> float:
    """Rough cost of a patch task for the ETA: 6 FLOPs per parameter per training patch, times R.

    Steps per run: ``max_steps``, else ``max_epochs`` epochs of ``steps_per_epoch`` steps (the 50-step floor of
    the default epoch where it is not set: the store's image count is not known here); early stopping only
    lowers it. Convolutions reuse their weights over positions, so this is a floor for them, as for regression.
    """
    from scalinglab.training.patch_regression import MIN_STEPS_PER_EPOCH, PatchConfig

    cfg = PatchConfig.from_dict(task.train)
    steps = cfg.max_epochs * (cfg.steps_per_epoch or MIN_STEPS_PER_EPOCH)
    if cfg.max_steps is not None:
        steps = min(steps, cfg.max_steps)
    return 6.0 * num_params * steps * cfg.batch_size * len(task.seeds)


def _pattern_data(path: str, targets: tuple[str, ...]):
    from scalinglab.training.patch_regression import PatternData

    stat = Path(path).stat()
    key = (str(Path(path).resolve()), targets, stat.st_mtime_ns)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = PatternData.from_store(path, targets)
    return _DATA_CACHE[key]


def patch_status(record: dict[str, Any], max_steps: int | None, patience: int, max_epochs: int) -> tuple[str, str]:
    """(status, stop reason) of one patch run (``scalinglab.record_status`` flags).

    ``not_better_than_mean``: some target's test MAE is not below that of predicting the training mean;
    ``at_epoch_cap``: neither early stopping nor the step budget ended the run before ``max_epochs``.
    """
    if max_steps is not None and record["steps"] >= max_steps:
        stop = "max_steps"
    elif record["epochs_run"] - 1 - record["best_epoch"] >= patience:
        stop = "early_stopping"
    else:
        stop = "max_epochs"
    no_skill = [t for t in record["target_names"] if record["test_mae"][t] >= record["baseline_mae"][t]]
    if no_skill:
        return "not_better_than_mean", stop
    return ("at_epoch_cap" if stop == "max_epochs" and record["epochs_run"] >= max_epochs else "ok"), stop


def execute_patch_task(task: Task, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Train the repeats of one (model, N_data) task; one plain JSON record per repeat.

    Args:
        task: a patch task (``mode == "patches"``): ``num_train`` = N_data, ``seeds`` = the run seeds of repeats
            ``first_realization`` .., ``train`` = the PatchConfig entries.
        common: dataset, device, root_seed, num_threads (Ray workers), and with ``save = ["models"]`` the
            absolute ``results_dir``.

    Returns:
        R records: ``train_patch_model``'s record (``test_mae`` per target in physical units, ``baseline_mae``,
        ``train_seeds``, ``seed``, ``num_params``, ``label``, ...) plus the engine's keys (``task_id``,
        ``family``, ``model_label``, ``num_train`` = N_data, ``realization`` = ``repeat``, ``target`` "D,J",
        ``mode``, ``status``, ``stop_reason``; ``checkpoint`` relative to the results directory when kept).
    """
    import torch

    from scalinglab.training.patch_regression import PatchConfig, save_checkpoint, study_seeds, train_patch_model

    if common.get("num_threads"):
        torch.set_num_threads(int(common["num_threads"]))
    cfg = PatchConfig.from_dict(task.train)
    data = _pattern_data(common["dataset"], tuple(cfg.targets))
    available = data.training_seeds(cfg)
    root_seed = int(common.get("root_seed", 0))
    save = "models" in tuple(common.get("save", ()))
    artifacts = f"artifacts/{task.task_id}"
    out = []
    for i, seed in enumerate(task.seeds):
        r = task.first_realization + i
        train_seeds, expected = study_seeds(available, task.num_train, root_seed, r)
        if int(seed) != expected:  # the task's seeds come from the same rule (spec._expand_patch_tasks)
            raise ValueError(f"task {task.family} N_data={task.num_train}: seed of repeat {r} is not the study's")
        run = train_patch_model(data, task.model, train_seeds=train_seeds, seed=int(seed), config=cfg,
                                model_config=dict(task.model_config), pretrained=task.pretrained)
        rec = dict(run.record)
        status, stop = patch_status(rec, cfg.max_steps, cfg.patience, cfg.max_epochs)
        rec.update(label=task.family, repeat=r, root_seed=root_seed, task_id=task.task_id, family=task.family,
                   model_label=task.family, size_axis=None, size_value=None, compute_key=None, compute_value=None,
                   num_train=task.num_train, realization=r, target=task.target, mode="patches", status=status,
                   stop_reason=stop, max_epochs=cfg.max_epochs)
        if save:
            run.checkpoint.update(label=task.family, repeat=r)
            save_checkpoint(run.checkpoint, Path(common["results_dir"]) / artifacts / f"r{r}.pt")
            rec["artifacts_dir"] = artifacts
            rec["checkpoint"] = f"{artifacts}/r{r}.pt"  # relative to the results directory
        out.append(rec)
    return out

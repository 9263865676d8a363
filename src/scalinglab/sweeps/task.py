"""Running one sweep task: R realizations of one (model, N_D, target) through the ensemble trainer.

This function is what executors ship to workers (in-process or Ray). It returns plain JSON-serializable
records; only the driver writes them to the results store.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from scalinglab.sweeps.spec import Task


def model_label(task: Task) -> str:
    if task.size_key is None:
        return task.family
    return f"{task.family} {task.size_key}={task.size_value}"


def execute_task(task: Task, common: dict[str, Any], epoch_progress=None) -> list[dict[str, Any]]:
    """Train the task's realizations and return one record per realization (dispatch on ``task.mode``).

    Args:
        task: the task (model configuration, N_D, target, seeds, training recipe).
        common: sweep-wide settings: dataset, test_size, split_seed, input_norm, device, num_threads, and for
            sweeps that keep artifacts ``save`` and ``results_dir`` (absolute).
        epoch_progress: optional callback after every training epoch (``train_ensemble``'s ``EpochProgress``);
            the local executor passes one for the sweep's in-task progress.

    Returns:
        A list of R record dicts (docs/architecture.md, "Sweep results").
    """
    if task.mode == "patches":  # paper 4's patch study: one record per repeat (scalinglab.sweeps.patches)
        from scalinglab.sweeps.patches import execute_patch_task

        return execute_patch_task(task, common)
    from pathlib import Path

    import torch

    from scalinglab.training.config import TrainConfig
    from scalinglab.training.experiment import ExperimentSpec, run_experiment

    if common.get("num_threads"):
        torch.set_num_threads(int(common["num_threads"]))
    save = tuple(common.get("save", ()))
    artifacts = f"artifacts/{task.task_id}" if save else None
    spec = ExperimentSpec(
        data=common["dataset"],
        model=task.model,
        model_config=dict(task.model_config),
        target=task.targets if task.mode == "generate" else task.target,
        num_train=task.num_train,
        seeds=list(task.seeds),
        test_size=common["test_size"],
        split_seed=common["split_seed"],
        train=TrainConfig.from_dict(task.train),
        input_norm=common["input_norm"],
        target_transform=getattr(task, "target_transform", "none"),
        device=common.get("device", "cpu"),
        mode=task.mode,
        save=save,
        save_dir=str(Path(common["results_dir"]) / artifacts) if save else None,
    )
    # the sweep shows one progress bar over the whole grid (and the running task's epochs on a terminal)
    records = run_experiment(spec, progress=False, epoch_progress=epoch_progress)
    out = []
    for rec in records:
        rec = dict(rec)
        rec["realization"] = int(rec["realization"]) + task.first_realization
        rec.update(
            task_id=task.task_id,
            family=task.family,
            model=task.model,
            model_label=model_label(task),
            model_config=task.model_config,
            size_axis=task.size_key,
            size_value=task.size_value,
            compute_key=task.compute_key,
            compute_value=task.compute_value,
        )
        if task.compute_key == "epochs" and rec.get("status") == "at_epoch_cap":
            rec["status"] = "ok"  # a compute axis over epochs trains to its budget by design
        if artifacts is not None:
            rec["artifacts_dir"] = artifacts  # relative to the results directory
        if task.mode != "regress":
            rec["mode"] = task.mode
            rec["target"] = task.target  # one hashable label ("theta,J,D") for tables and figures
        out.append(rec)
    return out


def task_to_dict(task: Task) -> dict[str, Any]:
    return asdict(task)

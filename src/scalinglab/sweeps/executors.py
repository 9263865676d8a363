"""Executors run sweep tasks and hand (task, records) back to the driver, which alone writes results.

- ``local``: in-process, one task after another (the default; uses all of this machine's torch threads).
- ``ray``: real Ray core tasks on a local instance or a cluster (``address``). Workers return records to the
  driver; a task whose worker dies is retried by Ray (``max_retries``). Each task asks for ``num_cpus`` CPUs
  (and one GPU when the sweep's device is CUDA), so torch in a worker uses that many threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from scalinglab.sweeps.spec import Task
from scalinglab.sweeps.task import execute_task


class LocalExecutor:
    """Runs tasks in this process, in order.

    ``run(..., on_epoch=f)`` calls ``f(task, progress)`` after every training epoch of the running task
    (``scalinglab.training.trainer.EpochProgress``): the sweep's in-task progress on a terminal.
    """

    def __init__(self, task_fn=execute_task) -> None:
        self.task_fn = task_fn

    def run(self, tasks: list[Task], common: dict[str, Any],
            on_epoch: Callable[[Task, Any], None] | None = None) -> Iterator[tuple[Task, list[dict[str, Any]]]]:
        for task in tasks:
            if on_epoch is None:
                yield task, self.task_fn(task, common)
            else:
                yield task, self.task_fn(task, common, epoch_progress=lambda p, task=task: on_epoch(task, p))

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs tasks as Ray core tasks; results are yielded as they finish (any order).

    Args:
        address: an existing cluster ("auto" or "ray://host:port"); None starts a local instance.
        num_cpus: CPUs of a locally started instance (default: all).
        cpus_per_task: CPUs requested by each task (torch threads in the worker).
        max_retries: retries of a task whose worker process died.
        object_store_memory: bytes for the local object store (records are small; keep it capped).
        task_fn: the function shipped to workers (default ``execute_task``).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: int = 1,
                 max_retries: int = 3, object_store_memory: int = 200 * 1024**2, task_fn=execute_task) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'ray[default]'") from None
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_memory,
                         log_to_driver=False)
                self._started_here = True
        self.cpus_per_task = cpus_per_task
        self.max_retries = max_retries
        self.task_fn = task_fn

    def run(self, tasks: list[Task], common: dict[str, Any],
            on_epoch: Callable[[Task, Any], None] | None = None) -> Iterator[tuple[Task, list[dict[str, Any]]]]:
        # on_epoch is not used: tasks train in other processes (several at once); progress is per task
        ray = self._ray
        gpus = 1 if str(common.get("device", "cpu")).startswith("cuda") else 0
        remote = ray.remote(num_cpus=self.cpus_per_task, num_gpus=gpus, max_retries=self.max_retries,
                            retry_exceptions=False)(self.task_fn)
        worker_common = dict(common, num_threads=self.cpus_per_task)
        pending = {remote.remote(task, worker_common): task for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            task = pending.pop(ref)
            yield task, ray.get(ref)

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()


def get_executor(name: str, *, address: str | None = None, num_cpus: int | None = None, task_fn=execute_task):
    """The executor called ``name`` ("local" or "ray")."""
    if name == "local":
        return LocalExecutor(task_fn=task_fn)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus, task_fn=task_fn)
    raise ValueError(f"unknown executor '{name}' (known: local, ray)")

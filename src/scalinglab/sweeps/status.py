"""How far a sweep results directory is: finished and pending tasks, realizations, runs and their time."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.record_status import record_status
from scalinglab.sweeps.results import ResultsStore

__all__ = ["SweepStatus", "sweep_status"]


@dataclass
class SweepStatus:
    """Counts of one results directory (see :func:`sweep_status`)."""

    root: Path
    name: str
    num_tasks: int
    num_finished: int
    realizations: int
    realizations_done: int
    train_time_s: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: trained realizations by record status (ok, at_epoch_cap, diverged, not_better_than_mean, unknown)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def num_pending(self) -> int:
        return self.num_tasks - self.num_finished

    def format(self) -> str:
        lines = [
            f"sweep {self.name} in {self.root}",
            f"tasks          {self.num_finished} finished, {self.num_pending} pending, {self.num_tasks} in all",
            f"realizations   {self.realizations_done} trained ({self.realizations} per task)"
            + (": " + ", ".join(f"{n} {k}" for k, n in sorted(self.statuses.items())) if self.statuses else ""),
            f"training time  {self.train_time_s / 3600:.2f} h summed over finished tasks",
            f"runs           {len(self.runs)}",
        ]
        for i, run in enumerate(self.runs):
            error = f": {run['error']}" if run.get("error") else ""
            lines.append(
                f"  {i + 1}. {run.get('started', '?')}  {run['state']}, {run.get('tasks_finished', '?')} tasks "
                f"finished, {float(run.get('wall_time_s') or 0) / 60:.1f} min{error}"
            )
        return "\n".join(lines)


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def sweep_status(root: str | os.PathLike) -> SweepStatus:
    """Read the results directory ``root`` (nothing is written).

    A run logged as running whose process is gone was killed: its ``tasks_finished`` and time are those of
    its last finished task.

    Raises:
        FileNotFoundError: ``root`` is not a results directory.
    """
    results = ResultsStore(root)
    resolved = results.resolved_spec()
    spec = resolved.get("spec") or {}
    per_task = int(spec.get("realizations", 0))
    done = results.realizations_done()
    files = results.task_files()
    finished = sum(1 for got in done.values() if len(got) >= per_task)
    runs = []
    for run in results.environment().get("runs", []):
        state = run.get("status", "finished")  # runs logged before the status field only appear when done
        if state == "running" and not _pid_alive(run.get("pid")):
            state = "killed"
        runs.append({**run, "state": state})
    return SweepStatus(
        root=Path(root),
        name=str(spec.get("name", "sweep")),
        num_tasks=int(resolved.get("num_tasks", len(done))),
        num_finished=finished,
        realizations=per_task,
        realizations_done=sum(len(got) for got in done.values()),
        train_time_s=sum(float(r.get("wall_time_s", 0.0)) for f in files for r in f["records"]),
        runs=runs,
        statuses=dict(Counter(record_status(r) for f in files for r in f["records"])),
    )

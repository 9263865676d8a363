"""Progress bars with ETA for long work (rich), quiet when asked or when not on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _enabled(quiet: bool) -> bool:
    if quiet or os.environ.get("SCALINGLAB_QUIET") == "1":
        return False
    return True


class _Bar:
    """Minimal interface used by the package: ``advance(n)`` and ``update(description=...)``."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_description(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def set_completed(self, n: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=n)


@contextmanager
def progress_bar(total: float, description: str, *, quiet: bool = False, completed: float = 0) -> Iterator[_Bar]:
    """A progress bar with count, elapsed time and ETA on stderr.

    Args:
        total: number of units of work.
        description: text shown left of the bar.
        quiet: no output at all (also with the environment variable SCALINGLAB_QUIET=1).
        completed: units already done (for resumed work, so the ETA counts only what remains).
    """
    if not _enabled(quiet):
        yield _Bar(None, None)
        return
    from rich.console import Console

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as prog:
        task = prog.add_task(description, total=total, completed=completed)
        yield _Bar(prog, task)

"""Progress for long work: a rich bar with ETA on a terminal, plain log lines in batch jobs, nothing if quiet.

Without a terminal (nohup, Slurm, a pipe) a live bar prints nothing until the end, so there a background
thread writes one line every ``SCALINGLAB_PROGRESS_INTERVAL`` seconds (default 60) and one at the end::

    2026-05-04 12:00:00 sweep fcn: 12/40 realizations (30.0%), 0.41/min, eta 1h08m, last: fcn 16 N_D=512 J

A caller that knows what is running inside a unit of work (the sweep: the task and its epochs) tells the bar
with ``set_running(text)``: a terminal bar shows it to the right of the ETA, the plain lines append
``running: <text>``. A caller whose units differ in cost gives the estimated work with ``set_work(done, total)``,
and the ETA extrapolates this run's pace over the work left instead of over the count. ``bar.live`` is False for
the silent bar (nothing to tell).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

DEFAULT_LOG_INTERVAL_S = 60.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class _LogBar:
    """The non-terminal progress: periodic plain lines with time, done / total, rate and ETA."""

    def __init__(self, total: float, description: str, completed: float, unit: str, interval: float) -> None:
        self._total, self._title, self._unit = total, description, unit
        self._start_done = self._done = completed
        self._last = ""
        self._running = ""
        self._work: tuple[float, float] | None = None  # (done, total) estimated work of this run, for the ETA
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)

    def __enter__(self) -> _LogBar:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None:  # after a failure the error is the last line, alone
            self.write_line()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.write_line()

    def write_line(self) -> None:
        with self._lock:
            done, total, last, running, work = self._done, self._total, self._last, self._running, self._work
        elapsed = time.monotonic() - self._t0
        pct = f" ({100 * done / total:.1f}%)" if total else ""
        rate = (done - self._start_done) / elapsed * 60 if elapsed > 0 else 0.0
        remaining = _remaining_by_work(elapsed, work)
        if remaining is None and rate > 0:
            remaining = (total - done) / rate * 60
        eta = _duration(remaining) if remaining is not None else "unknown"
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        tail = (f", last: {last}" if last else "") + (f", running: {running}" if running else "")
        line = (f"{stamp} {self._title}: {done:g}/{total:g} {self._unit}{pct}, {rate:.3g}/min, "
                f"elapsed {_duration(elapsed)}, eta {eta}{tail}")  # fmt: skip
        print(line, file=sys.stderr, flush=True)

    def advance(self, n: float = 1) -> None:
        with self._lock:
            self._done += n

    def set_description(self, text: str) -> None:
        with self._lock:
            self._last = text

    def set_completed(self, n: float) -> None:
        with self._lock:
            self._done = n

    live = True

    def set_running(self, text: str) -> None:
        with self._lock:
            self._running = text

    def set_work(self, done: float, total: float) -> None:
        with self._lock:
            self._work = (float(done), float(total))


def _remaining_by_work(elapsed: float, work: tuple[float, float] | None) -> float | None:
    """Seconds left if the rest of the estimated work goes at this run's pace so far; None without an estimate."""
    if work is None or work[0] <= 0 or work[1] <= 0:
        return None
    return elapsed * max(work[1] - work[0], 0.0) / work[0]


class _EtaColumn(TimeRemainingColumn):
    """Time remaining from the estimated work (``set_work``) when the caller gives it, else rich's own (count rate)."""

    def render(self, task):
        remaining = _remaining_by_work(task.elapsed or 0.0, task.fields.get("work"))
        if remaining is None:
            return super().render(task)
        h, rem = divmod(int(round(remaining)), 3600)
        return Text(f"{h}:{rem // 60:02d}:{rem % 60:02d}", style="progress.remaining")  # as rich's own column


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

    @property
    def live(self) -> bool:
        return self._progress is not None

    def set_running(self, text: str) -> None:
        """What runs inside the current unit (shown right of the ETA), e.g. a task and its epochs."""
        if self._progress is not None:
            self._progress.update(self._task, running=f"running: {text}" if text else "")

    def set_work(self, done: float, total: float) -> None:
        """Estimated work done / in all of this run (any unit, e.g. FLOPs): the ETA follows it instead of the count
        (units of very different cost, such as the tasks of a sweep, make a count-based ETA misleading)."""
        if self._progress is not None:
            self._progress.update(self._task, work=(float(done), float(total)))


@contextmanager
def progress_bar(total: float, description: str, *, quiet: bool = False, completed: float = 0,
                 unit: str = "done") -> Iterator[_Bar]:
    """A progress bar with count, elapsed time and ETA on stderr (plain lines when stderr is no terminal).

    Args:
        total: number of units of work.
        description: text shown left of the bar.
        quiet: no output at all (also with the environment variable SCALINGLAB_QUIET=1).
        completed: units already done (for resumed work, so the ETA counts only what remains).
        unit: what is counted, in the plain log lines ("realizations", "samples").
    """
    if not _enabled(quiet):
        yield _Bar(None, None)
        return
    if not sys.stderr.isatty() and os.environ.get("SCALINGLAB_PROGRESS") != "bar":
        interval = float(os.environ.get("SCALINGLAB_PROGRESS_INTERVAL", DEFAULT_LOG_INTERVAL_S))
        with _LogBar(total, description, completed, unit, interval) as bar:
            yield bar
        return
    from rich.console import Console

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        _EtaColumn(),
        TextColumn("{task.fields[running]}"),
    )
    with Progress(*columns, console=console, transient=False) as prog:
        task = prog.add_task(description, total=total, completed=completed, running="")
        yield _Bar(prog, task)

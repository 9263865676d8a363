"""The results store of a sweep: one durable JSON record file per finished task.

Layout of a results directory::

    spec.toml             the sweep file as given (for humans)
    resolved_spec.json    the validated specification + dataset fingerprint (resume checks against it)
    environment.json      versions, machine, executor and timings of every run into this directory
    records/<task_id>.json   one file per finished task: its configuration and one record per realization

Each record file is written to a temporary name in the same directory, flushed, fsynced and renamed with
``os.replace`` (atomic on POSIX), so a crash at any instant leaves either the whole record or nothing. Only the
driver process writes (single writer), so there is no lock contention even on cluster file systems; a second
driver on the same directory is refused by an advisory lock on ``.sweep.lock`` (``fcntl.flock``, released by
the operating system when the holder dies, so a killed sweep never blocks its resume).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # POSIX advisory locks; elsewhere the one-driver rule is the user's to keep
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None

_LOCK_FILE = ".sweep.lock"


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultsStore:
    """Reads and writes the records of one sweep results directory.

    Args:
        root: the results directory.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    def exists(self) -> bool:
        return (self.root / "resolved_spec.json").is_file()

    def resolved_spec(self) -> dict[str, Any]:
        path = self.root / "resolved_spec.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} is not a sweep results directory (no resolved_spec.json)")
        return json.loads(path.read_text())

    def environment(self) -> dict[str, Any]:
        path = self.root / "environment.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's driver lock; a second holder gets a one-line ValueError naming the first."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise ValueError(
                        f"results directory {self.root} is in use by another sweep (pid {holder}); "
                        "wait for it to finish or use another --out"
                    ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    def finished_task_ids(self) -> set[str]:
        if not self.records_dir.is_dir():
            return set()
        return {p.stem for p in self.records_dir.glob("*.json") if not p.name.startswith(".")}

    def write_task(self, task_id: str, task: dict[str, Any], records: list[dict[str, Any]]) -> None:
        atomic_write_json(self.records_dir / f"{task_id}.json", {"task_id": task_id, "task": task, "records": records})

    def task_files(self) -> list[dict[str, Any]]:
        if not self.records_dir.is_dir():
            return []
        out = []
        for p in sorted(self.records_dir.glob("*.json")):
            if p.name.startswith("."):
                continue  # a temporary file left by a killed writer: never a finished record
            out.append(json.loads(p.read_text()))
        return out

    def realizations_done(self) -> dict[str, dict[int, int]]:
        """``{point key: {realization index: seed}}`` over every finished record file (see Task.point_key)."""
        from scalinglab.sweeps.spec import point_key

        done: dict[str, dict[int, int]] = {}
        for f in self.task_files():
            first = int(f["task"].get("first_realization", 0))
            got = done.setdefault(point_key(f["task"]), {})
            for i, seed in enumerate(f["task"]["seeds"]):
                got[first + i] = int(seed)
        return done

    def records(self) -> list[dict[str, Any]]:
        """Every realization record, flat, in a deterministic order."""
        recs = [r for f in self.task_files() for r in f["records"]]
        recs.sort(key=lambda r: (r["family"], str(r["size_value"]), r["target"], r["num_train"],
                                 str(r.get("compute_value")), r["realization"]))
        return recs

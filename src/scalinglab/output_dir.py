"""Output directories checked before the work that fills them, so that a result is never lost at the end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["ensure_writable", "refuse_non_empty"]


def ensure_writable(path: str | os.PathLike, what: str = "output directory") -> Path:
    """Create ``path`` if needed and prove that a file can be written and renamed in it.

    A read-only mount, a missing permission or a full disk is reported now, as one-line ValueError naming
    the directory, instead of as a traceback after hours of training.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", dir=path)
        try:
            os.write(fd, b"scalinglab write check\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{what} {path} is not writable: {reason}") from None
    return path


def refuse_non_empty(path: str | os.PathLike, *, overwrite: bool, what: str = "output directory") -> None:
    """Refuse an existing non-empty ``path`` unless ``overwrite`` (one-line FileExistsError naming it)."""
    path = Path(path)
    if path.is_file():
        raise FileExistsError(f"{what} {path} is a file, not a directory")
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise FileExistsError(
            f"{what} {path} already holds files (an earlier run?); pass --overwrite to replace them, or choose "
            "another --out"
        )

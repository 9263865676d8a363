"""The dataset store: a Zarr v3 group of inputs, targets, auxiliary arrays and metadata, appendable in chunks.

Layout of a store directory (a Zarr v3 group)::

    zarr.json            group attributes: schema (``scalinglab_store``) and ``metadata``
    inputs/              [N, C, H, W] or [N, F], float32 by default, chunked along N
    targets/             [N, P] float64, attributes ``target_names`` and ``target_units``
    aux/<name>/          optional per-sample arrays [N, ...] (phase label, energy, seed, ...)
    commit.json          the commit record: committed sample count and the producer's resume ``state``

Safe interruption (crash or SIGKILL at any instant): an append first writes its samples into the arrays
*past* the committed count (growing the arrays if needed), flushes them to disk, and only then atomically
replaces ``commit.json`` (temp file + fsync + ``os.replace`` + directory fsync). Readers use only the
committed count, so a sample is visible only once completely written, and rows past the count (left by a
killed append) are ignored and overwritten by the next append. Zarr's local store itself writes every
chunk and metadata document through a temp file + rename, so a killed write never leaves a torn chunk.
A producer resumes by opening with :meth:`DatasetStore.open_or_create` and reading :attr:`DatasetStore.state`.

Integrity: the commit record also holds a CRC-32 of every committed chunk of every array, computed over the
*decoded* committed rows (so rows a killed append left past the count do not change it) and read back from
disk after each append. Every read verifies the chunks it touches: a missing chunk file, a chunk that does
not decode (truncated) or whose rows do not match their checksum (bit flips) raises
:class:`StoreCorruptedError` naming the store, the array and the sample range, never zeros or garbage.
Stores written before checksums existed have no recorded checksum; their chunks are checked for presence
and decodability only (``scalinglab data verify`` says so).

One writer at a time: ``mode="a"`` takes an exclusive advisory lock (``fcntl.flock``) on ``.lock`` in the
store directory; the operating system releases it when the process dies, so a killed writer never blocks
the next one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab import __version__

try:  # POSIX advisory locks; on other platforms the single-writer rule is the user's to keep
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None

__all__ = ["DatasetStore", "DataValidationError", "StoreCorruptedError", "chunk_checksum", "validate_finite"]

_SCHEMA_KEY = "scalinglab_store"
_FORMAT_VERSION = 1
_COMMIT_VERSION = 2  # 2: the record carries per-chunk checksums (1: count and state only)
_CHECKSUM_ALGORITHM = "crc32"
_COMMIT_FILE = "commit.json"
_LOCK_FILE = ".lock"
_STANDARD_METADATA = ("producer", "config", "scalinglab_version", "created_at")
# Small per-sample arrays (targets, aux) get chunks of at least this many bytes, so that a store of
# 10^5 samples is not 10^4 tiny files per array.
_MIN_SMALL_CHUNK_BYTES = 1 << 20
_TARGET_CHUNK_BYTES = 4 << 20  # automatic input chunking aims at about 4 MiB of raw data per chunk


class DataValidationError(ValueError):
    """Data that cannot be stored: wrong shape, uncastable dtype, NaN/inf, unknown or missing key."""


class StoreCorruptedError(ValueError):
    """A committed chunk of a store is missing, cannot be decoded, or fails its checksum."""

    def __init__(self, path: Path, key: str, start: int, stop: int, reason: str) -> None:
        self.path, self.key, self.start, self.stop, self.reason = Path(path), key, int(start), int(stop), reason
        super().__init__(
            f"dataset store {path} is damaged: array '{key}' samples {start}..{stop - 1} {reason} "
            f"(run 'scalinglab data verify {path}')"
        )


def chunk_checksum(rows: np.ndarray) -> int:
    """CRC-32 of the decoded rows of one chunk (C order, stored dtype): what the commit record keeps."""
    return zlib.crc32(np.ascontiguousarray(rows).data)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _jsonable(obj: Any, what: str) -> Any:
    """Round-trip ``obj`` through JSON (tuples become lists) or fail with a message naming ``what``."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{what} must be JSON-serializable (finite numbers only): {exc}") from None


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays are common in producer configs/states; store them as plain JSON values
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory (directories: so that renames inside it are durable)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; durability is best effort there
        pass
    finally:
        os.close(fd)


def validate_finite(key: str, values: np.ndarray, offset: int = 0) -> None:
    """Raise :class:`DataValidationError` naming ``key`` and the first sample holding NaN or inf.

    Args:
        key: name of the array, used in the message.
        values: [n, ...] array; only floating and complex dtypes can hold non-finite values.
        offset: index of ``values[0]`` in the larger array it comes from (reported index = offset + i).
    """
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.complexfloating)):
        return
    if values.ndim == 0:
        values = values.reshape(1)
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = ~finite.reshape(len(values), -1).all(axis=1)
    first = int(np.argmax(bad))
    flat = values[first].reshape(-1)
    kind = "NaN" if np.isnan(flat).any() else "inf"
    raise DataValidationError(
        f"{key} contains {kind} at sample index {offset + first} ({int(bad.sum())} bad samples in total)"
    )


def _cast(key: str, values: Any, dtype: np.dtype, shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """Check shape ``[n, *shape]``, dtype castability and finiteness; return a C-contiguous copy in ``dtype``."""
    arr = np.asarray(values)
    expected = "[n" + "".join(f", {s}" for s in shape) + "]"
    if arr.ndim != 1 + len(shape) or tuple(arr.shape[1:]) != tuple(shape):
        raise DataValidationError(f"{key}: expected shape {expected}, got {list(arr.shape)}")
    if not np.can_cast(arr.dtype, dtype, casting="same_kind") or arr.dtype.kind in "OSUVMm":
        raise DataValidationError(f"{key}: dtype {arr.dtype} cannot be stored as {dtype}")
    validate_finite(key, arr, offset)
    if np.issubdtype(dtype, np.integer) and np.issubdtype(arr.dtype, np.integer) and arr.size:
        info = np.iinfo(dtype)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            raise DataValidationError(f"{key}: values in [{lo}, {hi}] do not fit dtype {dtype}")
    if np.issubdtype(dtype, np.floating) and arr.size and np.issubdtype(arr.dtype, np.floating):
        # float64 -> float32 overflow would silently create inf, which the store refuses
        big = np.finfo(dtype).max
        if np.abs(arr).max() > big:
            bad = int(np.argmax((np.abs(arr) > big).reshape(len(arr), -1).any(axis=1)))
            raise DataValidationError(f"{key}: value at sample index {offset + bad} overflows {dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _auto_chunk_rows(sample_shape: tuple[int, ...], dtype: np.dtype, minimum_bytes: int) -> int:
    row_bytes = max(1, int(np.prod(sample_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return int(min(65536, max(1, minimum_bytes // row_bytes)))


class DatasetStore:
    """A dataset on disk: inputs, targets with names and units, auxiliary per-sample arrays, metadata.

    Construct with :meth:`create`, :meth:`open` or :meth:`open_or_create`, never directly.

    Attributes read from the store:
        num_samples: committed samples (the only ones ever visible).
        input_shape: shape of one input sample, ``(C, H, W)`` or ``(F,)``.
        target_names, target_units: one name and one unit string per target column.
        aux_names: names of the auxiliary arrays.
        metadata: producer, its configuration, scalinglab_version, created_at, and free-form entries.
        state: the producer's resume state from the last commit (``{}`` if none).
    """

    def __init__(self, path: Path, group: Any, mode: str, lock_fd: int | None) -> None:
        self._path = path
        self._group = group
        self._mode = mode
        self._lock_fd = lock_fd
        attrs = group.attrs.asdict()
        self._schema = attrs[_SCHEMA_KEY]
        self._metadata = attrs.get("metadata", {})
        self._num_samples, self._state, self._checksums = self._read_commit()
        self._check_arrays()

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        input_shape: Sequence[int],
        target_names: Sequence[str],
        target_units: Sequence[str] | None = None,
        aux_specs: Mapping[str, tuple[str, Sequence[int]]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
        input_dtype: str = "float32",
    ) -> DatasetStore:
        """Create an empty store at ``path`` (which must not exist) and open it for appending.

        Args:
            path: directory to create.
            input_shape: shape of one input, ``(C, H, W)`` for images or ``(F,)`` for features.
            target_names: names of the P target columns (unique, non-empty).
            target_units: unit of each target (``""`` for dimensionless); default all ``""``.
            aux_specs: ``{name: (dtype, per_sample_shape)}``, e.g. ``{"phase": ("int8", ())}``.
            metadata: ``producer`` (str), ``config`` (the producer's full resolved configuration, a JSON
                object) and free-form JSON entries; ``scalinglab_version`` and ``created_at`` (UTC ISO 8601)
                are added.
            chunk_size: samples per chunk of ``inputs`` (default: about 4 MiB of raw data per chunk).
            input_dtype: floating dtype of ``inputs``.

        Returns:
            The new store, opened in append mode.
        """
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} already exists; open it with DatasetStore.open or open_or_create")
        schema = cls._make_schema(input_shape, target_names, target_units, aux_specs, chunk_size, input_dtype)
        meta = cls._make_metadata(metadata)

        import zarr

        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():  # left over by a creation killed before the rename below
            import shutil

            shutil.rmtree(tmp)
        # Build the whole skeleton under a temporary name and rename it into place, so a store path
        # either does not exist or is a complete empty store.
        group = zarr.create_group(store=str(tmp), zarr_format=3, attributes={_SCHEMA_KEY: schema, "metadata": meta})
        in_dtype = np.dtype(schema["input_dtype"])
        in_shape = tuple(schema["input_shape"])
        group.create_array(
            "inputs", shape=(0, *in_shape), chunks=(schema["chunk_size"], *in_shape), dtype=in_dtype
        )
        num_t = len(schema["target_names"])
        t = group.create_array(
            "targets",
            shape=(0, num_t),
            chunks=(_auto_chunk_rows((num_t,), np.float64, _MIN_SMALL_CHUNK_BYTES), num_t),
            dtype="float64",
        )
        t.attrs.update({"target_names": schema["target_names"], "target_units": schema["target_units"]})
        if schema["aux_specs"]:
            aux = group.require_group("aux")
            for name, (dt, shp) in schema["aux_specs"].items():
                rows = max(schema["chunk_size"], _auto_chunk_rows(tuple(shp), np.dtype(dt), _MIN_SMALL_CHUNK_BYTES))
                aux.create_array(name, shape=(0, *shp), chunks=(rows, *shp), dtype=np.dtype(dt))
        cls._write_commit_file(tmp, 0, {})
        os.replace(tmp, path)
        _fsync_path(path.parent)
        return cls.open(path, mode="a")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> DatasetStore:
        """Open an existing store; ``mode="r"`` (read-only, default) or ``"a"`` (append).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: ``path`` is not a scalinglab store, or its commit record is corrupted.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"dataset store not found: {path}")
        if not (path / "zarr.json").is_file():
            raise ValueError(f"{path} is not a scalinglab dataset store (no zarr.json)")
        try:
            meta = json.loads((path / "zarr.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a readable dataset store: zarr.json is corrupted ({exc})") from None
        if meta.get("node_type") != "group" or _SCHEMA_KEY not in meta.get("attributes", {}):
            raise ValueError(f"{path} is a Zarr node but not a scalinglab dataset store (no '{_SCHEMA_KEY}')")
        version = meta["attributes"][_SCHEMA_KEY].get("format_version")
        if version != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported store format version {version} (this is {_FORMAT_VERSION})")

        import zarr

        lock_fd = cls._acquire_lock(path) if mode == "a" else None
        try:
            group = zarr.open_group(str(path), mode="r" if mode == "r" else "r+", zarr_format=3)
            store = cls(path, group, mode, lock_fd)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        if mode == "a":
            store._remove_partial_files()
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, **create_kwargs: Any) -> DatasetStore:
        """Resume the store at ``path`` in append mode, or create it with ``create_kwargs``.

        An existing store must have the same schema (input shape and dtype, target names and units, aux
        specs) and the same ``metadata["config"]`` (and ``producer`` when given) as requested; otherwise a
        ``ValueError`` names the first difference, so a re-run with a changed configuration never mixes
        samples of two configurations.
        """
        path = Path(path)
        if not path.exists():
            return cls.create(path, **create_kwargs)
        store = cls.open(path, mode="a")
        try:
            store._check_same_schema(create_kwargs)
        except BaseException:
            store.close()
            raise
        return store

    # ------------------------------------------------------------------ schema helpers
    @staticmethod
    def _make_schema(input_shape, target_names, target_units, aux_specs, chunk_size, input_dtype) -> dict:
        try:
            in_shape = [int(s) for s in input_shape]
        except TypeError:
            raise ValueError(f"input_shape must be a sequence of ints, got {input_shape!r}") from None
        if not in_shape or any(s <= 0 for s in in_shape):
            raise ValueError(f"input_shape must be non-empty with positive sizes, got {in_shape}")
        if isinstance(target_names, str):
            raise ValueError("target_names must be a list of names, not a single string")
        names = [str(n) for n in target_names]
        if not names or any(not n for n in names):
            raise ValueError(f"target_names must be a non-empty list of non-empty names, got {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"target_names must be unique, got {names}")
        units = [""] * len(names) if target_units is None else [str(u) for u in target_units]
        if len(units) != len(names):
            raise ValueError(f"{len(units)} target units given for {len(names)} targets {names}")
        in_dt = np.dtype(input_dtype)
        if not np.issubdtype(in_dt, np.floating):
            raise ValueError(f"input_dtype must be a floating dtype, got {in_dt}")
        aux = {}
        for name, spec in (aux_specs or {}).items():
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"aux name {name!r} is not a valid array name")
            try:
                dt, shp = spec
                dt = np.dtype(dt)
                shp = [int(s) for s in shp]
            except (TypeError, ValueError):
                raise ValueError(f"aux spec for {name!r} must be (dtype, shape), got {spec!r}") from None
            if dt.kind not in "biuf":
                raise ValueError(f"aux {name!r}: dtype {dt} not supported (bool, int, uint or float)")
            aux[name] = [dt.str, shp]
        if chunk_size is None:
            chunk = _auto_chunk_rows(tuple(in_shape), in_dt, _TARGET_CHUNK_BYTES)
            chunk = min(chunk, 1024)  # a small append rewrites at most one partial chunk of this size
        else:
            chunk = int(chunk_size)
            if chunk <= 0:
                raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        return {
            "format_version": _FORMAT_VERSION,
            "input_shape": in_shape,
            "input_dtype": in_dt.str,
            "target_names": names,
            "target_units": units,
            "aux_specs": aux,
            "chunk_size": chunk,
        }

    @staticmethod
    def _make_metadata(metadata: Mapping[str, Any] | None) -> dict:
        meta = dict(_jsonable(dict(metadata or {}), "metadata"))
        for key in ("scalinglab_version", "created_at"):
            if key in meta:
                raise ValueError(f"metadata[{key!r}] is set by the store; do not pass it")
        meta.setdefault("producer", "unknown")
        meta.setdefault("config", {})
        if not isinstance(meta["producer"], str):
            raise ValueError(f"metadata['producer'] must be a string, got {meta['producer']!r}")
        meta["scalinglab_version"] = __version__
        meta["created_at"] = _utc_now()
        return meta

    def _check_same_schema(self, create_kwargs: Mapping[str, Any]) -> None:
        allowed = {"input_shape", "target_names", "target_units", "aux_specs", "metadata", "chunk_size", "input_dtype"}
        unknown = sorted(set(create_kwargs) - allowed)
        if unknown:
            raise ValueError(f"unknown DatasetStore.create argument(s): {', '.join(unknown)}")
        if "input_shape" not in create_kwargs or "target_names" not in create_kwargs:
            raise ValueError("open_or_create needs input_shape and target_names to check the existing store")
        want = self._make_schema(
            create_kwargs["input_shape"],
            create_kwargs["target_names"],
            create_kwargs.get("target_units"),
            create_kwargs.get("aux_specs"),
            self._schema["chunk_size"],  # chunking is a storage detail: a resume may not know it
            create_kwargs.get("input_dtype", "float32"),
        )
        for key in ("input_shape", "input_dtype", "target_names", "target_units", "aux_specs"):
            if want[key] != self._schema[key]:
                raise ValueError(
                    f"existing store {self._path} has {key}={self._schema[key]}, requested {want[key]}; "
                    "use a new path or the original configuration"
                )
        meta = _jsonable(dict(create_kwargs.get("metadata") or {}), "metadata")
        if _jsonable(meta.get("config", {}), "config") != self._metadata.get("config", {}):
            raise ValueError(
                f"existing store {self._path} was produced with a different configuration "
                f"(metadata['config'] differs); use a new path or the original configuration"
            )
        if "producer" in meta and meta["producer"] != self._metadata.get("producer"):
            raise ValueError(
                f"existing store {self._path} was produced by {self._metadata.get('producer')!r}, "
                f"not {meta['producer']!r}"
            )

    def _check_arrays(self) -> None:
        """Fail clearly if an array the schema promises is missing or shorter than the committed count."""
        names = ["inputs", "targets"] + [f"aux/{n}" for n in self._schema["aux_specs"]]
        for name in names:
            try:
                arr = self._group[name]
            except KeyError:
                raise ValueError(f"dataset store {self._path} is corrupted: array '{name}' is missing") from None
            if arr.shape[0] < self._num_samples:
                raise ValueError(
                    f"dataset store {self._path} is corrupted: commit record says {self._num_samples} samples "
                    f"but '{name}' holds {arr.shape[0]}"
                )

    # ------------------------------------------------------------------ commit record
    @staticmethod
    def _commit_payload(num_samples: int, state: dict, checksums: dict | None) -> dict:
        body = {"num_samples": int(num_samples), "state": state}
        if checksums is not None:
            body["checksums"] = {"algorithm": _CHECKSUM_ALGORITHM, "chunks": checksums}
        # the digest covers the chunk checksums too: a damaged record cannot vouch for damaged chunks
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        version = 1 if checksums is None else _COMMIT_VERSION
        return {"format": "scalinglab-commit", "version": version, **body, "sha256": digest, "committed_at": _utc_now()}

    @classmethod
    def _write_commit_file(cls, path: Path, num_samples: int, state: dict, checksums: dict | None = None) -> None:
        """Atomically replace ``commit.json``: temp file, fsync, ``os.replace``, fsync of the directory.

        Args:
            checksums: ``{array key: [CRC-32 or None per committed chunk]}``; None writes a record without
                checksums (the format of stores made before checksums existed).
        """
        text = json.dumps(cls._commit_payload(num_samples, state, checksums), sort_keys=True, indent=1)
        tmp = path / f"{_COMMIT_FILE}.tmp.{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / _COMMIT_FILE)
        _fsync_path(path)

    def _read_commit(self) -> tuple[int, dict, dict]:
        """``(num_samples, state, checksums)`` of the commit record; checksums ``{}`` for a pre-checksum store."""
        file = self._path / _COMMIT_FILE
        if not file.exists():
            raise ValueError(f"dataset store {self._path} is corrupted: commit record {_COMMIT_FILE} is missing")
        try:
            rec = json.loads(file.read_text())
            body = {"num_samples": rec["num_samples"], "state": rec["state"]}
            if "checksums" in rec:
                body["checksums"] = rec["checksums"]
            ok = (
                rec.get("format") == "scalinglab-commit"
                and isinstance(body["num_samples"], int)
                and body["num_samples"] >= 0
                and isinstance(body["state"], dict)
                and hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() == rec.get("sha256")
            )
            checksums = body.get("checksums", {"algorithm": _CHECKSUM_ALGORITHM, "chunks": {}})
            ok = ok and checksums.get("algorithm") == _CHECKSUM_ALGORITHM and isinstance(checksums["chunks"], dict)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise ValueError(
                f"dataset store {self._path} is corrupted: commit record {_COMMIT_FILE} is unreadable or fails "
                "its checksum"
            )
        return body["num_samples"], body["state"], checksums["chunks"]

    def refresh(self) -> None:
        """Re-read the commit record (a reader following a store that another process appends to)."""
        self._num_samples, self._state, self._checksums = self._read_commit()

    # ------------------------------------------------------------------ locking and clean-up
    @staticmethod
    def _acquire_lock(path: Path) -> int | None:
        if fcntl is None:  # pragma: no cover - non-POSIX
            return None
        fd = os.open(path / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ValueError(
                f"dataset store {path} is open for appending by another process (or another open handle); "
                "one writer at a time"
            ) from None
        return fd

    def _remove_partial_files(self) -> None:
        """Delete temp files a killed writer left behind (zarr's ``*.partial``, our ``commit.json.tmp.*``)."""
        for tmp in self._path.glob(f"{_COMMIT_FILE}.tmp.*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        for tmp in self._path.rglob("*.partial"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def close(self) -> None:
        """Release the append lock (reading still works; appending no longer does)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._mode = "r"

    def __enter__(self) -> DatasetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return (
            f"DatasetStore({str(self._path)!r}, num_samples={self._num_samples}, input_shape={self.input_shape}, "
            f"targets={self.target_names})"
        )

    # ------------------------------------------------------------------ properties
    @property
    def path(self) -> Path:
        return self._path

    @property
    def num_samples(self) -> int:
        return self._num_samples

    def __len__(self) -> int:
        return self._num_samples

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._schema["input_shape"])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._schema["input_dtype"])

    @property
    def target_names(self) -> list[str]:
        return list(self._schema["target_names"])

    @property
    def target_units(self) -> list[str]:
        return list(self._schema["target_units"])

    @property
    def aux_names(self) -> list[str]:
        return list(self._schema["aux_specs"])

    @property
    def aux_specs(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {k: (np.dtype(d).name, tuple(s)) for k, (d, s) in self._schema["aux_specs"].items()}

    @property
    def chunk_size(self) -> int:
        return int(self._schema["chunk_size"])

    @property
    def metadata(self) -> dict:
        return json.loads(json.dumps(self._metadata))

    @property
    def state(self) -> dict:
        return json.loads(json.dumps(self._state))

    def target_unit(self, name: str) -> str:
        """Unit string of target ``name`` (ValueError if unknown)."""
        return self.target_units[self._target_columns([name])[0]]

    # ------------------------------------------------------------------ writing
    def append(
        self,
        inputs: Any,
        targets: Any,
        aux: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> int:
        """Append n samples and commit them together with the producer's resume ``state``.

        Everything is validated before anything is written; a failed append leaves the store unchanged.
        An append killed part-way leaves the committed samples and state exactly as before it.

        Args:
            inputs: [n, *input_shape], castable to the input dtype, finite.
            targets: [n, P] in the order of ``target_names``, or ``{name: [n]}`` with every target name.
            aux: ``{name: [n, *shape]}`` for every declared aux array (none may be missing or unknown).
            state: JSON object saved in the commit record (e.g. ``{"draws_done": 128}``); ``None`` keeps the
                previous state. n may be 0 to commit a new state alone.

        Returns:
            The committed sample count after the append.

        Raises:
            DataValidationError: naming the key and, for NaN/inf, the first bad sample index.
        """
        batch, n = self._validated_batch(inputs, targets, aux)
        new_state = self._state if state is None else _jsonable(dict(state), "state")
        if not isinstance(new_state, dict):
            raise DataValidationError("state must be a JSON object (dict)")
        checksums = self._write_arrays(batch, self._num_samples) if n else None
        self._commit(self._num_samples + n, new_state, checksums)
        return self._num_samples

    def rewrite(self, start: int, inputs: Any, targets: Any, aux: Mapping[str, Any] | None = None) -> None:
        """Replace committed samples ``start .. start + n - 1`` in place (repair of a damaged range).

        Validated like :meth:`append`; the count and state stay as they are, the checksums of the touched
        chunks are recomputed. Each chunk file is replaced atomically, but a rewrite killed before its
        commit leaves chunks that fail their old checksums: ``data verify`` reports them and a second
        repair rewrites them again.
        """
        batch, n = self._validated_batch(inputs, targets, aux)
        if start < 0 or start + n > self._num_samples:
            raise ValueError(f"rewrite of samples {start}..{start + n - 1} outside the {self._num_samples} committed")
        if n:
            self._commit(self._num_samples, self._state, self._write_arrays(batch, start))

    def _validated_batch(self, inputs: Any, targets: Any, aux: Mapping[str, Any] | None) -> tuple[dict, int]:
        """Every array of one write, cast and checked (the same checks for append and rewrite)."""
        if self._mode != "a":
            raise ValueError(f"dataset store {self._path} is open read-only; open it with mode='a' to append")
        in_arr = np.asarray(inputs)
        if in_arr.ndim == 0:
            raise DataValidationError("inputs: expected an array [n, ...], got a scalar")
        n = int(in_arr.shape[0])
        batch = {"inputs": _cast("inputs", in_arr, self.input_dtype, self.input_shape)}
        batch["targets"] = self._cast_targets(targets, n)
        aux = dict(aux or {})
        declared = self._schema["aux_specs"]
        unknown = sorted(set(aux) - set(declared))
        if unknown:
            raise DataValidationError(f"unknown aux array(s) {unknown}; this store declares {sorted(declared)}")
        missing = sorted(set(declared) - set(aux))
        if missing:
            raise DataValidationError(f"aux array(s) {missing} missing from append (declared by this store)")
        for name, (dt, shp) in declared.items():
            batch[f"aux/{name}"] = _cast(f"aux '{name}'", aux[name], np.dtype(dt), tuple(shp))
        for key, arr in batch.items():
            if arr.shape[0] != n:
                raise DataValidationError(f"{key} has {arr.shape[0]} samples but inputs has {n}")
        return batch, n

    def _cast_targets(self, targets: Any, n: int) -> np.ndarray:
        names = self.target_names
        if isinstance(targets, Mapping):
            unknown = sorted(set(targets) - set(names))
            if unknown:
                raise DataValidationError(f"unknown target(s) {unknown}; this store has targets {names}")
            missing = [k for k in names if k not in targets]
            if missing:
                raise DataValidationError(f"target(s) {missing} missing from append")
            cols = []
            for name in names:
                col = np.asarray(targets[name])
                if col.ndim != 1:
                    raise DataValidationError(f"target '{name}': expected shape [n], got {list(col.shape)}")
                cols.append(_cast(f"target '{name}'", col[:, None], np.dtype("float64"), (1,))[:, 0])
            if any(len(c) != n for c in cols):
                raise DataValidationError(f"targets have {[len(c) for c in cols]} samples but inputs has {n}")
            return np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        arr = np.asarray(targets)
        if arr.ndim == 1 and len(names) == 1:
            arr = arr[:, None]
        return _cast("targets", arr, np.dtype("float64"), (len(names),))

    def _write_arrays(self, batch: Mapping[str, np.ndarray], start: int) -> dict:
        """Write rows ``[start, start + n)`` of every array, flush and checksum them.

        The rows go past the committed count (append) or over committed rows (rewrite). Committed rows that
        share a chunk with the written ones but are not rewritten are verified first (an append must not bless a
        damaged chunk with a fresh checksum); after the flush the touched chunks are read back from disk,
        the new rows compared with what was meant to be written, and their checksums computed from what is
        actually there.

        Returns:
            The checksum table for the commit that makes these rows visible.
        """
        import zarr

        stop = start + len(batch["inputs"])
        checksums = {k: list(v) for k, v in self._checksums.items()}
        for key in batch:
            rows = self._group[key].chunks[0]
            if start % rows:
                self._read_chunks(key, start // rows, start // rows + 1)
            if stop % rows and stop < self._num_samples:
                self._read_chunks(key, stop // rows, stop // rows + 1)
            if start < self._num_samples:
                # A rewrite replaces every committed row of these chunks: drop their (damaged) files first,
                # or zarr would decode them to merge the rows past the count that a partial write keeps.
                for c in range(-(-start // rows), min(stop, self._num_samples) // rows + 1):
                    if c * rows < min((c + 1) * rows, self._num_samples) <= stop:
                        self._chunk_file(key, c).unlink(missing_ok=True)
        # Every chunk gets a file, even an all-zero one, so that a missing file always means damage.
        with zarr.config.set({"array.write_empty_chunks": True}):
            for key, values in batch.items():
                arr = self._group[key]
                if arr.shape[0] < stop:
                    # Grow geometrically so that appends of a few samples do not rewrite the metadata each time.
                    cap = max(stop, min(arr.shape[0] * 2, arr.shape[0] + (1 << 20)))
                    arr.resize((cap, *arr.shape[1:]))
                arr[start:stop] = values
        self._flush(list(batch), start, stop)
        for key, values in batch.items():
            arr = self._group[key]
            rows = arr.chunks[0]
            first, last = start // rows, (stop - 1) // rows
            written = np.asarray(arr[first * rows : max(stop, min((last + 1) * rows, self._num_samples))])
            if not np.array_equal(written[start - first * rows : stop - first * rows], values):
                raise OSError(
                    f"dataset store {self._path}: array '{key}' rows {start}..{stop - 1} read back differently "
                    "from what was written (disk full or failing?); nothing was committed"
                )
            sums = checksums.setdefault(key, [])
            sums.extend([None] * (last + 1 - len(sums)))
            for c in range(first, last + 1):
                sums[c] = chunk_checksum(written[(c - first) * rows : (c + 1 - first) * rows])
        return checksums

    def _flush(self, keys: Sequence[str], start: int, stop: int) -> None:
        """fsync the chunk files holding rows ``[start, stop)`` before the commit record points at them."""
        for key in keys:
            arr = self._group[key]
            rows = arr.chunks[0]
            adir = self._path / key
            dirs = {adir, adir / "c"}
            for c in range(start // rows, (stop - 1) // rows + 1):
                node = adir / "c" / str(c)
                if node.is_dir():
                    for root, _, files in os.walk(node):
                        dirs.add(Path(root))
                        for f in files:
                            _fsync_path(Path(root) / f)
                elif node.exists():
                    _fsync_path(node)
            _fsync_path(adir / "zarr.json")
            for d in dirs:
                _fsync_path(d)

    def _commit(self, num_samples: int, state: dict, checksums: dict | None = None) -> None:
        checksums = self._checksums if checksums is None else checksums
        self._write_commit_file(self._path, num_samples, state, checksums)
        self._num_samples, self._state, self._checksums = num_samples, state, checksums

    # ------------------------------------------------------------------ reading
    def _index(self, indices: Any) -> np.ndarray | None:
        if indices is None:
            return None
        if isinstance(indices, slice):
            start, stop, step = indices.indices(self._num_samples)
            return np.arange(start, stop, step, dtype=np.int64)
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self._num_samples,):
                raise ValueError(f"boolean index must have shape [{self._num_samples}], got {list(idx.shape)}")
            return np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"indices must be a 1-D integer array, got shape {list(idx.shape)} dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self._num_samples):
            bad = int(idx[(idx < 0) | (idx >= self._num_samples)][0])
            raise ValueError(f"index {bad} out of range for a store of {self._num_samples} samples")
        return idx

    def _read(self, key: str, indices: Any) -> np.ndarray:
        """Rows of array ``key`` at ``indices`` (all committed rows if None), in the order given.

        Random indices are served chunk by chunk: the distinct indices are sorted, runs of touched chunks
        are read as contiguous slices (each chunk decompressed once), and the rows are put back in the
        requested order. Reading index by index would decompress a chunk per sample.
        """
        arr = self._group[key]
        idx = self._index(indices)
        rows = arr.chunks[0]
        if idx is None:
            return self._read_chunks(key, 0, -(-self._num_samples // rows))
        if idx.size and np.all(np.diff(idx) == 1):  # a contiguous range: one read of the chunks it touches
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            block = self._read_chunks(key, lo // rows, (hi - 1) // rows + 1)
            return block[lo - (lo // rows) * rows : hi - (lo // rows) * rows]
        out = np.empty((len(idx), *arr.shape[1:]), dtype=arr.dtype)
        if idx.size == 0:
            return out
        uniq, inverse = np.unique(idx, return_inverse=True)
        chunk_ids = uniq // rows
        # Split the sorted distinct indices into runs of consecutive chunk ids (at most 16 chunks per read,
        # bounding the memory of one read).
        breaks = np.flatnonzero((np.diff(chunk_ids) > 1) | (np.diff(chunk_ids // 16) != 0)) + 1
        picked = np.empty((len(uniq), *arr.shape[1:]), dtype=arr.dtype)
        for part in np.split(np.arange(len(uniq)), breaks):
            lo = int(chunk_ids[part[0]]) * rows
            block = self._read_chunks(key, int(chunk_ids[part[0]]), int(chunk_ids[part[-1]]) + 1)
            picked[part] = block[uniq[part] - lo]
        out[...] = picked[inverse.reshape(-1)]
        return out

    def _chunk_file(self, key: str, chunk: int) -> Path:
        arr = self._group[key]
        return self._path / key / arr.metadata.encode_chunk_key((chunk,) + (0,) * (arr.ndim - 1))

    def _read_chunks(self, key: str, first: int, stop: int) -> np.ndarray:
        """Committed rows of chunks ``first .. stop - 1`` of array ``key``, each chunk verified.

        Raises:
            StoreCorruptedError: a chunk file is missing, does not decode, or fails its recorded checksum.
        """
        arr = self._group[key]
        rows = arr.chunks[0]
        lo, hi = first * rows, min(stop * rows, self._num_samples)
        if hi <= lo:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        sums = self._checksums.get(key, [])

        def span(c: int) -> tuple[int, int]:
            return c * rows, min((c + 1) * rows, self._num_samples)

        for c in range(first, stop):
            recorded = c < len(sums) and sums[c] is not None
            # A store written before checksums has no file for an all-fill aux chunk (zarr skipped it);
            # inputs and targets of real data are never a whole chunk of zeros.
            if (recorded or not key.startswith("aux/")) and not self._chunk_file(key, c).is_file():
                raise StoreCorruptedError(self._path, key, *span(c), "are lost: their chunk file is missing")
        try:
            block = np.asarray(arr[lo:hi])
        except Exception:  # noqa: BLE001 - a damaged chunk fails inside the codec with any exception type
            block = None
        for c in range(first, stop):
            a, b = span(c)
            if block is None:
                try:
                    part = np.asarray(arr[a:b])
                except Exception as exc:  # noqa: BLE001 - as above; the chunk is named, the cause kept short
                    reason = f"cannot be decoded ({type(exc).__name__}: {str(exc)[:80] or 'truncated?'})"
                    raise StoreCorruptedError(self._path, key, a, b, reason) from None
            else:
                part = block[a - lo : b - lo]
            if c < len(sums) and sums[c] is not None and chunk_checksum(part) != sums[c]:
                raise StoreCorruptedError(self._path, key, a, b, "fail their checksum (the chunk file is damaged)")
        if block is None:  # a decode error that no single chunk reproduces: report the whole range
            raise StoreCorruptedError(self._path, key, lo, hi, "cannot be decoded")
        return block

    def chunk_ranges(self, key: str) -> list[tuple[int, int]]:
        """``(start, stop)`` sample range of every committed chunk of array ``key`` (``inputs``, ``aux/<name>``)."""
        rows = self._group[key].chunks[0]
        return [(a, min(a + rows, self._num_samples)) for a in range(0, self._num_samples, rows)]

    def has_checksum(self, key: str, chunk: int) -> bool:
        """Whether the commit record holds a checksum for ``chunk`` of ``key`` (False for pre-checksum stores)."""
        sums = self._checksums.get(key, [])
        return chunk < len(sums) and sums[chunk] is not None

    def verify_chunk(self, key: str, chunk: int) -> None:
        """Read and verify one committed chunk (StoreCorruptedError if it is missing or damaged)."""
        self._read_chunks(key, chunk, chunk + 1)

    def array_keys(self) -> list[str]:
        """Every per-sample array of the store: ``inputs``, ``targets``, ``aux/<name>``."""
        return ["inputs", "targets"] + [f"aux/{n}" for n in self._schema["aux_specs"]]

    def inputs(self, indices: Any = None) -> np.ndarray:
        """Inputs ``[n, *input_shape]`` at ``indices`` (1-D ints, a slice or a boolean mask; all if None)."""
        return self._read("inputs", indices)

    def _target_columns(self, names: Sequence[str] | str | None) -> list[int]:
        all_names = self.target_names
        if names is None:
            return list(range(len(all_names)))
        if isinstance(names, str):
            names = [names]
        cols = []
        for name in names:
            if name not in all_names:
                raise ValueError(f"unknown target {name!r}; this dataset has targets {all_names}")
            cols.append(all_names.index(name))
        return cols

    def targets(self, names: Sequence[str] | str | None = None, indices: Any = None) -> np.ndarray:
        """Targets ``[n, len(names)]`` (float64, physical units) for ``names`` (all if None) at ``indices``.

        Raises:
            ValueError: a name that is not a target of this dataset.
        """
        cols = self._target_columns(names)
        return self._read("targets", indices)[:, cols]

    def aux(self, name: str, indices: Any = None) -> np.ndarray:
        """Auxiliary array ``name`` ``[n, ...]`` at ``indices`` (ValueError if unknown)."""
        if name not in self._schema["aux_specs"]:
            raise ValueError(f"unknown aux array {name!r}; this dataset has {self.aux_names}")
        return self._read(f"aux/{name}", indices)

    def iter_chunks(self, rows: int | None = None):
        """Yield ``(start, stop)`` ranges covering the committed samples, ``rows`` at a time (default chunk)."""
        step = int(rows or self.chunk_size)
        for start in range(0, self._num_samples, step):
            yield start, min(start + step, self._num_samples)

    def summary(self) -> dict:
        """JSON-serializable description used by ``scalinglab data info``: counts, shapes, target ranges."""
        tg = self.targets() if self._num_samples else np.zeros((0, len(self.target_names)))
        targets = []
        for j, (name, unit) in enumerate(zip(self.target_names, self.target_units)):
            col = tg[:, j]
            targets.append(
                {
                    "name": name,
                    "unit": unit,
                    "min": float(col.min()) if col.size else None,
                    "max": float(col.max()) if col.size else None,
                }
            )
        aux = [{"name": k, "dtype": d, "shape": list(s)} for k, (d, s) in self.aux_specs.items()]
        meta = self.metadata
        return {
            "path": str(self._path),
            "num_samples": self._num_samples,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype.name,
            "chunk_size": self.chunk_size,
            "targets": targets,
            "aux": aux,
            "producer": meta.get("producer"),
            "created_at": meta.get("created_at"),
            "scalinglab_version": meta.get("scalinglab_version"),
            "config": meta.get("config"),
            "metadata": {k: v for k, v in meta.items() if k not in _STANDARD_METADATA},
            "state": self.state,
        }

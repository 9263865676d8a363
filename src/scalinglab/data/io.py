"""Bring your own data: import HDF5 / NPZ files into a dataset store, export a store back to them.

Import reads named arrays from the file: one inputs array ``[N, C, H, W]`` or ``[N, F]``; targets from one
2-D array ``[N, P]`` or several 1-D arrays ``[N]`` (or a mix, concatenated in the order given); optional
auxiliary per-sample arrays. Everything is validated (shapes, dtypes, NaN/inf with the key and the first
bad sample index, equal N) while the store is built under a temporary name; the store appears at its path
only when complete, so a failed or killed import leaves nothing behind at ``out``.

Export writes ``inputs``, ``targets``, ``target_names``, ``target_units``, ``aux/<name>`` and the JSON
strings ``metadata`` and ``state``; importing an export (``--inputs inputs --targets targets``) restores the
target names and units from the file.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.data.store import DatasetStore, _cast
from scalinglab.progress import progress_bar

__all__ = ["import_file", "export_store", "list_keys"]

_SUFFIXES_H5 = (".h5", ".hdf5", ".hdf")
_SUFFIXES_NPZ = (".npz",)


class _Source:
    """Uniform read access to the arrays of an .h5 or .npz file."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"input file not found: {path}")
        suffix = path.suffix.lower()
        self.path = path
        self._cache: dict[str, np.ndarray] = {}
        if suffix in _SUFFIXES_H5:
            import h5py

            try:
                self._h5 = h5py.File(path, "r")
            except OSError as exc:
                raise ValueError(f"{path} is not a readable HDF5 file ({exc})") from None
            self._npz = None
            names: list[str] = []
            self._h5.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            self.keys = names
        elif suffix in _SUFFIXES_NPZ:
            self._h5 = None
            if path.is_file() and not zipfile.is_zipfile(path):
                # numpy would call any non-zip content "pickled data": say what is wrong instead
                raise ValueError(f"{path} is not an .npz archive (no zip structure: truncated, or not written by "
                                 "numpy.savez)")
            try:
                self._npz = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                first = (str(exc).splitlines() or [""])[0][:80]
                raise ValueError(f"{path} is not a readable .npz file ({type(exc).__name__}: {first})") from None
            self.keys = list(self._npz.files)
        else:
            raise ValueError(f"unsupported file type {path.suffix!r}: use .h5/.hdf5 or .npz")

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
        if self._npz is not None:
            self._npz.close()

    def require(self, key: str, role: str) -> None:
        if key not in self.keys:
            shown = ", ".join(self.keys[:30]) + (" ..." if len(self.keys) > 30 else "")
            raise ValueError(f"{role} key {key!r} not found in {self.path.name}; available keys: {shown}")

    def _array(self, key: str) -> Any:
        if self._h5 is not None:
            return self._h5[key]
        if key not in self._cache:  # npz members are decompressed whole; keep each one once
            try:
                self._cache[key] = self._npz[key]
            except Exception as exc:  # noqa: BLE001 - damaged members fail in zlib, zipfile or numpy's header parser
                raise ValueError(f"array {key!r} of {self.path} cannot be read (truncated or damaged file? "
                                 f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:80]})") from None
        return self._cache[key]

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._array(key).shape)

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(self._array(key).dtype)

    def read(self, key: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        arr = self._array(key)
        if start is None:
            return np.asarray(arr[()])
        return np.asarray(arr[start:stop])

    def read_strings(self, key: str) -> list[str] | None:
        """A 1-D array of strings (names/units saved by :func:`export_store`), or None if it is not one."""
        if key not in self.keys:
            return None
        raw = self.read(key)
        if raw.ndim != 1:
            return None
        out = []
        for v in raw.tolist():
            if isinstance(v, bytes):
                v = v.decode()
            if not isinstance(v, str):
                return None
            out.append(v)
        return out


def list_keys(path: str | os.PathLike) -> dict[str, tuple[list[int], str]]:
    """``{key: (shape, dtype)}`` of every array in an .h5 or .npz file (to choose ``--inputs``/``--targets``)."""
    src = _Source(Path(path))
    try:
        return {k: (list(src.shape(k)), src.dtype(k).name) for k in src.keys}
    finally:
        src.close()


def _split_keys(keys: str | Sequence[str] | None) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        keys = keys.split(",")
    return [k.strip() for k in keys if k.strip()]


def import_file(
    file: str | os.PathLike,
    out: str | os.PathLike,
    *,
    inputs: str,
    targets: str | Sequence[str],
    target_names: str | Sequence[str] | None = None,
    units: str | Sequence[str] | None = None,
    aux: str | Sequence[str] | None = None,
    chunk_size: int | None = None,
    input_dtype: str = "float32",
    metadata: dict | None = None,
    quiet: bool = False,
) -> DatasetStore:
    """Import arrays of an .h5/.npz file into a new dataset store at ``out``.

    Args:
        file: source file (.h5/.hdf5 or .npz).
        out: store path to create (must not exist).
        inputs: key of the inputs array [N, C, H, W] or [N, F] (HDF5: a path such as ``"data/images"``).
        targets: key(s) of the targets: one [N, P] array and/or 1-D [N] arrays, comma-separated or a list.
        target_names: one name per target column (default: the key of a 1-D array, ``key_j`` for column j
            of a 2-D one, or the file's ``target_names`` array when it has one of the right length).
        units: one unit per target (default ``""``, or the file's ``target_units``).
        aux: key(s) of auxiliary per-sample arrays [N, ...]; stored under the key's last path component.
        chunk_size: samples per chunk of the store (default: automatic).
        input_dtype: floating dtype of the stored inputs.
        metadata: extra metadata entries (``producer`` defaults to ``"import"``).
        quiet: no progress bar.

    Returns:
        The new store, opened read-only.

    Raises:
        ValueError: missing key (the message lists the file's keys), mismatched N (names the keys),
            wrong shapes, NaN/inf (names the key and the first bad sample index), bad names/units.
        FileNotFoundError: ``file`` does not exist.
        FileExistsError: ``out`` exists.
    """
    file, out = Path(file), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose a new --out path")
    tkeys, akeys = _split_keys(targets), _split_keys(aux)
    if not inputs:
        raise ValueError("an inputs key is required (--inputs KEY)")
    if not tkeys:
        raise ValueError("at least one targets key is required (--targets KEY[,KEY])")
    src = _Source(file)
    try:
        return _import(src, file, out, inputs, tkeys, target_names, units, akeys, chunk_size, input_dtype,
                       metadata, quiet)
    finally:
        src.close()


def _import(src, file, out, inputs, tkeys, target_names, units, akeys, chunk_size, input_dtype, metadata, quiet):
    src.require(inputs, "inputs")
    for k in tkeys:
        src.require(k, "targets")
    for k in akeys:
        src.require(k, "aux")
    in_shape = src.shape(inputs)
    if len(in_shape) < 2:
        raise ValueError(f"inputs {inputs!r} must be [N, F] or [N, C, H, W], got shape {list(in_shape)}")
    n = in_shape[0]
    if n == 0:
        raise ValueError(f"inputs {inputs!r} holds no samples")
    sizes = {inputs: n}
    for k in tkeys + akeys:
        shp = src.shape(k)
        if len(shp) == 0:
            raise ValueError(f"{k!r} is a scalar, not a per-sample array")
        sizes[k] = shp[0]
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"arrays have different numbers of samples N ({listing})")
    dtypes = {k: src.dtype(k) for k in [inputs, *tkeys, *akeys]}
    for k, dt in dtypes.items():
        if dt.kind not in "biuf":
            raise ValueError(f"{k!r} has dtype {dt}, not a numeric array")
    # target columns: 1-D keys give one column, 2-D keys [N, P_k] give P_k columns
    default_names: list[str] = []
    for k in tkeys:
        shp = src.shape(k)
        if len(shp) == 1:
            default_names.append(k.rsplit("/", 1)[-1])
        elif len(shp) == 2:
            default_names += [f"{k.rsplit('/', 1)[-1]}_{j}" for j in range(shp[1])]
        else:
            raise ValueError(f"targets {k!r} must be [N] or [N, P], got shape {list(shp)}")
    num_t = len(default_names)
    file_names, file_units = src.read_strings("target_names"), src.read_strings("target_units")
    if target_names is not None:
        names = _split_keys(target_names)
        if len(names) != num_t:
            raise ValueError(
                f"{len(names)} target names {names} given for {num_t} target columns of {', '.join(tkeys)}"
            )
    elif file_names is not None and len(file_names) == num_t:
        names = file_names
    else:
        names = default_names
    if units is not None:
        unit_list = [u.strip() for u in units.split(",")] if isinstance(units, str) else [str(u) for u in units]
        if len(unit_list) != num_t:
            raise ValueError(f"{len(unit_list)} units given for {num_t} targets {names}")
    elif file_units is not None and len(file_units) == num_t:
        unit_list = file_units
    else:
        unit_list = [""] * num_t
    aux_specs = {}
    for k in akeys:
        name = k.rsplit("/", 1)[-1]
        if name in aux_specs:
            raise ValueError(f"two aux keys end in the same name {name!r}")
        aux_specs[name] = (dtypes[k].name, tuple(src.shape(k)[1:]))

    meta = dict(metadata or {})
    meta.setdefault("producer", "import")
    meta.setdefault(
        "config",
        {"source": str(file.resolve()), "inputs": inputs, "targets": tkeys, "aux": akeys},
    )
    if "metadata" in src.keys:  # a store exported by scalinglab: keep where it came from
        try:
            raw = src.read("metadata").item()
            meta.setdefault("imported_metadata", json.loads(raw.decode() if isinstance(raw, bytes) else str(raw)))
        except (ValueError, TypeError):
            pass

    tmp = out.with_name(out.name + ".importing")
    if tmp.exists():  # left by an import killed part-way
        shutil.rmtree(tmp)
    store = None
    try:
        store = DatasetStore.create(
            tmp, input_shape=in_shape[1:], target_names=names, target_units=unit_list, aux_specs=aux_specs,
            metadata=meta, chunk_size=chunk_size, input_dtype=input_dtype,
        )  # fmt: skip
        block = max(store.chunk_size, 1) * max(1, 256 // max(store.chunk_size, 1))
        with progress_bar(n, f"import {file.name}", quiet=quiet) as bar:
            for start in range(0, n, block):
                stop = min(n, start + block)
                # validate with the global offset so the error names the sample index in the file
                x = _cast(inputs, src.read(inputs, start, stop), store.input_dtype, store.input_shape, start)
                cols = []
                for k in tkeys:
                    t = src.read(k, start, stop)
                    t = t[:, None] if t.ndim == 1 else t
                    cols.append(_cast(k, t, np.dtype("float64"), (t.shape[1],), start))
                y = np.concatenate(cols, axis=1)
                a = {}
                for k in akeys:
                    name = k.rsplit("/", 1)[-1]
                    dt, shp = aux_specs[name]
                    a[name] = _cast(k, src.read(k, start, stop), np.dtype(dt), shp, start)
                store.append(x, y, aux=a, state={"imported": stop})
                bar.advance(stop - start)
        store.close()
        os.replace(tmp, out)
    except BaseException:
        if store is not None:
            store.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetStore.open(out)


def export_store(store: DatasetStore | str | os.PathLike, out: str | os.PathLike, *, quiet: bool = False) -> Path:
    """Write a store's committed samples to ``out`` (.npz or .h5/.hdf5).

    Keys: ``inputs`` [N, ...], ``targets`` [N, P], ``target_names`` [P], ``target_units`` [P],
    ``aux/<name>`` [N, ...], ``metadata`` and ``state`` (JSON strings). The file is written under a
    temporary name and renamed when complete.

    Returns:
        The path written.
    """
    if not isinstance(store, DatasetStore):
        store = DatasetStore.open(store)
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in _SUFFIXES_H5 + _SUFFIXES_NPZ:
        raise ValueError(f"unsupported export file type {out.suffix!r}: use .npz or .h5")
    if not out.parent.exists():
        raise FileNotFoundError(f"directory of the export file does not exist: {out.parent}")
    tmp = out.with_name(f".{out.name}.tmp{suffix}")
    n = store.num_samples
    meta_json = json.dumps(store.metadata, sort_keys=True)
    state_json = json.dumps(store.state, sort_keys=True)
    try:
        if suffix in _SUFFIXES_NPZ:
            arrays = {
                "inputs": store.inputs(),
                "targets": store.targets(),
                "target_names": np.array(store.target_names, dtype=str),
                "target_units": np.array(store.target_units, dtype=str),
                "metadata": np.array(meta_json),
                "state": np.array(state_json),
            }
            for name in store.aux_names:
                arrays[f"aux/{name}"] = store.aux(name)
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        else:
            import h5py

            str_dt = h5py.string_dtype()
            with h5py.File(tmp, "w") as h5:
                chunk = (max(1, min(store.chunk_size, n)), *store.input_shape) if n else None
                dset = h5.create_dataset("inputs", shape=(n, *store.input_shape), dtype=store.input_dtype, chunks=chunk)
                with progress_bar(n, f"export {out.name}", quiet=quiet) as bar:
                    for start, stop in store.iter_chunks(rows=max(store.chunk_size, 256)):
                        dset[start:stop] = store.inputs(slice(start, stop))
                        bar.advance(stop - start)
                h5.create_dataset("targets", data=store.targets())
                h5.create_dataset("target_names", data=np.array(store.target_names, dtype=object), dtype=str_dt)
                h5.create_dataset("target_units", data=np.array(store.target_units, dtype=object), dtype=str_dt)
                for name in store.aux_names:
                    h5.create_dataset(f"aux/{name}", data=store.aux(name))
                h5.create_dataset("metadata", data=meta_json, dtype=str_dt)
                h5.create_dataset("state", data=state_json, dtype=str_dt)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


"""Checking a whole dataset store, and re-simulating damaged sample ranges where the producer is known.

:func:`verify_store` reads every committed chunk of every array once, checking that its file exists, that it
decodes and that its rows match the CRC-32 the commit record holds (see :mod:`scalinglab.data.store`), and
returns every problem found rather than stopping at the first.

:func:`repair_store` replaces the samples of damaged chunks by fresh ones from the producer that made the
store. A producer opts in by registering a *re-simulator* under its ``metadata["producer"]`` name::

    @register_resimulator("my_campaign")
    def resimulate(store: DatasetStore, indices: np.ndarray) -> dict:
        # the samples at these store indices (one damaged range, contiguous), exactly as the campaign made
        # them the first time, from store.metadata["config"] and the per-sample records in store.state;
        # the store is open for the repair: read its intact samples (to cross-check), never write
        return {"inputs": x, "targets": y, "aux": {"phase": p}}

The re-simulator must reproduce the original samples from the stored configuration and per-sample records
(seeds, parameter draws): repair writes them in place, so a non-deterministic producer would silently change
the dataset. It raises ValueError (one line) when it cannot (records missing, a cross-check against intact
samples fails); ``repair_store`` refuses a producer without a registered re-simulator, naming it.

Registration happens on the producer's side (``data`` never imports a simulator): ``scalinglab data repair``
imports the producer modules that register one before repairing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.data.store import DatasetStore, StoreCorruptedError

__all__ = [
    "ChunkDamage",
    "StoreReport",
    "register_resimulator",
    "registered_resimulators",
    "repair_store",
    "verify_store",
]

Resimulator = Callable[[DatasetStore, np.ndarray], dict]
_RESIMULATORS: dict[str, Resimulator] = {}


@dataclass(frozen=True)
class ChunkDamage:
    """One damaged chunk: array key, sample range ``[start, stop)`` and what is wrong with it."""

    key: str
    start: int
    stop: int
    reason: str

    def describe(self) -> str:
        return f"array '{self.key}' samples {self.start}..{self.stop - 1} {self.reason}"


@dataclass
class StoreReport:
    """What :func:`verify_store` found.

    Attributes:
        path: the store.
        num_samples: committed samples.
        num_chunks: chunks checked over all arrays.
        num_unrecorded: chunks without a recorded checksum (written before checksums): checked for presence
            and decodability only.
        damage: every damaged chunk, in array then sample order.
        error: a store that cannot even be opened (commit record or metadata damaged); ``None`` otherwise.
    """

    path: Path
    num_samples: int = 0
    num_chunks: int = 0
    num_unrecorded: int = 0
    damage: list[ChunkDamage] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.damage

    def damaged_ranges(self) -> list[tuple[int, int]]:
        """Merged sample ranges ``[start, stop)`` touched by any damaged chunk of any array."""
        spans = sorted((d.start, d.stop) for d in self.damage)
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return [(a, b) for a, b in merged]


def verify_store(path: str | os.PathLike) -> StoreReport:
    """Check every committed chunk of the store at ``path`` (see the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist (a report cannot say anything about it).
    """
    path = Path(path)
    report = StoreReport(path=path)
    try:
        store = DatasetStore.open(path)
    except FileNotFoundError:
        raise
    except ValueError as exc:
        report.error = str(exc)
        return report
    report.num_samples = store.num_samples
    for key in store.array_keys():
        for chunk, (start, stop) in enumerate(store.chunk_ranges(key)):
            report.num_chunks += 1
            report.num_unrecorded += not store.has_checksum(key, chunk)
            try:
                store.verify_chunk(key, chunk)
            except StoreCorruptedError as exc:
                report.damage.append(ChunkDamage(key, start, stop, exc.reason))
    return report


def register_resimulator(producer: str) -> Callable[[Resimulator], Resimulator]:
    """Decorator: register ``fn(store, indices) -> {"inputs", "targets", "aux"}`` for ``producer``."""

    def decorate(fn: Resimulator) -> Resimulator:
        _RESIMULATORS[producer] = fn
        return fn

    return decorate


def registered_resimulators() -> list[str]:
    """Producer names that :func:`repair_store` can re-simulate."""
    return sorted(_RESIMULATORS)


def repair_store(path: str | os.PathLike, *, log: Callable[[str], None] = lambda _: None) -> StoreReport:
    """Re-simulate every damaged sample range of the store at ``path`` in place; return the report after.

    Raises:
        ValueError: the store cannot be opened, or its producer has no registered re-simulator.
    """
    before = verify_store(path)
    if before.error is not None:
        raise ValueError(before.error)
    if before.ok:
        return before
    with DatasetStore.open(path, mode="a") as store:
        producer = store.metadata.get("producer")
        fn = _RESIMULATORS.get(producer)
        if fn is None:
            known = ", ".join(registered_resimulators()) or "none"
            raise ValueError(
                f"cannot repair {path}: no re-simulator is registered for its producer {producer!r} "
                f"(registered: {known}); re-create the store or restore it from a copy"
            )
        for start, stop in before.damaged_ranges():
            log(f"re-simulating samples {start}..{stop - 1} of {path} ({producer})")
            batch = fn(store, np.arange(start, stop))
            store.rewrite(start, batch["inputs"], batch["targets"], aux=batch.get("aux"))
    return verify_store(path)

"""Re-simulating damaged samples of a CrI3 campaign store, bit-identically (``scalinglab data repair``).

A sample's ground state depends, in its last bits, on the other draws relaxed in the same batch (one batch per
angle within a chunk of draws), so a damaged sample is reproduced by re-simulating the whole chunk of draws it
came from, exactly as the campaign did, and keeping the same rows. The campaign records each append of each store
in its commit state (``campaign.py``, "Chunk records"):
``[first_sample, num_samples, draw_start, draw_stop, lo, hi, device, threads]``; the samples are the rows of
``simulate_chunk(config, draw_start, draw_stop)`` with ``lo <= draw < hi`` that the store keeps: non-FM rows
(all rows with ``include_fm``) in the main store, FM rows in the FM store (inputs ``[m_top, m_bottom]``).

Before anything is written, the re-simulated rows of every intact sample of the same chunks are compared with
the stored ones, every array, bit for bit: a different torch, machine or compile path that changes the results is
refused instead of silently mixing two datasets. A store written before the chunk records (or samples appended
before them, by an older version resuming a campaign) is refused with one line.
"""

from __future__ import annotations

import numpy as np
import torch

from scalinglab.data.integrity import register_resimulator
from scalinglab.data.store import DatasetStore, StoreCorruptedError
from scalinglab.simulators.moire.campaign import (
    AUX_SPECS,
    PRODUCER,
    CampaignConfig,
    check_device,
    simulate_chunk,
)
from scalinglab.simulators.moire.phases import FM

__all__ = ["resimulate_samples"]


def _config(store: DatasetStore, device: str) -> CampaignConfig:
    stored = store.metadata["config"]
    kw = dict(stored)
    profile, seed = kw.pop("profile"), kw.pop("seed")
    config = CampaignConfig.from_profile(profile, seed, device=device, **kw)
    if config.to_dict() != stored:  # a field the rebuild would resolve differently: not the same campaign
        raise ValueError(f"cannot repair {store.path}: its stored configuration does not rebuild to itself")
    return config


def _rows(store: DatasetStore, res: dict, lo: int, hi: int) -> np.ndarray:
    """Row indices of one re-simulated chunk that the store kept (module docstring)."""
    draws = res["draw"]
    is_fm = res["phase"] == FM
    if store.metadata.get("store_kind") == "fm":
        keep = is_fm
    else:
        keep = np.ones(len(draws), dtype=bool) if store.metadata["config"]["include_fm"] else ~is_fm
    return np.nonzero(keep & (draws >= lo) & (draws < hi))[0]


def _arrays(store: DatasetStore, res: dict, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The store's arrays (``inputs``, ``targets``, ``aux/<name>``) for the kept rows, in the store's dtypes."""
    if store.metadata.get("store_kind") == "fm":
        inputs = np.stack([res["m_top"][rows], res["m_bottom"][rows]], 1)
    else:
        inputs = res["images"][rows]
    out = {"inputs": np.asarray(inputs, dtype=store.input_dtype), "targets": np.asarray(res["targets"][rows])}
    for name, (dt, _) in AUX_SPECS.items():
        out[f"aux/{name}"] = np.asarray(res[name][rows], dtype=dt)
    return out


def _read(store: DatasetStore, key: str, indices: np.ndarray) -> np.ndarray:
    if key == "inputs":
        return store.inputs(indices=indices)
    if key == "targets":
        return store.targets(indices=indices)
    return store.aux(key.removeprefix("aux/"), indices=indices)


def _cross_check(store: DatasetStore, arrays: dict, first: int, skip: tuple[int, int], draws: tuple[int, int]):
    """Compare re-simulated rows with every intact stored sample of the record, chunk by chunk, bit for bit."""
    n = len(arrays["inputs"])
    for key, values in arrays.items():
        for a, b in store.chunk_ranges(key):
            idx = np.arange(max(a, first), min(b, first + n))
            idx = idx[(idx < skip[0]) | (idx >= skip[1])]
            if not idx.size:
                continue
            try:
                stored = _read(store, key, idx)
            except StoreCorruptedError:  # another damaged range: it gets its own repair
                continue
            fresh = values[idx - first]
            if stored.dtype != fresh.dtype or stored.tobytes() != fresh.tobytes():
                raise ValueError(
                    f"cannot repair {store.path}: re-simulating draws {draws[0]}..{draws[1] - 1} does not reproduce "
                    f"the intact samples {int(idx[0])}..{int(idx[-1])} bit-identically (array '{key}'; another "
                    "torch version, machine or device?); samples "
                    f"{skip[0]}..{skip[1] - 1} were not repaired")


@register_resimulator(PRODUCER)
def resimulate_samples(store: DatasetStore, indices: np.ndarray) -> dict:
    """The samples at ``indices`` (one contiguous damaged range) of a CrI3 campaign store, as first simulated.

    Raises:
        ValueError: the store has no chunk records for these samples, a chunk needs an absent device, or the
            cross-check against intact samples fails (one line each; nothing is written then).
    """
    indices = np.asarray(indices, dtype=np.int64)
    start, stop = int(indices[0]), int(indices[-1]) + 1
    if not np.array_equal(indices, np.arange(start, stop)):
        raise ValueError("resimulate_samples takes one contiguous range of sample indices")
    records = store.state.get("chunks")
    if records is None:
        raise ValueError(
            f"cannot repair {store.path}: it was written before CrI3 campaigns recorded which draws were simulated "
            "together (a sample's last bits depend on them), so its samples cannot be reproduced bit-identically; "
            "re-create it with 'scalinglab simulate cri3' or restore it from a copy")
    used = [r for r in records if r[0] < stop and r[0] + r[1] > start]
    covered = np.zeros(stop - start, dtype=bool)
    for r in used:
        covered[max(r[0], start) - start : min(r[0] + r[1], stop) - start] = True
    if not covered.all():
        first = start + int(np.argmin(covered))
        raise ValueError(
            f"cannot repair {store.path}: sample {first} was appended before CrI3 campaigns recorded which draws were "
            "simulated together (an older scalinglab resumed this campaign), so it cannot be reproduced "
            "bit-identically; re-create the store or restore it from a copy")
    out = {key: None for key in ["inputs", "targets", *[f"aux/{n}" for n in AUX_SPECS]]}
    threads_before = torch.get_num_threads()
    try:
        for first, num, draw_start, draw_stop, lo, hi, device, threads in used:
            try:
                check_device(device)
            except ValueError:
                raise ValueError(f"cannot repair {store.path}: samples {first}..{first + num - 1} were simulated on "
                                 f"{device!r}, which this machine does not have") from None
            torch.set_num_threads(int(threads))
            res = simulate_chunk(_config(store, device), int(draw_start), int(draw_stop))
            rows = _rows(store, res, int(lo), int(hi))
            if len(rows) != num:
                raise ValueError(
                    f"cannot repair {store.path}: re-simulating draws {draw_start}..{draw_stop - 1} gives {len(rows)} "
                    f"kept samples, the store recorded {num} (the phases came out differently); nothing was written")
            arrays = _arrays(store, res, rows)
            _cross_check(store, arrays, first, (start, stop), (draw_start, draw_stop))
            lo_i, hi_i = max(first, start), min(first + num, stop)
            for key, values in arrays.items():
                if out[key] is None:
                    out[key] = np.empty((stop - start, *values.shape[1:]), dtype=values.dtype)
                out[key][lo_i - start : hi_i - start] = values[lo_i - first : hi_i - first]
    finally:
        torch.set_num_threads(threads_before)
    return {"inputs": out["inputs"], "targets": out["targets"],
            "aux": {n: out[f"aux/{n}"] for n in AUX_SPECS}}

"""Simulation campaigns of the TDGL model: the (D, J) grid of paper 4 Table III and spatially varying D maps.

A campaign is a list of (D, J, seed) tasks run in batches through ``TDGLSimulator`` and appended to a dataset store
(``scalinglab.data.store``). Members that diverge, or whose loop never crosses zero the requested number of times,
are excluded from the store and reported (their keys and reasons live in the store's resume state). A killed
campaign resumes from the store's committed state: finished tasks are never rerun or duplicated.

Profiles:
- ``paper``: 256 x 256, ramp T = 1e5 (Eq. 2), the full 20 x 20 grid D, J in 0.1..2.0 (so the unstable corner is
  detected and reported, not assumed), seeds 1..12; inhomogeneous maps at 512 x 512.
- ``quick``: 64 x 64, ramp T = 400 (250x faster than the paper), a 5 x 5 sub-grid, seeds 1..2; inhomogeneous maps
  at 384 x 384 (a 96 px inner region: regions R1-R4 non-empty for 64 px windows and a 32 px band). The uniform
  campaign finishes in minutes on a 2-core CPU (a map campaign of 7 maps took 7.5 min); the profile and its
  settings are stored in the metadata.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. II B 1-2, Fig. 5, Appendix A (Table III).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scalinglab.progress import progress_bar
from scalinglab.simulators.tdgl.solver import TDGLConfig, TDGLSimulator, disorder, initial_state

# Paper 4 Table III: smallest D kept for each J (J >= 1.3: every D from 0.1).
TABLE_III_MIN_D = {0.1: 2.0, 0.2: 1.8, 0.3: 1.8, 0.4: 1.7, 0.5: 1.6, 0.6: 1.4, 0.7: 1.4, 0.8: 1.3, 0.9: 1.2,
                   1.0: 0.9, 1.1: 0.6, 1.2: 0.5}


def _grid_values(start: float, stop: float, step: float) -> list[float]:
    return [round(v, 10) for v in np.arange(start, stop + step / 2, step)]


def full_grid() -> list[tuple[float, float]]:
    """All (D, J) with D, J in 0.1..2.0 step 0.1 (400 pairs)."""
    vals = _grid_values(0.1, 2.0, 0.1)
    return [(d, j) for j in vals for d in vals]


def in_table_iii(D: float, J: float) -> bool:
    """Whether (D, J) is in the dataset of paper 4 Table III (pairs the paper did not exclude)."""
    j = round(J, 1)
    return round(D, 1) >= TABLE_III_MIN_D.get(j, 0.1) - 1e-9


def table_iii_grid() -> list[tuple[float, float]]:
    """The (D, J) pairs of paper 4 Table III."""
    return [(d, j) for d, j in full_grid() if in_table_iii(d, j)]


@dataclass(frozen=True)
class Profile:
    """A named set of campaign settings (stored in the dataset metadata)."""

    name: str
    size: tuple[int, int]
    ramp_time: float
    grid: tuple[tuple[float, float], ...]
    seeds: tuple[int, ...]
    batch_size: int
    map_size: tuple[int, int]
    record_every: int
    note: str


PROFILES = {
    "paper": Profile(
        name="paper", size=(256, 256), ramp_time=1e5, grid=tuple(full_grid()), seeds=tuple(range(1, 13)),
        batch_size=16, map_size=(512, 512), record_every=1000,
        note="paper 4 settings: 256x256, T=1e5, D,J in 0.1..2.0, seeds 1..12 (maps 512x512)",
    ),
    "quick": Profile(
        name="quick", size=(64, 64), ramp_time=400.0,
        grid=tuple((d, j) for j in (0.2, 0.6, 1.0, 1.5, 2.0) for d in (0.1, 0.6, 1.0, 1.5, 2.0)),
        seeds=(1, 2), batch_size=25, map_size=(384, 384), record_every=20,
        note="quick profile: 64x64 grid, ramp T=400 (250x faster than the paper's 1e5), 5x5 (D, J) sub-grid, "
             "seeds 1-2; patterns are coarser-grained than the paper's",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown TDGL profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def task_key(D: float, J: float, seed: int, D_out: float | None = None) -> str:
    key = f"D={D:.4g}|J={J:.4g}|seed={int(seed)}"
    return key if D_out is None else key + f"|Dout={D_out:.4g}"


def inner_outer_map(size: tuple[int, int], D_in: float, D_out: float, border: int) -> np.ndarray:
    """Spatially varying D of paper 4 Fig. 5: ``D_out`` within ``border`` pixels of the edge, ``D_in`` inside.

    Args:
        size: grid (H, W) (paper: 512 x 512).
        D_in, D_out: noise coefficients of the inner and outer regions (paper: D_out = 1.0).
        border: width of the outer frame in pixels (paper: 192 of 512).

    Returns:
        ``[H, W]`` float64 map.
    """
    h, w = size
    if not 0 < 2 * border < min(h, w):
        raise ValueError(f"border {border} leaves no inner region in a {h}x{w} grid")
    dmap = np.full((h, w), float(D_out))
    dmap[border : h - border, border : w - border] = D_in
    return dmap


def map_border(size: tuple[int, int]) -> int:
    """Outer-frame width scaled from the paper's 192 of 512 pixels."""
    return int(round(192 / 512 * min(size)))


@dataclass
class CampaignReport:
    """What a campaign did: counts and the excluded tasks with reasons."""

    stored: int = 0
    skipped_done: int = 0
    excluded: list[dict] = field(default_factory=list)


def _solver_config(profile: Profile, size: tuple[int, int], overrides: dict) -> TDGLConfig:
    cfg = TDGLConfig(size=size, ramp_time=profile.ramp_time, record_every=profile.record_every)
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


#: The executors of ``run_campaign``.
EXECUTORS = ("local", "ray")
#: Object store of a Ray instance started by a campaign (bytes). A batch result is small (16 x 256 x 256 int8
#: patterns + loops, ~1 MB), and only a window of batches is in flight; Ray's default would reserve 30% of memory.
RAY_OBJECT_STORE_BYTES = 256 * 1024**2


def check_executor(executor: str) -> None:
    """Refuse an unknown executor name (one-line ValueError)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")


def simulate_batch(sim: TDGLSimulator, batch: Sequence[tuple[float, float, int]],
                   on_chunk=None) -> dict[str, np.ndarray]:
    """Run one batch of (D, J, seed) tasks together; the per-member arrays the store needs (what a Ray task returns).

    Both executors call this with the same batches, so a store does not depend on which executor wrote it.
    """
    D = np.array([t[0] for t in batch], dtype=np.float64)
    J = np.array([t[1] for t in batch], dtype=np.float64)
    res = sim.run(D, J, seeds=[int(t[2]) for t in batch], on_chunk=on_chunk)
    # Two numbers of the unbinarized state at the capture (paper 4: "m_z tends to +-1"), so that a survey of a
    # store can tell saturated domains from a binarized paramagnet without storing the float fields.
    abs_m = np.abs(res.capture_m.reshape(len(batch), -1))
    return {"patterns": res.patterns, "captured": res.captured, "diverged": res.diverged,
            "capture_time": res.capture_time, "capture_field": res.capture_field, "loop_m": res.loop_m,
            "saturated_fraction": (abs_m > SATURATION_THRESHOLD).mean(axis=1),
            "median_abs_m": np.median(abs_m, axis=1)}


# |m| above which a pixel of the unbinarized capture counts as saturated (stored per pattern).
SATURATION_THRESHOLD = 0.9
# Per-pattern summaries of the unbinarized capture; stores written before they existed lack them and resume so.
CAPTURE_SUMMARIES = ("saturated_fraction", "median_abs_m")


def _append_batch(store, batch, res: dict, num_rec: int, done: set, excluded: list) -> int:
    """Record a finished batch: excluded members into the state, the others into the store (one commit)."""
    D = np.array([t[0] for t in batch], dtype=np.float64)
    J = np.array([t[1] for t in batch], dtype=np.float64)
    bseeds = np.array([t[2] for t in batch])
    ok = res["captured"] & ~res["diverged"]
    for i, (d, j, s) in enumerate(batch):
        done.add(task_key(d, j, s))
        if not ok[i]:
            reason = "diverged" if res["diverged"][i] else "no second zero crossing"
            excluded.append({"D": d, "J": j, "seed": s, "reason": reason, "in_table_iii": in_table_iii(d, j)})
    idx = np.flatnonzero(ok)
    loops = np.zeros((len(idx), num_rec), dtype=np.float32)
    lens = np.zeros(len(idx), dtype=np.int32)
    for r, i in enumerate(idx):
        valid = res["loop_m"][i][np.isfinite(res["loop_m"][i])]
        lens[r] = len(valid)
        loops[r, : len(valid)] = valid
    aux = {"seed": bseeds[idx].astype(np.int32),
           "capture_time": res["capture_time"][idx], "capture_field": res["capture_field"][idx],
           "loop_len": lens, "loop_m": loops}
    aux.update({k: np.asarray(res[k], dtype=np.float32)[idx] for k in CAPTURE_SUMMARIES if k in store.aux_names})
    store.append(
        res["patterns"][idx][:, None].astype(np.float32),
        np.stack([D[idx], J[idx]], axis=1),
        aux=aux,
        state={"done": sorted(done), "excluded": excluded},
    )
    return len(idx)


def run_campaign(
    out: str,
    profile: str = "quick",
    grid: Sequence[tuple[float, float]] | None = None,
    seeds: Sequence[int] | None = None,
    batch_size: int | None = None,
    solver_overrides: dict | None = None,
    quiet: bool = False,
    executor: str = "local",
    ray_num_gpus: float | None = None,
    ray_num_cpus: int | None = None,
) -> CampaignReport:
    """Simulate uniform-parameter patterns for every (D, J, seed) and append them to the store at ``out``.

    Store layout: inputs ``[N, 1, H, W]`` float32 (+-1 binarized pattern), targets ``[D, J]``; aux ``seed``,
    ``capture_time``, ``capture_field``, ``loop_m`` (mean m at every ``record_every`` steps, zero-padded after
    ``loop_len`` points; the matching fields follow from Eq. 2 and are in the metadata), ``saturated_fraction``
    (share of pixels with |m| > 0.9 in the unbinarized capture) and ``median_abs_m`` (stores written before these
    two existed resume without them).

    The pending tasks are cut into batches in task order. With ``executor="ray"`` every batch is one Ray task (one
    CPU and one torch thread each; with ``device="cuda"``, ``ray_num_gpus`` GPUs each, the batch being the members
    advanced together on that GPU) and the driver appends the results in batch order, so the store is the same, bit
    for bit, as the local executor's (which it is when the local process runs torch with one thread, the CLI's
    default) and a killed campaign resumes the same way.

    Args:
        out: store directory (created, or resumed when it exists with the same configuration).
        profile: ``"quick"`` or ``"paper"``.
        grid: (D, J) pairs (default: the profile's grid).
        seeds: simulation seeds (default: the profile's).
        batch_size: simulations advanced together (default: the profile's).
        solver_overrides: ``TDGLConfig`` fields to change (e.g. ``{"device": "cuda"}``).
        quiet: no progress bar.
        executor: ``"local"`` (in-process) or ``"ray"`` (batches as Ray tasks; uses a running Ray instance, or
            starts one with a capped object store and shuts it down at the end).
        ray_num_gpus: GPUs per Ray task with a CUDA device (default 1; a fraction such as 0.5 puts two batches on
            one GPU). Refused without a CUDA device.
        ray_num_cpus: CPUs of a Ray instance the campaign starts (default: all of the machine's).

    Returns:
        ``CampaignReport``; excluded tasks are also kept in the store's state (``state["excluded"]``).
    """
    from scalinglab.data.store import DatasetStore

    check_executor(executor)
    prof = get_profile(profile)
    grid = [(float(d), float(j)) for d, j in (prof.grid if grid is None else grid)]
    seeds = [int(s) for s in (prof.seeds if seeds is None else seeds)]
    for d, j in grid:
        if d < 0 or j <= 0:
            raise ValueError(f"grid values need D >= 0 and J > 0, got D={d}, J={j}")
    bsz = int(batch_size or prof.batch_size)
    if bsz < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    overrides = dict(solver_overrides or {})
    device_overrides = {k: overrides.pop(k) for k in ("device",) if k in overrides}
    gpu = str(device_overrides.get("device", "cpu")).startswith("cuda")
    if ray_num_gpus is not None and (executor != "ray" or not gpu or not ray_num_gpus > 0):
        raise ValueError(f"ray_num_gpus={ray_num_gpus} needs executor 'ray', a cuda device and a value > 0")
    cfg = _solver_config(prof, prof.size, overrides)
    num_rec = cfg.num_steps // cfg.record_every + 1
    config = {"profile": prof.name, "profile_note": prof.note, "solver": cfg.to_dict(), "grid": grid,
              "seeds": seeds, "kind": "uniform"}
    config["solver"].pop("device")
    aux_specs = {"seed": ("int32", ()), "capture_time": ("float64", ()), "capture_field": ("float64", ()),
                 "loop_len": ("int32", ()), "loop_m": ("float32", (num_rec,))}
    if not _store_lacks_summaries(out):
        aux_specs.update({k: ("float32", ()) for k in CAPTURE_SUMMARIES})
    store = DatasetStore.open_or_create(
        out, input_shape=(1, *cfg.size), target_names=["D", "J"], target_units=["", ""],
        aux_specs=aux_specs,
        metadata={"producer": "tdgl", "config": config,
                  "loop_time_step": cfg.dt * cfg.record_every,
                  "description": "binarized m_z at the second zero crossing of the mean magnetization"},
    )
    cfg = dataclasses.replace(cfg, **device_overrides)
    state = dict(store.state)
    done = set(state.get("done", []))
    excluded = list(state.get("excluded", []))
    tasks = [(d, j, s) for d, j in grid for s in seeds if task_key(d, j, s) not in done]
    batches = [tasks[i : i + bsz] for i in range(0, len(tasks), bsz)]
    report = CampaignReport(skipped_done=len(grid) * len(seeds) - len(tasks), excluded=excluded)
    try:
        with progress_bar(len(grid) * len(seeds), f"tdgl campaign ({executor})", quiet=quiet,
                          completed=report.skipped_done) as bar:
            if executor == "ray":
                results = _batch_results_ray(cfg, batches, gpu, ray_num_gpus or 1.0, ray_num_cpus,
                                             on_window=lambda k, w: bar.set_running(
                                                 f"{k} of {len(batches)} batches of <= {bsz} submitted, "
                                                 f"{w} in flight"))
            else:
                sim = TDGLSimulator(cfg)
                results = (simulate_batch(sim, batch, on_chunk=lambda n, s=b: bar.set_running(
                    f"batch {s + 1}/{len(batches)}: step {n}/{cfg.num_steps}")) for b, batch in enumerate(batches))
            try:
                for batch, res in zip(batches, results):
                    report.stored += _append_batch(store, batch, res, num_rec, done, excluded)
                    bar.advance(len(batch))
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()
    finally:
        store.close()
    report.excluded = excluded
    return report


def _store_lacks_summaries(out: str) -> bool:
    """True for an existing uniform store written before the capture summaries were stored (it resumes so)."""
    from pathlib import Path

    from scalinglab.data.store import DatasetStore

    if not Path(out).exists():
        return False
    try:
        store = DatasetStore.open(out)
    except (ValueError, FileNotFoundError, OSError):
        return False  # not a store: open_or_create names the problem
    try:
        return "seed" in store.aux_names and not set(CAPTURE_SUMMARIES) <= set(store.aux_names)
    finally:
        store.close()


def _batch_results_ray(cfg: TDGLConfig, batches: list, gpu: bool, num_gpus: float, num_cpus: int | None,
                       on_window=None):
    """Batches as Ray tasks, a window of them in flight, results yielded in batch order (the driver writes).

    Resources are explicit: one CPU per task (torch runs one thread in it) and, for a CUDA device, ``num_gpus``
    GPUs (Ray sets CUDA_VISIBLE_DEVICES, so the task uses "cuda"). The window is the number of such slots.
    """
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=RAY_OBJECT_STORE_BYTES)
        started = True
    try:
        avail = ray.cluster_resources()
        if gpu and not avail.get("GPU"):
            raise ValueError("device 'cuda' with executor 'ray' needs GPUs in the Ray cluster; none are available")
        window = max(1, int(avail.get("GPU", 0) / num_gpus if gpu else avail.get("CPU", 1)))
        remote = ray.remote(num_cpus=1, num_gpus=num_gpus if gpu else 0, max_retries=1)(_ray_batch)
        task_cfg = cfg.to_dict()
        task_cfg["device"] = "cuda" if gpu else "cpu"
        cfg_ref = ray.put(task_cfg)
        pending: list = []
        k = 0
        try:
            while k < len(batches) or pending:
                while k < len(batches) and len(pending) < window:
                    pending.append(remote.remote(cfg_ref, batches[k]))
                    k += 1
                if on_window is not None:
                    on_window(k, len(pending))
                try:
                    result = ray.get(pending.pop(0))
                except ray.exceptions.RayTaskError as exc:  # the task's own error (one line for the CLI), chained
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, Exception):
                        raise cause from exc
                    raise
                yield result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


def _ray_batch(cfg_dict: dict, batch: list) -> dict[str, np.ndarray]:
    import torch

    torch.set_num_threads(1)  # one Ray CPU per task
    return simulate_batch(TDGLSimulator(TDGLConfig(**cfg_dict)), batch)


def run_map_campaign(
    out: str,
    profile: str = "quick",
    D_in: Sequence[float] = (0.1, 0.4, 0.7, 1.0, 1.3, 1.6, 1.9),
    D_out: float = 1.0,
    J: float = 2.0,
    seeds: Sequence[int] = (1,),
    size: tuple[int, int] | None = None,
    solver_overrides: dict | None = None,
    quiet: bool = False,
) -> CampaignReport:
    """Spatially varying D (paper 4 Fig. 5): inner square at ``D_in``, outer frame at ``D_out``, fixed J.

    Store layout: inputs ``[N, 1, H, W]`` (binarized pattern), targets ``[D_in, D_out, J]``, aux ``seed`` and
    ``d_map`` ``[H, W]`` (the true D of every pixel, for region analysis and ROC).
    """
    from scalinglab.data.store import DatasetStore

    prof = get_profile(profile)
    size = tuple(size or prof.map_size)
    overrides = dict(solver_overrides or {})
    device_overrides = {k: overrides.pop(k) for k in ("device",) if k in overrides}
    cfg = _solver_config(prof, size, overrides)
    border = map_border(size)
    config = {"profile": prof.name, "profile_note": prof.note, "solver": cfg.to_dict(), "D_in": list(D_in),
              "D_out": D_out, "J": J, "seeds": list(seeds), "border": border, "kind": "inner_outer"}
    config["solver"].pop("device")
    store = DatasetStore.open_or_create(
        out, input_shape=(1, *size), target_names=["D_in", "D_out", "J"], target_units=["", "", ""],
        aux_specs={"seed": ("int32", ()), "d_map": ("float32", size)},
        metadata={"producer": "tdgl", "config": config, "border": border},
    )
    sim = TDGLSimulator(dataclasses.replace(cfg, **device_overrides))
    state = dict(store.state)
    done = set(state.get("done", []))
    excluded = list(state.get("excluded", []))
    tasks = [(d, s) for d in D_in for s in seeds if task_key(d, J, s, D_out) not in done]
    report = CampaignReport(skipped_done=len(D_in) * len(seeds) - len(tasks), excluded=excluded)
    try:
        with progress_bar(len(tasks), "tdgl map campaign", quiet=quiet) as bar:
            for d, s in tasks:  # one 512 x 512 map per run keeps memory small; batching gains little here
                dmap = inner_outer_map(size, d, D_out, border)
                res = sim.run(dmap[None], np.array([J]), eta=disorder(s, size, cfg.root_seed)[None],
                              m0=initial_state(s, size, cfg.m0_amplitude, cfg.root_seed)[None])
                done.add(task_key(d, J, s, D_out))
                ok = bool(res.captured[0] and not res.diverged[0])
                if not ok:
                    excluded.append({"D_in": d, "D_out": D_out, "J": J, "seed": s,
                                     "reason": "diverged" if res.diverged[0] else "no second zero crossing"})
                n = int(ok)
                store.append(res.patterns[:n, None].astype(np.float32),
                             np.array([[d, D_out, J]])[:n],
                             aux={"seed": np.array([s], dtype=np.int32)[:n],
                                  "d_map": dmap[None].astype(np.float32)[:n]},
                             state={"done": sorted(done), "excluded": excluded})
                report.stored += n
                bar.advance(1)
    finally:
        store.close()
    report.excluded = excluded
    return report

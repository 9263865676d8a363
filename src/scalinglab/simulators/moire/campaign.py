"""Simulation campaigns for twisted bilayer CrI3: sample (theta, J, D), find ground states, store domain images.

A campaign draws parameter sets one by one from an explicit seed (draw k uses ``rng(seed, "cri3-draw", k)``;
theta uniform over the profile's commensurate angles, J and D uniform in their ranges), processes draws in chunks
(within a chunk, draws that share theta are relaxed in one batch), and appends each chunk's non-FM samples to the
dataset store (``scalinglab.data.store``) with the resume state ``{"draws_done": k}``. FM samples are excluded
from the training dataset by default (papers 1-2) but recorded in a sibling store ``<name>_fm<suffix>`` (inputs =
the layer magnetizations [m_top, m_bottom], same targets and aux), which phase diagrams and phase-boundary
distances use. ``num_samples`` counts the samples of the main store; the last chunk is cut at the N-th sample, and
``draws_done`` is set right after it, so a later, larger request continues deterministically.

Kill safety: each chunk is first appended to the FM store and then to the main store, each append committed
atomically by the store. After a kill, the main store's ``draws_done`` says where to resume; FM rows of draws the
FM store already holds are skipped, so no sample is duplicated or lost.

Non-converged samples (winner's max torque >= tol) are stored with ``aux/converged = False``, never silently.

Chunk records (for ``scalinglab data repair``, ``resimulate.py``): a sample's last bits depend on the draws relaxed
with it, so each store's commit state also lists, per append, ``[first_sample, num_samples, draw_start, draw_stop,
lo, hi, device, threads]``: its samples are the rows of ``simulate_chunk(config, draw_start, draw_stop)`` with
``lo <= draw < hi`` that the store keeps (non-FM rows, all rows with ``include_fm``, FM rows in the FM store).
Stores written before these records read and resume as before, but cannot be repaired.

Profiles (stored in the dataset metadata; the ground-state search and its per-sample resolution are described in
``ground_state.py``):

- ``quick``: what a 2-core CPU does in minutes: the five largest angles (m = 8..12, theta 3.89..2.65 deg, the
  smallest supercells, 868..1876 spins), the four structured starts only (FM, MD top, MD bottom, NCD; no random
  starts), torque tolerance 1e-2 meV, 400 iterations at most, no refinement: the energy gap to the runner-up phase
  and its uncertainty come from the loose states (a CG estimate that can be short), so ``resolved`` is optimistic.
- ``standard``: all 25 angles (m = 8..32), the structured starts plus 2 random starts, loose tolerance 1e-2 meV,
  then the winner and its unresolved competitors refined to 1e-3 meV, and to 1e-4 and 1e-5 meV while a sample's
  ordering stays unresolved. Cost on a 2-core CPU: see the README (measured samples per minute by angle range).
- ``paper``: papers 1-2: all 25 angles, the structured starts plus 50 random starts, loose tolerance 1e-3 meV,
  two candidates per competing phase refined to 1e-4 meV (paper tolerance), 1e-5 and 1e-6 while unresolved. Meant
  for ``device="cuda"`` (float64) and Ray workers with GPUs (``executor="ray"``: one GPU and one CPU per task).

Explicit parameter sets (``params=[(m, J, D), ...]``, CLI ``--params FILE.csv``): draw k is row k, every row is
stored in the main store (FM rows included, ``include_fm`` forced on) and FM rows also in the FM store; resumable
like random campaigns.

Both use J in [1, 10] meV, D in [0.01, 0.3] meV, the relaxed local-stacking interlayer model and 100 x 100 images of
a 100 nm field of view (``grid=200, quadrant=True`` gives paper 2's first-quadrant images).

Reference:
    Paper 1, Methods A; paper 2, Sec. II.1 and Appendix A.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from scalinglab.progress import progress_bar
from scalinglab.seeding import derive_seed, rng
from scalinglab.simulators.moire.ground_state import SearchConfig, search_ground_states
from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import STACKING_MODELS, local_stacking_pairs
from scalinglab.simulators.moire.lattice import M_MAX, M_MIN, _bilayer, twist_angle
from scalinglab.simulators.moire.phases import FM, PHASE_DESCRIPTIONS, PHASE_NAMES
from scalinglab.simulators.moire.regions import COMPOSITES
from scalinglab.simulators.moire.render import Renderer
from scalinglab.simulators.moire.starts import STRUCTURED_STARTS

PRODUCER = "scalinglab.simulators.moire"
TARGET_NAMES = ["theta", "J", "D"]
TARGET_UNITS = ["deg", "meV", "meV"]
AUX_SPECS = {
    "draw": ("int64", ()),  # index of the parameter draw (unique per sample)
    "m": ("int16", ()),  # commensurate index
    "phase": ("int8", ()),  # 0 FM, 1 NCD, 2 MD, 3 MD2 (phases.py)
    "energy": ("float64", ()),  # total energy of the ground state (meV)
    "energy_per_site": ("float64", ()),  # meV
    "max_torque": ("float64", ()),  # meV
    "iterations": ("int64", ()),  # iterations of the winning replica
    "total_iterations": ("int64", ()),  # summed over all replicas
    "start": ("int16", ()),  # index of the winning start (names in metadata["start_names"])
    "converged": ("bool", ()),
    "m_top": ("float64", ()),
    "m_bottom": ("float64", ()),
    "rev_top": ("float64", ()),  # fraction of reversed sites in the top layer (phases.py)
    "rev_bottom": ("float64", ()),
    "energy_uncertainty": ("float64", ()),  # estimated energy error of the ground state (meV/site; NO_ESTIMATE
    # where the state sits at a saddle and the Newton estimate diverges)
    "runner_up_phase": ("int8", ()),  # phase of the lowest state of another phase (-1: none found)
    "energy_gap": ("float64", ()),  # E_runner-up - E_ground (meV/site; -1: none found)
    "gap_uncertainty": ("float64", ()),  # meV/site (ground_state.py; NO_ESTIMATE at a saddle)
    "resolved": ("bool", ()),  # energy_gap > resolve_k * gap_uncertainty (or no competitor found)
    "partner_gap": ("float64", ()),  # MD ground states: E(best MD state, other layer) - E_ground (meV/site; -1 n/a)
}

#: Stored in place of an infinite energy uncertainty (a candidate at a saddle): the store holds finite numbers
#: only, and a huge finite value keeps comparisons such as gap > 3 x uncertainty meaningful (unresolved).
NO_ESTIMATE = 1e300

PROFILES = {
    "quick": dict(m_values=(8, 9, 10, 11, 12), structured=STRUCTURED_STARTS, num_random=0, tol=1e-2, max_iter=400,
                  refine_tol=None),
    "standard": dict(m_values=tuple(range(M_MIN, M_MAX + 1)), structured=STRUCTURED_STARTS, num_random=2, tol=1e-2,
                     max_iter=3000, refine_tol=1e-3, refine_levels=2, refine_max_iter=5000, candidates_per_phase=1),
    "paper": dict(m_values=tuple(range(M_MIN, M_MAX + 1)), structured=STRUCTURED_STARTS, num_random=50, tol=1e-3,
                  max_iter=20000, refine_tol=1e-4, refine_levels=2, refine_max_iter=20000, candidates_per_phase=2),
}
PROFILE_DESCRIPTIONS = {
    "quick": "quick: m=8..12 (theta 3.89..2.65 deg), 4 structured starts, no random starts, tol 1e-2 meV, "
             "max_iter 400, no refinement (gap uncertainty from the loose states)",
    "standard": "standard: m=8..32 (theta 3.89..1.02 deg), 4 structured + 2 random starts, loose tol 1e-2 meV, "
                "competitors refined to 1e-3 meV (and 1e-4, 1e-5 while unresolved)",
    "paper": "paper: m=8..32 (theta 3.89..1.02 deg), 4 structured + 50 random starts, loose tol 1e-3 meV, "
             "2 competitors per phase refined to 1e-4 meV (and 1e-5, 1e-6 while unresolved); for CUDA / Ray GPUs",
}


@dataclass(frozen=True)
class CampaignConfig:
    """Full configuration of a CrI3 campaign (stored as the dataset's ``metadata["config"]``).

    Attributes:
        profile: "quick", "standard" or "paper" (sets the defaults below).
        seed: root seed of all draws and random starts.
        m_values: commensurate indices sampled uniformly (theta = twist_angle(m)), each in 8..32.
        J_range: intralayer exchange range (meV), 0 < lo <= hi (ferromagnetic intralayer coupling).
        D_range: anisotropy range (meV), 0 <= lo <= hi (easy axis).
        interlayer: "relaxed" or "rigid" DFT stacking table.
        structured, num_random, tol, max_iter, refine_tol, refine_levels, refine_max_iter, candidates_per_phase,
            resolve_k, recombine: ground-state search (see ``SearchConfig``; ``recombine`` adds the composite
            states of the three domain regions, ``regions.py``).
        grid, fov_nm, quadrant: image rasterization (see ``render.Renderer``).
        include_fm: also put FM samples into the main store (they are always recorded in the FM store).
        chunk_size: draws per chunk (one store append, one unit of resumable work, one Ray task).
        dtype: "float64" (default) or "float32" relaxation.
        device: torch device of the relaxation ("cpu", "cuda", "cuda:1"); not part of the stored configuration
            (results agree to rounding across devices, so a resume may switch).
        params: explicit parameter sets ((m, J, D), ...) instead of random draws: draw k is row k, every row is a
            sample (``include_fm`` is forced on, FM rows are in the main store and also in the FM store).
    """

    profile: str = "quick"
    seed: int = 0
    m_values: tuple[int, ...] = PROFILES["quick"]["m_values"]
    J_range: tuple[float, float] = (1.0, 10.0)
    D_range: tuple[float, float] = (0.01, 0.3)
    interlayer: str = "relaxed"
    structured: tuple[str, ...] = STRUCTURED_STARTS
    num_random: int = 0
    tol: float = 1e-2
    max_iter: int = 400
    refine_tol: float | None = None
    refine_levels: int = 2
    refine_max_iter: int = 5000
    candidates_per_phase: int = 1
    resolve_k: float = 3.0
    recombine: bool = True
    grid: int = 100
    fov_nm: float = 100.0
    quadrant: bool = False
    include_fm: bool = False
    chunk_size: int = 256
    dtype: str = "float64"
    device: str = "cpu"
    params: tuple[tuple[int, float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile '{self.profile}'; choose from {list(PROFILES)}")
        if not self.m_values:
            raise ValueError("m_values is empty")
        for m in self.m_values:
            if isinstance(m, bool) or not float(m).is_integer() or not M_MIN <= int(m) <= M_MAX:
                raise ValueError(f"commensurate index m={m} outside {M_MIN}..{M_MAX} (theta 3.89..1.02 deg)")
        jl, jh = self.J_range
        if not (np.isfinite(jl) and np.isfinite(jh) and 0 < jl <= jh):
            raise ValueError(f"J_range={self.J_range} must satisfy 0 < lo <= hi (meV; J > 0 is ferromagnetic)")
        dl, dh = self.D_range
        if not (np.isfinite(dl) and np.isfinite(dh) and 0 <= dl <= dh):
            raise ValueError(f"D_range={self.D_range} must satisfy 0 <= lo <= hi (meV; easy-axis anisotropy)")
        if self.interlayer not in STACKING_MODELS:
            raise ValueError(f"unknown interlayer model '{self.interlayer}'; choose from {list(STACKING_MODELS)}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.grid < 2 or (self.quadrant and self.grid % 2) or not self.fov_nm > 0:
            raise ValueError(f"invalid image settings grid={self.grid}, fov_nm={self.fov_nm}, quadrant={self.quadrant}")
        if not str(self.device).startswith(("cpu", "cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {self.device!r}")
        if self.params is not None:
            if not self.params:
                raise ValueError("params is empty")
            for k, row in enumerate(self.params):
                if len(row) != 3:
                    raise ValueError(f"params row {k}: expected (m, J, D), got {row!r}")
                m, j, d = row
                if isinstance(m, bool) or not float(m).is_integer() or not M_MIN <= int(m) <= M_MAX:
                    raise ValueError(f"params row {k}: commensurate index m={m} outside {M_MIN}..{M_MAX}")
                if not (np.isfinite(j) and j > 0 and np.isfinite(d) and d >= 0):
                    raise ValueError(f"params row {k}: need J > 0 and D >= 0 (meV), got J={j}, D={d}")
            if not self.include_fm:
                raise ValueError("params campaigns store every row: include_fm must be True")
        self.search()  # validates the search settings

    @classmethod
    def from_profile(cls, profile: str = "quick", seed: int = 0, **overrides) -> CampaignConfig:
        """The profile's settings with explicit overrides (an unknown key is an error)."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile '{profile}'; choose from {list(PROFILES)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"profile", "seed"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown campaign option(s): {unknown}")
        kw = dict(PROFILES[profile])
        kw.update({k: v for k, v in overrides.items() if v is not None})
        if kw.get("params") is not None:
            kw["params"] = tuple((int(m), float(j), float(d)) for m, j, d in kw["params"])
            kw["include_fm"] = True
        kw["m_values"] = tuple(int(m) for m in kw["m_values"])
        kw["structured"] = tuple(kw["structured"])
        for key in ("J_range", "D_range"):
            if key in kw:
                kw[key] = tuple(float(v) for v in kw[key])
        return cls(profile=profile, seed=int(seed), **kw)

    def search(self) -> SearchConfig:
        return SearchConfig(structured=self.structured, num_random=self.num_random, tol=self.tol,
                            max_iter=self.max_iter, refine_tol=self.refine_tol, refine_levels=self.refine_levels,
                            refine_max_iter=self.refine_max_iter, candidates_per_phase=self.candidates_per_phase,
                            resolve_k=self.resolve_k, recombine=self.recombine)

    def to_dict(self) -> dict:
        """The configuration that determines the samples (stored as ``metadata["config"]``; a resume must match).

        ``chunk_size`` and ``device`` are left out: samples depend only on the draw index (and agree to rounding
        across devices), so a resume may use another chunking or device.
        """
        d = dataclasses.asdict(self)
        d.pop("chunk_size")
        d.pop("device")
        if d["params"] is not None:
            d["params"] = [list(r) for r in d["params"]]
        d["m_values"] = list(d["m_values"])
        d["structured"] = list(d["structured"])
        d["J_range"] = list(d["J_range"])
        d["D_range"] = list(d["D_range"])
        return d

    @property
    def image_shape(self) -> tuple[int, int, int]:
        s = self.grid // 2 if self.quadrant else self.grid
        return (2, s, s)


def draw_parameters(config: CampaignConfig, start: int, stop: int) -> dict[str, np.ndarray]:
    """Parameter draws ``start..stop-1`` (deterministic per draw index, independent of chunking; with
    ``config.params``, rows ``start..min(stop, len(params))-1``).

    Returns:
        dict with "draw", "m", "theta" (deg), "J" (meV), "D" (meV), "seed" arrays of length stop - start.
    """
    if config.params is not None:
        stop = min(stop, len(config.params))
    draws = np.arange(start, stop, dtype=np.int64)
    ms, js, ds, seeds = [], [], [], []
    for k in draws:
        if config.params is not None:
            m, j, d = config.params[int(k)]
            ms.append(m)
            js.append(j)
            ds.append(d)
        else:
            g = rng(config.seed, "cri3-draw", int(k))
            ms.append(int(config.m_values[g.integers(len(config.m_values))]))
            js.append(g.uniform(*config.J_range))
            ds.append(g.uniform(*config.D_range))
        seeds.append(derive_seed(config.seed, "cri3-starts", int(k)))
    ms = np.array(ms, dtype=np.int64)
    return {"draw": draws, "m": ms, "theta": np.array([twist_angle(m) for m in ms]), "J": np.array(js),
            "D": np.array(ds), "seed": np.array(seeds, dtype=np.int64)}


def check_device(device: str) -> str:
    """The device string, or a one-line ValueError when CUDA is requested but unavailable."""
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__}, "
                         "torch.cuda.is_available() is False); use --device cpu")
    return device


@lru_cache(maxsize=8)
def _hamiltonian(m: int, interlayer: str, dtype: str, device: str = "cpu") -> MoireHamiltonian:
    lat = _bilayer(m)
    return MoireHamiltonian(lat, local_stacking_pairs(lat, interlayer), dtype=getattr(torch, dtype),
                            device=check_device(device))


def simulate_chunk(config: CampaignConfig, start: int, stop: int,
                   on_angle: Callable[[int, int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Simulate draws ``start..stop-1``: ground states, phases, images (all draws, in draw order).

    Args:
        on_angle: called as ``on_angle(draws_done, draws_total, m)`` before each twist angle's batch and once at
            the end (progress within a chunk: a chunk at the small angles takes minutes).

    Returns:
        dict of per-draw arrays: "images" [n, 2, H, W] float32, "targets" [n, 3] (theta, J, D), and every aux key of
        ``AUX_SPECS``.
    """
    p = draw_parameters(config, start, stop)
    n = len(p["draw"])
    out = {"images": np.zeros((n, *config.image_shape), dtype=np.float32), "targets": np.stack(
        [p["theta"], p["J"], p["D"]], 1)}
    for key, (dt, _) in AUX_SPECS.items():
        out[key] = np.zeros(n, dtype=dt)
    out["draw"][:] = p["draw"]
    out["m"][:] = p["m"]
    search = config.search()
    done = 0
    for m in np.unique(p["m"]):
        sel = np.nonzero(p["m"] == m)[0]
        if on_angle is not None:
            on_angle(done, n, int(m))
        done += len(sel)
        ham = _hamiltonian(int(m), config.interlayer, config.dtype, config.device)
        gs = search_ground_states(ham, p["J"][sel], p["D"][sel], p["seed"][sel], search)
        for key in ("phase", "m_top", "m_bottom", "rev_top", "rev_bottom", "energy_uncertainty", "runner_up_phase",
                    "energy_gap", "gap_uncertainty", "resolved", "partner_gap"):
            value = np.asarray(getattr(gs, key))
            if value.dtype.kind == "f":
                value = np.where(np.isfinite(value), value, NO_ESTIMATE)
            out[key][sel] = value
        out["energy"][sel] = gs.energy
        out["energy_per_site"][sel] = gs.energy / ham.num_sites
        out["max_torque"][sel] = gs.max_torque
        out["iterations"][sel] = gs.iterations
        out["total_iterations"][sel] = gs.total_iterations
        out["start"][sel] = gs.start
        out["converged"][sel] = gs.converged
        out["images"][sel] = Renderer(ham.lat, config.grid, config.fov_nm, config.quadrant)(gs.spins)
    if on_angle is not None:
        on_angle(n, n, -1)
    return out


def fm_store_path(out: str | os.PathLike) -> Path:
    """Path of the sibling store that records FM samples: ``<stem>_fm<suffix>`` next to ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_fm{out.suffix}")


def _metadata(config: CampaignConfig, kind: str) -> dict:
    names = list(config.structured) + [f"random_{k}" for k in range(config.num_random)]
    if config.recombine:
        names += list(COMPOSITES)  # the composite states are replicas too (aux "start" may point at one)
    return {
        "producer": PRODUCER,
        "config": config.to_dict(),
        "profile": config.profile,
        "profile_description": PROFILE_DESCRIPTIONS[config.profile],
        "store_kind": kind,
        "start_names": names,
        "phase_names": {str(k): v for k, v in PHASE_NAMES.items()},
        "phase_descriptions": {str(k): v for k, v in PHASE_DESCRIPTIONS.items()},
        "image_channels": ["top", "bottom"],
        "image_convention": "row 0 = smallest y (origin='lower'); field of view centred on the AA point",
        "interlayer_model": f"local_stacking:{config.interlayer}",
    }


#: Samples per chunk of a new main store (64 images of 2 x 100 x 100 float32 = 5 MB).
MAIN_CHUNK_SIZE = 64


def _open_stores(out: Path, config: CampaignConfig):
    from scalinglab.data.store import DatasetStore

    main = DatasetStore.open_or_create(
        out, input_shape=config.image_shape, target_names=TARGET_NAMES, target_units=TARGET_UNITS,
        aux_specs=AUX_SPECS, metadata=_metadata(config, "main"), chunk_size=MAIN_CHUNK_SIZE)
    try:
        fm = DatasetStore.open_or_create(
            fm_store_path(out), input_shape=(2,), target_names=TARGET_NAMES, target_units=TARGET_UNITS,
            aux_specs=AUX_SPECS, metadata=_metadata(config, "fm"), chunk_size=1024)
    except BaseException:
        main.close()
        raise
    return main, fm


def _chunk_state(store, first: int, rows: np.ndarray, draws: np.ndarray, lo: int, hi: int, origin: tuple,
                 draws_done: int) -> dict:
    """The store's next commit state: ``draws_done`` and its chunk records plus this append's (module docstring)."""
    state = {"draws_done": draws_done, "chunks": list(store.state.get("chunks", []))}
    if len(rows):
        state["chunks"].append([first, len(rows), int(draws[0]), int(draws[-1] + 1), lo, hi, *origin])
    return state


def _write_chunk(main, fm, res: dict, need: int, include_fm: bool,
                 origin: tuple[str, int] = ("cpu", 1)) -> tuple[int, int, int]:
    """Append one chunk's results; returns (stored, fm_count, draws_done).

    ``origin``: (device, torch threads) the chunk was simulated with, kept in the chunk records.
    """
    draws = res["draw"]
    is_fm = res["phase"] == FM
    keep = np.ones(len(draws), dtype=bool) if include_fm else ~is_fm
    rows = np.nonzero(keep)[0][:need]
    draws_done = int(draws[rows[-1]] + 1) if len(rows) == need and need > 0 else int(draws[-1] + 1)
    aux_keys = list(AUX_SPECS)
    # FM side table first (skipping rows a previous, killed run already committed), then the main store.
    fm_done = int(fm.state.get("draws_done", 0))
    fm_rows = np.nonzero(is_fm & (draws < draws_done) & (draws >= fm_done))[0]
    if len(fm_rows) or draws_done > fm_done:
        fm.append(np.stack([res["m_top"][fm_rows], res["m_bottom"][fm_rows]], 1), res["targets"][fm_rows],
                  aux={k: res[k][fm_rows] for k in aux_keys},
                  state=_chunk_state(fm, fm.num_samples, fm_rows, draws, fm_done, draws_done, origin,
                                     max(draws_done, fm_done)))
    main.append(res["images"][rows], res["targets"][rows], aux={k: res[k][rows] for k in aux_keys},
                state=_chunk_state(main, main.num_samples, rows, draws, int(draws[0]), draws_done, origin, draws_done))
    return len(rows), int(np.count_nonzero(is_fm & (draws < draws_done))), draws_done


def run_campaign(out: str | os.PathLike, num_samples: int, profile: str = "quick", seed: int = 0,
                 executor: str = "local", quiet: bool = False, threads: int | None = 1, **overrides):
    """Run (or resume) a CrI3 campaign until the store holds ``num_samples`` samples.

    Args:
        out: dataset store path (created or resumed; a different configuration is refused).
        num_samples: stored samples wanted (non-FM samples unless ``include_fm=True``), >= 1; with ``params``,
            at most the number of rows (None: all rows).
        profile: "quick", "standard" or "paper".
        seed: root seed.
        executor: "local" (in-process) or "ray" (chunks as Ray tasks; the driver writes results in order).
        quiet: no progress bar.
        threads: torch CPU threads of the local executor during the campaign (restored afterwards); None keeps
            torch's setting. Default 1: on a busy 2-core machine one thread was 2-10x faster than two (OpenMP
            contention); use ``executor="ray"`` to occupy several cores with one-thread tasks.
        **overrides: ``CampaignConfig`` fields (e.g. ``chunk_size=128``, ``m_values=(8, 9)``, ``device="cuda"``,
            ``params=[(m, J, D), ...]``).

    Returns:
        The main ``DatasetStore`` (open for appending; call ``close()`` when done).
    """
    if num_samples is None and overrides.get("params") is not None:
        num_samples = len(overrides["params"])
    if isinstance(num_samples, bool) or num_samples is None or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor '{executor}'; choose 'local' or 'ray'")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    config = CampaignConfig.from_profile(profile, seed, **overrides)
    check_device(config.device)
    if config.params is not None and num_samples > len(config.params):
        raise ValueError(f"num_samples={num_samples} exceeds the {len(config.params)} rows of params")
    out = Path(out)
    main, fm = _open_stores(out, config)
    prev_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        start_draw = int(main.state.get("draws_done", 0))
        have = main.num_samples
        if have >= num_samples:
            return main
        with progress_bar(num_samples, f"cri3 {config.profile}", quiet=quiet, completed=have, unit="samples") as bar:
            if executor == "ray":
                chunks = _chunk_results_ray(config, start_draw)
                origin = ("cuda" if str(config.device).startswith("cuda") else "cpu", 1)  # as _chunk_results_ray
                for res in chunks:
                    stored, _, _ = _write_chunk(main, fm, res, num_samples - main.num_samples, config.include_fm,
                                                origin)
                    bar.advance(stored)
                    if main.num_samples >= num_samples:
                        chunks.close()
                        break
            else:
                k = start_draw
                while main.num_samples < num_samples:
                    need = num_samples - main.num_samples
                    # Results depend only on the draw index, so the last chunks may be shorter: about 3 draws per
                    # missing sample (the FM fraction is ~60% in the quick profile) instead of a full chunk.
                    size = min(config.chunk_size, max(8, 3 * need))
                    if config.params is not None:
                        size = min(size, len(config.params) - k)
                    def on_angle(done, total, m, first=k):
                        where = f", m = {m}" if m >= 0 else ""
                        bar.set_running(f"draws {first}..{first + total - 1}: {done}/{total} relaxed{where}")

                    res = simulate_chunk(config, k, k + size, on_angle)
                    k += size
                    stored, _, _ = _write_chunk(main, fm, res, need, config.include_fm,
                                                (str(config.device), torch.get_num_threads()))
                    bar.advance(stored)
    finally:
        torch.set_num_threads(prev_threads)
        fm.close()
    return main


#: Object store of a Ray instance started by a campaign (bytes).
RAY_OBJECT_STORE_BYTES = 512 * 1024**2


def _chunk_results_ray(config: CampaignConfig, start: int):
    """Chunks as Ray tasks, a window of them in flight, yielded in draw order (the driver writes).

    Resources are explicit: each task takes one CPU (``torch.set_num_threads(1)`` inside) and, when the
    configuration's device is CUDA, one GPU (Ray sets CUDA_VISIBLE_DEVICES, so the task uses "cuda"); the window is
    the number of such slots in the cluster.
    """
    import ray

    if not ray.is_initialized():
        # Capped object store: a chunk's images are ~20 MB (256 draws of 2 x 100 x 100 float32) and only a
        # window of chunks is in flight (Ray's default would reserve 30% of the machine's memory).
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=RAY_OBJECT_STORE_BYTES)
    gpu = str(config.device).startswith("cuda")
    remote = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(_ray_chunk)
    avail = ray.available_resources()
    window = max(1, int(avail.get("GPU", 0) if gpu else avail.get("CPU", 1)))
    if gpu and not avail.get("GPU"):
        raise ValueError("device 'cuda' with executor 'ray' needs GPUs in the Ray cluster; none are available")
    total = len(config.params) if config.params is not None else None
    task_config = config.to_dict()
    task_config["device"] = "cuda" if gpu else "cpu"
    k = start
    pending = []
    try:
        while True:
            while len(pending) < window and (total is None or k < total):
                stop = k + config.chunk_size if total is None else min(total, k + config.chunk_size)
                pending.append(remote.remote(task_config, k, stop))
                k = stop
            if not pending:
                return
            yield ray.get(pending.pop(0))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _ray_chunk(config_dict: dict, start: int, stop: int) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)  # one Ray CPU per task
    config_dict = dict(config_dict)
    profile = config_dict.pop("profile")
    seed = config_dict.pop("seed")
    return simulate_chunk(CampaignConfig.from_profile(profile, seed, **config_dict), start, stop)


#: Columns accepted in a parameter CSV (one of theta / m, plus J and D).
PARAM_COLUMNS = ("theta", "m", "J", "D")


def read_params_csv(path: str | os.PathLike, atol_deg: float = 1e-3) -> tuple[tuple[int, float, float], ...]:
    """Explicit parameter sets from a CSV file with a header: columns theta (deg) or m, and J, D (meV).

    Args:
        path: CSV file.
        atol_deg: a theta must be a commensurate angle (m = 8..32) to within this (deg).

    Returns:
        ((m, J, D), ...) in file order.

    Raises:
        ValueError: one line naming the problem (unknown or missing column, unparsable value, an angle that is not
            commensurate with the row and the nearest commensurate angles).
    """
    import csv

    from scalinglab.simulators.moire.lattice import commensurate_angles

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"params file {path} does not exist")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"params file {path} is empty")
    header = [c.strip() for c in rows[0]]
    unknown = [c for c in header if c not in PARAM_COLUMNS]
    if unknown:
        raise ValueError(f"params file {path}: unknown column {unknown[0]!r}; expected theta (or m), J, D")
    if len(set(header)) != len(header):
        raise ValueError(f"params file {path}: repeated column in header {header}")
    if "J" not in header or "D" not in header or ("theta" in header) == ("m" in header):
        raise ValueError(f"params file {path}: need columns J, D and exactly one of theta, m; got {header}")
    angles = commensurate_angles()
    out = []
    for k, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise ValueError(f"params file {path}, row {k}: {len(row)} values for {len(header)} columns")
        try:
            vals = {c: float(v) for c, v in zip(header, row)}
        except ValueError:
            raise ValueError(f"params file {path}, row {k}: non-numeric value in {row}") from None
        if "m" in vals:
            m = vals["m"]
            if not m.is_integer() or not M_MIN <= m <= M_MAX:
                raise ValueError(f"params file {path}, row {k}: m={row[header.index('m')]} is not an integer in "
                                 f"{M_MIN}..{M_MAX}")
            m = int(m)
        else:
            th = vals["theta"]
            near = sorted(angles.items(), key=lambda mt: abs(mt[1] - th))
            if not abs(near[0][1] - th) <= atol_deg:
                two = sorted(near[:2], key=lambda mt: mt[1])
                raise ValueError(f"params file {path}, row {k}: theta={th} deg is not a commensurate angle (within "
                                 f"{atol_deg} deg); nearest: " + ", ".join(f"{t:.4f} (m={m})" for m, t in two))
            m = near[0][0]
        j, d = vals["J"], vals["D"]
        if not (np.isfinite(j) and j > 0 and np.isfinite(d) and d >= 0):
            raise ValueError(f"params file {path}, row {k}: need J > 0 and D >= 0 (meV), got J={j}, D={d}")
        out.append((m, j, d))
    if not out:
        raise ValueError(f"params file {path} has a header but no rows")
    return tuple(out)

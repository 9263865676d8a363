"""FM / NCD / MD / MD2 phase diagram over (J, D) for a few twist angles, as a PNG (and the grid as .npz).

For each angle a regular J x D grid (inside the paper's ranges) is relaxed with the campaign's ground-state search
and every point is classified (phases.py). The figure has one panel per angle, J on x and D on y, with the phase
as a colour (FM grey, NCD orange, MD blue, MD2 purple); points whose energy ordering is not resolved
(ground_state.py: gap <= k x uncertainty) are circled, non-converged winners crossed. The grid arrays are saved
next to the PNG (``<out>.npz``: J, D and per angle phase, runner-up, gap, uncertainty, resolved, converged).

Reference:
    Paper 2, Fig. 11 (phase classification of the dataset) and Appendix A.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scalinglab.progress import progress_bar
from scalinglab.simulators.moire.campaign import CampaignConfig, _hamiltonian, check_device
from scalinglab.simulators.moire.ground_state import search_ground_states
from scalinglab.simulators.moire.lattice import check_m, twist_angle
from scalinglab.simulators.moire.phases import NUM_PHASES, PHASE_NAMES

GRID_KEYS = ("phase", "m_top", "m_bottom", "converged", "resolved", "runner_up_phase", "energy_gap",
             "gap_uncertainty", "energy_per_site", "partner_gap")


def phase_grid(m: int, J_values, D_values, config: CampaignConfig) -> dict[str, np.ndarray]:
    """Phases on a J x D grid at one angle.

    Args:
        m: commensurate index (8..32).
        J_values: [nJ] intralayer exchange values (meV).
        D_values: [nD] anisotropy values (meV).
        config: campaign configuration (search settings, interlayer model, dtype, device, seed).

    Returns:
        dict of [nD, nJ] arrays: "phase" int8, "m_top", "m_bottom", "converged", "resolved", "runner_up_phase",
        "energy_gap", "gap_uncertainty" (meV/site), "energy_per_site", "partner_gap".
    """
    m = check_m(m)
    jj, dd = np.meshgrid(np.asarray(J_values, float), np.asarray(D_values, float))
    ham = _hamiltonian(m, config.interlayer, config.dtype, config.device)
    seeds = np.arange(jj.size) + config.seed * 1_000_003
    gs = search_ground_states(ham, jj.ravel(), dd.ravel(), seeds, config.search())
    shape = jj.shape
    out = {k: np.asarray(getattr(gs, k)).reshape(shape) for k in GRID_KEYS if hasattr(gs, k) and k != "energy_per_site"}
    out["energy_per_site"] = (gs.energy / ham.num_sites).reshape(shape)
    return out


def phase_diagram(out: str | os.PathLike, m_values=(8, 10, 12), num_J: int = 8, num_D: int = 8,
                  profile: str = "quick", seed: int = 0, quiet: bool = False, **overrides) -> dict[int, dict]:
    """Compute and plot the FM / NCD / MD / MD2 phase diagram over (J, D) for a few angles.

    Args:
        out: PNG path.
        m_values: commensurate indices of the panels (8..32).
        num_J, num_D: grid points along J (1..10 meV) and D (0.01..0.3 meV), >= 2 each.
        profile: campaign profile whose search settings are used.
        seed: seed of the starts.
        quiet: no progress bar.
        **overrides: ``CampaignConfig`` fields (e.g. ``interlayer="rigid"``, ``tol=1e-3``).

    Returns:
        {m: phase_grid(...)} for every panel.
    """
    if num_J < 2 or num_D < 2:
        raise ValueError(f"num_J and num_D must be >= 2, got {num_J}, {num_D}")
    m_values = [check_m(m) for m in m_values]
    if not m_values:
        raise ValueError("m_values is empty")
    config = CampaignConfig.from_profile(profile, seed, **overrides)
    check_device(config.device)
    J = np.linspace(*config.J_range, num_J)
    D = np.linspace(*config.D_range, num_D)
    grids = {}
    with progress_bar(len(m_values), "cri3 phase diagram", quiet=quiet) as bar:
        for m in m_values:
            grids[m] = phase_grid(m, J, D, config)
            bar.advance(1)
    _plot(Path(out), grids, J, D, config)
    arrays = {"J": J, "D": D, "m_values": np.array(m_values)}
    for m, g in grids.items():
        arrays.update({f"m{m}_{k}": v for k, v in g.items()})
    np.savez(Path(out).with_suffix(".npz"), **arrays)
    return grids


def _plot(out: Path, grids: dict, J: np.ndarray, D: np.ndarray, config: CampaignConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = ["#9e9e9e", "#f28e2b", "#4e79a7", "#b07aa1"]  # FM, NCD, MD, MD2
    assert len(colours) == NUM_PHASES
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(1, len(grids), figsize=(3.6 * len(grids), 3.9), squeeze=False, sharey=True)
    dj, dd = (J[1] - J[0]) / 2, (D[1] - D[0]) / 2
    jj, ddg = np.meshgrid(J, D)
    for ax, (m, g) in zip(axes[0], grids.items()):
        ax.imshow(g["phase"], origin="lower", cmap=cmap, vmin=-0.5, vmax=NUM_PHASES - 0.5, aspect="auto",
                  interpolation="nearest", extent=(J[0] - dj, J[-1] + dj, D[0] - dd, D[-1] + dd))
        unres = ~g["resolved"]
        if unres.any():
            ax.plot(jj[unres], ddg[unres], "o", mfc="none", mec="k", ms=7)
        bad = ~g["converged"]
        if bad.any():
            ax.plot(jj[bad], ddg[bad], "kx", ms=4)
        ax.set_title(f"theta = {twist_angle(m):.2f} deg (m = {m}); {int(unres.sum())} unresolved", fontsize=8)
        ax.set_xlabel("J (meV)")
    axes[0, 0].set_ylabel("D (meV)")
    handles = [Patch(color=c, label=PHASE_NAMES[k]) for k, c in enumerate(colours)]
    handles += [Line2D([], [], ls="none", marker="o", mfc="none", mec="k", label="unresolved"),
                Line2D([], [], ls="none", marker="x", color="k", label="not converged")]
    fig.legend(handles=handles, loc="lower center", fontsize=7, ncol=6, frameon=False)
    fig.suptitle(f"twisted bilayer CrI3 phases ({config.profile} search, seed {config.seed}, {config.interlayer} "
                 "interlayer)", fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)

"""FM / NCD / MD phase diagram over (J, D) for a few twist angles, as a PNG.

For each angle a regular J x D grid (inside the paper's ranges) is relaxed with the campaign's ground-state search
and every point is classified (phases.py). The figure has one panel per angle, J on x and D on y, with the phase
as a colour (FM grey, NCD orange, MD blue).

Reference:
    Paper 2, Fig. 11 (phase classification of the dataset) and Appendix A.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scalinglab.progress import progress_bar
from scalinglab.simulators.moire.campaign import CampaignConfig, _hamiltonian
from scalinglab.simulators.moire.ground_state import search_ground_states
from scalinglab.simulators.moire.lattice import check_m, twist_angle
from scalinglab.simulators.moire.phases import PHASE_NAMES, classify, layer_magnetizations


def phase_grid(m: int, J_values, D_values, config: CampaignConfig) -> dict[str, np.ndarray]:
    """Phases on a J x D grid at one angle.

    Args:
        m: commensurate index (8..32).
        J_values: [nJ] intralayer exchange values (meV).
        D_values: [nD] anisotropy values (meV).
        config: campaign configuration (search settings, interlayer model, dtype, seed).

    Returns:
        dict with "phase" [nD, nJ] int8, "m_top", "m_bottom", "converged" [nD, nJ].
    """
    m = check_m(m)
    jj, dd = np.meshgrid(np.asarray(J_values, float), np.asarray(D_values, float))
    ham = _hamiltonian(m, config.interlayer, config.dtype)
    seeds = np.arange(jj.size) + config.seed * 1_000_003
    gs = search_ground_states(ham, jj.ravel(), dd.ravel(), seeds, config.search())
    mt, mb = layer_magnetizations(gs.spins, ham.lat.layer)
    shape = jj.shape
    return {"phase": classify(mt, mb).reshape(shape), "m_top": mt.reshape(shape), "m_bottom": mb.reshape(shape),
            "converged": gs.converged.reshape(shape)}


def phase_diagram(out: str | os.PathLike, m_values=(8, 10, 12), num_J: int = 8, num_D: int = 8,
                  profile: str = "quick", seed: int = 0, quiet: bool = False, **overrides) -> dict[int, dict]:
    """Compute and plot the FM / NCD / MD phase diagram over (J, D) for a few angles.

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
    J = np.linspace(*config.J_range, num_J)
    D = np.linspace(*config.D_range, num_D)
    grids = {}
    with progress_bar(len(m_values), "cri3 phase diagram", quiet=quiet) as bar:
        for m in m_values:
            grids[m] = phase_grid(m, J, D, config)
            bar.advance(1)
    _plot(Path(out), grids, J, D, config)
    return grids


def _plot(out: Path, grids: dict, J: np.ndarray, D: np.ndarray, config: CampaignConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = ["#9e9e9e", "#f28e2b", "#4e79a7"]  # FM, NCD, MD
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(1, len(grids), figsize=(3.4 * len(grids), 3.3), squeeze=False, sharey=True)
    dj, dd = (J[1] - J[0]) / 2, (D[1] - D[0]) / 2
    for ax, (m, g) in zip(axes[0], grids.items()):
        ax.imshow(g["phase"], origin="lower", cmap=cmap, vmin=-0.5, vmax=2.5, aspect="auto", interpolation="nearest",
                  extent=(J[0] - dj, J[-1] + dj, D[0] - dd, D[-1] + dd))
        bad = ~g["converged"]
        if bad.any():
            jj, ddg = np.meshgrid(J, D)
            ax.plot(jj[bad], ddg[bad], "kx", ms=4, label="not converged")
        ax.set_title(f"theta = {twist_angle(m):.2f} deg (m = {m})", fontsize=9)
        ax.set_xlabel("J (meV)")
    axes[0, 0].set_ylabel("D (meV)")
    handles = [Patch(color=c, label=PHASE_NAMES[k]) for k, c in enumerate(colours)]
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=3)
    fig.suptitle(f"twisted bilayer CrI3 phases ({config.profile} search, {config.interlayer} interlayer)",
                 fontsize=9, x=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)

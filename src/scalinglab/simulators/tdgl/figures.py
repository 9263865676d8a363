"""Figures of TDGL campaigns: patterns over the (D, J) grid (paper 4 Fig. 3) and hysteresis loops (Fig. 2)."""

from __future__ import annotations

import numpy as np


def patterns_figure(store_path: str, out_png: str, seed: int | None = None) -> None:
    """Grid of binarized patterns, J down the rows (largest on top), D along the columns, one seed.

    Args:
        store_path: a store written by ``run_campaign``.
        out_png: output PNG path.
        seed: which simulation seed to show (default: the smallest stored).

    Reference: paper 4, Fig. 3.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalinglab.data.store import DatasetStore

    store = DatasetStore.open(store_path)
    try:
        if store.num_samples == 0:
            raise ValueError(f"store {store_path} holds no patterns to plot")
        tg = store.targets(["D", "J"])
        seeds = store.aux("seed")
        seed = int(seeds.min()) if seed is None else int(seed)
        sel = np.flatnonzero(seeds == seed)
        if sel.size == 0:
            raise ValueError(f"no pattern with seed {seed} in {store_path}")
        Ds = sorted({round(float(v), 6) for v in tg[sel, 0]})
        Js = sorted({round(float(v), 6) for v in tg[sel, 1]}, reverse=True)
        excluded = {(e["D"], e["J"]) for e in store.state.get("excluded", []) if e.get("seed") == seed}
        fig, axes = plt.subplots(len(Js), len(Ds), figsize=(1.6 * len(Ds) + 0.6, 1.6 * len(Js) + 0.4),
                                 squeeze=False)
        lookup = {(round(float(tg[i, 0]), 6), round(float(tg[i, 1]), 6)): i for i in sel}
        for r, J in enumerate(Js):
            for c, D in enumerate(Ds):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                i = lookup.get((D, J))
                if i is not None:
                    ax.imshow(store.inputs(indices=[int(i)])[0, 0], cmap="gray", vmin=-1, vmax=1,
                              interpolation="nearest")
                else:
                    ax.set_facecolor("0.85")
                    ax.text(0.5, 0.5, "excluded" if (D, J) in excluded else "n/a", ha="center", va="center",
                            transform=ax.transAxes, fontsize=7)
                if r == len(Js) - 1:
                    ax.set_xlabel(f"D={D:g}", fontsize=8)
                if c == 0:
                    ax.set_ylabel(f"J={J:g}", fontsize=8)
        # The run's own settings: a profile's note no longer holds once --size or --ramp-time override it.
        solver = store.metadata.get("config", {}).get("solver", {})
        size = solver.get("size", store.input_shape[1:])
        note = (f"{size[0]}x{size[1]} grid, ramp T = {solver.get('ramp_time', float('nan')):g} (paper: 256x256, "
                f"T = 1e5), dipolar convention {solver.get('k0', 'lattice')}")
        fig.suptitle(f"TDGL patterns at the second zero crossing (seed {seed})\n{note}", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_png, dpi=110)
        plt.close(fig)
    finally:
        store.close()

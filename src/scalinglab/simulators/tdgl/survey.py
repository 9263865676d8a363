"""Survey of a TDGL campaign against paper 4's qualitative facts: which (D, J) reverse, domain scale, saturation.

Per (D, J) cell, over the stored seeds: whether the loop reversed (runs excluded for divergence or no second zero
crossing count as not reversed), the chord length of the binarized pattern (``domains.chord_length``), the share of
pixels with |m| > 0.9 and the median |m| of the unbinarized capture (stored per pattern by the campaign), and the
coercive field of the loop (``domains.coercive_field``). Against the paper:

- Table III: which cells it keeps; the survey counts reversed / not reversed against kept / excluded.
- Fig. 3 and Sec. IV A: "the magnetic domains tend to become finer as D and J increase": the Spearman rank
  correlation of the chord length with J at each D (and with D at each J); negative means finer.
- Sec. II B 1: "the values of m_z tend to approximate either +1 or -1": the saturated share.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Sec. II B 1, Sec. IV A, Fig. 3 and Table III.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.simulators.tdgl import protocol
from scalinglab.simulators.tdgl.campaign import in_table_iii, task_key
from scalinglab.simulators.tdgl.domains import chord_length, coercive_field

# A trend needs at least this many stored values along the axis.
_MIN_TREND_POINTS = 3


@dataclass
class Cell:
    """Aggregates of one (D, J) over its seeds (NaN where nothing was stored)."""

    D: float
    J: float
    num_run: int
    num_stored: int
    in_table_iii: bool
    num_diverged: int = 0
    chord: float = float("nan")
    saturated_fraction: float = float("nan")
    median_abs_m: float = float("nan")
    coercive_field: float = float("nan")

    @property
    def reversed(self) -> bool:
        """The loop closed for the majority of its seeds."""
        return self.num_run > 0 and 2 * self.num_stored > self.num_run


@dataclass
class Survey:
    """Cells, Table III agreement and domain-scale trends of one campaign."""

    convention: str
    size: tuple[int, int]
    ramp_time: float
    cells: list[Cell]
    table_iii: dict = field(default_factory=dict)
    trend_in_J: dict = field(default_factory=dict)
    trend_in_D: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        for c, cell in zip(out["cells"], self.cells):
            c["reversed"] = cell.reversed
        return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) < _MIN_TREND_POINTS or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _trends(cells: list[Cell], along: str) -> dict:
    """Spearman correlation of the chord length with ``along`` ("J" or "D") at each value of the other axis."""
    other = "D" if along == "J" else "J"
    out = {}
    for v in sorted({getattr(c, other) for c in cells}):
        row = sorted((c for c in cells if getattr(c, other) == v and np.isfinite(c.chord)),
                     key=lambda c: getattr(c, along))
        rho = _spearman(np.array([getattr(c, along) for c in row]), np.array([c.chord for c in row]))
        if np.isfinite(rho):
            out[f"{other}={v:g}"] = rho
    return out


def survey(store_path: str | Path) -> Survey:
    """Survey a uniform-parameter campaign store (``scalinglab simulate tdgl``); see the module docstring."""
    from scalinglab.data.store import DatasetStore

    store = DatasetStore.open(store_path)
    try:
        meta = store.metadata
        config = meta.get("config", {})
        if meta.get("producer") != "tdgl" or config.get("kind", "uniform") != "uniform" or "grid" not in config:
            raise ValueError(f"{store_path} is not a uniform TDGL campaign store (scalinglab simulate tdgl --out DIR)")
        solver = config["solver"]
        T, H = float(solver["ramp_time"]), float(solver["H"])
        rec_dt = float(meta["loop_time_step"])
        done = set(store.state.get("done", []))
        diverged = {task_key(float(e["D"]), float(e["J"]), int(e["seed"])) for e in store.state.get("excluded", [])
                    if e.get("reason") == "diverged"}
        n = store.num_samples
        tg = store.targets(["D", "J"]) if n else np.zeros((0, 2))
        names = set(store.aux_names)
        aux = {k: store.aux(k) for k in ("loop_len", "loop_m", "saturated_fraction", "median_abs_m")
               if k in names and n}
        cells = []
        for d, j in config["grid"]:
            d, j = float(d), float(j)
            num_run = sum(task_key(d, j, s) in done for s in config["seeds"])
            sel = np.flatnonzero(np.isclose(tg[:, 0], d) & np.isclose(tg[:, 1], j)) if n else np.array([], int)
            cell = Cell(D=d, J=j, num_run=num_run, num_stored=len(sel), in_table_iii=in_table_iii(d, j),
                        num_diverged=sum(task_key(d, j, s) in diverged for s in config["seeds"]))
            if len(sel):
                patterns = store.inputs(indices=[int(i) for i in sel])[:, 0]  # one cell at a time: big stores fit
                cell.chord = float(np.mean([chord_length(p) for p in patterns]))
                hcs = []
                for i in sel:
                    m = aux["loop_m"][i][: int(aux["loop_len"][i])]
                    h = protocol.field(np.arange(len(m)) * rec_dt, H, T)
                    hcs.append(coercive_field(h, m, T, rec_dt))
                cell.coercive_field = float(np.nanmean(hcs)) if np.isfinite(hcs).any() else float("nan")
                for k in ("saturated_fraction", "median_abs_m"):
                    if k in aux:
                        setattr(cell, k, float(np.mean(aux[k][sel])))
            cells.append(cell)
    finally:
        store.close()

    ran = [c for c in cells if c.num_run]
    agreement = {
        "reversed_and_kept": sum(c.reversed and c.in_table_iii for c in ran),
        "reversed_but_excluded_by_paper": sum(c.reversed and not c.in_table_iii for c in ran),
        "not_reversed_but_kept_by_paper": sum(not c.reversed and c.in_table_iii for c in ran),
        "not_reversed_and_excluded": sum(not c.reversed and not c.in_table_iii for c in ran),
    }
    # Paper 4 Appendix A excludes its cells because the runs diverged; here a run is excluded either way.
    agreement["not_reversed_cells_with_diverged_runs"] = sum(not c.reversed and c.num_diverged > 0 for c in ran)
    agreement["agreement"] = ((agreement["reversed_and_kept"] + agreement["not_reversed_and_excluded"]) / len(ran)
                              if ran else float("nan"))
    return Survey(convention=str(solver.get("k0", "lattice")), size=tuple(solver["size"]), ramp_time=T,
                  cells=cells, table_iii=agreement, trend_in_J=_trends(cells, "J"), trend_in_D=_trends(cells, "D"))


def write_survey(result: Survey, out_dir: str | Path) -> dict[str, Path]:
    """Write ``survey.csv``, ``survey.json`` and ``survey.png`` (maps over (D, J) with Table III's boundary)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "survey.csv", "json": out / "survey.json", "png": out / "survey.png"}
    cols = ["D", "J", "num_run", "num_stored", "num_diverged", "reversed", "in_table_iii", "chord",
            "saturated_fraction", "median_abs_m", "coercive_field"]
    with open(paths["csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for c in result.cells:
            w.writerow([c.D, c.J, c.num_run, c.num_stored, c.num_diverged, c.reversed, c.in_table_iii]
                       + [f"{getattr(c, k):.4g}" for k in cols[7:]])
    paths["json"].write_text(json.dumps(result.to_dict(), indent=1, default=float))
    _survey_figure(result, paths["png"])
    return paths


def _survey_figure(result: Survey, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ds = sorted({c.D for c in result.cells})
    Js = sorted({c.J for c in result.cells})
    panels = [("chord", "chord length (px)"), ("saturated_fraction", "share |m| > 0.9"),
              ("coercive_field", "coercive field")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (key, title) in zip(axes, panels):
        grid = np.full((len(Js), len(Ds)), np.nan)
        for c in result.cells:
            grid[Js.index(c.J), Ds.index(c.D)] = getattr(c, key)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, shrink=0.85)
        for c in result.cells:
            x, y = Ds.index(c.D), Js.index(c.J)
            if c.num_run and not c.reversed:
                ax.text(x, y, "x", ha="center", va="center", color="red", fontsize=9)
            elif np.isfinite(getattr(c, key)):
                light = im.norm(getattr(c, key)) > 0.6  # dark text on the bright end of viridis
                ax.text(x, y, f"{getattr(c, key):.2g}", ha="center", va="center", color="k" if light else "w",
                        fontsize=6)
            if not c.in_table_iii:  # the paper excluded this cell: outlined
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec="orange", lw=1.2))
        ax.set_xticks(range(len(Ds)), [f"{d:g}" for d in Ds], fontsize=7)
        ax.set_yticks(range(len(Js)), [f"{j:g}" for j in Js], fontsize=7)
        ax.set_xlabel("D")
        ax.set_ylabel("J")
        ax.set_title(title, fontsize=9)
    t3 = result.table_iii
    fig.suptitle(f"TDGL survey, k0 = {result.convention}, {result.size[0]}x{result.size[1]}, T = {result.ramp_time:g}"
                 f" | red x: not reversed; orange box: excluded by paper 4 Table III | agreement with Table III "
                 f"{t3.get('agreement', float('nan')):.2f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def summary_lines(result: Survey) -> list[str]:
    """A few lines for the terminal: Table III agreement, trends, saturation."""
    t3 = result.table_iii
    lines = [f"Table III: {t3['reversed_and_kept']} reversed and kept, {t3['reversed_but_excluded_by_paper']} "
             f"reversed although the paper excluded them, {t3['not_reversed_but_kept_by_paper']} not reversed "
             f"although the paper kept them, {t3['not_reversed_and_excluded']} not reversed and excluded "
             f"(agreement {t3['agreement']:.2f}); {t3['not_reversed_cells_with_diverged_runs']} of the cells that "
             f"did not reverse have diverged runs (the paper's reason for excluding a cell)"]
    for name, trend in (("J", result.trend_in_J), ("D", result.trend_in_D)):
        if trend:
            finer = sum(v < 0 for v in trend.values())
            text = ", ".join(f"{k}: {v:+.2f}" for k, v in trend.items())
            lines.append(f"chord length vs {name} (Spearman; < 0 = finer with {name}), {finer} of {len(trend)} "
                         f"decreasing: {text}")
    sat = [c.saturated_fraction for c in result.cells if np.isfinite(c.saturated_fraction)]
    if sat:
        lines.append(f"share of pixels with |m| > 0.9 at the capture: median {np.median(sat):.2f} over "
                     f"{len(sat)} cells (min {min(sat):.2f}, max {max(sat):.2f})")
    return lines

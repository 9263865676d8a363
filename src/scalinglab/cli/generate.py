"""``scalinglab generate``: domain images from a trained generator for any parameters (paper 2, Sec. II.2.2)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np


def read_params_csv(path: str | Path, names: list[str]) -> np.ndarray:
    """Rows of a CSV with one column per generator input (header names; ``m`` may stand for ``theta``).

    Returns:
        [n, len(names)] float64 in the order of ``names``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file not found: {path}")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        allowed = set(names) | ({"m"} if "theta" in names else set())
        unknown = [h for h in header if h not in allowed]
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {', '.join(unknown)} (the generator takes {', '.join(names)})")
        rows = []
        for k, row in enumerate(reader, start=2):
            row = {key.strip(): v for key, v in row.items() if key is not None}
            vals = []
            for n in names:
                text = row.get(n)
                if n == "theta" and (text is None or text == "") and row.get("m"):
                    from scalinglab.simulators.moire.lattice import twist_angle

                    text = str(twist_angle(int(row["m"])))
                if text is None or text.strip() == "":
                    raise ValueError(f"{path} line {k}: no value for {n}")
                try:
                    vals.append(float(text))
                except ValueError:
                    raise ValueError(f"{path} line {k}: {n} = {text!r} is not a number") from None
            rows.append(vals)
    if not rows:
        raise ValueError(f"{path} has no rows")
    return np.asarray(rows, dtype=np.float64)


def _save_png(path: Path, images: np.ndarray, params: np.ndarray, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, C = images.shape[:2]
    fig, axes = plt.subplots(n, C, figsize=(2.6 * C + 0.8, 2.5 * n), squeeze=False)
    layer = ["top", "bottom"] if C == 2 else [f"channel {c}" for c in range(C)]
    for i in range(n):
        for c in range(C):
            ax = axes[i, c]
            im = ax.imshow(images[i, c], cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            label = ", ".join(f"{k}={v:.3g}" for k, v in zip(names, params[i]))
            ax.set_title(f"{layer[c]}: {label}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="generated m_z")
    fig.suptitle("generator_fcn: generated domain images")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def handler(args) -> int:
    from scalinglab.training.checkpoint import load_checkpoint

    net = load_checkpoint(args.checkpoint, device=args.device)
    if net.mode != "generate":
        raise ValueError(f"{args.checkpoint} is a regressor (images -> parameters), not a generator")
    names = net.input_names
    given = {"theta": args.theta, "J": args.J, "D": args.D}
    if args.params:
        if any(v is not None for v in given.values()):
            raise ValueError("give either --params FILE.csv or --theta/--J/--D, not both")
        params = read_params_csv(args.params, names)
    else:
        missing = [n for n in names if given.get(n) is None]
        if missing:
            raise ValueError(f"the generator needs {', '.join('--' + n for n in missing)} (or --params FILE.csv)")
        params = np.array([[given[n] for n in names]], dtype=np.float64)
    ranges = net.info["meta"].get("target_ranges", {})
    for j, n in enumerate(names):
        lo, hi = ranges.get(n, (-np.inf, np.inf))
        slack = 1e-6 * max(abs(lo), abs(hi), 1.0) if np.isfinite(lo) else 0.0  # rounding of printed values
        out_of = (params[:, j] < lo - slack) | (params[:, j] > hi + slack)
        if out_of.any():
            print(f"warning: {n} outside the training range [{lo:.4g}, {hi:.4g}] for {int(out_of.sum())} row(s): "
                  "the generator extrapolates there")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.compare_simulator:
        return _compare(args, net, params, out)
    t0 = time.perf_counter()
    images = net.generate(params)
    per_image = (time.perf_counter() - t0) / len(params)
    if out.suffix == ".npz":
        np.savez_compressed(out, images=images, params=params, names=np.array(names))
    elif out.suffix == ".png":
        _save_png(out, images, params, names)
    else:
        raise ValueError(f"--out must end in .npz or .png, got {out.name}")
    print(f"generated {len(params)} image pair(s) of shape {list(images.shape[1:])} in {per_image * 1e3:.2f} ms "
          f"each; wrote {out}")
    return 0


def _compare(args, net, params: np.ndarray, out: Path) -> int:
    """Generated vs freshly simulated images for the same parameters (MAE, phase agreement, time per image)."""
    from scalinglab.jobs.paper2 import PHASE_NAMES, compare_with_simulator
    from scalinglab.report.paper2 import fig_gallery

    res = compare_with_simulator(args.checkpoint, params, data=args.data, profile=args.profile, seed=args.seed,
                                 device=args.device)
    name = lambda c: PHASE_NAMES.get(int(c), str(c))
    rows = [[*(f"{v:.6g}" for v in res["targets"][k]), f"{res['mae'][k]:.4f}", name(res["phase_simulated"][k]),
             name(res["phase_sim_images"][k]), name(res["phase_gen_images"][k])] for k in range(len(params))]
    header = ["theta", "J", "D", "mae", "phase_simulator", "phase_simulated_images", "phase_generated_images"]
    csv_path = out.with_suffix(".csv")
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    titles = [f"{name(res['phase_simulated'][k])}: theta={res['targets'][k, 0]:.3g}, J={res['targets'][k, 1]:.3g}, "
              f"D={res['targets'][k, 2]:.3g}" for k in range(len(params))]
    png = out.with_suffix(".png")
    fig_gallery(res["simulated"], res["generated"], titles, png)
    if out.suffix == ".npz":
        np.savez_compressed(out, generated=res["generated"], simulated=res["simulated"], params=res["targets"],
                            mae=res["mae"])
    agree = float(np.mean(res["phase_sim_images"] == res["phase_gen_images"]))
    ratio = res["seconds_simulate"] / max(res["seconds_generate"], 1e-12)
    for r in rows:
        print("  " + ", ".join(f"{h}={v}" for h, v in zip(header, r)))
    print(f"generator vs simulator ({res['profile']} profile) on {len(params)} parameter set(s): image MAE "
          f"{np.mean(res['mae']):.4f} (mean), phase from images agrees in {100 * agree:.0f}%; "
          f"{res['seconds_generate'] * 1e3:.2f} ms vs {res['seconds_simulate']:.2f} s per image "
          f"({ratio:.3g}x faster); wrote {csv_path} and {png}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="domain images from a trained generator for given (theta, J, D)",
        description="Apply a generator checkpoint (train --mode generate, or a generator sweep with save = "
                    "[\"models\"]) to parameters and write the top/bottom m_z images as .npz (arrays) or .png.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="generator checkpoint (.pt)")
    p.add_argument("--theta", type=float, help="twist angle (deg)")
    p.add_argument("--J", type=float, help="intralayer exchange (meV)")
    p.add_argument("--D", type=float, help="single-ion anisotropy (meV)")
    p.add_argument("--params", metavar="FILE.csv", help="several parameter sets: columns theta (or m), J, D")
    p.add_argument("--out", required=True, metavar="FILE.npz|FILE.png", help="output file")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--compare-simulator", action="store_true",
                   help="also simulate the ground state of every parameter set (theta must be commensurate) and "
                        "report the image MAE, phase agreement and time per image of each; writes OUT.csv and a "
                        "simulated / generated / |difference| gallery OUT.png")
    p.add_argument("--data", metavar="STORE", help="with --compare-simulator: the training dataset whose image "
                                                    "settings to simulate with (default: recorded in the checkpoint)")
    p.add_argument("--profile", help="with --compare-simulator: simulator profile (default: the dataset's)")
    p.add_argument("--seed", type=int, default=0, help="with --compare-simulator: seed of the random starts")
    p.set_defaults(func=handler)

"""A synthetic sweep results directory with known power laws (test helper, no training)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: true alpha_D per (target, model size index); model size index 0 is the small model.
TRUE_EXPONENTS = {"theta": (1.4, 1.8), "J": (0.9, 1.3), "D": (1.2, 1.5)}
TRUE_PREFACTORS = {"theta": 50.0, "J": 5.0, "D": 20.0}
UNITS = {"theta": "deg", "J": "meV", "D": "meV"}


def write_results(
    root: Path,
    *,
    widths: tuple[int, ...] = (4, 64),
    data_sizes: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192),
    num_realizations: int = 5,
    noise: float = 0.3,
    seed: int = 0,
    compute_values: tuple[int, ...] | None = None,
    exponents: dict[str, tuple[float, ...]] | None = None,
) -> Path:
    """Write records of ``eps = A_w N_D^-alpha_w`` with lognormal realization noise (sigma = ``noise``).

    The prefactor shrinks with the width (``A / sqrt(w / 4)``) so that loss also falls with model size.
    With ``compute_values``, the loss is multiplied by ``1 + (20 / epochs)^1`` so that it saturates in compute.
    """
    exponents = exponents or TRUE_EXPONENTS
    rng = np.random.default_rng(seed)
    rec_dir = root / "records"
    rec_dir.mkdir(parents=True, exist_ok=True)
    targets = list(exponents)
    resolved = {
        "spec": {"name": "synthetic", "dataset": "synthetic-store", "targets": targets, "loss_key": "mse",
                 "realizations": num_realizations, "root_seed": seed,
                 "models": [{"family": "fcn_l3", "model": "fcn", "config": {"num_layers": 3},
                             "size_key": "width", "sizes": list(widths)}],
                 "compute": None if compute_values is None else {"key": "epochs", "values": list(compute_values)}},
        "data_sizes": list(data_sizes), "pool_size": 20000, "test_size": 2000, "num_tasks": 0,
        "target_units": {t: UNITS.get(t, "") for t in targets},
    }
    (root / "resolved_spec.json").write_text(json.dumps(resolved, indent=1))
    (root / "spec.toml").write_text('[sweep]\nname = "synthetic"\ntargets = ["theta", "J", "D"]\n')
    env = {"scalinglab": "0.1.0", "python": "3.11", "runs": [{"started": "2026-01-01T00:00:00", "wall_time_s": 12.5,
                                                              "tasks_pending": 36, "executor": "local"}]}
    (root / "environment.json").write_text(json.dumps(env))
    num_tasks = 0
    for wi, width in enumerate(widths):
        num_params = 10000 * width + 17
        for n in data_sizes:
            for cv in compute_values or (None,):
                for target in targets:
                    alpha = exponents[target][min(wi, len(exponents[target]) - 1)]
                    base = TRUE_PREFACTORS[target] / np.sqrt(width / 4) * n ** (-alpha)
                    if cv is not None:
                        base = base * (1 + 20.0 / cv)
                    losses = base * np.exp(noise * rng.standard_normal(num_realizations))
                    task_id = f"t{num_tasks:05d}"
                    recs = []
                    for r, loss in enumerate(losses):
                        recs.append({
                            "task_id": task_id, "family": "fcn_l3", "model": "fcn",
                            "model_label": f"fcn_l3 width={width}", "model_config": {"width": width, "num_layers": 3},
                            "size_axis": "width", "size_value": width, "num_params": num_params, "target": target,
                            "target_unit": UNITS.get(target, ""), "num_train": n, "realization": r, "seed": 1000 + r,
                            "flops": 6.0 * num_params * n * (cv or 50), "train_steps": 100, "best_epoch": 10,
                            "epochs_run": cv or 50, "wall_time_s": 0.01 * n / 256, "trainer": "ensemble",
                            "compute_key": None if cv is None else "epochs", "compute_value": cv,
                            "test": {"mse": float(loss) * 4.0, "mae": 0.1, "mape": 0.1, "r2": 0.9},
                            "test_normalized": {"mse": float(loss), "mae": 0.1, "mape": 0.1, "r2": 0.9},
                        })
                    (rec_dir / f"{task_id}.json").write_text(json.dumps({"task_id": task_id, "task": {},
                                                                         "records": recs}))
                    num_tasks += 1
    return root


def render_in_chromium(index: Path, work: Path) -> tuple[tuple[int, int], float, int, str]:
    """Screenshot ``index`` in headless Chromium at 1400 x 3000.

    Returns:
        ``((width, height), ink, colors, stderr)``: the share of non-white pixels and the distinct colors
        quantized to 32 levels per channel (a blank or broken page has little of either).
    """
    import matplotlib.image as mpimg

    shot = work / "screenshot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={work / 'profile'}",
           f"--screenshot={shot}", "--window-size=1400,3000", index.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if not shot.is_file():
        return (0, 0), 0.0, 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    size = struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else (0, 0)
    img = mpimg.imread(shot)[..., :3]
    ink = float((img < 0.9).any(axis=-1).mean())
    q = (img * 31).round().astype(np.int64)
    colors = int(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]).size)
    return tuple(size), ink, colors, proc.stderr[-2000:]

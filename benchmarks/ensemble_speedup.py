"""Ensemble trainer vs a per-model loop: R = 20 realizations, equal optimizer steps, two regimes.

(a) small inputs: 30 features, fcn with 3 hidden layers, batch 256, widths 4, 16, 64, 256;
    targets: ratio >= 10 at width 16 and >= 4 at width 64 (issue 2).
(b) images: 2 x 50 x 50 inputs (flattened by the fcn), widths 16, 64, 256; the trainer must never be slower
    than the loop, and its achieved GFLOP/s (FLOPs counted with FlopCounterMode on a real step: training
    forward+backward plus validation forwards) is compared with this machine's measured float32 matrix-multiply
    peak (target >= 50% at width >= 64).
(c) extra: cnn_small (batch norm, vmap path) on 1 x 32 x 32 inputs, to show the automatic path choice.

The loop is ``train_model`` (nn.Module + torch.optim.Adam + clip-free training, the same data pipeline) run once
per realization; the ensemble is ``train_ensemble`` with ``path="auto"``. Both train the same members for the same
number of steps (early stopping off). Each timing is the median of ``--repeats`` runs.

Usage: python benchmarks/ensemble_speedup.py [--quick] [--threads N] [--repeats K]
Ends with one JSON line: ratio_small_w*, ratio_image_w*, gflops_image_w*, peak_fraction_image_w*, peak_gflops, ...
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

os.environ.setdefault("SCALINGLAB_QUIET", "1")

import torch  # noqa: E402

from scalinglab.models import get_model  # noqa: E402
from scalinglab.training.config import TrainConfig  # noqa: E402
from scalinglab.training.ensemble import train_ensemble  # noqa: E402
from scalinglab.training.flops import forward_flops, train_step_flops  # noqa: E402
from scalinglab.training.trainer import TrainData, train_model  # noqa: E402

R = 20


def matmul_peak_gflops(n: int = 2048, reps: int = 8) -> float:
    """Best-of float32 GFLOP/s of an n x n x n matrix product (2 n^3 FLOPs) on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def make_data(input_shape: tuple[int, ...], num_train: int, num_val: int, num_out: int, seed: int) -> TrainData:
    """Synthetic regression data: R members, disjoint-ish random subsets of one pool."""
    g = torch.Generator().manual_seed(seed)
    n = 4 * (num_train + num_val)
    x = torch.randn(n, *input_shape, generator=g)
    w = torch.randn(x[0].numel(), num_out, generator=g) / x[0].numel() ** 0.5
    y = torch.tanh(x.reshape(n, -1) @ w)
    perms = [torch.randperm(n, generator=g) for _ in range(R)]
    train_idx = torch.stack([p[:num_train] for p in perms])
    val_idx = torch.stack([p[num_train:num_train + num_val] for p in perms])
    return TrainData(x, y, train_idx, val_idx)


def build(name: str, config: dict, seeds: range) -> list[torch.nn.Module]:
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(get_model(name, **config))
    return models


def time_case(name: str, config: dict, data: TrainData, cfg: TrainConfig, repeats: int) -> dict:
    """Median seconds of the loop and of the ensemble trainer, plus counted FLOPs of one ensemble run."""
    seeds = list(range(R))
    base = build(name, config, range(R))
    t_loop, t_ens, c_loop, c_ens, path = [], [], [], [], None
    for _ in range(repeats):
        models = copy.deepcopy(base)
        t, c = time.perf_counter(), time.process_time()
        for r in range(R):
            train_model(models[r], data.member(r), cfg, seeds[r])
        t_loop.append(time.perf_counter() - t)
        c_loop.append(time.process_time() - c)
        models = copy.deepcopy(base)
        t, c = time.perf_counter(), time.process_time()
        res = train_ensemble(models, data, cfg, seeds)
        t_ens.append(time.perf_counter() - t)
        c_ens.append(time.process_time() - c)
        path = res.path
    steps = res.steps[0]
    xb, yb = data.batch(data.train_idx[:1, :cfg.batch_size])
    step_flops = train_step_flops(base[0], xb[0], yb[0], cfg.loss)
    xv, _ = data.batch(data.val_idx[:1])
    val_flops = forward_flops(base[0], xv[0])
    flops = R * (steps * step_flops + res.epochs_run[0] * val_flops)
    loop, ens = statistics.median(t_loop), statistics.median(t_ens)
    # CPU-time ratio: less sensitive than wall time to other processes on a shared machine.
    cpu_ratio = statistics.median(c_loop) / statistics.median(c_ens)
    return {"loop_s": loop, "ensemble_s": ens, "ratio": loop / ens, "cpu_ratio": cpu_ratio, "path": path,
            "flops": flops,
            "gflops": flops / ens / 1e9, "gflops_loop": flops / loop / 1e9, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="subset: widths 16/64 (small) and 64 (image), fewer steps")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--repeats", type=int, default=None, help="timing repeats, median reported (default 3, quick 2)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 3)
    peak = matmul_peak_gflops()
    # Warm-up (untimed): first calls of the batched kernels and autograd paths pay one-time initialization.
    warm = make_data((30,), 256, 64, 1, seed=0)
    warm_cfg = TrainConfig(epochs=1, batch_size=64, patience=None)
    train_ensemble(build("fcn", {"in_features": 30, "num_layers": 3, "width": 16}, range(R)), warm, warm_cfg,
                   list(range(R)))
    train_model(build("fcn", {"in_features": 30, "num_layers": 3, "width": 16}, range(1))[0], warm.member(0),
                warm_cfg, 0)
    out: dict = {"benchmark": "ensemble_speedup", "realizations": R, "threads": torch.get_num_threads(),
                 "quick": args.quick, "peak_gflops": peak}
    rows = []

    # (a) small inputs: 30 features, 3 hidden layers, batch 256; 2048 training samples = 8 steps per epoch.
    small_widths = (16, 64) if args.quick else (4, 16, 64, 256)
    epochs = 3 if args.quick else 6
    cfg = TrainConfig(epochs=epochs, batch_size=256, patience=None)
    data = make_data((30,), 2048, 256, 1, seed=1)
    for w in small_widths:
        res = time_case("fcn", {"in_features": 30, "num_layers": 3, "width": w}, data, cfg, repeats)
        out[f"ratio_small_w{w}"] = res["ratio"]
        out[f"cpu_ratio_small_w{w}"] = res["cpu_ratio"]
        out[f"loop_s_small_w{w}"] = res["loop_s"]
        out[f"ensemble_s_small_w{w}"] = res["ensemble_s"]
        rows.append((f"small w={w}", res))

    # (b) images 2 x 50 x 50, batch 256; 1024 training samples = 4 steps per epoch, 128 validation.
    image_widths = (64,) if args.quick else (16, 64, 256)
    # 4 steps per epoch; 4-5 epochs.
    cfg = TrainConfig(epochs=4 if args.quick else 5, batch_size=256, patience=None)
    data = make_data((2, 50, 50), 1024, 128, 1, seed=2)
    for w in image_widths:
        res = time_case("fcn", {"in_features": 5000, "num_layers": 3, "width": w}, data, cfg, repeats)
        out[f"ratio_image_w{w}"] = res["ratio"]
        out[f"cpu_ratio_image_w{w}"] = res["cpu_ratio"]
        out[f"loop_s_image_w{w}"] = res["loop_s"]
        out[f"ensemble_s_image_w{w}"] = res["ensemble_s"]
        out[f"gflops_image_w{w}"] = res["gflops"]
        out[f"gflops_loop_image_w{w}"] = res["gflops_loop"]
        out[f"peak_fraction_image_w{w}"] = res["gflops"] / peak
        out[f"peak_fraction_loop_image_w{w}"] = res["gflops_loop"] / peak
        rows.append((f"image w={w}", res))

    # (c) cnn_small with batch norm (vmap path): 1 x 32 x 32 inputs, batch 64.
    if not args.quick:
        cfg = TrainConfig(epochs=2, batch_size=64, patience=None)
        data = make_data((1, 32, 32), 256, 64, 2, seed=3)
        res = time_case("cnn_small", {"in_channels": 1, "out_features": 2}, data, cfg, repeats)
        out["ratio_cnn_small"] = res["ratio"]
        out["cpu_ratio_cnn_small"] = res["cpu_ratio"]
        out["path_cnn_small"] = res["path"]
        rows.append(("cnn_small 32x32", res))

    # The peak is measured again at the end and the best kept: on a shared machine one sample can land in a
    # busy moment, which would overstate the fractions below.
    peak = max(peak, matmul_peak_gflops())
    out["peak_gflops"] = peak
    for label, r in rows:
        if label.startswith("image"):
            w = label.split("=")[1]
            out[f"peak_fraction_image_w{w}"] = r["gflops"] / peak
            out[f"peak_fraction_loop_image_w{w}"] = r["gflops_loop"] / peak
    print(f"R = {R} realizations, threads = {torch.get_num_threads()}, matmul peak {peak:.1f} GFLOP/s")
    print(f"{'case':<16}{'path':>10}{'steps':>7}{'loop s':>9}{'ens s':>9}{'ratio':>7}{'cpu ratio':>10}"
          f"{'GFLOP/s':>9}{'% peak':>8}")
    for label, r in rows:
        print(f"{label:<16}{r['path']:>10}{r['steps']:>7}{r['loop_s']:>9.3f}{r['ensemble_s']:>9.3f}"
              f"{r['ratio']:>7.2f}{r['cpu_ratio']:>10.2f}{r['gflops']:>9.1f}{100 * r['gflops'] / peak:>8.1f}")
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

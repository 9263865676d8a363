"""Parameter map of a 256 x 256 image with cnn_small: dense (one fully convolutional pass) vs naive (per window).

The naive Algorithm 1 runs the window network 65,536 times; its time is measured on a random sample of windows
(``--naive-windows``, batched like a real run) and scaled to the full map, and those windows are also checked
against the dense map (max abs difference printed). Use ``--full-naive`` to time every window instead.

Usage: python benchmarks/param_map.py [--quick] [--size 256] [--naive-windows 2048] [--full-naive]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from scalinglab.analysis.param_map import build_window_model, dense_map, naive_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sampled windows and repeats (< 1 minute)")
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--window", type=int, default=64, help="window side (default 64)")
    parser.add_argument("--naive-windows", type=int, help="windows timed for the naive path (default 4096)")
    parser.add_argument("--full-naive", action="store_true", help="time the naive map on every window")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_window_model("cnn_small", conv_padding=0).eval()
    gen = np.random.default_rng(0)
    image = np.where(gen.random((args.size, args.size)) < 0.5, -1.0, 1.0).astype(np.float32)
    repeats = 2 if args.quick else 3
    dense_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dense = dense_map(model, image, window=args.window)
        dense_times.append(time.perf_counter() - t0)
    t_dense = statistics.median(dense_times)
    num_windows = args.size * args.size
    if args.full_naive:
        pos = None
        n_naive = num_windows
    else:
        n_naive = min(num_windows, args.naive_windows or (1024 if args.quick else 4096))
        pos = np.stack(np.unravel_index(gen.choice(num_windows, n_naive, replace=False), (args.size,) * 2), 1)
    t0 = time.perf_counter()
    naive = naive_map(model, image, window=args.window, positions=pos, batch_size=256)
    t_naive_sample = time.perf_counter() - t0
    t_naive = t_naive_sample * num_windows / n_naive
    if pos is None:
        err = float(np.abs(dense - naive).max())
    else:
        err = float(np.abs(dense[:, pos[:, 0], pos[:, 1]].T - naive).max())
    print(f"{'path':<8} {'windows':>8} {'seconds':>10}")
    print(f"{'dense':<8} {num_windows:>8} {t_dense:>10.3f}")
    print(f"{'naive':<8} {num_windows:>8} {t_naive:>10.3f}  (measured on {n_naive} windows)")
    print(f"max |dense - naive| on checked windows: {err:.2e}")
    print(json.dumps({"benchmark": "param_map", "size": args.size, "window": args.window, "model": "cnn_small",
                      "dense_s": t_dense, "naive_s": t_naive, "naive_windows_timed": n_naive,
                      "ratio": t_naive / t_dense, "max_abs_diff": err, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

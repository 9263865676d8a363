"""TDGL solver throughput: steps/s at batch 1 and 16 on 256 x 256 (CPU; CUDA when present).

Fast path: the batched FFT solver (``TDGLSimulator.step``). Baseline: a straightforward single-member step in
float64 numpy (``np.fft`` for the dipolar term, ``np.roll`` Laplacian), i.e. what a direct port of the paper's
scheme does. Projection: the paper's protocol captures the pattern on the ascending branch, t ~ 3.5e5 (Eq. 2 with
T = 1e5) = 3.5e6 steps of dt = 0.1; the paper reports about 10 hours per 256 x 256 pattern on one core.

Usage: python benchmarks/tdgl_step.py [--quick] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from scalinglab.simulators.tdgl import TDGLConfig, TDGLSimulator, dipolar_kernel_fourier

PAPER_HOURS_PER_PATTERN = 10.0
PAPER_STEPS_PER_PATTERN = 3.5e5 / 0.1  # ascending-branch capture at t ~ 3.5 T, T = 1e5, dt = 0.1


def _median_time(fn, steps: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def bench_solver(batch: int, steps: int, repeats: int, device: str) -> float:
    cfg = TDGLConfig(size=(256, 256), device=device)
    sim = TDGLSimulator(cfg)
    gen = np.random.default_rng(0)
    a, g, J = sim._coefficients(np.full(batch, 1.0), np.full(batch, 1.5), gen.standard_normal((batch, 256, 256)))
    m = torch.as_tensor(gen.uniform(-0.05, 0.05, (batch, 256, 256)), dtype=sim.dtype, device=sim.device)

    def step():
        sim.step(m, 0.1, a, g, J)

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        t = _median_time(step, steps, repeats)  # kernels queue; the closing sync bounds the last repeat only
        torch.cuda.synchronize()
        return t
    return _median_time(step, steps, repeats)


def bench_baseline(steps: int, repeats: int) -> float:
    gen = np.random.default_rng(0)
    khat = -0.095 * 1.5 * dipolar_kernel_fourier((256, 256))
    a = 1.0 + 1.0 * gen.standard_normal((256, 256))
    m = gen.uniform(-0.05, 0.05, (256, 256))
    J, dt, h = 1.5, 0.1, 0.1

    def step():
        nonlocal m
        dip = np.fft.irfft2(np.fft.rfft2(m) * khat, s=m.shape)
        lap = np.roll(m, 1, 0) + np.roll(m, -1, 0) + np.roll(m, 1, 1) + np.roll(m, -1, 1) - 4 * m
        m = m + dt * ((1 - m * m) * (h + a * m + dip) + J * lap)

    step()
    return _median_time(step, steps, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (< 1 minute)")
    parser.add_argument("--steps", type=int, help="timed steps per repeat")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (20 if args.quick else 200)
    repeats = 3 if args.quick else 5
    rows = []
    base = bench_baseline(steps, repeats)
    rows.append(("numpy float64 baseline", "cpu", 1, base))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {}
    for dev in devices:
        for batch in (1, 16):
            t = bench_solver(batch, max(2, steps // (4 if batch == 16 and dev == "cpu" else 1)), repeats, dev)
            rows.append(("batched solver float32", dev, batch, t))
            results[(dev, batch)] = t / batch  # seconds per member-step
    print(f"{'path':<26} {'device':<6} {'batch':>5} {'ms/step':>9} {'member-steps/s':>15} {'h/pattern':>10}")
    for name, dev, b, t in rows:
        per_member = t / b
        hours = per_member * PAPER_STEPS_PER_PATTERN / 3600
        print(f"{name:<26} {dev:<6} {b:>5} {t * 1e3:>9.3f} {1 / per_member:>15.0f} {hours:>10.3f}")
    best_cpu = min(results[("cpu", 1)], results[("cpu", 16)])
    hours_cpu = best_cpu * PAPER_STEPS_PER_PATTERN / 3600
    out = {
        "benchmark": "tdgl_step",
        "grid": 256,
        "cpu_steps_per_s_batch1": 1 / results[("cpu", 1)],
        "cpu_member_steps_per_s_batch16": 1 / results[("cpu", 16)],
        "baseline_steps_per_s": 1 / base,
        "speedup_vs_numpy_baseline": base / best_cpu,
        "projected_hours_per_pattern_cpu": hours_cpu,
        "paper_hours_per_pattern": PAPER_HOURS_PER_PATTERN,
        "ratio": PAPER_HOURS_PER_PATTERN / hours_cpu,
        "torch_threads": torch.get_num_threads(),
    }
    if ("cuda", 16) in results:
        out["cuda_member_steps_per_s_batch16"] = 1 / results[("cuda", 16)]
        out["projected_hours_per_pattern_cuda"] = results[("cuda", 16)] * PAPER_STEPS_PER_PATTERN / 3600
    print(json.dumps(out))


if __name__ == "__main__":
    main()

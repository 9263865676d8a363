"""SIGKILL the sweep process at random moments, resume each time: nothing lost, nothing duplicated."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep


def test_sigkill_at_random_moments_then_resume(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "scalinglab.cli", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"]
    env = dict(os.environ, SCALINGLAB_QUIET="1", OMP_NUM_THREADS="1")
    rng = np.random.default_rng(1)
    kills, finished = 0, False
    seen_counts = []
    for _ in range(12):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 5:
            # a random moment: mostly while tasks are being trained and written
            deadline = time.monotonic() + rng.uniform(1.0, 4.0)
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                seen_counts.append(len(ResultsStore(out).finished_task_ids()))
                continue
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        finished = True
        break
    assert finished and kills >= 5, (kills, seen_counts)
    killed = ResultsStore(out)
    # no stray temporary files were read as records, none duplicated
    files = killed.task_files()
    assert len(files) == len({f["task_id"] for f in files}) == 12
    reference = run_sweep(spec, tmp_path / "reference", quiet=True)
    a = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in killed.records()}
    b = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in reference.records()}
    assert a.keys() == b.keys() and len(a) == 36
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-4)

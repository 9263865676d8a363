"""SIGKILL the sweep process at random moments, resume each time: nothing lost, nothing duplicated."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep


def _count(out):
    return len(ResultsStore(out).finished_task_ids())


def test_sigkill_at_random_moments_then_resume(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    # one model size, 3 N_D x 2 targets = 6 tasks, long enough that a kill lands inside a task
    spec.write_text(spec.read_text().replace("sizes = [4, 8]", "sizes = [8]").replace("epochs = 4", "epochs = 25"))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "scalinglab.cli", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"]
    env = dict(os.environ, SCALINGLAB_QUIET="1")
    rng = np.random.default_rng(1)
    kills, counts = 0, []
    for _ in range(5):
        before = _count(out)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # a random moment: either during start-up / the first task, or shortly after a task was written
        # (inside the next task's training or the record write)
        after_record = rng.random() < 0.7
        delay = rng.uniform(0.0, 0.4) if after_record else rng.uniform(0.2, 1.5)
        t_end = time.monotonic() + 120
        while after_record and _count(out) == before and proc.poll() is None and time.monotonic() < t_end:
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "the sweep finished before it could be killed: make the tasks longer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        counts.append(_count(out))
    assert kills == 5 and counts[-1] < 6, counts
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    killed = ResultsStore(out)
    files = killed.task_files()
    assert len(files) == len({f["task_id"] for f in files}) == 6  # none lost, none duplicated
    reference = run_sweep(spec, tmp_path / "reference", quiet=True)
    a = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in killed.records()}
    b = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in reference.records()}
    assert a.keys() == b.keys() and len(a) == 18
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-4)

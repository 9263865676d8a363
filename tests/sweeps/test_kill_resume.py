"""SIGKILL the sweep process at random moments, resume each time: nothing lost, nothing duplicated."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep


def _ids(out):
    return ResultsStore(out).finished_task_ids()


def _last_task_seconds(out, new_ids):
    recs = json.loads((out / "records" / f"{sorted(new_ids)[0]}.json").read_text())["records"]
    return float(recs[0]["ensemble_wall_time_s"])


def test_sigkill_at_random_moments_then_resume(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    spec.write_text(spec.read_text().replace("epochs = 4", "epochs = 20"))  # 12 tasks
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "scalinglab.cli", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"]
    env = dict(os.environ, SCALINGLAB_QUIET="1")
    rng = np.random.default_rng(1)
    counts = []
    for _ in range(5):
        before = _ids(out)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.05, 0.8))  # during start-up (imports, planning) or the first task
        else:
            # inside a later task: wait for the first record of this run, then a random fraction of one task's
            # duration, so that the kill lands in the next task's training or in its record write
            deadline = time.monotonic() + 180
            while len(_ids(out)) == len(before) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            new = _ids(out) - before
            if new:
                time.sleep(rng.uniform(0.0, 0.8) * _last_task_seconds(out, new))
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        counts.append(len(_ids(out)))
    assert counts[-1] < 12 and counts == sorted(counts), counts
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    killed = ResultsStore(out)
    files = killed.task_files()
    assert len(files) == len({f["task_id"] for f in files}) == 12  # none lost, none duplicated
    reference = run_sweep(spec, tmp_path / "reference", quiet=True)
    a = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in killed.records()}
    b = {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in reference.records()}
    assert a.keys() == b.keys() and len(a) == 36
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-4)

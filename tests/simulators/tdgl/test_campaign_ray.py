"""TDGL campaigns with the Ray executor: the same store, bit for bit, as the local executor; resumable; bad names."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data.store import DatasetStore
from scalinglab.simulators.tdgl import campaign
from scalinglab.simulators.tdgl.campaign import run_campaign

ray = pytest.importorskip("ray")

SMALL = {"size": (16, 16), "ramp_time": 60.0, "check_every": 100}
# Two seeds of three (D, J) pairs in batches of 2 (three batches); D = 60 diverges (exclusion bookkeeping).
GRID = [(0.5, 1.0), (1.0, 1.5), (60.0, 1.5)]
KW = {"grid": GRID, "seeds": [1, 2], "batch_size": 2, "solver_overrides": SMALL, "quiet": True}


@pytest.fixture(scope="module")
def ray_instance():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


def _array_files(path: Path) -> dict[str, bytes]:
    """Every data chunk file of a store (inputs, targets, aux), by relative path."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and "c" in p.relative_to(path).parts}


def assert_same_store(a: Path, b: Path) -> None:
    sa, sb = DatasetStore.open(a), DatasetStore.open(b)
    try:
        assert sa.num_samples == sb.num_samples > 0
        assert sa.state == sb.state
        assert np.array_equal(sa.inputs(), sb.inputs()) and np.array_equal(sa.targets(), sb.targets())
        for key in sa.aux_names:
            assert np.array_equal(sa.aux(key), sb.aux(key), equal_nan=True), key
    finally:
        sa.close()
        sb.close()
    fa, fb = _array_files(a), _array_files(b)
    assert fa and fa.keys() == fb.keys()
    assert all(fa[k] == fb[k] for k in fa), [k for k in fa if fa[k] != fb[k]]
    ca, cb = (json.loads((p / "commit.json").read_text()) for p in (a, b))
    assert ca["checksums"] == cb["checksums"] and ca["state"] == cb["state"]


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("tdgl") / "local"
    rep = run_campaign(str(out), **KW)
    assert rep.stored == 4 and [e["D"] for e in rep.excluded] == [60.0, 60.0]
    return out


def test_ray_store_is_bit_identical_to_local(ray_instance, local_store, tmp_path):
    out = tmp_path / "ray"
    rep = run_campaign(str(out), executor="ray", **KW)
    assert rep.stored == 4 and [(e["D"], e["seed"], e["reason"]) for e in rep.excluded] == [
        (60.0, 1, "diverged"), (60.0, 2, "diverged")]
    assert_same_store(local_store, out)
    again = run_campaign(str(out), executor="ray", **KW)  # resume of a finished store: nothing to do
    assert again.stored == 0 and again.skipped_done == 6
    assert ray.is_initialized()  # a Ray instance the campaign did not start is left running


def test_interrupted_ray_campaign_resumes_to_the_same_store(ray_instance, local_store, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    real_append = campaign._append_batch
    calls = []

    def append_then_interrupt(*args, **kwargs):
        if len(calls) == 1:  # one batch committed; the driver is interrupted with batches in flight
            raise KeyboardInterrupt
        calls.append(1)
        return real_append(*args, **kwargs)

    monkeypatch.setattr(campaign, "_append_batch", append_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(str(out), executor="ray", **KW)
    monkeypatch.setattr(campaign, "_append_batch", real_append)
    st = DatasetStore.open(out)
    assert st.num_samples == 2 and len(st.state["done"]) == 2  # the first batch only
    st.close()
    rep = run_campaign(str(out), executor="ray", **KW)
    assert rep.skipped_done == 2 and rep.stored == 2
    assert_same_store(local_store, out)


@pytest.mark.slow
def test_killed_ray_driver_resumes_to_the_same_store(ray_instance, tmp_path):
    """SIGKILL of a driver process that started its own Ray instance, then resume (about 40 s)."""
    kw = {**KW, "grid": GRID + [(1.5, 2.0), (2.0, 1.0)], "batch_size": 1}
    ref = tmp_path / "ref"
    run_campaign(str(ref), **kw)
    out = tmp_path / "killed"
    code = ("import ray\n"
            "ray.init(num_cpus=1, include_dashboard=False, object_store_memory=80 * 1024**2, log_to_driver=False)\n"
            "from scalinglab.simulators.tdgl.campaign import run_campaign\n"
            f"run_campaign({str(out)!r}, executor='ray', **{kw!r})\n")
    env = dict(os.environ, SCALINGLAB_QUIET="1", OMP_NUM_THREADS="1")
    # Own session: the SIGKILL goes to the whole process group (driver and the Ray processes it started), as a
    # killed job would, and leaves no Ray agents behind.
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    killed = False
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "commit.json").exists():
                st = DatasetStore.open(out)
                n_done = len(st.state.get("done", []))
                st.close()
                if 1 <= n_done < 10:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
            time.sleep(0.05)
    finally:
        if not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed and proc.returncode == -signal.SIGKILL, "campaign was not killed mid-run"
    rep = run_campaign(str(out), executor="ray", **kw)
    assert 1 <= rep.skipped_done < 10
    assert_same_store(ref, out)


def test_bad_executor_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="unknown executor 'dask'; choose one of local, ray") as err:
        run_campaign(str(out), executor="dask", **KW)
    assert "\n" not in str(err.value) and not out.exists()
    assert main(["simulate", "tdgl", "--out", str(out), "--grid", "1.0,1.5", "--seeds", "1", "--size", "16",
                 "--ramp-time", "60", "--executor", "dask", "--quiet"]) == 2
    err_text = capsys.readouterr().err.strip()
    assert err_text == "error: unknown executor 'dask'; choose one of local, ray" and not out.exists()
    assert main(["simulate", "tdgl", "--out", str(out), "--maps", "--executor", "ray", "--quiet"]) == 2
    assert "--maps runs with the local executor only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ray_num_gpus"):
        run_campaign(str(out), executor="ray", ray_num_gpus=1.0, **KW)  # no cuda device


def test_cuda_with_ray_needs_gpus_in_the_cluster(ray_instance, tmp_path):
    with pytest.raises(ValueError, match="needs GPUs in the Ray cluster"):
        run_campaign(str(tmp_path / "gpu"), executor="ray", **{**KW, "solver_overrides": {**SMALL, "device": "cuda"}})


@pytest.mark.gpu
def test_ray_gpu_batches_match_local_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    kw = {**KW, "solver_overrides": {**SMALL, "device": "cuda"}}
    run_campaign(str(tmp_path / "local"), **kw)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=100 * 1024**2,
             log_to_driver=False)
    try:
        run_campaign(str(tmp_path / "ray"), executor="ray", ray_num_gpus=0.5, **kw)
    finally:
        ray.shutdown()
    assert_same_store(tmp_path / "local", tmp_path / "ray")


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_failing_batch_keeps_the_batches_before_it(ray_instance, executor, tmp_path):
    """J = 3 is beyond the explicit stability limit (dt = 0.1 > 1/(4 J)): its batch raises, in a Ray task too."""
    out = tmp_path / executor
    kw = {**KW, "grid": [(1.0, 1.0), (1.0, 3.0)], "seeds": [1], "batch_size": 1}
    with pytest.raises(ValueError, match="stability limit") as err:
        run_campaign(str(out), executor=executor, **kw)
    assert "\n" not in str(err.value)
    st = DatasetStore.open(out)
    assert st.num_samples == 1 and st.state["done"] == ["D=1|J=1|seed=1"]
    np.testing.assert_array_equal(st.targets(), [[1.0, 1.0]])
    st.close()


def test_cli_executor_ray(ray_instance, tmp_path, capsys):
    args = ["simulate", "tdgl", "--grid", "1.0,1.5", "60,1.5", "--seeds", "1", "--size", "16", "--ramp-time", "60",
            "--quiet"]
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    text = capsys.readouterr().out
    assert "stored 1 new patterns" in text and "reason=diverged" in text
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert_same_store(tmp_path / "local", tmp_path / "ray")

"""The Ray executor against a real local Ray instance (num_cpus=2)."""

import os
import signal
import sys

import cloudpickle
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from scalinglab.sweeps.runner import run_sweep  # noqa: E402
from scalinglab.sweeps.task import execute_task  # noqa: E402


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


def crash_once_then_run(task, common):
    """Kill this worker process the first time any task runs (a marker file remembers), then behave normally."""
    marker = common["dataset"] + ".crashed"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return execute_task(task, common)


def _table(results):
    return {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in results.records()}


def test_ray_matches_local_and_retries_killed_worker(ray_instance, tiny_sweep, tmp_path):
    spec, data = tiny_sweep
    spec.write_text(spec.read_text().replace("sizes = [4, 8]", "sizes = [4]").replace("[32, 64, 128]", "[32, 64]"))
    local = run_sweep(spec, tmp_path / "local", quiet=True)
    via_ray = run_sweep(spec, tmp_path / "ray", executor="ray", quiet=True)
    a, b = _table(local), _table(via_ray)
    assert a.keys() == b.keys() and len(a) == 12
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-4)

    import scalinglab.sweeps.executors as executors

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    runner = executors.RayExecutor(task_fn=crash_once_then_run, max_retries=2)
    from scalinglab.sweeps.runner import plan_sweep
    from scalinglab.sweeps.spec import load_spec

    tasks, common, _ = plan_sweep(load_spec(spec))
    got = dict((t.task_id, recs) for t, recs in runner.run(tasks[:2], common))
    assert os.path.exists(str(data) + ".crashed")  # a worker really died
    assert set(got) == {t.task_id for t in tasks[:2]}
    for t in tasks[:2]:
        assert [r["test_normalized"]["mse"] for r in got[t.task_id]] == pytest.approx(
            [a[(t.task_id, r)] for r in range(3)], rel=1e-4)

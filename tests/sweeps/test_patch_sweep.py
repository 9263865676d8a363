"""Paper 4's patch study as a sweep task kind (``[sweep] mode = "patches"``): the same records as
``train_patch_model`` / ``run_patch_study`` with the same seeds, resume after SIGKILL, the Ray executor, the
Table II / Fig. 7 report, and one-line spec errors.

The store is a small TDGL-like one (stripes whose period grows with J and whose up fraction grows with D, as in
tests/training/test_patch_regression.py): seeds 1 (test), 2 (validation), 3-4 (training), so N_data in {1, 2}.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from scalinglab.cli import main
from scalinglab.seeding import derive_seed
from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep
from scalinglab.training.patch_regression import (
    ModelSpec,
    PatchConfig,
    PatternData,
    draw_training_seeds,
    run_patch_study,
    train_patch_model,
)

SIZE, PATCH = 40, 32
SEEDS = (1, 2, 3, 4)
D_VALUES = (0.4, 1.0, 1.6)
J_VALUES = (0.5, 1.2, 2.0)
# cnn_small sized for 32 x 32 patches (unpadded: 32 -> 30 -> 14 -> 12 -> 5), a few hundred parameters
TINY = {"channels": [4, 4, 8, 8], "strides": [1, 2, 1, 2]}
RECIPE = {"patch_size": PATCH, "lr": 1e-2, "steps_per_epoch": 3, "max_epochs": 2, "max_steps": 5}
ROOT_SEED = 11

SPEC = """
[sweep]
name = "tiny-patches"
mode = "patches"
dataset = "{dataset}"
data_sizes = [1, 2]
realizations = {realizations}
root_seed = 11
save = ["models"]

[[models]]
model = "cnn_small"
config = {{channels = [4, 4, 8, 8], strides = [1, 2, 1, 2]}}

[train]
patch_size = 32
lr = 1e-2
steps_per_epoch = {steps_per_epoch}
max_epochs = 2
max_steps = {max_steps}
"""


# One intra-op thread, as the sweep subprocesses and Ray workers use: the same float reduction order (module
# scope: in force before the module-scoped sweep fixture runs).
pytestmark = pytest.mark.usefixtures("one_torch_thread_for_module")


@pytest.fixture(scope="module")
def store(tmp_path_factory, stripes_store):
    return stripes_store(tmp_path_factory.mktemp("tdgl_like") / "store", SIZE, SEEDS, D_VALUES, J_VALUES)


def _spec(tmp_path, store, name="spec.toml", realizations=2, steps_per_epoch=3, max_steps=5, extra=""):
    path = tmp_path / name
    path.write_text(SPEC.format(dataset=store, realizations=realizations, steps_per_epoch=steps_per_epoch,
                                max_steps=max_steps) + extra)
    return path


@pytest.fixture(scope="module")
def swept(store, tmp_path_factory):
    """(results directory, spec path) of the tiny sweep run once through the CLI (2 N_data x 2 repeats)."""
    tmp = tmp_path_factory.mktemp("patch_sweep")
    spec = _spec(tmp, store)
    assert main(["sweep", str(spec), "--out", str(tmp / "res"), "--quiet"]) == 0
    return tmp / "res", spec


def _mae(records):
    return {(r["num_train"], r["realization"]): (r["test_mae"]["D"], r["test_mae"]["J"]) for r in records}


def test_sweep_writes_one_record_per_repeat_equal_to_train_patch_model(swept, store):
    out, _ = swept
    results = ResultsStore(out)
    assert len(results.finished_task_ids()) == 2  # one task per (model, N_data), holding its repeats
    records = results.records()
    assert sorted((r["num_train"], r["realization"]) for r in records) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    data = PatternData.from_store(store)
    cfg = PatchConfig.from_dict(RECIPE)
    for rec in records:
        n, r = rec["num_train"], rec["realization"]
        # the seeds are run_patch_study's rule, written out: training seeds drawn from (root, N_data, repeat),
        # the run seed derive_seed(root, "patch-run", N_data, repeat); the same for every model
        assert rec["train_seeds"] == draw_training_seeds([3, 4], n, ROOT_SEED, r)
        assert rec["seed"] == derive_seed(ROOT_SEED, "patch-run", n, r)
        assert rec["mode"] == "patches" and rec["label"] == rec["family"] == "cnn_small" and rec["repeat"] == r
        assert rec["num_data"] == n and rec["target"] == "D,J" and rec["steps"] == 5
        assert rec["status"] in ("ok", "not_better_than_mean") and rec["stop_reason"] == "max_steps"
        direct = train_patch_model(data, "cnn_small", train_seeds=rec["train_seeds"], seed=rec["seed"], config=cfg,
                                   model_config=TINY)
        assert direct.record["test_mae"] == rec["test_mae"]  # bit-identical
        assert direct.record["num_params"] == rec["num_params"]
        ckpt = torch.load(out / rec["checkpoint"], weights_only=True)
        assert ckpt["train_seeds"] == rec["train_seeds"] and ckpt["test_mae"] == rec["test_mae"]
        for key, value in direct.checkpoint["state_dict"].items():
            assert torch.equal(ckpt["state_dict"][key], value), key


def test_sweep_gives_the_records_of_run_patch_study(swept, store):
    """The standalone study runner (scalinglab train-patches) and the sweep train the same runs."""
    out, _ = swept
    data = PatternData.from_store(store)
    study = run_patch_study(data, [ModelSpec("cnn_small", TINY)], [1, 2], 2, PatchConfig.from_dict(RECIPE),
                            root_seed=ROOT_SEED, quiet=True)
    swept_records = {(r["num_train"], r["realization"]): r for r in ResultsStore(out).records()}
    assert len(study) == len(swept_records) == 4
    for rec in study:
        mine = swept_records[(rec["num_data"], rec["repeat"])]
        assert (mine["train_seeds"], mine["seed"], mine["test_mae"], mine["baseline_mae"]) == (
            rec["train_seeds"], rec["seed"], rec["test_mae"], rec["baseline_mae"])


def test_dry_run_status_and_growing_the_repeats(swept, store, tmp_path, capsys):
    out, _ = swept
    assert main(["sweep", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 finished, 0 pending, 2 in all" in text and "4 trained (2 per task)" in text
    grown = tmp_path / "grown"
    import shutil

    shutil.copytree(out, grown)
    spec3 = _spec(tmp_path, store, "spec3.toml", realizations=3)
    assert main(["sweep", str(spec3), "--out", str(grown), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "realizations 2.. to train" in text and "to train: 2 of 2 tasks" in text
    before = {p.name: p.read_bytes() for p in (grown / "records").glob("*.json")}
    assert main(["sweep", str(spec3), "--out", str(grown), "--resume", "--quiet"]) == 0
    after = {p.name: p.read_bytes() for p in (grown / "records").glob("*.json")}
    assert all(after[k] == v for k, v in before.items()) and len(after) == 4  # finished files untouched
    recs = ResultsStore(grown).records()
    new = [r for r in recs if r["realization"] == 2]
    assert len(recs) == 6 and len(new) == 2
    data = PatternData.from_store(store)
    for rec in new:  # repeat 2 is the one a 3-repeat study would have trained
        n = rec["num_train"]
        assert rec["train_seeds"] == draw_training_seeds([3, 4], n, ROOT_SEED, 2)
        direct = train_patch_model(data, "cnn_small", train_seeds=rec["train_seeds"],
                                   seed=derive_seed(ROOT_SEED, "patch-run", n, 2),
                                   config=PatchConfig.from_dict(RECIPE), model_config=TINY)
        assert direct.record["test_mae"] == rec["test_mae"]


def test_sigkill_then_resume_gives_identical_records(store, tmp_path):
    # longer runs (40 steps each) so that the kill lands inside the second task
    spec = _spec(tmp_path, store, steps_per_epoch=20, max_steps=40)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "scalinglab.cli", "sweep", str(spec), "--out", str(out), "--resume", "--quiet"]
    env = dict(os.environ, SCALINGLAB_QUIET="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ResultsStore(out).finished_task_ids() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the sweep finished (or failed) before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(ResultsStore(out).finished_task_ids()) == 1
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    killed = ResultsStore(out)
    assert len(killed.task_files()) == 2
    states = [r.get("status") for r in killed.environment()["runs"]]
    assert states == ["running", "finished"]  # the killed run stays in the run log
    reference = run_sweep(spec, tmp_path / "reference", quiet=True)
    a, b = _mae(killed.records()), _mae(reference.records())
    assert a.keys() == b.keys() and len(a) == 4
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=0, atol=1e-7)


@pytest.mark.slow
def test_ray_executor_gives_the_local_records(swept, tmp_path):
    ray = pytest.importorskip("ray")
    out, spec = swept
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False)
    try:
        via_ray = run_sweep(spec, tmp_path / "ray", executor="ray", quiet=True)
    finally:
        ray.shutdown()
    a, b = _mae(ResultsStore(out).records()), _mae(via_ray.records())
    assert a.keys() == b.keys() and len(a) == 4
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=0, atol=1e-7)
    assert len(list((tmp_path / "ray" / "artifacts").glob("*/r*.pt"))) == 4  # checkpoints written by workers


def test_report_writes_table_ii_medians_and_the_boxplots(swept, tmp_path, capsys):
    out, _ = swept
    rep = tmp_path / "report"
    assert main(["report", str(out), "--out", str(rep), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Table II" in printed and "cnn_small" in printed
    rows = list(csv.reader(open(rep / "median_mae.csv")))
    assert rows[0] == ["model", "D N=1", "D N=2", "J N=1", "J N=2", "repeats"]
    assert rows[1][0] == "cnn_small" and rows[1][-1] == "2" and len(rows) == 2
    records = ResultsStore(out).records()
    for col, (t, n) in enumerate([("D", 1), ("D", 2), ("J", 1), ("J", 2)], start=1):
        expected = np.median([r["test_mae"][t] for r in records if r["num_train"] == n])
        assert float(rows[1][col]) == expected
    assert len(list(csv.reader(open(rep / "records.csv")))) == 1 + 4
    for png in ("mae_boxplot.png", "pred_vs_true.png"):
        assert (rep / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (rep / "index.html").read_text()
    assert "Table II" in page and "data:image/png;base64," in page
    assert not (rep / "fits.json").exists()  # no scaling-law fits for a patch study


BAD_SPECS = [
    # (what to change in the spec text, words of the one-line error)
    (("max_steps = 5", "max_steps = 5\nlearning_rate = 0.1"), "unknown patch training key(s) learning_rate"),
    (("root_seed = 11", "root_seed = 11\ntest_size = 0.2"), "test_size has no meaning in mode 'patches'"),
    (("data_sizes = [1, 2]", "data_sizes = [1, 3]"), "data_sizes [3] exceed the 2 training seeds"),
    (('model = "cnn_small"', 'model = "cnn_small"\nsizes = [1]\nsize_key = "padding"'), "no size axis"),
    (("max_steps = 5", "max_steps = 5\ndevice = 'cpu'"), "set the device with [sweep] device"),
    (('save = ["models"]', 'save = ["predictions"]'), "save of a patch study may only hold 'models'"),
    (('config = {channels = [4, 4, 8, 8], strides = [1, 2, 1, 2]}', 'pretrained = "DEFAULT"'),
     "cnn_small is not a torchvision backbone"),
]


@pytest.mark.parametrize("change, words", BAD_SPECS, ids=[w.split()[0] for _, w in BAD_SPECS])
def test_bad_spec_is_a_one_line_error(store, tmp_path, capsys, change, words):
    spec = _spec(tmp_path, store)
    spec.write_text(spec.read_text().replace(*change))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "res"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err, err
    assert not (tmp_path / "res" / "records").exists()  # refused before any training


def test_store_without_seeds_is_refused_by_the_planner(stripes_store, tmp_path, capsys):
    # The planner checks the store without reading its images, with the same check as PatternData.from_store.
    bare = stripes_store(tmp_path / "no_seed", SIZE, SEEDS, D_VALUES, J_VALUES, with_seed=False)
    spec = _spec(tmp_path, bare)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "res"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no aux array 'seed'" in err and "\n" not in err, err
    assert not (tmp_path / "res" / "records").exists()

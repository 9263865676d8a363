import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep
from scalinglab.sweeps.spec import SpecError


def metrics_table(results):
    return {(r["task_id"], r["realization"]): r["test_normalized"]["mse"] for r in results.records()}


def test_sweep_runs_and_records_every_realization(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    results = run_sweep(spec, tmp_path / "res", quiet=True)
    recs = results.records()
    assert len(recs) == 2 * 3 * 2 * 3  # sizes x N_D x targets x realizations
    assert {r["num_train"] for r in recs} == {32, 64, 128}
    assert {r["target_unit"] for r in recs} == {"u", "v"}
    for r in recs:
        assert r["test_normalized"]["mse"] > 0 and np.isfinite(r["test"]["mse"])
        assert r["num_params"] > 0 and r["flops"] > 0
    assert (tmp_path / "res" / "spec.toml").is_file()
    env = json.loads((tmp_path / "res" / "environment.json").read_text())
    assert env["runs"][0]["tasks_pending"] == 12


def test_resume_skips_finished_and_matches_full_run(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    full = run_sweep(spec, tmp_path / "full", quiet=True)
    part = run_sweep(spec, tmp_path / "part", quiet=True, max_tasks=5)
    assert len(part.finished_task_ids()) == 5
    with pytest.raises(FileExistsError, match="--resume"):
        run_sweep(spec, tmp_path / "part", quiet=True)
    resumed = run_sweep(spec, tmp_path / "part", quiet=True, resume=True)
    a, b = metrics_table(full), metrics_table(resumed)
    assert a.keys() == b.keys()
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-5)
    env = resumed.environment()
    assert [r["tasks_pending"] for r in env["runs"]] == [5, 7]


def test_resume_into_changed_spec_is_refused(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    run_sweep(spec, tmp_path / "res", quiet=True, max_tasks=1)
    spec.write_text(spec.read_text().replace("epochs = 4", "epochs = 5"))
    with pytest.raises(SpecError, match="different spec.*train.epochs"):
        run_sweep(spec, tmp_path / "res", quiet=True, resume=True)
    assert len(ResultsStore(tmp_path / "res").finished_task_ids()) == 1  # nothing lost


def test_dataset_without_target(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    spec.write_text(spec.read_text().replace('targets = ["a", "b"]', 'targets = ["a", "theta"]'))
    with pytest.raises(SpecError, match="no target.*theta.*has: a, b"):
        run_sweep(spec, tmp_path / "res", quiet=True)


def test_cli_sweep_and_errors(tiny_sweep, tmp_path, capsys):
    spec, _ = tiny_sweep
    assert main(["sweep", str(spec), "--out", str(tmp_path / "r"), "--quiet", "--max-tasks", "2"]) == 0
    out = capsys.readouterr().out
    assert "geo. mean" in out and "results:" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nname = 'x'\nbogus = 1\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key(s) bogus") and err.count("\n") == 1

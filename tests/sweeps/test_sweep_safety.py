"""Sweeps: every task checked before any training, --dry-run, failed-start clean-up, growth in place,
the driver lock, the run log of killed runs, sweep status, and plain progress lines without a terminal."""

from __future__ import annotations

import hashlib
import json

import pytest

from scalinglab.cli import main
from scalinglab.sweeps.results import ResultsStore
from scalinglab.sweeps.runner import run_sweep
from scalinglab.sweeps.spec import SpecError
from scalinglab.sweeps.status import sweep_status

from .conftest import SPEC


def _spec(tmp_path, data, name="s.toml", **subs):
    """The tiny sweep spec with textual substitutions ``old=new`` (one-letter keys a, b, ... map to pairs)."""
    text = SPEC.format(dataset=data)
    for old, new in subs.values():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def _digests(root) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "records").glob("*.json"))}


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("sizes = [4, 8]", "sizes = [8, -8]", "width=-8.*cannot be built"),
        ("sizes = [4, 8]", "sizes = [4, 4]", "sizes lists \\[4\\] more than once"),
        ("data_sizes = [32, 64, 128]", "data_sizes = [64, 64, 128]", "data_sizes lists \\[64\\] more than once"),
        ('root_seed = 7', 'root_seed = 7\nloss_key = "msee"', "loss_key must be one of mse, mae, mape, r2, got 'msee'"),
        ("realizations = 3", 'realizations = "three"', "realizations must be an integer, got 'three'"),
        ("epochs = 4", 'epochs = "two"', "epochs must be an integer, got 'two'"),
        ("epochs = 4", "epochs = 4\nlearning_rate = 1", "unknown training config key\\(s\\) learning_rate"),
        ('root_seed = 7', 'root_seed = 7\ndevice = "gpu0"', "device 'gpu0' is not a torch device"),
        ('root_seed = 7', 'root_seed = 7\ndevice = "cuda:7"', "device 'cuda:7' requested"),
        ("test_size = 64", "test_size = 1.5", "test_size = 1.5: a fraction must lie in \\(0, 1\\)"),
        ('activation = "gelu"', 'activation = "gelu", depth = 2', "depth"),
    ],
)
def test_bad_specs_fail_before_any_training(tiny_sweep, tmp_path, old, new, match, capsys):
    _, data = tiny_sweep
    spec = _spec(tmp_path, data, a=(old, new))
    out = tmp_path / "res"
    with pytest.raises((SpecError, ValueError), match=match):
        run_sweep(spec, out, quiet=True)
    assert not (out / "records").exists()  # nothing trained
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_dry_run_prints_the_task_table_and_trains_nothing(tiny_sweep, tmp_path, capsys):
    spec, _ = tiny_sweep
    assert main(["sweep", str(spec), "--out", str(tmp_path / "res"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 tasks x 3 realizations (dry run)" in out and "to train: 12 of 12 tasks" in out
    # fcn 6 -> 4 -> 4 -> 1: (6*4+4) + (4*4+4) + (4+1) = 53 parameters for width 4
    assert "53" in out and out.count("to train") == 13
    assert not (tmp_path / "res").exists()


def test_failed_start_does_not_block_the_corrected_spec(tiny_sweep, tmp_path, monkeypatch):
    spec, data = tiny_sweep
    out = tmp_path / "res"
    import scalinglab.sweeps.runner as runner
    from scalinglab.sweeps.executors import LocalExecutor

    def boom(task, common):
        raise RuntimeError("worker died")

    monkeypatch.setattr(runner, "get_executor", lambda *a, **k: LocalExecutor(task_fn=boom))
    with pytest.raises(RuntimeError, match="worker died"):
        run_sweep(spec, out, quiet=True)
    env = json.loads((out / "environment.json").read_text())
    assert env["runs"][-1]["status"] == "failed" and "worker died" in env["runs"][-1]["error"]
    monkeypatch.undo()
    corrected = _spec(tmp_path, data, "fixed.toml", a=("epochs = 4", "epochs = 3"))
    results = run_sweep(corrected, out, quiet=True, max_tasks=1)  # no --resume needed, nothing was finished
    assert len(results.finished_task_ids()) == 1
    assert json.loads((out / "resolved_spec.json").read_text())["spec"]["train"]["epochs"] == 3


def test_sweep_grows_in_place_keeping_finished_records(tiny_sweep, tmp_path, capsys):
    _, data = tiny_sweep
    small = _spec(tmp_path, data, "small.toml", a=("data_sizes = [32, 64, 128]", "data_sizes = [32, 64]"),
                  b=("sizes = [4, 8]", "sizes = [4]"), c=("realizations = 3", "realizations = 2"))  # fmt: skip
    out = tmp_path / "res"
    run_sweep(small, out, quiet=True)
    before = _digests(out)
    assert len(before) == 4  # 1 width x 2 N_D x 2 targets

    # one more N_D: only its two tasks train
    more_nd = _spec(tmp_path, data, "nd.toml", a=("data_sizes = [32, 64, 128]", "data_sizes = [32, 64, 128]"),
                    b=("sizes = [4, 8]", "sizes = [4]"), c=("realizations = 3", "realizations = 2"))  # fmt: skip
    with pytest.raises(FileExistsError, match="--resume"):
        run_sweep(more_nd, out, quiet=True)
    run_sweep(more_nd, out, quiet=True, resume=True)
    after = _digests(out)
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    assert {r["num_train"] for r in ResultsStore(out).records()} == {32, 64, 128}

    # one more realization: a batch of realization 2 per point, seeded as if R had been 3 from the start
    more_r = _spec(tmp_path, data, "r.toml", a=("sizes = [4, 8]", "sizes = [4]"))
    assert main(["sweep", str(more_r), "--out", str(out), "--dry-run"]) == 0
    assert "realizations 2.. to train" in capsys.readouterr().out
    run_sweep(more_r, out, quiet=True, resume=True)
    grown = _digests(out)
    assert len(grown) == 12 and all(grown[k] == v for k, v in after.items())
    recs = ResultsStore(out).records()
    assert sorted({r["realization"] for r in recs}) == [0, 1, 2] and len(recs) == 6 * 3
    fresh = run_sweep(more_r, tmp_path / "fresh", quiet=True, max_tasks=1)
    first = fresh.records()
    same = [r for r in recs if (r["num_train"], r["target"]) == (first[0]["num_train"], first[0]["target"])]
    assert [r["seed"] for r in same] == [r["seed"] for r in first]
    # the added realization equals the one a 3-realization run trains (same seeds, same subset, same init)
    assert same[2]["test_normalized"]["mse"] == pytest.approx(first[2]["test_normalized"]["mse"], rel=1e-5)

    status = sweep_status(out)
    assert (status.num_tasks, status.num_finished, status.realizations_done) == (6, 6, 18)
    assert [r["state"] for r in status.runs] == ["finished"] * 3
    assert sum(status.statuses.values()) == 18 and set(status.statuses) <= {
        "ok", "at_epoch_cap", "diverged", "not_better_than_mean"}
    assert main(["sweep", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 finished, 0 pending" in text
    assert "18 trained (3 per task): " + ", ".join(f"{n} {k}" for k, n in sorted(status.statuses.items())) in text

    # shrinking is refused and leaves the records as they are
    with pytest.raises(SpecError, match="never drops finished points"):
        run_sweep(small, out, quiet=True, resume=True)
    assert _digests(out) == grown


def test_second_driver_is_refused_while_the_first_holds_the_lock(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    out = tmp_path / "res"
    with ResultsStore(out).lock():
        with pytest.raises(ValueError, match="in use by another sweep"):
            run_sweep(spec, out, quiet=True, resume=True)
    assert not (out / "records").exists()
    run_sweep(spec, out, quiet=True, max_tasks=1)  # released: the next driver runs


def test_killed_run_stays_in_the_run_log(tiny_sweep, tmp_path):
    spec, _ = tiny_sweep
    out = tmp_path / "res"
    run_sweep(spec, out, quiet=True, max_tasks=2)
    env = json.loads((out / "environment.json").read_text())
    # what a SIGKILL leaves: the entry of the running run, as last written after its last finished task
    env["runs"][-1].update(status="running", pid=2**22 + 12345)
    (out / "environment.json").write_text(json.dumps(env))
    status = sweep_status(out)
    assert status.runs[-1]["state"] == "killed" and status.runs[-1]["tasks_finished"] == 2
    assert (status.num_finished, status.num_pending) == (2, 10)


def test_non_tty_progress_lines(tiny_sweep, tmp_path, monkeypatch, capsys):
    spec, _ = tiny_sweep
    monkeypatch.setenv("SCALINGLAB_PROGRESS_INTERVAL", "0.05")
    monkeypatch.delenv("SCALINGLAB_QUIET", raising=False)
    run_sweep(spec, tmp_path / "res", max_tasks=3)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "sweep tiny:" in ln]
    assert len(lines) >= 2  # periodic lines while tasks train, and the final one
    last = lines[-1]
    assert "9/36 realizations (25.0%)" in last and "/min" in last and "eta" in last and "last: fcn_l2" in last


def test_in_task_progress_names_the_running_task_and_its_epochs(tiny_sweep, tmp_path, running_texts):
    """The local executor relays every epoch of the running ensemble to the sweep bar (no terminal needed)."""
    import scalinglab.sweeps.runner as runner

    spec, _ = tiny_sweep
    running = running_texts(runner)
    run_sweep(spec, tmp_path / "res", max_tasks=2)
    epochs = [t for t in running if t]
    assert len(epochs) >= 2 * 4 - 2  # 4 epochs per task (fewer where early stopping ends the ensemble)
    assert epochs[0].startswith("fcn_l2 ") and "N_D=" in epochs[0] and ": epoch 1/4, " in epochs[0]
    assert epochs[0].endswith("3/3 training")
    assert running[-1] == ""  # cleared when the task finished


def test_non_tty_lines_name_the_running_task(tiny_sweep, tmp_path, monkeypatch, capsys):
    from scalinglab.progress import progress_bar

    monkeypatch.setenv("SCALINGLAB_PROGRESS_INTERVAL", "3600")
    monkeypatch.delenv("SCALINGLAB_QUIET", raising=False)
    with progress_bar(10, "sweep x", unit="realizations") as bar:
        bar.set_running("fcn 8 N_D=64 J: epoch 3/4, 2/3 training")
        bar.write_line()
    assert "running: fcn 8 N_D=64 J: epoch 3/4, 2/3 training" in capsys.readouterr().err


def test_eta_follows_the_estimated_work_not_the_count(monkeypatch, capsys):
    """Tasks differ in cost by orders of magnitude: with set_work the ETA extrapolates the work left."""
    import scalinglab.progress as progress

    monkeypatch.setenv("SCALINGLAB_PROGRESS_INTERVAL", "3600")
    monkeypatch.delenv("SCALINGLAB_QUIET", raising=False)
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    with progress.progress_bar(10, "sweep w", unit="realizations") as bar:
        bar.advance(5)  # half the realizations ...
        bar.set_work(10.0, 100.0)  # ... but a tenth of the work
        clock[0] += 60.0
        bar.write_line()
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert "5/10 realizations" in line and "eta 9m00s" in line  # 60 s per 10 units, 90 units left
        bar.set_work(0.0, 0.0)  # no estimate: the count rate (5 per minute, 5 left)
        bar.write_line()
        assert "eta 1m00s" in capsys.readouterr().err.strip().splitlines()[-1]

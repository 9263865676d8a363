"""``scalinglab mup-check``: under muP the best base learning rate of MLP-I does not move with the width."""

from __future__ import annotations

import json

import pytest

from scalinglab.cli import main
from scalinglab.cli.mup_check import mup_check, optimum_shift

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


@pytest.fixture(scope="module")
def qqg_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("mup") / "qqg.zarr"
    assert main(["simulate", "amplitudes", "--process", "e+ e- > q q~ g", "--num-samples", "4000",
                 "--sqrt-s", "100", "--min-invariant", "100", "--out", str(path), "--quiet"]) == 0
    return str(path)


def test_optimum_is_width_independent_within_one_grid_step(qqg_store):
    lrs = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    res = mup_check(qqg_store, [16, 64], lrs, num_train=1024, epochs=20, num_seeds=1, test_size=1000,
                    progress=False)
    assert optimum_shift(res) <= 1
    for row in res["loss"]:  # the grid brackets the optimum: the smallest rate is clearly worse
        best = min(v for v in row if v is not None)
        assert row[0] > 3 * best


def test_cli_writes_json_and_figure(qqg_store, tmp_path, capsys):
    out = tmp_path / "mc"
    assert main(["mup-check", "--data", qqg_store, "--widths", "16", "--lrs", "1e-2,3e-2", "--num-train", "256",
                 "--epochs", "2", "--seeds", "1", "--test-size", "500", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["widths"] == [16] and set(res["best_lr"]) == {"16"}
    assert (out / "mup_check.png").stat().st_size > 1000
    assert json.loads((out / "mup_check.json").read_text())["lrs"] == [1e-2, 3e-2]


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["mup-check", "--data", str(tmp_path / "missing.zarr")]) == 2
    assert "no dataset store" in capsys.readouterr().err
    assert main(["mup-check", "--data", str(tmp_path), "--lrs", "1e-3,abc"]) == 2
    assert "--lrs" in capsys.readouterr().err


# --- mup-check as a sweep: the records, resume, refusal, the result from the records ---------------------------

SMALL = ["--widths", "8,16", "--lrs", "1e-2,3e-2", "--num-train", "128", "--epochs", "2", "--seeds", "2",
         "--test-size", "300"]


def _snapshot(out):
    """Bytes and modification time of every record file."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((out / "records").glob("*.json"))}


@pytest.fixture(scope="module")
def small_run(qqg_store, tmp_path_factory, one_torch_thread_for_module):
    """One small mup-check into a results directory: (directory, printed result, record snapshot)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("mc-sweep") / "mc"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["mup-check", "--data", qqg_store, *SMALL, "--out", str(out), "--json"]) == 0
    return out, json.loads(buf.getvalue().strip().splitlines()[-1]), _snapshot(out)


def test_rerunning_the_same_command_resumes_without_training(small_run, qqg_store, capsys):
    out, first, records = small_run
    assert len(records) == 4  # 2 widths x 2 learning rates, one task (2 realizations) each
    assert main(["mup-check", "--data", qqg_store, *SMALL, "--out", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert _snapshot(out) == records  # no record rewritten, none added
    assert again["loss"] == first["loss"] and again["best_lr"] == first["best_lr"]
    runs = json.loads((out / "environment.json").read_text())["runs"]
    assert runs[-1]["tasks_pending"] == 0 and runs[-1]["status"] == "finished"


@pytest.mark.parametrize(("change", "differs"), [
    (["--lrs", "1e-2,3e-2,1e-1"], "compute.values"),
    (["--widths", "8,16,32"], "models[0].sizes"),  # the engine alone would grow the sweep: mup-check refuses
    (["--epochs", "3"], "train.epochs"),
])
def test_a_different_grid_in_the_same_out_is_a_one_line_error(small_run, qqg_store, capsys, change, differs):
    out, _, records = small_run
    argv = list(SMALL)
    i = argv.index(change[0])
    argv[i + 1] = change[1]
    assert main(["mup-check", "--data", qqg_store, *argv, "--out", str(out), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err and differs in err
    assert _snapshot(out) == records


def test_the_records_are_sweep_records(small_run, capsys):
    from scalinglab.sweeps.spec import load_spec

    out, _, _ = small_run
    assert main(["sweep", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "sweep mup-check" in status and "4 finished, 0 pending, 4 in all" in status
    assert "8 trained (2 per task)" in status
    spec = load_spec(out / "spec.toml")  # the kept spec reruns with `scalinglab sweep`
    assert spec.compute == {"key": "lr", "values": [1e-2, 3e-2]}
    assert spec.models[0].size_key == "width" and spec.models[0].sizes == (8, 16)
    assert spec.models[0].config["mup"] is True and spec.models[0].config["base_width"] == 8
    assert spec.realizations == 2 and spec.data_sizes == [128] and spec.target_transform == "log"
    for f in (out / "records").glob("*.json"):
        task = json.loads(f.read_text())["task"]
        assert task["compute_key"] == "lr" and task["train"]["lr"] == task["compute_value"]


def test_the_result_is_the_geometric_mean_of_the_records(small_run):
    import math

    out, res, _ = small_run
    groups = {}
    for f in (out / "records").glob("*.json"):
        for r in json.loads(f.read_text())["records"]:
            groups.setdefault((r["size_value"], r["compute_value"]), []).append(r["test_normalized"]["mse"])
    assert sorted(groups) == [(8, 0.01), (8, 0.03), (16, 0.01), (16, 0.03)]
    assert all(len(v) == 2 for v in groups.values())
    for i, w in enumerate(res["widths"]):
        direct = [math.exp(sum(math.log(v) for v in groups[(w, lr)]) / 2) for lr in res["lrs"]]
        assert res["loss"][i] == pytest.approx(direct, rel=1e-12)
        assert res["best_lr"][str(w)] == res["lrs"][direct.index(min(direct))]
    assert res["optimum_shift_steps"] == optimum_shift(res)
    stored = json.loads((out / "mup_check.json").read_text())
    assert stored["loss"] == res["loss"] and stored["results_dir"] == str(out)


def test_report_on_a_mup_check_directory_fits_no_compute_curve_over_lr(small_run, tmp_path):
    from dataclasses import replace

    from scalinglab.report import analyze, load_results

    out, _, _ = small_run
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--bootstrap", "50", "--quiet"]) == 0
    assert (tmp_path / "rep" / "index.html").is_file()
    fits = json.loads((tmp_path / "rep" / "fits.json").read_text())["fits"]
    assert not [f for f in fits if f["axis"] == "compute"]
    # without FLOPs the compute axis would be the lr values themselves: still no (saturating) compute curve
    results = load_results(out)
    results = replace(results, records=[{**r, "flops": None} for r in results.records])
    analysis = analyze(results)
    assert analysis.has_compute_axis and analysis.compute_curves == []
    assert len(analysis.points) == 4


def test_without_out_the_sweep_runs_in_a_removed_temporary_directory(qqg_store, tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["mup-check", "--data", qqg_store, "--widths", "8", "--lrs", "1e-2,3e-2", "--num-train", "64",
                 "--epochs", "1", "--seeds", "1", "--test-size", "300", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["results_dir"] is None and set(res["best_lr"]) == {"8"}
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_point_is_missing(tmp_path):
    from scalinglab.report.mup import mup_figure, mup_table

    def rec(w, lr, mse):
        return {"size_value": w, "compute_key": "lr", "compute_value": lr, "test_normalized": {"mse": mse}}

    records = [rec(8, 0.1, 0.5), rec(8, 0.1, 0.2), rec(8, 1.0, float("nan")), rec(8, 1.0, 0.1),
               rec(16, 0.1, 0.3), rec(16, 1.0, float("inf"))]
    res = mup_table(records, [8, 16], [0.1, 1.0])
    assert res["loss"][0] == [pytest.approx(0.1 ** 0.5 * 1.0), None]  # one diverged seed: the point is missing
    assert res["loss"][1] == [pytest.approx(0.3), None]
    assert res["best_lr"] == {"8": 0.1, "16": 0.1} and optimum_shift(res) == 0
    assert mup_table(records)["widths"] == [8, 16]
    assert mup_figure({**res, "base_width": 8, "log_target": True}, tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="not a mup-check sweep"):
        mup_table([{**r, "compute_key": "epochs"} for r in records])

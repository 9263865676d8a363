"""``scalinglab train``: table, metrics.json, config.json, value parsing and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.cli.train import parse_assignments, parse_value, summary_rows
from scalinglab.data.store import DatasetStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: extra threads only add sync


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    J = 2.0 * x[:, 0] + x[:, 1] + 3.0
    s = DatasetStore.create(tmp_path / "ds", input_shape=(4,), target_names=["J"], target_units=["meV"],
                            metadata={"producer": "test", "config": {}})
    s.append(x, J[:, None])
    s.close()
    return str(tmp_path / "ds")


def test_train_writes_metrics_and_config(store, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", store, "--model", "fcn", "--set", "width=8", "--set", "num_layers=1",
                 "--target", "J", "--num-train", "128", "--realizations", "3", "--epochs", "4", "--seed", "5",
                 "--lr", "0.01", "--batch-size", "32", "--patience", "2", "--test-size", "40",
                 "--train-set", "optimizer=adamw", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "geom. mean" in text and "median" in text and "arith. mean" in text
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert len(metrics["records"]) == 3
    mses = [r["test"]["mse"] for r in metrics["records"]]
    summary = metrics["summary"]["test"]
    assert summary["mean"]["mse"] == pytest.approx(np.mean(mses))
    assert summary["geometric_mean"]["mse"] == pytest.approx(np.exp(np.mean(np.log(mses))))
    assert summary["median"]["mse"] == pytest.approx(np.median(mses))
    spec = config["spec"]
    assert spec["model_config"] == {"width": 8, "num_layers": 1}
    assert spec["train"]["epochs"] == 4 and spec["train"]["optimizer"] == "adamw"
    assert spec["train"]["patience"] == 2 and spec["train"]["batch_size"] == 32
    assert len(spec["seeds"]) == 3 and spec["test_size"] == 40


def test_bad_input_is_one_line_exit_2(store, tmp_path, capsys):
    base = ["train", "--data", store, "--model", "fcn", "--num-train", "64", "--out", str(tmp_path / "o")]
    for extra, message in [
        (["--target", "theta"], "theta"),
        (["--target", "J", "--set", "depth=3"], "depth"),
        (["--target", "J", "--train-set", "momentun=0.5"], "momentun"),
        (["--target", "J", "--model", "unknown_net"], "unknown model"),
    ]:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_value_parsing():
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 1e-3
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("gelu") == "gelu"
    assert parse_value("[4, 8]") == [4, 8]
    assert parse_assignments(["a=1", "b = x"], "--set") == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments(["width"], "--set")
    rows = summary_rows([{"test": {"mse": 1.0, "mae": 1.0, "mape": 1.0, "r2": -0.5}},
                         {"test": {"mse": 4.0, "mae": 1.0, "mape": 1.0, "r2": 0.5}}])
    assert rows["geometric_mean"]["mse"] == pytest.approx(2.0)
    assert np.isnan(rows["geometric_mean"]["r2"])  # undefined for non-positive values


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for opt in ("--data", "--model", "--set", "--target", "--num-train", "--realizations", "--epochs", "--seed",
                "--lr", "--batch-size", "--patience", "--out"):
        assert opt in text


def _train(store, out, *extra):
    return main(["train", "--data", store, "--model", "fcn", "--set", "width=4", "--set", "num_layers=1",
                 "--target", "J", "--num-train", "64", "--epochs", "2", "--test-size", "40", "--save", "models",
                 "--out", str(out), *extra])  # fmt: skip


def test_out_is_never_overwritten_silently(store, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(store, out, "--realizations", "2") == 0
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    assert {"metrics.json", "config.json", "r0.pt", "r1.pt"} <= set(before)
    capsys.readouterr()
    assert _train(store, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds files" in err and "--overwrite" in err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # refused before training: untouched
    assert _train(store, out, "--overwrite") == 0
    assert not (out / "r1.pt").exists()  # the earlier run's second checkpoint does not mix with the new run
    assert len(json.loads((out / "metrics.json").read_text())["records"]) == 1


def test_unwritable_out_fails_before_training(store, tmp_path, capsys):
    import os

    if os.geteuid() == 0:  # root writes through read-only permissions: use a path below a file instead
        target = tmp_path / "a_file" / "run"
        (tmp_path / "a_file").write_text("x")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "run"
    assert _train(store, target) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err and "Traceback" not in err
    assert "epoch" not in err  # no training progress: refused up front


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--device", "gpu0"], "device 'gpu0' is not a torch device"),
        (["--test-size", "1.5"], "--test-size 1.5"),
        (["--train-set", "batch_size=two"], "batch_size must be an integer, got 'two'"),
    ],
)
def test_more_bad_inputs_are_one_line(store, tmp_path, extra, message, capsys):
    assert _train(store, tmp_path / "o", *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_train_flags_diverged_realizations_and_takes_the_relative_stopping_rule(store, tmp_path, capsys):
    assert _train(store, tmp_path / "blown", "--lr", "1e6", "--patience", "0", "--realizations", "2") == 0
    out = capsys.readouterr().out
    records = json.loads((tmp_path / "blown" / "metrics.json").read_text())["records"]
    # lr 1e6 either blows the loss up (diverged) or saturates the network into a constant (no skill)
    assert {r["status"] for r in records} <= {"diverged", "not_better_than_mean"}
    assert "WARNING: 2 of 2 realizations flagged" in out
    assert _train(store, tmp_path / "rel", "--min-rel-improvement", "0.05", "--patience", "2") == 0
    cfg = json.loads((tmp_path / "rel" / "config.json").read_text())["spec"]["train"]
    assert cfg["min_rel_improvement"] == 0.05 and cfg["patience"] == 2

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

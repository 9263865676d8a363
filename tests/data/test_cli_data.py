"""``scalinglab data info|import|export|keys`` end to end, in process."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from scalinglab.cli import build_parser, main
from scalinglab.data.store import DatasetStore


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "sim.npz"
    np.savez(
        path, images=rng.normal(size=(20, 2, 4, 4)), theta=np.linspace(1.01, 3.89, 20), J=np.linspace(1, 10, 20),
        phase=np.arange(20) % 3,
    )  # fmt: skip
    return path


def test_import_info_export(tmp_path, npz, capsys):
    out = tmp_path / "ds"
    rc = main(["data", "import", str(npz), "--inputs", "images", "--targets", "theta,J", "--units", "deg,meV",
               "--aux", "phase", "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    assert "imported 20 samples" in capsys.readouterr().out

    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    for piece in ("samples        20", "(2, 4, 4)", "theta", "[deg]", "min 1.01", "max 3.89", "[meV]", "max 10",
                  "phase  int64", "producer       import", "scalinglab 0.1.0", 'state          {"imported": 20}'):
        assert piece in text, piece

    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_samples"] == 20 and info["input_shape"] == [2, 4, 4]
    assert info["targets"][1] == {"name": "J", "unit": "meV", "min": 1.0, "max": 10.0}
    assert info["aux"] == [{"name": "phase", "dtype": "int64", "shape": []}]
    assert info["created_at"].endswith("+00:00")

    for suffix in (".npz", ".h5"):
        assert main(["data", "export", str(out), "--out", str(tmp_path / f"e{suffix}"), "--quiet"]) == 0
        assert "exported 20 samples" in capsys.readouterr().out
    assert main(["data", "keys", str(tmp_path / "e.h5")]) == 0
    assert "inputs  [20, 2, 4, 4]  float32" in capsys.readouterr().out
    with np.load(tmp_path / "e.npz") as f:
        np.testing.assert_array_equal(f["targets"], DatasetStore.open(out).targets())
        assert f["target_units"].tolist() == ["deg", "meV"]


def test_user_errors_are_one_line(tmp_path, npz, capsys):
    cases = [
        (["data", "info", str(tmp_path / "nope")], "dataset store not found"),
        (["data", "info", str(tmp_path)], "is not a scalinglab dataset store"),
        (["data", "import", str(npz), "--inputs", "images", "--targets", "theta,K", "--out", str(tmp_path / "x")],
         "targets key 'K' not found"),
        (["data", "export", str(tmp_path / "nope"), "--out", str(tmp_path / "e.npz")], "not found"),
    ]  # fmt: skip
    for argv, msg in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and msg in err and "\n" not in err


def test_every_data_option_has_help():
    parser = build_parser()
    data = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["data"]
    actions = next(a for a in data._actions if isinstance(a, argparse._SubParsersAction))
    assert set(actions.choices) == {"info", "import", "export", "keys", "verify", "repair"}
    for name, sub in actions.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"data {name}: {action.dest} has no help"

"""Sweeps that keep artifacts, per-family training overrides and generator tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.sweeps.runner import run_sweep
from scalinglab.sweeps.spec import SpecError, parse_spec
from scalinglab.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _with(spec_text: str, sweep_extra: str = "", model_extra: str = "") -> str:
    return spec_text.replace('targets = ["a", "b"]', 'targets = ["a", "b"]\n' + sweep_extra).replace(
        "sizes = [4, 8]", "sizes = [4]\n" + model_extra).replace("data_sizes = [32, 64, 128]", "data_sizes = [64]")


def test_saved_artifacts_and_family_override(tiny_sweep, tmp_path):
    spec_path, _ = tiny_sweep
    text = _with(spec_path.read_text(), 'save = ["models", "predictions"]')
    text += """
[[models]]
family = "fcn_long"
model = "fcn"
config = {num_layers = 2, width = 4}
train = {epochs = 6}
"""
    spec_path.write_text(text)
    results = run_sweep(spec_path, tmp_path / "out", quiet=True)
    recs = results.records()
    assert len(recs) == 2 * 2 * 3  # two families x two targets x three realizations
    epochs = {r["family"]: r["epochs_run"] for r in recs}
    assert epochs == {"fcn_l2": 4, "fcn_long": 6}
    for rec in recs:
        folder = tmp_path / "out" / rec["artifacts_dir"]
        net = load_checkpoint(folder / rec["artifacts"]["checkpoint"])
        saved = np.load(folder / rec["artifacts"]["predictions"])
        assert net.target_names == [rec["target"]] and saved["pred"].shape == (64, 1)
    resolved = json.loads((tmp_path / "out" / "resolved_spec.json").read_text())
    assert resolved["spec"]["save"] == ["models", "predictions"]


def test_results_directory_from_before_mode_and_save_keys_resumes(tiny_sweep, tmp_path):
    spec_path, _ = tiny_sweep
    spec_path.write_text(_with(spec_path.read_text()))
    run_sweep(spec_path, tmp_path / "old", quiet=True)
    path = tmp_path / "old" / "resolved_spec.json"
    resolved = json.loads(path.read_text())
    for key in ("mode", "save"):
        del resolved["spec"][key]
    for m in resolved["spec"]["models"]:
        del m["train"]
    path.write_text(json.dumps(resolved))  # as written by a release without these keys
    assert len(run_sweep(spec_path, tmp_path / "old", resume=True, quiet=True).records()) == 6


def test_generator_sweep_has_one_task_per_point(tiny_sweep, tmp_path):
    from scalinglab.data.store import DatasetStore

    data = tmp_path / "img.zarr"
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, size=(200, 2))
    x = (p[:, :1, None, None] * np.ones((200, 1, 4, 4))).astype(np.float32)
    DatasetStore.create(data, input_shape=(1, 4, 4), target_names=["a", "b"], target_units=["u", "v"],
                        metadata={"producer": "test", "config": {}}).append(x, p)
    spec = tmp_path / "gen.toml"
    spec.write_text(f"""
[sweep]
dataset = "{data}"
targets = ["a", "b"]
mode = "generate"
realizations = 2
test_size = 40
data_sizes = [64, 128]

[[models]]
model = "generator_fcn"
config = {{hidden_widths = [8, 8]}}

[train]
epochs = 3
loss = "mae"
""")
    recs = run_sweep(spec, tmp_path / "gout", quiet=True).records()
    assert len(recs) == 2 * 2 and {r["target"] for r in recs} == {"a,b"} and {r["mode"] for r in recs} == {"generate"}


def test_bad_mode_and_save_keys():
    base = {"sweep": {"dataset": "x", "targets": ["a"], "data_sizes": [8]}, "models": [{"model": "fcn"}]}
    with pytest.raises(SpecError, match="mode must be one of"):
        parse_spec({**base, "sweep": {**base["sweep"], "mode": "invert"}})
    with pytest.raises(SpecError, match="save must be a list"):
        parse_spec({**base, "sweep": {**base["sweep"], "save": ["weights"]}})
    with pytest.raises(SpecError, match="train must be a table"):
        parse_spec({**base, "models": [{"model": "fcn", "train": 3}]})

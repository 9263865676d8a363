"""Bad inputs a new user meets (issue 12, item 5): each is one line ``error: ...`` naming the file, key or index,
exit status 2, no traceback, and no stored data changed.

Every case runs the CLI in-process (``scalinglab.cli.main``), except the broken pipe, which needs a real pipe.
Read-only directories are simulated by failing every write below them with EROFS (root writes through ``chmod``),
a full disk by failing the store's flush with ENOSPC.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scalinglab.cli import main
from scalinglab.data.store import DatasetStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = """
[sweep]
name = "bad"
dataset = "{dataset}"
targets = ["a"]
realizations = 2
root_seed = 0
test_size = 64
data_sizes = [32]

[[models]]
family = "fcn"
model = "fcn"
config = {{num_layers = 1}}
size_key = "width"
sizes = [4]

[train]
epochs = 2
batch_size = 16
"""


def _error_line(capsys, code: int, *fragments: str) -> str:
    """Assert exit status 2 and exactly one stderr line ``error: ...`` holding every fragment; return it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _digest(path: Path) -> str:
    """Hash of every file below ``path`` (names and bytes): unchanged digest = no stored data changed."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name != ".lock"):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "tiny.zarr"
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 6)).astype(np.float32)
    s = DatasetStore.create(path, input_shape=(6,), target_names=["a"], target_units=["u"], chunk_size=50,
                            metadata={"producer": "test", "config": {}})
    s.append(x, (x**2).sum(1)[:, None])
    s.close()
    return path


def _spec(tmp_path, store, old: str = "", new: str = "") -> str:
    text = SPEC.format(dataset=store)
    assert old in text
    path = tmp_path / "spec.toml"
    path.write_text(text.replace(old, new))
    return str(path)


def _train(store, out, *extra, epochs: str | None = "1") -> list[str]:
    return ["train", "--data", str(store), "--model", "fcn", "--set", "width=4", "--target", "a", "--num-train", "64",
            *(["--epochs", epochs] if epochs else []), "--out", str(out), *extra]


# ------------------------------------------------------------------------------------------------ devices
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_device_cuda_without_a_gpu(store, tmp_path, capsys):
    _error_line(capsys, main(_train(store, tmp_path / "o", "--device", "cuda")), "'cuda'", "CUDA is not available")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv_tail", [["--device", "gpu0"]])
def test_train_device_that_is_not_a_torch_device(store, tmp_path, capsys, argv_tail):
    _error_line(capsys, main(_train(store, tmp_path / "o", *argv_tail)), "'gpu0'", "not a torch device")


def test_sweep_device_in_the_spec(store, tmp_path, capsys):
    spec = _spec(tmp_path, store, "data_sizes = [32]", 'data_sizes = [32]\ndevice = "gpu0"')
    _error_line(capsys, main(["sweep", spec, "--out", str(tmp_path / "sw")]), "device", "'gpu0'")
    assert not (tmp_path / "sw" / "records").exists()


def test_simulate_device_gpu0(tmp_path, capsys):
    out = tmp_path / "c.zarr"
    code = main(["simulate", "cri3", "--num-samples", "2", "--out", str(out), "--device", "gpu0"])
    _error_line(capsys, code, "device", "'gpu0'")
    assert not out.exists()


# ------------------------------------------------------------------------------ read-only and full disks
@pytest.fixture
def read_only(tmp_path, monkeypatch) -> Path:
    """A directory every write below which fails with EROFS (as on a read-only mount, for root too)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    prefix = str(ro) + os.sep

    def below(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(prefix)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if below(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if below(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if below(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    return ro


def test_train_into_a_read_only_directory(store, read_only, capsys):
    _error_line(capsys, main(_train(store, read_only / "run")), str(read_only / "run"), "not writable")


def test_sweep_into_a_read_only_directory(store, tmp_path, read_only, capsys):
    code = main(["sweep", _spec(tmp_path, store), "--out", str(read_only / "sw"), "--quiet"])
    _error_line(capsys, code, str(read_only), "Read-only file system")


def test_simulate_into_a_read_only_directory(read_only, capsys):
    code = main(["simulate", "amplitudes", "--process", "e+ e- > mu+ mu-", "--num-samples", "10", "--sqrt-s", "100",
                 "--out", str(read_only / "a.zarr"), "--quiet"])
    _error_line(capsys, code, str(read_only), "Read-only file system")


def test_import_and_export_into_a_read_only_directory(store, tmp_path, read_only, capsys):
    np.savez(tmp_path / "x.npz", x=np.zeros((10, 3), np.float32), y=np.ones(10))
    code = main(["data", "import", str(tmp_path / "x.npz"), "--inputs", "x", "--targets", "y",
                 "--out", str(read_only / "i.zarr"), "--quiet"])
    _error_line(capsys, code, str(read_only), "Read-only file system")
    before = _digest(store)
    code = main(["data", "export", str(store), "--out", str(read_only / "e.npz"), "--quiet"])
    _error_line(capsys, code, str(read_only), "Read-only file system")
    assert _digest(store) == before


def test_full_disk_during_a_campaign_keeps_the_committed_samples(tmp_path, monkeypatch, capsys):
    out = tmp_path / "a.zarr"
    argv = ["simulate", "amplitudes", "--process", "e+ e- > mu+ mu-", "--sqrt-s", "100", "--out", str(out),
            "--batch-size", "8", "--quiet"]
    assert main([*argv, "--num-samples", "8"]) == 0
    capsys.readouterr()
    before = _digest(out)

    def full(self, keys, start, stop):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / keys[0]))

    monkeypatch.setattr(DatasetStore, "_flush", full)
    _error_line(capsys, main([*argv, "--num-samples", "16"]), "No space left on device", str(out))
    monkeypatch.undo()
    store = DatasetStore.open(out)
    assert store.num_samples == 8 and store.state["num_done"] == 8
    from scalinglab.data.integrity import verify_store

    assert verify_store(out).ok
    assert main([*argv, "--num-samples", "16"]) == 0  # the next run continues from the committed samples
    assert DatasetStore.open(out).num_samples == 16
    del before


# ---------------------------------------------------------------------------------------- damaged files
def test_truncated_npz(tmp_path, capsys):
    np.savez(tmp_path / "good.npz", x=np.zeros((10, 3), np.float32), y=np.ones(10))
    data = (tmp_path / "good.npz").read_bytes()
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(data[: len(data) // 2])
    for argv in (["data", "keys", str(bad)],
                 ["data", "import", str(bad), "--inputs", "x", "--targets", "y", "--out", str(tmp_path / "i.zarr")]):
        line = _error_line(capsys, main(argv), str(bad), "not an .npz archive")
        assert "pickled" not in line and "BadZipFile" not in line
    assert not (tmp_path / "i.zarr").exists()


def test_damaged_npz_member(tmp_path, capsys):
    np.savez_compressed(tmp_path / "c.npz", x=np.random.default_rng(0).random((500, 3)), y=np.ones(500))
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[200:260] = b"\0" * 60  # the zip directory survives, the first member's payload does not
    bad = tmp_path / "d.npz"
    bad.write_bytes(bytes(data))
    _error_line(capsys, main(["data", "keys", str(bad)]), "'x'", str(bad), "truncated or damaged")


def test_text_file_named_npz(tmp_path, capsys):
    bad = tmp_path / "notes.npz"
    bad.write_text("theta,J,D\n1,2,3\n")
    line = _error_line(capsys, main(["data", "keys", str(bad)]), str(bad), "not an .npz archive")
    assert "pickled" not in line and "allow_pickle" not in line


@pytest.mark.parametrize("how", ["truncate", "delete", "bitflip"])
def test_damaged_zarr_chunk(store, tmp_path, capsys, how):
    chunk = DatasetStore.open(store)._chunk_file("inputs", 1)
    data = chunk.read_bytes()
    if how == "truncate":
        chunk.write_bytes(data[: len(data) // 2])
    elif how == "delete":
        chunk.unlink()
    else:
        chunk.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    before = _digest(store)
    for argv in (["data", "export", str(store), "--out", str(tmp_path / "e.npz")], _train(store, tmp_path / "run")):
        _error_line(capsys, main(argv), str(store), "'inputs'", "samples 50..99")
    assert _digest(store) == before and not (tmp_path / "e.npz").exists()


def test_damaged_targets_chunk_stops_data_info(store, capsys):
    opened = DatasetStore.open(store)
    a, b = opened.chunk_ranges("targets")[-1]
    opened._chunk_file("targets", len(opened.chunk_ranges("targets")) - 1).unlink()
    before = _digest(store)
    _error_line(capsys, main(["data", "info", str(store)]), str(store), "'targets'", f"samples {a}..{b - 1}", "lost")
    assert _digest(store) == before


# ------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture
def patch_checkpoint(tmp_path) -> Path:
    from scalinglab.analysis.param_map import build_window_model

    torch.manual_seed(0)
    model = build_window_model("cnn_small", conv_padding=0).eval()
    path = tmp_path / "patch.pt"
    torch.save({"model": "cnn_small", "config": {}, "conv_padding": 0, "state_dict": model.state_dict(),
                "input_scale": 1.0, "input_shift": 0.0, "target_names": ["D", "J"], "target_scale": [1.0, 1.0],
                "target_shift": [0.0, 0.0], "patch_size": 64}, path)
    np.save(tmp_path / "img.npy", np.where(np.random.default_rng(1).random((70, 70)) < 0.5, -1.0, 1.0))
    return path


@pytest.mark.parametrize("content", [b"this is not a checkpoint\n", b"\x80\x04\x95\x00", b"PK\x03\x04broken"])
def test_checkpoint_that_is_not_a_checkpoint(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    np.save(tmp_path / "img.npy", np.ones((70, 70)))
    for argv in (["map", str(bad), str(tmp_path / "img.npy"), "--out", str(tmp_path / "m")],
                 ["generate", str(bad), "--theta", "3.89", "--J", "1", "--D", "0.1", "--out", str(tmp_path / "g.npz")]):
        line = _error_line(capsys, main(argv), str(bad), "not a readable")
        assert "weights_only" not in line and "arbitrary code" not in line
    assert not (tmp_path / "m").exists() and not (tmp_path / "g.npz").exists()


def test_map_window_and_channel_mismatch(patch_checkpoint, tmp_path, capsys):
    img = tmp_path / "img.npy"
    base = ["map", str(patch_checkpoint), str(img), "--stride", "14", "--out", str(tmp_path / "m")]
    _error_line(capsys, main([*base, "--window", "32"]), "--window 32", "64-pixel patches", str(patch_checkpoint))
    np.save(tmp_path / "two.npy", np.ones((2, 70, 70)))
    code = main(["map", str(patch_checkpoint), str(tmp_path / "two.npy"), "--out", str(tmp_path / "m")])
    _error_line(capsys, code, str(tmp_path / "two.npy"), "2 channel(s)", "takes 1")
    np.save(tmp_path / "small.npy", np.ones((40, 40)))
    code = main(["map", str(patch_checkpoint), str(tmp_path / "small.npy"), "--out", str(tmp_path / "m")])
    _error_line(capsys, code, "--window 64", "larger than the image", "40x40")
    assert not (tmp_path / "m").exists()
    assert main(base) == 0  # the checkpoint's patch size is the default window
    assert np.load(tmp_path / "m" / "map.npy").shape == (2, 5, 5)  # ceil(70 / 14)


def test_map_window_too_small_for_the_network(patch_checkpoint, tmp_path, capsys):
    blob = torch.load(patch_checkpoint, weights_only=True)
    del blob["patch_size"]  # an older checkpoint: the window is checked against the network itself
    torch.save(blob, patch_checkpoint)
    code = main(["map", str(patch_checkpoint), str(tmp_path / "img.npy"), "--window", "8", "--out",
                 str(tmp_path / "m")])
    _error_line(capsys, code, "--window 8", "does not fit the model", str(patch_checkpoint))


def test_text_file_named_npy_image(patch_checkpoint, tmp_path, capsys):
    (tmp_path / "notes.npy").write_text("1 2 3\n")
    code = main(["map", str(patch_checkpoint), str(tmp_path / "notes.npy"), "--out", str(tmp_path / "m")])
    line = _error_line(capsys, code, str(tmp_path / "notes.npy"), "not a readable .npy")
    assert "pickled" not in line


# ------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("old,new,fragments", [
    ("epochs = 2", 'epochs = "two"', ("epochs", "'two'", "integer")),
    ("realizations = 2", 'realizations = "three"', ("realizations", "'three'", "integer")),
    ("batch_size = 16", 'batch_size = 16\nloss = "msee"', ("loss 'msee'", "known: mse")),
    ("test_size = 64", "test_size = 1.5", ("test_size", "1.5", "(0, 1)")),
])
def test_bad_sweep_spec_values(store, tmp_path, capsys, old, new, fragments):
    out = tmp_path / "sw"
    _error_line(capsys, main(["sweep", _spec(tmp_path, store, old, new), "--out", str(out), "--quiet"]), *fragments)
    assert not (out / "records").exists()


@pytest.mark.parametrize("extra,fragments", [
    (["--train-set", "loss=msee"], ("loss 'msee'", "known: mse")),
    (["--train-set", "epochs=two"], ("epochs", "'two'")),
    (["--test-size", "1.5"], ("--test-size 1.5", "fraction in (0, 1)")),
])
def test_bad_train_values(store, tmp_path, capsys, extra, fragments):
    _error_line(capsys, main(_train(store, tmp_path / "o", *extra, epochs=None)), *fragments)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("cut,fragments", [
    (["--min-pt", "40"], ("min_pt = 40 GeV", "sqrt_s = 100 GeV", "3 x 40")),
    (["--min-invariant", "3400"], ("min_invariant = 3400", "sqrt_s = 100 GeV")),
])
def test_impossible_amplitude_cut_is_refused_up_front(tmp_path, capsys, cut, fragments):
    import time

    out = tmp_path / "a.zarr"
    start = time.perf_counter()
    code = main(["simulate", "amplitudes", "--process", "g g > g g g", "--num-samples", "10", "--sqrt-s", "100",
                 *cut, "--out", str(out), "--quiet"])
    _error_line(capsys, code, *fragments)
    assert time.perf_counter() - start < 10 and not out.exists()


def test_massive_final_states_leave_less_for_the_cut():
    from scalinglab.simulators.amplitudes.phase_space import Cuts

    Cuts(min_pt=40).check_feasible(100.0, [0.0, 0.0])  # 2 x 40 < 100: possible
    with pytest.raises(ValueError, match="min_pt"):
        Cuts(min_pt=40).check_feasible(100.0, [91.19, 0.0])  # a Z leaves 8.8 GeV for the gluon


# ---------------------------------------------------------------------------------- pipes and Ctrl-C
def test_broken_pipe_is_quiet(store):
    """``scalinglab data info STORE | head -0``: the reader left; no traceback, no error line."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "scalinglab.cli", "data", "info", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == "", err


@pytest.mark.parametrize("command,fragments", [
    ("sweep", ("--resume", "scalinglab sweep")),
    ("simulate", ("re-run the same command", "resumes")),
    ("train", ("nothing of this run is kept", "--overwrite")),
])
def test_ctrl_c_advice_names_the_command_that_continues(store, tmp_path, monkeypatch, capsys, command, fragments):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "out"
    if command == "sweep":
        monkeypatch.setattr("scalinglab.sweeps.runner.run_sweep", interrupt)
        spec = _spec(tmp_path, store)
        argv = ["sweep", spec, "--out", str(out)]
        fragments = (*fragments, spec, str(out))
    elif command == "simulate":
        monkeypatch.setattr("scalinglab.simulators.amplitudes.campaign.simulate_amplitudes", interrupt)
        argv = ["simulate", "amplitudes", "--process", "e+ e- > mu+ mu-", "--num-samples", "8", "--sqrt-s", "100",
                "--out", str(out)]
    else:
        monkeypatch.setattr("scalinglab.training.experiment.run_experiment", interrupt)
        monkeypatch.setattr("scalinglab.cli.train.run_experiment", interrupt, raising=False)
        argv = _train(store, out)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted: "), err
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])

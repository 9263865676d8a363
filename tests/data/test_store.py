"""Dataset store: round trip, validation, corruption, schema checks, and interruption by a real SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from scalinglab import __version__
from scalinglab.data.store import DatasetStore, DataValidationError

SCHEMA = dict(
    input_shape=(2, 4, 4),
    target_names=["theta", "J", "D"],
    target_units=["deg", "meV", "meV"],
    aux_specs={"phase": ("int8", ()), "energy": ("float64", ()), "vec": ("float32", (3,))},
    metadata={"producer": "unit-test", "config": {"lattice": {"m": 8}, "num_draws": 100}, "note": "free-form"},
    chunk_size=8,
)


def _batch(start: int, n: int):
    """Deterministic samples start .. start + n - 1 (values encode the sample index)."""
    i = np.arange(start, start + n)
    x = (i[:, None, None, None] + 0.01 * np.arange(32).reshape(1, 2, 4, 4)).astype(np.float32)
    y = np.stack([i * 0.5, i + 1.0, np.sqrt(i + 1.0)], axis=1)
    aux = {
        "phase": (i % 3).astype(np.int8),
        "energy": -1.5 * i,
        "vec": np.stack([i, 2 * i, 3 * i], axis=1).astype(np.float32),
    }
    return x, y, aux


def _filled(path, sizes=(5, 11, 3, 8)):
    store = DatasetStore.create(path, **SCHEMA)
    start = 0
    for n in sizes:
        x, y, aux = _batch(start, n)
        store.append(x, y, aux=aux, state={"next": start + n})
        start += n
    return store, start


def test_round_trip(tmp_path):
    store, n = _filled(tmp_path / "ds")
    store.close()
    r = DatasetStore.open(tmp_path / "ds")
    x, y, aux = _batch(0, n)
    assert r.num_samples == len(r) == n == 27
    assert r.input_shape == (2, 4, 4) and r.input_dtype == np.float32
    assert r.target_names == ["theta", "J", "D"] and r.target_units == ["deg", "meV", "meV"]
    assert r.aux_names == ["phase", "energy", "vec"]
    np.testing.assert_array_equal(r.inputs(), x)
    np.testing.assert_array_equal(r.targets(), y)
    np.testing.assert_array_equal(r.targets(["D", "theta"]), y[:, [2, 0]])
    for name in aux:
        np.testing.assert_array_equal(r.aux(name), aux[name])
        assert r.aux(name).dtype == aux[name].dtype
    assert r.state == {"next": 27}
    meta = r.metadata
    assert meta["producer"] == "unit-test" and meta["config"] == {"lattice": {"m": 8}, "num_draws": 100}
    assert meta["note"] == "free-form" and meta["scalinglab_version"] == __version__
    created = dt.datetime.fromisoformat(meta["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600
    assert r.target_unit("J") == "meV"


def test_random_index_reads_match_numpy(tmp_path):
    store, n = _filled(tmp_path / "ds", sizes=(40, 23))
    x, y, aux = _batch(0, n)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, n, size=50)  # unsorted, with repeats, across chunks
    np.testing.assert_array_equal(store.inputs(idx), x[idx])
    np.testing.assert_array_equal(store.targets(["J"], idx), y[idx][:, [1]])
    np.testing.assert_array_equal(store.aux("vec", idx), aux["vec"][idx])
    mask = rng.random(n) < 0.3
    np.testing.assert_array_equal(store.inputs(mask), x[mask])
    np.testing.assert_array_equal(store.inputs(slice(5, 30, 2)), x[5:30:2])
    np.testing.assert_array_equal(store.inputs(np.arange(9, 20)), x[9:20])
    assert store.inputs([]).shape == (0, 2, 4, 4)
    with pytest.raises(ValueError, match="index 63 out of range"):
        store.inputs([0, 63])


def test_targets_as_dict_and_state_only_commit(tmp_path):
    store = DatasetStore.create(tmp_path / "ds", input_shape=(3,), target_names=["a", "b"])
    store.append(np.ones((2, 3)), {"b": [1.0, 2.0], "a": [3.0, 4.0]}, state={"k": 1})
    np.testing.assert_array_equal(store.targets(), [[3.0, 1.0], [4.0, 2.0]])
    assert store.append(np.zeros((0, 3)), np.zeros((0, 2)), state={"k": 2}) == 2
    assert DatasetStore.open(tmp_path / "ds").state == {"k": 2}
    with pytest.raises(DataValidationError, match=r"unknown target\(s\) \['c'\]"):
        store.append(np.ones((1, 3)), {"a": [1.0], "b": [1.0], "c": [1.0]})
    with pytest.raises(DataValidationError, match=r"target\(s\) \['b'\] missing"):
        store.append(np.ones((1, 3)), {"a": [1.0]})


def _snapshot(path):
    return (path / "commit.json").read_bytes()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x, y, a: (x[:, :1], y, a), r"inputs: expected shape \[n, 2, 4, 4\], got \[4, 1, 4, 4\]"),
        (lambda x, y, a: (x, y[:, :2], a), r"targets: expected shape \[n, 3\], got \[4, 2\]"),
        (lambda x, y, a: (x, y[:3], a), "targets has 3 samples but inputs has 4"),
        (lambda x, y, a: (x.astype(np.complex64), y, a), "inputs: dtype complex64 cannot be stored as float32"),
        (lambda x, y, a: (x, y, {**a, "phase": a["phase"] + 0.5}), "aux 'phase': dtype float64 cannot be stored"),
        (lambda x, y, a: (x, y, {**a, "phase": a["phase"].astype(np.int64) + 300}), "do not fit dtype int8"),
        (lambda x, y, a: (x, y, {k: v for k, v in a.items() if k != "vec"}), r"\['vec'\] missing"),
        (lambda x, y, a: (x, y, {**a, "spin": a["energy"]}), r"unknown aux array\(s\) \['spin'\]"),
        (lambda x, y, a: (x.astype(np.float64) * 1e39, y, a), "value at sample index 0 overflows float32"),
    ],
)
def test_validation_errors_leave_store_unchanged(tmp_path, mutate, match):
    store, n = _filled(tmp_path / "ds", sizes=(6,))
    before = _snapshot(tmp_path / "ds")
    x, y, aux = _batch(n, 4)
    with pytest.raises(DataValidationError, match=match):
        store.append(*mutate(x, y, aux), state={"next": 99})
    assert store.num_samples == n and store.state == {"next": 6}
    assert _snapshot(tmp_path / "ds") == before
    x0, _, _ = _batch(0, n)
    np.testing.assert_array_equal(DatasetStore.open(tmp_path / "ds").inputs(), x0)


@pytest.mark.parametrize("key, bad", [("inputs", np.nan), ("targets", np.inf), ("energy", -np.inf)])
def test_nonfinite_error_names_key_and_first_index(tmp_path, key, bad):
    store, n = _filled(tmp_path / "ds", sizes=(3,))
    x, y, aux = _batch(n, 10)
    arr = x if key == "inputs" else y if key == "targets" else aux[key]
    arr[7] = bad
    arr[9] = bad
    kind = "NaN" if np.isnan(bad) else "inf"
    with pytest.raises(DataValidationError, match=rf"{key}.* contains {kind} at sample index 7 \(2 bad samples"):
        store.append(x, y, aux=aux)
    assert DatasetStore.open(tmp_path / "ds").num_samples == 3


def test_unknown_target_and_aux_on_read(tmp_path):
    store, _ = _filled(tmp_path / "ds", sizes=(3,))
    with pytest.raises(ValueError, match=r"unknown target 'Jperp'; this dataset has targets \['theta', 'J', 'D'\]"):
        store.targets(["J", "Jperp"])
    with pytest.raises(ValueError, match="unknown aux array 'seed'"):
        store.aux("seed")


def test_state_must_be_json(tmp_path):
    store, n = _filled(tmp_path / "ds", sizes=(3,))
    x, y, aux = _batch(n, 2)
    with pytest.raises(DataValidationError, match="state must be JSON-serializable"):
        store.append(x, y, aux=aux, state={"rng": object()})
    assert store.num_samples == 3
    store.append(x, y, aux=aux, state={"n": np.int64(5), "v": np.arange(2)})
    assert DatasetStore.open(tmp_path / "ds").state == {"n": 5, "v": [0, 1]}


def test_read_only_and_single_writer(tmp_path):
    store, n = _filled(tmp_path / "ds", sizes=(3,))
    x, y, aux = _batch(n, 1)
    with pytest.raises(ValueError, match="another process"):
        DatasetStore.open(tmp_path / "ds", mode="a")
    reader = DatasetStore.open(tmp_path / "ds")
    with pytest.raises(ValueError, match="read-only"):
        reader.append(x, y, aux=aux)
    store.close()
    with DatasetStore.open(tmp_path / "ds", mode="a") as again:
        assert again.append(x, y, aux=aux) == 4
    # a reader opened earlier keeps its committed view until refresh()
    assert reader.num_samples == 3
    reader.refresh()
    assert reader.num_samples == 4


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        DatasetStore.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="is not a scalinglab dataset store"):
        DatasetStore.open(tmp_path / "plain")
    import zarr

    zarr.create_group(store=str(tmp_path / "other.zarr"), zarr_format=3)
    with pytest.raises(ValueError, match="not a scalinglab dataset store"):
        DatasetStore.open(tmp_path / "other.zarr")
    _filled(tmp_path / "ds", sizes=(2,))[0].close()
    with pytest.raises(FileExistsError):
        DatasetStore.create(tmp_path / "ds", **SCHEMA)


@pytest.mark.parametrize("damage", ["truncate", "edit_count", "delete", "too_many"])
def test_corrupted_commit_record(tmp_path, damage):
    _filled(tmp_path / "ds", sizes=(5,))[0].close()
    rec_path = tmp_path / "ds" / "commit.json"
    text = rec_path.read_text()
    if damage == "truncate":
        rec_path.write_text(text[: len(text) // 2])
    elif damage == "edit_count":
        rec = json.loads(text)
        rec["num_samples"] = 4  # without updating the checksum
        rec_path.write_text(json.dumps(rec))
    elif damage == "delete":
        rec_path.unlink()
    else:
        # a consistent record claiming more samples than the arrays hold
        DatasetStore._write_commit_file(tmp_path / "ds", 10_000, {})
    with pytest.raises(ValueError, match="is corrupted"):
        DatasetStore.open(tmp_path / "ds")


def test_open_or_create_resumes_and_refuses_other_schema(tmp_path):
    path = tmp_path / "ds"
    store = DatasetStore.open_or_create(path, **SCHEMA)
    x, y, aux = _batch(0, 4)
    store.append(x, y, aux=aux, state={"next": 4})
    store.close()
    again = DatasetStore.open_or_create(path, **{**SCHEMA, "chunk_size": None})
    assert again.num_samples == 4 and again.state == {"next": 4}
    again.close()
    changes = {
        "input_shape": ((2, 5, 5), "input_shape"),
        "target_names": (["theta", "J", "K"], "target_names"),
        "target_units": (["deg", "meV", "eV"], "target_units"),
        "aux_specs": ({"phase": ("int8", ())}, "aux_specs"),
        "metadata": ({**SCHEMA["metadata"], "config": {"lattice": {"m": 9}, "num_draws": 100}}, "configuration"),
    }
    for key, (value, word) in changes.items():
        with pytest.raises(ValueError, match=word):
            DatasetStore.open_or_create(path, **{**SCHEMA, key: value})
    # a refused resume releases the append lock
    DatasetStore.open(path, mode="a").close()


# ---------------------------------------------------------------------------- interruption by SIGKILL

_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import zarr
    from scalinglab.data.store import DatasetStore

    path, total, batch, hook, hook_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])

    def stall():
        print("READY", flush=True)
        time.sleep(120)  # the parent SIGKILLs us here

    calls = {"n": 0}
    if hook == "after_data":  # every array written and flushed, commit record not yet replaced
        orig_commit = DatasetStore._commit
        def _commit(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == hook_at:
                stall()
            return orig_commit(self, *a, **k)
        DatasetStore._commit = _commit
    elif hook == "mid_arrays":  # inputs written, targets and aux not
        orig_set = zarr.Array.__setitem__
        def _set(self, key, value):
            if self.path == "targets":
                calls["n"] += 1
                if calls["n"] == hook_at:
                    stall()
            return orig_set(self, key, value)
        zarr.Array.__setitem__ = _set
    elif hook == "in_commit":  # new commit record fsynced under its temp name, not yet renamed
        orig_replace = os.replace
        def _replace(src, dst):
            if str(dst).endswith("commit.json"):
                calls["n"] += 1
                if calls["n"] == hook_at:
                    stall()
            return orig_replace(src, dst)
        os.replace = _replace

    def batch_of(i0, n):
        i = np.arange(i0, i0 + n)
        x = (i[:, None, None] * 1.0 + 0.001 * np.arange(12).reshape(1, 3, 4)).astype(np.float32)
        y = np.stack([i * 0.5, np.sin(i)], axis=1)
        return x, y, {"seed": i}

    store = DatasetStore.open_or_create(
        path, input_shape=(3, 4), target_names=["a", "b"], aux_specs={"seed": ("int64", ())},
        metadata={"producer": "kill-test", "config": {"total": total}}, chunk_size=8)
    start = store.state.get("next", 0)
    assert start == store.num_samples, (start, store.num_samples)
    print("STARTED", start, flush=True)
    for i0 in range(start, total, batch):
        n = min(batch, total - i0)
        x, y, aux = batch_of(i0, n)
        store.append(x, y, aux=aux, state={"next": i0 + n})
        print("COMMITTED", i0 + n, flush=True)
    print("DONE", flush=True)
    """
)

TOTAL, BATCH = 120, 5  # batch 5 with chunks of 8: killed appends rewrite chunks that hold committed samples


def _expected(n):
    i = np.arange(n)
    x = (i[:, None, None] * 1.0 + 0.001 * np.arange(12).reshape(1, 3, 4)).astype(np.float32)
    return x, np.stack([i * 0.5, np.sin(i)], axis=1), i


def _run_child(script, path, hook="none", hook_at=0, kill_after_commits=None, delay=0.0):
    """Start the producer; SIGKILL it when it reports READY (hooked) or after some commits (+ delay)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(TOTAL), str(BATCH), hook, str(hook_at)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    # a reader thread: select() on a buffered text pipe can miss lines already pulled into the buffer
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout] + [lines.put("")], daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    commits, killed = 0, False
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if not line:
                break
            if line.startswith("COMMITTED"):
                commits += 1
            if line.startswith("READY") or (kill_after_commits is not None and commits >= kill_after_commits):
                time.sleep(delay)
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        proc.wait(timeout=30)
        err = proc.stderr.read()
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    return proc.returncode, err


def _check_consistent(path, expect_n=None):
    store = DatasetStore.open(path)
    n = store.num_samples
    if expect_n is not None:
        assert n == expect_n
    assert n % BATCH == 0 or n == TOTAL, f"partial append visible: {n} samples"
    assert store.state == {"next": n}
    x, y, seeds = _expected(n)
    np.testing.assert_array_equal(store.inputs(), x)
    np.testing.assert_array_equal(store.targets(), y)
    np.testing.assert_array_equal(store.aux("seed"), seeds)
    return n


def test_sigkill_during_append_keeps_only_complete_samples_and_resumes(tmp_path):
    import zarr

    script = tmp_path / "producer.py"
    script.write_text(_CHILD)
    path = tmp_path / "ds"

    # 1) killed after writing the arrays of its 3rd append, before the commit record: 2 appends visible,
    #    the 3rd batch is on disk past the committed count but invisible
    rc, err = _run_child(script, path, "after_data", 3)
    assert rc == -signal.SIGKILL, err
    _check_consistent(path, expect_n=2 * BATCH)
    raw = zarr.open_group(str(path), mode="r")
    x_next, _, _ = _expected(3 * BATCH)
    np.testing.assert_array_equal(raw["inputs"][2 * BATCH : 3 * BATCH], x_next[2 * BATCH :])

    # 2) resumed, then killed between writing inputs and targets of its 2nd append
    rc, err = _run_child(script, path, "mid_arrays", 2)
    assert rc == -signal.SIGKILL, err
    _check_consistent(path, expect_n=3 * BATCH)

    # 3) resumed, then killed with its 3rd new commit record written under the temp name, not yet renamed
    rc, err = _run_child(script, path, "in_commit", 3)
    assert rc == -signal.SIGKILL, err
    _check_consistent(path, expect_n=5 * BATCH)
    assert list(path.glob("commit.json.tmp.*")), "the kill should have left the temp commit record"

    # 4) resumed, then killed at an arbitrary moment shortly after its 2nd commit
    rc, err = _run_child(script, path, kill_after_commits=2, delay=0.003)
    assert rc in (-signal.SIGKILL, 0), err
    n4 = _check_consistent(path)
    assert n4 >= 7 * BATCH

    # 5) a plain re-run resumes from the committed state and finishes with exactly TOTAL samples
    rc, err = _run_child(script, path)
    assert rc == 0, err
    _check_consistent(path, expect_n=TOTAL)
    seeds = DatasetStore.open(path).aux("seed")
    assert len(np.unique(seeds)) == TOTAL  # no duplicates, nothing lost
    assert not list(path.glob("commit.json.tmp.*")) and not list(path.rglob("*.partial"))

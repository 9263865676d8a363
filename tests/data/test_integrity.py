"""Store integrity: deleted, truncated and bit-flipped chunks fail every read path and are named by
``data verify``; killed appends stay valid; pre-checksum stores still read; repair re-simulates in place."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data import integrity
from scalinglab.data.store import DatasetStore, StoreCorruptedError

SCHEMA = dict(
    input_shape=(2, 4, 4),
    target_names=["theta", "J"],
    target_units=["deg", "meV"],
    aux_specs={"phase": ("int8", ())},
    metadata={"producer": "integrity-test", "config": {"k": 1}},
    chunk_size=8,
)
NUM = 27  # inputs chunks 0..7, 8..15, 16..23, 24..26


def _batch(indices: np.ndarray):
    """Deterministic samples at store indices (what a reproducible producer would re-simulate)."""
    i = np.asarray(indices, dtype=np.float64)
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(2, 4, 4))  # fixed pattern, so that inputs compress to something non-trivial
    x = (i[:, None, None, None] + noise[None]).astype(np.float32)
    y = np.stack([1.0 + 0.1 * i, 2.0 + i], axis=1)
    return x, y, {"phase": (np.asarray(indices) % 3).astype(np.int8)}


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "ds.zarr"
    store = DatasetStore.create(path, **SCHEMA)
    for lo, hi in ((0, 5), (5, 16), (16, 27)):  # appends that start and end mid-chunk
        x, y, aux = _batch(np.arange(lo, hi))
        store.append(x, y, aux=aux, state={"next": hi})
    store.close()
    return path


def _chunk_file(path, key, chunk):
    store = DatasetStore.open(path)
    return store._chunk_file(key, chunk)


def _tree_digest(path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".lock"):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def _damage(path, key, chunk, how):
    f = _chunk_file(path, key, chunk)
    data = bytearray(f.read_bytes())
    if how == "delete":
        f.unlink()
    elif how == "truncate":
        f.write_bytes(bytes(data[: len(data) // 2]))
    else:  # flip bits of 100 bytes (or all of them in a small chunk) past the codec header
        rng = np.random.default_rng(3)
        pos = rng.choice(np.arange(8, len(data)), size=min(100, len(data) - 8), replace=False)
        for p in pos:
            data[p] ^= 0xFF
        f.write_bytes(bytes(data))


def test_intact_store_reads_and_verifies(store_path, capsys):
    store = DatasetStore.open(store_path)
    x, y, aux = _batch(np.arange(NUM))
    np.testing.assert_array_equal(store.inputs(), x)
    np.testing.assert_array_equal(store.targets(), y)
    np.testing.assert_array_equal(store.aux("phase"), aux["phase"])
    report = integrity.verify_store(store_path)
    assert report.ok and report.num_chunks == 4 + 1 + 1 and report.num_unrecorded == 0
    assert main(["data", "verify", str(store_path)]) == 0
    assert "intact" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["delete", "truncate", "bitflip"])
def test_damaged_input_chunk_fails_every_read_path(store_path, tmp_path, how, capsys):
    _damage(store_path, "inputs", 1, how)
    before = _tree_digest(store_path)
    store = DatasetStore.open(store_path)
    expected = "array 'inputs' samples 8..15"
    for read in (
        lambda: store.inputs(),
        lambda: store.inputs(indices=[9]),
        lambda: store.inputs(indices=slice(4, 12)),
        lambda: store.inputs(indices=[20, 3, 15]),
        lambda: store.inputs(indices=np.arange(27) % 2 == 0),
    ):
        with pytest.raises(StoreCorruptedError, match=expected) as err:
            read()
        assert str(store_path) in str(err.value)
    # chunks that are intact still read
    x, _, _ = _batch(np.arange(NUM))
    np.testing.assert_array_equal(store.inputs(indices=[0, 7, 16, 26]), x[[0, 7, 16, 26]])

    assert main(["data", "export", str(store_path), "--out", str(tmp_path / "e.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and "Traceback" not in err
    assert not (tmp_path / "e.npz").exists()

    assert main(["data", "verify", str(store_path)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED {expected}" in out and out.count("DAMAGED") == 1
    assert main(["data", "verify", str(store_path), "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["damage"] == [
        {"array": "inputs", "start": 8, "stop": 16, "reason": found["damage"][0]["reason"]}
    ] and not found["ok"]
    assert _tree_digest(store_path) == before  # reading and verifying changed nothing


@pytest.mark.parametrize("how", ["delete", "truncate", "bitflip"])
@pytest.mark.parametrize("key", ["targets", "aux/phase"])
def test_damaged_small_arrays(store_path, key, how, capsys):
    _damage(store_path, key, 0, how)
    store = DatasetStore.open(store_path)
    read = store.targets if key == "targets" else (lambda: store.aux("phase"))
    with pytest.raises(StoreCorruptedError, match=f"array '{key}' samples 0..26"):
        read()
    if key == "targets":  # data info shows target ranges: it must not show the zeros of a lost chunk
        assert main(["data", "info", str(store_path)]) == 2
        assert "array 'targets' samples 0..26" in capsys.readouterr().err
    report = integrity.verify_store(store_path)
    assert [(d.key, d.start, d.stop) for d in report.damage] == [(key, 0, 27)]


def test_append_refuses_to_extend_a_damaged_partial_chunk(store_path):
    _damage(store_path, "inputs", 3, "bitflip")  # the last chunk, rows 24..26 committed
    before = _tree_digest(store_path)
    store = DatasetStore.open(store_path, mode="a")
    x, y, aux = _batch(np.arange(27, 30))
    with pytest.raises(StoreCorruptedError, match="samples 24..26"):
        store.append(x, y, aux=aux)
    store.close()
    assert DatasetStore.open(store_path).num_samples == NUM
    assert _tree_digest(store_path) == before


def test_rows_left_by_a_killed_append_do_not_break_checksums(store_path):
    store = DatasetStore.open(store_path, mode="a")
    x, y, aux = _batch(np.arange(27, 35))
    # what an append killed before its commit leaves: rows past the count written into the partial chunk
    store._write_arrays({"inputs": x + 100, "targets": y, "aux/phase": aux["phase"]}, NUM)
    store.close()
    assert integrity.verify_store(store_path).ok
    reopened = DatasetStore.open(store_path, mode="a")
    reopened.append(x, y, aux=aux)
    np.testing.assert_array_equal(reopened.inputs(), _batch(np.arange(35))[0])
    assert integrity.verify_store(store_path).ok


def test_pre_checksum_store_reads_and_missing_chunks_are_still_errors(store_path):
    store = DatasetStore.open(store_path)
    # rewrite the commit record the way stores were written before checksums (format version 1)
    DatasetStore._write_commit_file(store_path, store.num_samples, store.state, None)
    assert json.loads((store_path / "commit.json").read_text())["version"] == 1
    legacy = DatasetStore.open(store_path)
    np.testing.assert_array_equal(legacy.inputs(), _batch(np.arange(NUM))[0])
    report = integrity.verify_store(store_path)
    assert report.ok and report.num_unrecorded == report.num_chunks == 6
    _damage(store_path, "inputs", 2, "delete")
    with pytest.raises(StoreCorruptedError, match="samples 16..23 are lost"):
        DatasetStore.open(store_path).inputs()
    _damage(store_path, "inputs", 0, "truncate")
    found = integrity.verify_store(store_path)
    assert [(d.start, d.stop) for d in found.damage] == [(0, 8), (16, 24)]


def test_repair_resimulates_damaged_ranges_in_place(store_path, monkeypatch, capsys):
    x, y, aux = _batch(np.arange(NUM))
    _damage(store_path, "inputs", 1, "delete")
    _damage(store_path, "inputs", 3, "bitflip")
    assert main(["data", "repair", str(store_path)]) == 2  # no re-simulator for this producer yet
    assert "no re-simulator is registered for its producer 'integrity-test'" in capsys.readouterr().err
    assert not integrity.verify_store(store_path).ok

    calls = []

    def resimulate(store, indices):
        assert store.metadata["config"] == {"k": 1}
        calls.append((int(indices[0]), int(indices[-1])))
        bx, by, baux = _batch(indices)
        return {"inputs": bx, "targets": by, "aux": baux}

    monkeypatch.setitem(integrity._RESIMULATORS, "integrity-test", resimulate)
    assert main(["data", "repair", str(store_path)]) == 0
    assert "intact" in capsys.readouterr().out
    assert calls == [(8, 15), (24, 26)]
    store = DatasetStore.open(store_path)
    np.testing.assert_array_equal(store.inputs(), x)
    np.testing.assert_array_equal(store.targets(), y)
    np.testing.assert_array_equal(store.aux("phase"), aux["phase"])
    assert store.state == {"next": NUM}


def test_verify_of_a_store_with_a_damaged_commit_record_is_one_line(store_path, capsys):
    (store_path / "commit.json").write_text("{")
    assert main(["data", "verify", str(store_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "commit record" in err

"""``scalinglab data repair`` of CrI3 campaign stores: damaged chunks come back byte-identical (main and FM store);
a re-simulation that differs from the intact samples, or a store without chunk records, is refused unchanged."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data.integrity import verify_store
from scalinglab.data.store import DatasetStore
from scalinglab.simulators.moire import campaign
from scalinglab.simulators.moire.campaign import fm_store_path, run_campaign

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The largest angle, loose tolerance, 3 draws per chunk, 5 samples: 3 chunks (~15 s on a 2-core CPU).
FAST = dict(m_values=(8,), tol=5e-2, max_iter=150, chunk_size=3, J_range=(1.0, 2.5))


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A finished campaign whose main store has 3-sample chunks (so a chunk spans two campaign chunks)."""
    out = tmp_path_factory.mktemp("cri3") / "c.zarr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(campaign, "MAIN_CHUNK_SIZE", 3)
        run_campaign(out, 5, profile="quick", seed=3, quiet=True, threads=1, **FAST).close()
    return out


@pytest.fixture
def copy(original, tmp_path):
    """A fresh copy of the campaign (main and FM store) per test."""
    out = tmp_path / "c.zarr"
    shutil.copytree(original, out)
    shutil.copytree(fm_store_path(original), fm_store_path(out))
    return out


def _arrays(path) -> dict[str, bytes]:
    store = DatasetStore.open(path)
    out = {"inputs": store.inputs(), "targets": store.targets()}
    out.update({f"aux/{n}": store.aux(n) for n in store.aux_names})
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in out.items()}


def _digest(path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".lock"):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def _flip(path, key, chunk):
    f = DatasetStore.open(path)._chunk_file(key, chunk)
    data = bytearray(f.read_bytes())
    for p in range(8, len(data), max(1, len(data) // 50)):
        data[p] ^= 0xFF
    f.write_bytes(bytes(data))


def test_campaign_records_its_chunks(original):
    store, fm = DatasetStore.open(original), DatasetStore.open(fm_store_path(original))
    for s in (store, fm):
        records = s.state["chunks"]
        assert [r[0] for r in records] == list(np.cumsum([0] + [r[1] for r in records])[:-1])
        assert sum(r[1] for r in records) == s.num_samples and all(r[6:] == ["cpu", 1] for r in records)
    assert store.num_samples == 5 and len(store.chunk_ranges("inputs")) == 2
    # the first inputs chunk (samples 0..2) spans two campaign chunks: the repair cross-checks against sample 3
    assert store.state["chunks"][1][0] < 3 < store.state["chunks"][1][0] + store.state["chunks"][1][1]


def test_repair_of_deleted_and_bit_flipped_chunks_is_byte_identical(original, copy, capsys):
    want_main, want_fm = _arrays(original), _arrays(fm_store_path(original))
    DatasetStore.open(copy)._chunk_file("inputs", 0).unlink()
    _flip(copy, "aux/energy", 0)
    _flip(fm_store_path(copy), "inputs", 0)
    assert not verify_store(copy).ok and not verify_store(fm_store_path(copy)).ok
    # the main store in a fresh process (cold caches and compilation, as a later repair would run) ...
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "scalinglab.cli", "data", "repair", str(copy)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "intact" in proc.stdout, proc.stderr
    # ... the FM store in-process
    assert main(["data", "repair", str(fm_store_path(copy))]) == 0
    assert "intact" in capsys.readouterr().out
    assert _arrays(copy) == want_main
    assert _arrays(fm_store_path(copy)) == want_fm
    assert verify_store(copy).ok and DatasetStore.open(copy).state == DatasetStore.open(original).state


def test_repair_refuses_a_resimulation_that_differs_from_the_intact_samples(copy, monkeypatch, capsys):
    from scalinglab.simulators.moire import resimulate

    real = resimulate.simulate_chunk

    def drifted(config, start, stop):  # what another torch or compile path might do: the last bit moves
        res = real(config, start, stop)
        res["energy"] = np.nextafter(res["energy"], np.inf)
        return res

    monkeypatch.setattr(resimulate, "simulate_chunk", drifted)
    DatasetStore.open(copy)._chunk_file("inputs", 0).unlink()
    before = _digest(copy)
    assert main(["data", "repair", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bit-identically" in err[0] and "'aux/energy'" in err[0] and "samples 3..3" in err[0]
    assert _digest(copy) == before


def test_repair_refuses_a_store_written_before_chunk_records(copy, capsys):
    with DatasetStore.open(copy, mode="a") as store:  # the state an older scalinglab wrote
        store.append(np.zeros((0, *store.input_shape)), np.zeros((0, 3)),
                     aux={n: np.zeros((0,), dtype=dt) for n, (dt, _) in store.aux_specs.items()},
                     state={"draws_done": store.state["draws_done"]})
    _flip(copy, "inputs", 1)
    before = _digest(copy)
    assert main(["data", "repair", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot repair") and "written before" in err[0]
    assert _digest(copy) == before
    assert main(["data", "verify", str(copy)]) == 1  # reading and checking an old store work as before
    assert "DAMAGED array 'inputs' samples 3..4" in capsys.readouterr().out

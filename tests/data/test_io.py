"""Import of .h5/.npz files into a dataset store, validation on import, export round trips."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from scalinglab.data.io import export_store, import_file, list_keys
from scalinglab.data.store import DatasetStore


def _arrays(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "images": rng.normal(size=(n, 2, 5, 5)),
        "params": np.column_stack([rng.uniform(1, 4, n), rng.uniform(1, 10, n), rng.uniform(0.01, 0.3, n)]),
        "theta": rng.uniform(1, 4, n),
        "J": rng.uniform(1, 10, n),
        "phase": rng.integers(0, 3, n).astype(np.int8),
        "energy": rng.normal(size=n),
    }


def test_import_npz_2d_targets_with_names_units_aux(tmp_path):
    a = _arrays()
    np.savez(tmp_path / "d.npz", **a)
    store = import_file(
        tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="params", target_names="theta,J,D",
        units="deg,meV,meV", aux="phase,energy", quiet=True,
    )  # fmt: skip
    assert store.num_samples == 40 and store.input_shape == (2, 5, 5)
    assert store.target_names == ["theta", "J", "D"] and store.target_units == ["deg", "meV", "meV"]
    np.testing.assert_allclose(store.inputs(), a["images"].astype(np.float32))
    np.testing.assert_array_equal(store.targets(), a["params"])
    np.testing.assert_array_equal(store.aux("phase"), a["phase"])
    assert store.aux("phase").dtype == np.int8
    assert store.metadata["producer"] == "import"
    assert store.metadata["config"]["inputs"] == "images"


def test_import_h5_several_1d_targets_in_groups(tmp_path):
    a = _arrays()
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["data/images"] = a["images"]
        h5["params/theta"] = a["theta"]
        h5["params/J"] = a["J"]
        h5["labels/phase"] = a["phase"]
    store = import_file(
        tmp_path / "d.h5", tmp_path / "ds", inputs="data/images", targets=["params/theta", "params/J"],
        aux="labels/phase", chunk_size=7, quiet=True,
    )  # fmt: skip
    assert store.target_names == ["theta", "J"] and store.target_units == ["", ""]
    np.testing.assert_array_equal(store.targets(), np.column_stack([a["theta"], a["J"]]))
    np.testing.assert_array_equal(store.aux("phase"), a["phase"])
    assert store.chunk_size == 7
    assert set(list_keys(tmp_path / "d.h5")) == {"data/images", "params/theta", "params/J", "labels/phase"}


def test_import_nan_names_key_and_global_index_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(400, 6))
    y = rng.normal(size=400)
    images[300, 2] = np.nan  # beyond the first import block of 256 samples
    images[350, 0] = np.nan
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["x"] = images
        h5["y"] = y
    with pytest.raises(ValueError, match=r"x contains NaN at sample index 300"):
        import_file(tmp_path / "d.h5", tmp_path / "ds", inputs="x", targets="y", chunk_size=4, quiet=True)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob("ds*"))
    y[5] = np.inf
    np.savez(tmp_path / "e.npz", x=rng.normal(size=(400, 6)), y=y)
    with pytest.raises(ValueError, match=r"y contains inf at sample index 5"):
        import_file(tmp_path / "e.npz", tmp_path / "ds", inputs="x", targets="y", quiet=True)


def test_import_errors(tmp_path):
    a = _arrays()
    np.savez(tmp_path / "d.npz", images=a["images"], theta=a["theta"][:39], J=a["J"], words=np.array(["a"] * 40))
    with pytest.raises(ValueError, match=r"different numbers of samples N \(images: 40, theta: 39, J: 40\)"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="theta,J", quiet=True)
    with pytest.raises(ValueError, match="targets key 'D' not found in d.npz; available keys: images, theta, J"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="J,D", quiet=True)
    with pytest.raises(ValueError, match="2 target names"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="J", target_names="a,b")
    with pytest.raises(ValueError, match="2 units given for 1 targets"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="J", units="meV,deg")
    with pytest.raises(ValueError, match="'words' has dtype <U1, not a numeric array"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="images", targets="J", aux="words")
    with pytest.raises(ValueError, match=r"inputs 'J' must be \[N, F\] or \[N, C, H, W\]"):
        import_file(tmp_path / "d.npz", tmp_path / "ds", inputs="J", targets="J")
    with pytest.raises(FileNotFoundError):
        import_file(tmp_path / "missing.h5", tmp_path / "ds", inputs="x", targets="y")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported file type"):
        import_file(tmp_path / "d.csv", tmp_path / "ds", inputs="x", targets="y")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        import_file(tmp_path / "bad.h5", tmp_path / "ds", inputs="x", targets="y")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_export_import_round_trip(tmp_path, suffix):
    a = _arrays(n=30)
    store = DatasetStore.create(
        tmp_path / "ds", input_shape=(2, 5, 5), target_names=["theta", "J", "D"], target_units=["deg", "meV", "meV"],
        aux_specs={"phase": ("int8", ()), "energy": ("float64", ())},
        metadata={"producer": "moire", "config": {"m": [8, 9]}}, chunk_size=8,
    )  # fmt: skip
    for s in (0, 13):
        e = s + 17 if s == 13 else 13
        store.append(a["images"][s:e], a["params"][s:e], aux={"phase": a["phase"][s:e], "energy": a["energy"][s:e]},
                     state={"done": e})  # fmt: skip
    out = export_store(tmp_path / "ds", tmp_path / f"export{suffix}", quiet=True)
    assert out.exists() and not list(tmp_path.glob(".export*"))
    back = import_file(
        out, tmp_path / "back", inputs="inputs", targets="targets", aux="aux/phase,aux/energy", quiet=True
    )
    assert back.target_names == ["theta", "J", "D"] and back.target_units == ["deg", "meV", "meV"]
    np.testing.assert_array_equal(back.inputs(), store.inputs())
    np.testing.assert_array_equal(back.targets(), store.targets())
    np.testing.assert_array_equal(back.aux("phase"), a["phase"])
    np.testing.assert_array_equal(back.aux("energy"), a["energy"])
    imported = back.metadata["imported_metadata"]
    assert imported["producer"] == "moire" and imported["config"] == {"m": [8, 9]}
    with pytest.raises(ValueError, match="unsupported export file type"):
        export_store(store, tmp_path / "x.csv")

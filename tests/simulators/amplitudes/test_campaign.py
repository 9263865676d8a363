"""Amplitude campaign: store layout, |M|^2 consistency, resume determinism, CLI."""

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data.store import DatasetStore
from scalinglab.simulators.amplitudes import Cuts, squared_amplitude
from scalinglab.simulators.amplitudes.campaign import simulate_amplitudes


def test_store_layout_and_targets(tmp_path):
    path = tmp_path / "zg"
    with simulate_amplitudes(path, "q q~ > Z g", 300, 500.0, seed=3, cuts=Cuts(min_pt=10.0), batch_size=128,
                             quiet=True) as store:
        assert store.num_samples == 300
        assert store.input_shape == (16,)
        x = store.inputs()
        amp2 = store.targets(["amp2"])[:, 0]
        assert store.metadata["phase_space_dimension"] == 1  # fixed sqrt(s): 3 n_f - 5 (the scattering angle)
        assert store.metadata["config"]["cuts"]["min_pt"] == 10.0
        assert store.aux("weight").shape == (300,)
    p = x.reshape(300, 4, 4)
    np.testing.assert_allclose(squared_amplitude("q q~ > Z g", p), amp2, rtol=1e-12)
    assert np.all(np.hypot(p[:, 3, 1], p[:, 3, 2]) >= 10.0)


def test_interrupted_and_extended_run_equals_single_run(tmp_path):
    kw = dict(seed=5, cuts=Cuts(min_invariant=100.0), batch_size=64, quiet=True)
    with simulate_amplitudes(tmp_path / "a", "g g > g g g", 200, 1000.0, **kw) as a:
        ref_x, ref_y = a.inputs(), a.targets()
    simulate_amplitudes(tmp_path / "b", "g g > g g g", 70, 1000.0, **kw).close()  # stops inside batch 1
    with simulate_amplitudes(tmp_path / "b", "g g > g g g", 200, 1000.0, **kw) as b:
        np.testing.assert_array_equal(b.inputs(), ref_x)
        np.testing.assert_array_equal(b.targets(), ref_y)
    with pytest.raises(ValueError, match="different configuration"):
        simulate_amplitudes(tmp_path / "b", "g g > g g g", 200, 900.0, **kw)


def test_cli_simulate_amplitudes(tmp_path, capsys):
    out = tmp_path / "ee"
    rc = main(["simulate", "amplitudes", "--process", "e+ e- > mu+ mu-", "--num-samples", "50", "--sqrt-s", "91",
               "--out", str(out), "--quiet"])
    assert rc == 0
    with DatasetStore.open(out) as store:
        assert store.num_samples == 50
    assert main(["simulate", "amplitudes", "--process", "e+ e- > tau+ tau-", "--num-samples", "5",
                 "--sqrt-s", "91", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "unknown process" in capsys.readouterr().err

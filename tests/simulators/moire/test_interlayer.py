"""Interlayer model: embedded DFT tables, C3-symmetric Fourier fit, pair tables."""

from pathlib import Path

import numpy as np
import pytest

from scalinglab.simulators.moire.interlayer import (
    DELTA_E_TABLES,
    TABLE_T,
    local_stacking_pairs,
    stacking_energy,
    user_pairs,
)
from scalinglab.simulators.moire.lattice import LATTICE_CONSTANT, bilayer

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference"


@pytest.mark.parametrize("name", ["relaxed", "rigid"])
def test_embedded_tables_equal_the_reference_csv(name):
    path = SHARED / f"cri3_interlayer_deltaE_{name}.csv"
    if not path.exists():
        pytest.skip("../shared/reference not available")
    data = np.loadtxt(path, delimiter=",", comments="#")
    assert np.allclose(data[:, 0], TABLE_T, atol=1e-6)
    assert np.allclose(data[:, 1], DELTA_E_TABLES[name]["diag"], atol=1e-6)
    assert np.allclose(data[:, 2], DELTA_E_TABLES[name]["edge"], atol=1e-6)


@pytest.mark.parametrize("name,rms,mx", [("relaxed", 0.38, 1.25), ("rigid", 0.05, 0.15)])
def test_fit_residual_and_symmetry(name, rms, mx):
    fit = stacking_energy(name)
    assert fit.residual_rms_ < rms and fit.residual_max_ < mx  # the values documented in interlayer.py
    rng = np.random.default_rng(0)
    uv = rng.uniform(-2, 2, size=(200, 2))
    e = fit(uv)
    # C3 about the AA point: (u, v) -> (-u - v, u); lattice periodicity.
    assert np.allclose(fit(np.stack([-uv[:, 0] - uv[:, 1], uv[:, 0]], 1)), e, atol=1e-9)
    assert np.allclose(fit(uv + rng.integers(-3, 4, size=(200, 2))), e, atol=1e-9)
    # The fitted surface stays within the data range over the plane (no overshoot of the interpolation).
    g = np.stack(np.meshgrid(np.linspace(0, 1, 61), np.linspace(0, 1, 61)), -1).reshape(-1, 2)
    tab = np.concatenate([DELTA_E_TABLES[name]["edge"], DELTA_E_TABLES[name]["diag"]])
    vals = fit(g)
    assert vals.min() > tab.min() - 0.5 and vals.max() < tab.max() + 0.5
    # Stacking physics of the tables: AA and rhombohedral (diag t = 1/3) are FM (dE < 0).
    assert fit(np.array([[0.0, 0.0]]))[0] < -10 and fit(np.array([[1 / 3, 1 / 3]]))[0] < -10


def test_monoclinic_stacking_is_antiferromagnetic_in_the_relaxed_table():
    # Sivadas et al.: monoclinic stacking (edge t = 1/3) has AFM interlayer order (dE > 0).
    assert DELTA_E_TABLES["relaxed"]["edge"][6] > 0
    assert stacking_energy("relaxed").at_shift(np.array([[LATTICE_CONSTANT / 3, 0.0]]), LATTICE_CONSTANT)[0] > 0


def test_local_stacking_pairs_use_a_quarter_of_delta_e():
    lat = bilayer(9)
    pairs = local_stacking_pairs(lat, "rigid")
    fit = stacking_energy("rigid")
    delta = lat.stacking_shift(pairs.top, pairs.bottom)
    assert np.allclose(pairs.jperp, fit.at_shift(delta, lat.a) / 4)
    assert pairs.jperp.max() > 0 > pairs.jperp.min()  # both AFM and FM regions in a moire cell
    assert len(pairs.top) == lat.num_sites // 2


def test_user_pairs_validation():
    lat = bilayer(8)
    half = lat.num_sites // 2
    ok = user_pairs(lat, [[half, 0, 0.5], [1, half + 1, -1.0]])
    assert ok.top.tolist() == [half, half + 1] and ok.bottom.tolist() == [0, 1]
    with pytest.raises(ValueError, match="shape"):
        user_pairs(lat, [[0, 1]])
    with pytest.raises(ValueError, match="outside"):
        user_pairs(lat, [[0, lat.num_sites, 1.0]])
    with pytest.raises(ValueError, match="one layer"):
        user_pairs(lat, [[0, 1, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        user_pairs(lat, [[0, half, np.nan]])
    with pytest.raises(ValueError, match="unknown interlayer model"):
        local_stacking_pairs(lat, "bogus")

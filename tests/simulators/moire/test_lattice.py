"""Geometry of the commensurate twisted honeycomb bilayer."""

import numpy as np
import pytest

from scalinglab.simulators.moire.lattice import (
    LATTICE_CONSTANT,
    bilayer,
    commensurate_angles,
    m_for_angle,
    rotation,
    twist_angle,
)


def test_twist_angles_match_the_papers_range():
    assert twist_angle(8) == pytest.approx(3.8902, abs=1e-4)
    assert twist_angle(32) == pytest.approx(1.0178, abs=1e-4)
    angles = commensurate_angles()
    assert list(angles) == list(range(8, 33))
    assert np.all(np.diff(list(angles.values())) < 0)  # theta decreases with m
    assert m_for_angle(twist_angle(20)) == 20


@pytest.mark.parametrize("m", [8, 9, 13, 32])
def test_site_count_neighbours_and_periodicity(m):
    lat = bilayer(m)
    n = 3 * m * m + 3 * m + 1
    assert lat.num_sites == 4 * n
    assert np.bincount(lat.layer).tolist() == [2 * n, 2 * n]
    # Superlattice: |L1| = |L2| = a sqrt(n), 60 degrees apart.
    l1, l2 = lat.superlattice
    assert np.linalg.norm(l1) == pytest.approx(LATTICE_CONSTANT * np.sqrt(n))
    assert np.linalg.norm(l2) == pytest.approx(LATTICE_CONSTANT * np.sqrt(n))
    assert np.dot(l1, l2) / (np.linalg.norm(l1) * np.linalg.norm(l2)) == pytest.approx(0.5)
    # Every site has 3 distinct intralayer neighbours at the nearest-neighbour distance (minimum image),
    # on the other sublattice, and the relation is symmetric.
    nbr = lat.intralayer
    assert nbr.shape == (4 * n, 3)
    assert np.all(nbr[:, 0] != nbr[:, 1]) and np.all(nbr[:, 1] != nbr[:, 2]) and np.all(nbr[:, 0] != nbr[:, 2])
    src = np.repeat(np.arange(lat.num_sites), 3)
    d = lat.positions[nbr.ravel(), :2] - lat.positions[src, :2]
    frac = d @ np.linalg.inv(lat.superlattice)
    d = (frac - np.rint(frac)) @ lat.superlattice
    assert np.allclose(np.linalg.norm(d, axis=1), LATTICE_CONSTANT / np.sqrt(3), atol=1e-9)
    assert np.all(lat.layer[nbr.ravel()] == lat.layer[src])
    assert np.all(lat.sublattice[nbr.ravel()] != lat.sublattice[src])
    pairs = set(zip(src.tolist(), nbr.ravel().tolist()))
    assert all((j, i) in pairs for i, j in pairs)
    # Positions + L1 or + L2 land on lattice sites of the same layer and sublattice (commensurability).
    for layer, angle in ((0, -lat.theta / 2), (1, lat.theta / 2)):
        basis = (np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]]) @ rotation(angle).T) * LATTICE_CONSTANT
        tau = np.array([0.0, 0.0]), (basis[0] + basis[1]) / 3
        for s in (0, 1):
            sel = (lat.layer == layer) & (lat.sublattice == s)
            for shift in (l1, l2, l1 - 2 * l2):
                c = (lat.positions[sel, :2] + shift - tau[s]) @ np.linalg.inv(basis)
                assert np.allclose(c, np.rint(c), atol=1e-8)
    # Sites are distinct modulo the superlattice.
    frac = lat.positions[:, :2] @ np.linalg.inv(lat.superlattice)
    key = np.round((frac - np.floor(frac + 1e-9)) * 1e6).astype(np.int64)
    key = np.concatenate([key, lat.layer[:, None]], 1)
    assert len(np.unique(key, axis=0)) == lat.num_sites


def test_aa_stacking_at_origin_and_interlayer_partners():
    lat = bilayer(10)
    top, bottom = lat.nearest_same_sublattice()
    assert len(top) == lat.num_sites // 2
    assert np.all(lat.sublattice[top] == lat.sublattice[bottom])
    assert np.all(lat.layer[top] == 1) and np.all(lat.layer[bottom] == 0)
    shift = lat.stacking_shift(top, bottom)
    # Nearest same-sublattice site: the shift lies in the Wigner-Seitz cell (|delta| <= a / sqrt 3).
    assert np.linalg.norm(shift, axis=1).max() <= LATTICE_CONSTANT / np.sqrt(3) + 1e-9
    # Cr on Cr at the origin: both layers have a site there with zero shift.
    at_origin = np.linalg.norm(lat.positions[top, :2], axis=1) < 1e-9
    assert at_origin.sum() == 1
    assert np.linalg.norm(shift[at_origin]) < 1e-9


@pytest.mark.parametrize("m", [7, 33, 0, -1, 8.5, "8", True])
def test_bad_commensurate_index(m):
    with pytest.raises(ValueError, match="m"):
        bilayer(m)

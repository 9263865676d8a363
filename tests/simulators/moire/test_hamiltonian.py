"""Hamiltonian: closed forms, autograd field, symmetries, bond list."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import InterlayerPairs, local_stacking_pairs
from scalinglab.simulators.moire.lattice import bilayer


@pytest.fixture(scope="module")
def lat():
    return bilayer(8)


def _random_spins(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(b, n, 3, generator=g, dtype=torch.float64), dim=-1)


def test_uniform_states_match_closed_forms(lat):
    pairs = local_stacking_pairs(lat, "relaxed")
    J, D = torch.tensor([1.0, 4.0, 9.5]), torch.tensor([0.01, 0.2, 0.3])
    ham = MoireHamiltonian(lat, pairs, J, D)
    n = lat.num_sites
    up = torch.zeros(3, n, 3, dtype=torch.float64)
    up[..., 2] = 1.0
    # FM up: -J * (3N/2 bonds) + sum Jperp (every interlayer pair parallel) - D N.
    expect = -J.double() * 1.5 * n + float(pairs.jperp.sum()) - D.double() * n
    assert torch.allclose(ham.energy(up), expect, rtol=1e-12)
    assert np.allclose(ham.uniform_energy([0, 0, 1]), expect.numpy(), rtol=1e-12)
    # In-plane uniform: no anisotropy energy.
    inplane = torch.zeros(3, n, 3, dtype=torch.float64)
    inplane[..., 0] = 1.0
    assert torch.allclose(ham.energy(inplane), -J.double() * 1.5 * n + float(pairs.jperp.sum()), rtol=1e-12)
    # Layer-antiparallel state: interlayer term flips sign.
    anti = up.clone()
    anti[:, lat.layer == 0, 2] = -1.0
    assert torch.allclose(ham.energy(anti), -J.double() * 1.5 * n - float(pairs.jperp.sum()) - D.double() * n,
                          rtol=1e-12)


def test_field_is_minus_the_autograd_gradient(lat):
    ham = MoireHamiltonian(lat, local_stacking_pairs(lat, "rigid"), torch.tensor([2.0, 7.0]),
                           torch.tensor([0.1, 0.25]))
    s = _random_spins(2, lat.num_sites).requires_grad_(True)
    ham.energy(s).sum().backward()
    assert torch.allclose(ham.field(s.detach()), -s.grad, atol=1e-12)
    # The site-major fast path is the same field.
    x = s.detach().permute(1, 2, 0).contiguous()
    h = ham.field_site_major(x, ham.J, ham.D).permute(2, 0, 1)
    assert torch.allclose(h, ham.field(s.detach()), atol=1e-12)


def test_global_rotation_invariance_without_anisotropy_and_interlayer(lat):
    zero = InterlayerPairs(np.arange(lat.num_sites // 2, lat.num_sites), np.arange(lat.num_sites // 2),
                           np.zeros(lat.num_sites // 2), "zero")
    ham = MoireHamiltonian(lat, zero, 3.0, 0.0)
    s = _random_spins(4, lat.num_sites, seed=1)
    q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))[0]
    assert torch.allclose(ham.energy(s @ q.T), ham.energy(s), rtol=1e-12)
    # ... and the anisotropy breaks it (the test can fail).
    ham_d = ham.with_parameters(3.0, 0.2)
    assert not torch.allclose(ham_d.energy(s @ q.T), ham_d.energy(s), rtol=1e-6)


def test_pairs_reproduce_energy(lat):
    pairs = local_stacking_pairs(lat, "relaxed")
    ham = MoireHamiltonian(lat, pairs, 2.5, 0.17)
    i, j, c = ham.pairs()
    assert np.all(i < j)
    assert len(set(zip(i.tolist(), j.tolist()))) == len(i)  # unique bonds
    assert len(i) == 3 * lat.num_sites // 2 + len(pairs.top)
    s = _random_spins(3, lat.num_sites, seed=3)
    sn = s.numpy()
    e_pairs = -np.einsum("k,bkc,bkc->b", c, sn[:, i], sn[:, j]) - 0.17 * (sn[..., 2] ** 2).sum(1)
    assert np.allclose(ham.energy(s).numpy(), e_pairs, rtol=1e-12)
    with pytest.raises(ValueError, match="single J"):
        ham.with_parameters([1.0, 2.0], 0.1).pairs()


def test_bad_input(lat):
    ham = MoireHamiltonian(lat, local_stacking_pairs(lat), 1.0, 0.1)
    with pytest.raises(ValueError, match="shape"):
        ham.energy(torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        MoireHamiltonian(lat, local_stacking_pairs(lat), float("nan"), 0.1)
    with pytest.raises(ValueError, match="batch"):
        ham.with_parameters([1.0, 2.0], 0.1).energy(_random_spins(3, lat.num_sites))


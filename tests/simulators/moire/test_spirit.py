"""scalinglab's Hamiltonian equals Spirit's on identical states (an independent implementation, Spirit 2.2.0)."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import local_stacking_pairs
from scalinglab.simulators.moire.lattice import bilayer
from scalinglab.simulators.moire.relax import relax
from scalinglab.simulators.moire.spirit_io import set_spirit_spins, spirit_energy, write_spirit_input
from scalinglab.simulators.moire.starts import initial_states

spirit = pytest.importorskip("spirit")


@pytest.mark.slow
@pytest.mark.parametrize("m, J, D", [(8, 5.0, 0.1), (9, 1.3, 0.27)])
def test_energies_equal_spirits_on_identical_states(tmp_path, m, J, D):
    """Random, structured, FM and relaxed states: relative difference < 1e-8.

    Spirit's energy file has 10 decimals per spin (meV), so the resolution is ~1e-10 meV per spin.
    """
    from spirit import state

    lat = bilayer(m)
    ham = MoireHamiltonian(lat, local_stacking_pairs(lat, "relaxed"), J, D)
    st, names = initial_states(lat, ham.interlayer, ("fm_up", "md_top", "ncd"), 3, seed=7)
    relaxed = relax(ham, torch.as_tensor(st[3:4]), tol=1e-4).spins.numpy()
    states = np.concatenate([st, relaxed])
    ours = ham.energy(torch.as_tensor(states)).numpy()
    cfg = write_spirit_input(ham, J, D, str(tmp_path))
    theirs = []
    with state.State(cfg, quiet=True) as p:
        for s in states:
            set_spirit_spins(p, s)
            theirs.append(spirit_energy(p))
    theirs = np.array(theirs)
    assert np.allclose(theirs, ours, rtol=1e-8, atol=0), np.abs(theirs / ours - 1)
    # Closed form of the FM state as a third reference.
    assert ours[0] == pytest.approx(float(ham.uniform_energy([0, 0, 1])[0]), rel=1e-12)

import pytest


@pytest.fixture(scope="module")
def ham8():
    """The m = 8 bilayer (868 spins) with the relaxed local-stacking interlayer model: the small test lattice."""
    from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
    from scalinglab.simulators.moire.interlayer import local_stacking_pairs
    from scalinglab.simulators.moire.lattice import bilayer

    lat = bilayer(8)
    return MoireHamiltonian(lat, local_stacking_pairs(lat, "relaxed"))

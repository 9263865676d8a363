"""Twisted bilayer CrI3 atomistic spin simulator (papers 1-2): lattice, Hamiltonian, relaxation, phases, images.

Modules, one concept each: ``lattice`` (commensurate bilayers), ``interlayer`` (local-stacking Jperp from DFT
tables), ``hamiltonian`` (energy, field, bond list), ``relax`` (batched Barzilai-Borwein minimizer),
``starts`` (initial states), ``ground_state`` (many starts, lowest energy), ``phases`` (FM / NCD / MD),
``render`` (m_z images), ``campaign`` (datasets), ``phase_diagram`` (figure).
"""

from scalinglab.simulators.moire.campaign import CampaignConfig, fm_store_path, run_campaign
from scalinglab.simulators.moire.ground_state import SearchConfig, search_ground_states
from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import local_stacking_pairs, stacking_energy, user_pairs
from scalinglab.simulators.moire.lattice import bilayer, commensurate_angles, twist_angle
from scalinglab.simulators.moire.phase_diagram import phase_diagram
from scalinglab.simulators.moire.phases import FM, MD, NCD, classify, layer_magnetizations
from scalinglab.simulators.moire.relax import relax
from scalinglab.simulators.moire.render import Renderer

__all__ = [
    "FM", "MD", "NCD", "CampaignConfig", "MoireHamiltonian", "Renderer", "SearchConfig", "bilayer", "classify",
    "commensurate_angles", "fm_store_path", "layer_magnetizations", "local_stacking_pairs", "phase_diagram", "relax",
    "run_campaign", "search_ground_states", "stacking_energy", "twist_angle", "user_pairs",
]

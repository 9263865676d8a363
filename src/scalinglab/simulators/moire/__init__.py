"""Twisted bilayer CrI3 atomistic spin simulator (papers 1-2): lattice, Hamiltonian, relaxation, phases, images.

Modules, one concept each: ``lattice`` (commensurate bilayers), ``interlayer`` (local-stacking Jperp from DFT
tables), ``hamiltonian`` (energy, field, bond list), ``relax`` (batched minimizers, one file each:
BB by default, L-BFGS-OSO, CG, VP),
``starts`` (initial states), ``ground_state`` (many starts, refined competitors, resolved ordering),
``phases`` (FM / NCD / MD / MD2), ``symmetry`` (layer exchange), ``render`` (m_z images), ``campaign`` (datasets),
``resimulate`` (bit-identical repair of damaged campaign samples), ``phase_diagram`` (figure).
"""

from scalinglab.simulators.moire.campaign import CampaignConfig, fm_store_path, read_params_csv, run_campaign
from scalinglab.simulators.moire.ground_state import SearchConfig, search_ground_states
from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import local_stacking_pairs, stacking_energy, user_pairs
from scalinglab.simulators.moire.lattice import bilayer, commensurate_angles, twist_angle
from scalinglab.simulators.moire.phase_diagram import phase_diagram
from scalinglab.simulators.moire.phases import (
    FM,
    MD,
    MD2,
    NCD,
    PHASE_NAMES,
    classify,
    classify_spins,
    layer_magnetizations,
)
from scalinglab.simulators.moire.relax import relax
from scalinglab.simulators.moire.render import Renderer
from scalinglab.simulators.moire.resimulate import resimulate_samples  # registers the data-repair re-simulator
from scalinglab.simulators.moire.symmetry import layer_swap_permutation, layer_symmetric_pairs

__all__ = [
    "FM", "MD", "MD2", "NCD", "PHASE_NAMES", "CampaignConfig", "MoireHamiltonian", "Renderer", "SearchConfig",
    "bilayer", "classify", "classify_spins", "commensurate_angles", "fm_store_path", "layer_magnetizations",
    "layer_swap_permutation", "layer_symmetric_pairs", "local_stacking_pairs", "phase_diagram", "read_params_csv",
    "relax", "resimulate_samples", "run_campaign", "search_ground_states", "stacking_energy", "twist_angle",
    "user_pairs",
]

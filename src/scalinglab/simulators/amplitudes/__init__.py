"""Tree-level scattering amplitudes: RAMBO phase space and exact |M|^2 (closed forms and Berends-Giele).

Public API::

    from scalinglab.simulators.amplitudes import generate_events, squared_amplitude
    sample = generate_events(1000, sqrt_s=1000.0, final_masses=[0, 0, 0], seed=0)
    amp2 = squared_amplitude("g g > g g g", sample.momenta)   # [B], summed over helicities and colours
"""

from scalinglab.simulators.amplitudes.kinematics import invariant_features, validate_momenta
from scalinglab.simulators.amplitudes.phase_space import Cuts, PhaseSpaceSample, generate_events, rambo
from scalinglab.simulators.amplitudes.processes import (
    MASS_Z,
    Process,
    get_process,
    list_processes,
    squared_amplitude,
)

__all__ = [
    "MASS_Z",
    "Cuts",
    "PhaseSpaceSample",
    "Process",
    "generate_events",
    "get_process",
    "invariant_features",
    "list_processes",
    "rambo",
    "squared_amplitude",
    "validate_momenta",
]

"""Thin-film TDGL domain patterns (paper 4): dipolar kernel, batched solver, field protocol, campaigns."""

from scalinglab.simulators.tdgl.domains import chord_length, coercive_field, loop_crossings, saturated_fraction
from scalinglab.simulators.tdgl.kernel import (
    DEFAULT_K0,
    K0_CONVENTIONS,
    LATTICE_SUM_C,
    dipolar_kernel_fourier,
    dipolar_kernel_real,
    laplacian_eigenvalues,
    linear_growth_rate,
)
from scalinglab.simulators.tdgl.protocol import field
from scalinglab.simulators.tdgl.solver import (
    TDGLConfig,
    TDGLResult,
    TDGLSimulator,
    check_time_step,
    disorder,
    initial_state,
    stability_limit,
)

__all__ = [
    "DEFAULT_K0",
    "K0_CONVENTIONS",
    "LATTICE_SUM_C",
    "TDGLConfig",
    "TDGLResult",
    "TDGLSimulator",
    "check_time_step",
    "chord_length",
    "coercive_field",
    "dipolar_kernel_fourier",
    "dipolar_kernel_real",
    "disorder",
    "field",
    "initial_state",
    "laplacian_eigenvalues",
    "linear_growth_rate",
    "loop_crossings",
    "saturated_fraction",
    "stability_limit",
]

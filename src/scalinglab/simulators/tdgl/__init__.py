"""Thin-film TDGL domain patterns (paper 4): dipolar kernel, batched solver, field protocol, campaigns."""

from scalinglab.simulators.tdgl.kernel import (
    LATTICE_SUM_C,
    dipolar_kernel_fourier,
    dipolar_kernel_real,
    laplacian_eigenvalues,
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
    "LATTICE_SUM_C",
    "TDGLConfig",
    "TDGLResult",
    "TDGLSimulator",
    "check_time_step",
    "dipolar_kernel_fourier",
    "dipolar_kernel_real",
    "disorder",
    "field",
    "initial_state",
    "laplacian_eigenvalues",
    "stability_limit",
]

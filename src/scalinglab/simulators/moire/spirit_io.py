"""Export the twisted-bilayer Hamiltonian to Spirit (spirit-code.github.io) and read Spirit's energies back.

Spirit's ``hamiltonian heisenberg_pairs`` with one basis cell holding the whole moire supercell:

    E_Spirit = - sum_(unique pairs) J_ij S_i.S_j - K sum_i (S_i.n)^2        (meV, unit spins)

so the bonds of ``MoireHamiltonian.pairs()`` (E = -sum c S_i.S_j - D sum (S_i.z)^2, c = J intralayer, c = -Jperp
interlayer) map one to one: J_ij = c_ij, K = D, n = z. The supercell vectors L1, L2 are Spirit's Bravais vectors
(periodic along both), the basis holds the N sites in fractional coordinates, ``n_basis_cells 1 1 1``; every bond
connects two sites of the same (only) cell, so its translation (da, db, dc) is 0 whether or not it crosses the
supercell boundary (periodic images of one cell are the cell itself). mu_s does not enter these energies (no Zeeman
or dipolar term). Checked (m = 8, 9, 12): energies of identical states agree to <= 2e-11 relative on FM, domain and
relaxed states and <= 2.1e-9 on random states (small totals; the limit is the 10 decimals per spin of Spirit's
energy file) (``tests/simulators/moire/test_spirit.py``).

Units of Spirit's convergence test (Spirit 2.2.0, ``Method_LLG::Calculate_Force_Virtual``): for LBFGS_OSO the
tested quantity is max_i |S_i x F_i| in meV, exactly our max torque; for VP_OSO (and VP) it is that torque times
dt * gamma / mu_B (dt = ``llg_dt`` in ps, gamma = 0.1760859644 / (ps T), mu_B = 0.057883817555 meV/T), so the
threshold must be scaled by that factor to mean the same torque: ``spirit_convergence``.

Spirit's Python API returns energies as float32; ``spirit_energy`` therefore writes the energy file (10 decimals
per spin, ~1e-12 relative) and reads it.
"""

from __future__ import annotations

import ctypes
import os
import tempfile

import numpy as np

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian

#: Spirit 2.2.0 constants (core/include/utility/Constants.hpp): gyromagnetic ratio (1/(ps T)), Bohr magneton (meV/T).
SPIRIT_GAMMA = 0.1760859644
SPIRIT_MU_B = 0.057883817555


def spirit_convergence(tol: float, solver: str, dt: float = 1e-3) -> float:
    """Spirit's ``llg_force_convergence`` that stops at max torque ``tol`` (meV) for the given solver name."""
    if solver in ("VP", "VP_OSO"):
        return tol * dt * SPIRIT_GAMMA / SPIRIT_MU_B
    return tol


def write_spirit_input(ham: MoireHamiltonian, J: float, D: float, directory: str, *, tol: float = 1e-4,
                       solver: str = "LBFGS_OSO", dt: float = 1e-3, max_iter: int = 100000) -> str:
    """Write ``spirit.cfg`` and ``pairs.txt`` for one parameter set; returns the path of the config file.

    Args:
        ham: the Hamiltonian (lattice and interlayer couplings).
        J, D: intralayer exchange and anisotropy (meV).
        directory: where to write the files.
        tol: max-torque tolerance (meV), converted with ``spirit_convergence``.
        solver: Spirit solver name (sets the convergence units).
        dt: ``llg_dt`` (ps): VP/VP_OSO step scale and convergence units.
        max_iter: ``llg_n_iterations``.
    """
    h = ham.with_parameters(float(J), float(D))
    i, j, c = h.pairs()
    lat = ham.lat
    l1, l2 = lat.superlattice
    zs = lat.positions[:, 2]
    height = max(10.0 * (float(zs.max() - zs.min()) + 1.0), 100.0)  # open direction: any length
    bravais = np.array([[l1[0], l1[1], 0.0], [l2[0], l2[1], 0.0], [0.0, 0.0, height]])
    frac = np.linalg.solve(bravais.T, lat.positions.T).T  # [N, 3] in units of the Bravais vectors
    frac[:, :2] -= np.floor(frac[:, :2])
    os.makedirs(directory, exist_ok=True)
    pairs_path = os.path.join(directory, "pairs.txt")
    with open(pairs_path, "w") as f:
        f.write("i j da db dc Jij\n")
        for a, b, cc in zip(i, j, c):
            f.write(f"{int(a)} {int(b)} 0 0 0 {float(cc):.17g}\n")
    cfg_path = os.path.join(directory, "spirit.cfg")
    lines = [
        "log_to_console 0", "log_to_file 0", "log_console_level 0", "log_file_level 0", "log_output_folder .",
        "output_file_tag scalinglab",
        "bravais_vectors", *(" ".join(f"{v:.17g}" for v in row) for row in bravais),
        "lattice_constant 1.0",
        "basis", str(len(frac)), *(" ".join(f"{v:.17g}" for v in row) for row in frac),
        "mu_s " + " ".join(["1.0"] * len(frac)),
        "n_basis_cells 1 1 1",
        "hamiltonian heisenberg_pairs",
        "boundary_conditions 1 1 0",
        "external_field_magnitude 0.0", "external_field_normal 0.0 0.0 1.0",
        f"anisotropy_magnitude {float(D):.17g}", "anisotropy_normal 0.0 0.0 1.0",
        "ddi_method none",
        f"interaction_pairs_file {pairs_path}",
        "llg_output_any 0", "llg_output_initial 0", "llg_output_final 0",
        f"llg_force_convergence {spirit_convergence(tol, solver, dt):.17g}",
        f"llg_n_iterations {int(max_iter)}", f"llg_n_iterations_log {int(max_iter)}",
        f"llg_dt {float(dt):.17g}", "llg_temperature 0", "llg_damping 0.3",
    ]
    with open(cfg_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return cfg_path


def set_spirit_spins(p_state, spins: np.ndarray) -> None:
    """Copy unit spins [N, 3] into Spirit's state (its spin array is a writable view)."""
    from spirit import system

    view = system.get_spin_directions(p_state)
    view[:] = np.asarray(spins, dtype=float)


def spirit_energy(p_state) -> float:
    """Total energy (meV) of the current Spirit state in double precision (via Spirit's energy file)."""
    from spirit import spiritlib, system

    system.update_data(p_state)
    lib = spiritlib.load_spirit_library()
    fn = lib.IO_Image_Write_Energy
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    fn.restype = None
    nos = system.get_nos(p_state)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "energy.txt")
        fn(ctypes.c_void_p(p_state), path.encode(), -1, -1)
        with open(path) as f:
            rows = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    # Last line: E_tot followed by the contributions, per spin (Write_Image_Energy normalizes by the spin count).
    values = [float(v) for v in rows[-1].replace("|", " ").split()]
    return values[0] * nos

"""Every minimizer of ``relax``: tolerance reached, energy lowered (monotone where promised), the same minimum as
Barzilai-Borwein, batched = one replica at a time, convergence judged per replica."""

import numpy as np
import pytest
import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.interlayer import InterlayerPairs
from scalinglab.simulators.moire.lattice import LATTICE_CONSTANT, Bilayer, honeycomb_layer
from scalinglab.simulators.moire.relax import METHODS, relax
from scalinglab.simulators.moire.starts import initial_states

MONOTONE = ("bb", "lbfgs", "cg")  # "vp" is a damped dynamics: single steps may climb


@pytest.fixture(scope="module")
def md_reference(ham8):
    st, _ = initial_states(ham8.lat, ham8.interlayer, ("md_top",), 0, seed=3)
    x0 = torch.as_tensor(st)
    return x0, relax(ham8, x0, 1.5, 0.25, tol=1e-6, max_iter=20000, method="bb")


def _ribbon(nx: int) -> tuple[Bilayer, InterlayerPairs]:
    """One periodic honeycomb layer (nx a1 x 2 a2), no interlayer bonds."""
    layer = honeycomb_layer(np.array([[nx, 0], [0, 2]]))
    n = len(layer.positions)
    pos = np.zeros((n, 3))
    pos[:, :2] = layer.positions
    cell = layer.supercell @ np.array([[1.0, 0.0], [0.5, 3**0.5 / 2]]) * LATTICE_CONSTANT
    lat = Bilayer(m=0, theta=0.0, a=LATTICE_CONSTANT, positions=pos, layer=np.zeros(n, dtype=np.int64),
                  sublattice=layer.sublattice, superlattice=cell, intralayer=layer.neighbours)
    return lat, InterlayerPairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), "none")


def _random(ham, num, seed):
    return torch.randn(num, ham.num_sites, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("method", list(METHODS))
def test_method_reaches_tolerance_and_lowers_the_energy(ham8, method):
    x0 = _random(ham8, 2, 10)
    J, D = torch.tensor([1.0, 2.0]), torch.tensor([0.3, 0.2])
    tol = 1e-4
    res = relax(ham8, x0, J, D, tol=tol, max_iter=20000, method=method, record_trace=True)
    h = ham8.with_parameters(J, D)
    assert bool(res.converged.all()), res.max_torque
    # Reported torque and energy are those of the returned states.
    assert float(h.torque(res.spins).amax()) < tol
    assert torch.allclose(res.energy, h.energy(res.spins), rtol=1e-12)
    assert torch.all(res.energy < h.energy(torch.nn.functional.normalize(x0, dim=-1)))
    tr = res.energy_trace
    assert torch.allclose(tr[-1], res.energy, rtol=1e-10)  # the tracked energy is the true energy
    if method in MONOTONE:
        assert torch.all(tr[1:] <= tr[:-1])


@pytest.mark.parametrize("method", list(METHODS))
def test_same_minimum_as_bb_and_the_closed_form(method):
    """One honeycomb layer, D > 0, starts near +z: the FM state is the unique minimum of the basin. Every method
    finds BB's state and the closed-form energy E_FM = -J 3N/2 - D N."""
    lat, empty = _ribbon(16)
    J, D = 2.0, 0.1
    ham = MoireHamiltonian(lat, empty, J, D)
    x0 = torch.zeros(2, ham.num_sites, 3, dtype=torch.float64)
    x0[..., 2] = 1.0
    x0 = x0 + 0.5 * _random(ham, 2, 16)
    e_fm = float(ham.uniform_energy([0, 0, 1])[0])
    ref = relax(ham, x0, tol=1e-6, max_iter=20000, method="bb")
    res = relax(ham, x0, tol=1e-6, max_iter=20000, method=method)
    assert bool(ref.converged.all()) and bool(res.converged.all())
    # Torque 1e-6 meV leaves tilts ~ 1e-6 / (2 D) and an energy error ~ N D tilt^2 ~ 1e-9 meV.
    assert np.allclose(res.energy.numpy(), e_fm, rtol=1e-12, atol=0)
    assert torch.allclose(res.spins, ref.spins, atol=1e-4)
    assert torch.allclose(res.spins[..., 2], torch.ones_like(res.spins[..., 2]), atol=1e-8)


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_same_domain_state_as_bb_from_a_structured_seed(ham8, md_reference, method):
    """From the MD seed at (J, D) = (1.5, 0.25) meV the quasi-Newton methods reach BB's minimum (in a few times
    fewer iterations)."""
    x0, ref = md_reference
    res = relax(ham8, x0, 1.5, 0.25, tol=1e-6, max_iter=20000, method=method)
    assert bool(ref.converged.all()) and bool(res.converged.all())
    assert torch.allclose(res.energy, ref.energy, rtol=1e-10, atol=0)
    # The energy is invariant under a global rotation about z: compare the invariant S_z, not S_x, S_y.
    assert (res.spins[..., 2] - ref.spins[..., 2]).abs().max() < 1e-4
    assert int(res.iterations[0]) * 2 < int(ref.iterations[0])


@pytest.mark.parametrize("method", list(METHODS))
def test_batched_equals_one_replica_at_a_time(ham8, method):
    x0 = _random(ham8, 3, 11)
    J, D = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.3, 0.2, 0.25])
    tol = 3e-3 if method == "vp" else 1e-4  # VP needs ~10x more iterations: keep the test fast
    batch = relax(ham8, x0, J, D, tol=tol, max_iter=20000, method=method)
    assert bool(batch.converged.all())
    for b in range(3):
        one = relax(ham8, x0[b:b + 1], J[b:b + 1], D[b:b + 1], tol=tol, max_iter=20000, method=method)
        # The same arithmetic per replica; only reduction order (rounding) differs between batch shapes, and
        # rounding differences grow along the path, so: the same minimum to the accuracy of the tolerance.
        assert bool(one.converged.all())
        assert torch.allclose(one.energy, batch.energy[b:b + 1], rtol=1e-6, atol=0)
        assert (one.spins[0, :, 2] - batch.spins[b, :, 2]).abs().max() < 0.05
        assert abs(int(one.iterations[0]) - int(batch.iterations[b])) <= 8 + 0.25 * int(one.iterations[0])


@pytest.mark.parametrize("method", list(METHODS))
def test_convergence_is_judged_per_replica(ham8, method):
    """A replica that starts converged stops at once while a random one in the same batch keeps going."""
    n = ham8.num_sites
    x0 = torch.zeros(2, n, 3, dtype=torch.float64)
    x0[0, :, 2] = 1.0  # the FM state: a stationary point, zero torque
    x0[1] = _random(ham8, 1, 12)[0]
    res = relax(ham8, x0, 2.0, 0.3, tol=1e-4, max_iter=20000, check_every=4, method=method)
    assert bool(res.converged.all())
    assert int(res.iterations[0]) == 0
    assert int(res.iterations[1]) > 20
    assert torch.allclose(res.spins[0], x0[0])


@pytest.mark.parametrize("method", ["bb", "lbfgs"])
def test_chunked_equals_one_batch(method):
    """Chunks of 2 replicas (2, 2, 1) give the one-batch result, per replica in the original order: distinct (J, D)
    per replica, each with the unique FM minimum of its basin (closed-form energy)."""
    lat, empty = _ribbon(16)
    ham = MoireHamiltonian(lat, empty, 2.0, 0.1)
    n = ham.num_sites
    x0 = torch.zeros(5, n, 3, dtype=torch.float64)
    x0[..., 2] = 1.0
    x0 = x0 + 0.5 * _random(ham, 5, 17)
    J = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    D = torch.tensor([0.1, 0.2, 0.15, 0.05, 0.3], dtype=torch.float64)
    kw = {"tol": 1e-6, "max_iter": 20000, "method": method, "record_trace": True}
    one = relax(ham, x0, J, D, chunk_spins=None, **kw)
    chunked = relax(ham, x0, J, D, chunk_spins=2 * n + 1, **kw)
    assert bool(one.converged.all()) and bool(chunked.converged.all())
    e_fm = -J * 1.5 * n - D * n
    assert torch.allclose(chunked.energy, one.energy, rtol=1e-10, atol=0)
    assert torch.allclose(chunked.energy, e_fm, rtol=1e-10, atol=0)
    assert torch.allclose(chunked.spins, one.spins, atol=1e-4)
    assert chunked.spins.shape == x0.shape and chunked.iterations.shape == (5,)
    assert torch.allclose(chunked.energy_trace[-1], chunked.energy, rtol=1e-10)
    assert chunked.energy_trace.shape[1] == 5
    with pytest.raises(ValueError, match="chunk_spins"):
        relax(ham, x0, J, D, chunk_spins=-1, **kw)


def test_unknown_method_and_options_are_errors(ham8):
    x0 = _random(ham8, 1, 13)
    with pytest.raises(ValueError, match="method"):
        relax(ham8, x0, method="newton")
    with pytest.raises(TypeError):
        relax(ham8, x0, method="lbfgs", options={"memroy": 3})
    with pytest.raises(ValueError, match="memory"):
        relax(ham8, x0, method="lbfgs", options={"memory": 0})


@pytest.mark.slow
def test_compiled_lbfgs_step_matches_eager(ham8):
    x0 = _random(ham8, 4, 14)
    J, D = torch.tensor([1.0, 2.0, 5.0, 9.0]), torch.tensor([0.3, 0.1, 0.05, 0.2])
    eager = relax(ham8, x0, J, D, tol=1e-12, max_iter=60, compile=False, method="lbfgs")
    fused = relax(ham8, x0, J, D, tol=1e-12, max_iter=60, compile=True, method="lbfgs")
    assert torch.allclose(eager.energy, fused.energy, rtol=1e-9)
    assert torch.allclose(eager.spins, fused.spins, atol=1e-6)


def _two_loop(t, gamma, rho, S, Y):
    """Reference: the L-BFGS two-loop recursion (Nocedal & Wright Alg. 7.4), newest pair first, rho = 0 skipped."""
    q = t.clone()
    alpha = []
    for j in range(len(S)):
        a = rho[j] * (S[j] * q).sum((0, 1))
        alpha.append(a)
        q = q - Y[j] * a
    r = q * gamma
    for j in range(len(S) - 1, -1, -1):
        b = rho[j] * (Y[j] * r).sum((0, 1))
        r = r + S[j] * (alpha[j] - b)
    return r


def test_compact_lbfgs_direction_equals_the_two_loop_recursion():
    """The compact representation (with its incrementally updated S^T Y, Y^T Y) gives the two-loop direction,
    including masked (invalid) pairs, over several memory updates."""
    from scalinglab.simulators.moire.relax_lbfgs import _direction

    g = torch.Generator().manual_seed(5)
    n, b, m = 40, 3, 4
    S = [torch.zeros(n, 3, b, dtype=torch.float64) for _ in range(m)]
    Y = [torch.zeros(n, 3, b, dtype=torch.float64) for _ in range(m)]
    rho = torch.zeros(m, b, dtype=torch.float64)
    sty = torch.zeros(m, m, b, dtype=torch.float64)
    yty = torch.zeros(m, m, b, dtype=torch.float64)
    a = torch.randn(n * 3, n * 3, generator=g, dtype=torch.float64)
    hess = a @ a.T / (n * 3) + torch.eye(n * 3, dtype=torch.float64)  # SPD model Hessian
    for k in range(7):
        t = torch.randn(n, 3, b, generator=g, dtype=torch.float64)
        gamma = torch.rand(b, generator=g, dtype=torch.float64) + 0.5
        d, sty, yty = _direction(t, gamma, rho, tuple(S), tuple(Y), sty, yty)
        assert torch.allclose(d, _two_loop(t, gamma, rho, S, Y), rtol=1e-9, atol=1e-10), k
        s = torch.randn(n, 3, b, generator=g, dtype=torch.float64)
        y = (hess @ s.reshape(n * 3, b)).reshape(n, 3, b)
        r_new = 1.0 / (s * y).sum((0, 1))
        if k == 3:
            r_new[1] = 0.0  # an invalid pair of replica 1
        S, Y = [s] + S[:-1], [y] + Y[:-1]
        rho = torch.cat([r_new[None], rho[:-1]])

"""Tree-level |M|^2: closed forms vs Berends-Giele, Parke-Taylor, Ward identities, Lorentz and permutation
invariance, colour matrices, soft limit, bad input."""

import numpy as np
import pytest

from scalinglab.simulators.amplitudes import (
    Cuts,
    colour,
    generate_events,
    get_process,
    list_processes,
    squared_amplitude,
)
from scalinglab.simulators.amplitudes.berends_giele import GluonCurrents, gluon_amplitude, gluon_polarizations
from scalinglab.simulators.amplitudes.kinematics import apply_lorentz, mdot, random_lorentz
from scalinglab.simulators.amplitudes.processes import MASS_Z, bg_ee_ffg, bg_gluons, bg_qq_vector_gluons

SQRT_S = 1000.0
CUTS = Cuts(min_invariant=400.0)


def events(name, num, seed=0):
    proc = get_process(name)
    return generate_events(num, SQRT_S, proc.masses[2:], seed=seed, cuts=CUTS).momenta


def _num(name):
    return 6 if get_process(name).num_final >= 4 else 24


@pytest.mark.parametrize("name", [p for p in list_processes() if get_process(p).closed_form is not None])
def test_berends_giele_agrees_with_closed_form(name):
    p = events(name, 32, seed=1)
    closed = squared_amplitude(name, p, method="closed")
    bg = squared_amplitude(name, p, method="bg")
    np.testing.assert_allclose(bg, closed, rtol=1e-10)


@pytest.mark.parametrize("name", list_processes())
def test_lorentz_invariance(name):
    p = events(name, _num(name), seed=2)
    lam = random_lorentz(p.shape[0], np.random.default_rng(5), max_rapidity=1.5)
    q = apply_lorentz(lam, p)
    a = squared_amplitude(name, p, method="bg")
    b = squared_amplitude(name, q, method="bg")
    assert np.all(a > 0)
    np.testing.assert_allclose(b, a, rtol=1e-10)


@pytest.mark.parametrize("name", list_processes())
def test_permutation_symmetry_of_identical_final_state_particles(name):
    proc = get_process(name)
    gluons = [2 + i for i, x in enumerate(proc.outgoing) if x == "g"]
    if len(gluons) < 2:
        pytest.skip("no identical final-state particles")
    p = events(name, _num(name), seed=3)
    ref = squared_amplitude(name, p, method="bg")
    perm = list(range(p.shape[1]))
    perm[gluons[0]], perm[gluons[-1]] = perm[gluons[-1]], perm[gluons[0]]
    perm[gluons[0]], perm[gluons[1]] = perm[gluons[1]], perm[gluons[0]]
    np.testing.assert_allclose(squared_amplitude(name, p[:, perm], method="bg"), ref, rtol=1e-10)
    if proc.closed_form is not None:
        np.testing.assert_allclose(squared_amplitude(name, p[:, perm], method="closed"), ref, rtol=1e-10)


@pytest.mark.parametrize("n", [4, 5, 6])
def test_parke_taylor_mhv_and_vanishing_helicity_amplitudes(n):
    p = generate_events(4, SQRT_S, [0] * (n - 2), seed=n, cuts=CUTS).momenta
    out = p.copy()
    out[:, :2] *= -1
    pols = np.stack([gluon_polarizations(p[:, i]) for i in range(n)])
    cur = GluonCurrents(np.transpose(out, (1, 0, 2)), pols)
    s = lambda i, j: np.abs(mdot(out[:, i] + out[:, j], out[:, i] + out[:, j]))
    for order in list(colour.gluon_trace_orderings(n))[:3]:
        amp = gluon_amplitude(cur, order)  # [2]*n + [B], axis = gluon label, 0 = minus
        ring = np.prod([s(order[k], order[(k + 1) % n]) for k in range(n)], axis=0)
        for i, j in [(0, 1), (1, 3), (2, n - 1)]:
            hel = [1] * n
            hel[i] = hel[j] = 0
            np.testing.assert_allclose(np.abs(amp[tuple(hel)]) ** 2, s(i, j) ** 4 / ring, rtol=1e-10)
            flipped = tuple(1 - h for h in hel)
            np.testing.assert_allclose(np.abs(amp[flipped]) ** 2, s(i, j) ** 4 / ring, rtol=1e-10)
        scale = np.abs(amp).max()
        assert np.abs(amp[(1,) * n]).max() < 1e-12 * scale
        assert np.abs(amp[(0,) + (1,) * (n - 1)]).max() < 1e-12 * scale


def test_ward_identity_for_gluons_and_vector_boson():
    rel = 1e-20  # squared amplitudes: 1e-10 relative on the amplitude
    p = events("g g > g g g", 8, seed=4)
    ref = bg_gluons(p) * SQRT_S**2
    for g in range(5):
        k = p[:, g].astype(np.complex128)[None].repeat(2, axis=0)
        assert np.all(bg_gluons(p, overrides={g: k}) < rel * ref)
    p = events("q q~ > Z g g", 8, seed=4)
    ref = bg_qq_vector_gluons(p, MASS_Z) * SQRT_S**2
    for g in range(2):
        k = p[:, 3 + g].astype(np.complex128)[None].repeat(2, axis=0)
        assert np.all(bg_qq_vector_gluons(p, MASS_Z, overrides={g: k}) < rel * ref)
    kz = p[:, 2].astype(np.complex128)[None]
    assert np.all(bg_qq_vector_gluons(p, MASS_Z, boson_override=kz) < rel * ref)
    p = events("e+ e- > q q~ g", 8, seed=4)
    ref = bg_ee_ffg(p, 1, 3) * SQRT_S**2
    assert np.all(bg_ee_ffg(p, 1, 3, overrides={0: p[:, 4].astype(np.complex128)[None].repeat(2, axis=0)}) < rel * ref)
    # a wrong gauge vector is not annihilated: the check can fail
    wrong = (p[:, 4] * np.array([1, 1, 1, -1])).astype(np.complex128)[None].repeat(2, axis=0)
    assert np.all(bg_ee_ffg(p, 1, 3, overrides={0: wrong}) > 1e-6 * ref / SQRT_S**2)


def test_colour_matrices_known_values():
    np.testing.assert_allclose(colour.quark_line_matrix(1), [[8.0]])
    np.testing.assert_allclose(colour.quark_line_matrix(2), [[64 / 3, -8 / 3], [-8 / 3, 64 / 3]], atol=1e-12)
    # Tr(T^a T^b T^c) = (d^abc + i f^abc)/sqrt2: sum |.|^2 = (sum d^2 + sum f^2)/2 = (40/3 + 24)/2
    np.testing.assert_allclose(colour.gluon_trace_matrix(3), [[56 / 3, -16 / 3], [-16 / 3, 56 / 3]], atol=1e-12)


def test_ddm_and_trace_bases_agree():
    p = events("g g > g g g", 6, seed=6)
    np.testing.assert_allclose(bg_gluons(p, basis="ddm"), bg_gluons(p, basis="trace"), rtol=1e-10)


def test_soft_gluon_limit_factorises():
    # e+ e- > q q~ g with a soft gluon -> eikonal factor x N x (e+ e- > mu+ mu-)
    base = generate_events(4, SQRT_S, [0, 0], seed=9).momenta
    rng = np.random.default_rng(0)
    lam = 1e-4
    k = rng.normal(size=(4, 3))
    k = lam * SQRT_S * k / np.linalg.norm(k, axis=1, keepdims=True)
    kg = np.concatenate([np.linalg.norm(k, axis=1, keepdims=True), k], axis=1)
    # rescale the q q~ pair so that energy-momentum is conserved exactly: boost-free recoil is O(lam)
    q, qb = base[:, 2].copy(), base[:, 3].copy()
    target = base[:, 0] + base[:, 1] - kg  # [B, 4]
    m2 = mdot(target, target)
    # build q, q~ back-to-back in the rest frame of 'target' along the original direction, then boost
    from scalinglab.simulators.amplitudes.kinematics import boost_matrix

    beta = target[:, 1:] / target[:, :1]
    e = np.sqrt(m2) / 2
    direction = q[:, 1:] / np.linalg.norm(q[:, 1:], axis=1, keepdims=True)
    q_rest = np.concatenate([e[:, None], e[:, None] * direction], axis=1)
    qb_rest = np.concatenate([e[:, None], -e[:, None] * direction], axis=1)
    bm = boost_matrix(beta)
    q, qb = np.einsum("bmn,bn->bm", bm, q_rest), np.einsum("bmn,bn->bm", bm, qb_rest)
    p5 = np.stack([base[:, 0], base[:, 1], q, qb, kg], axis=1)
    p4 = np.stack([base[:, 0], base[:, 1], q, qb], axis=1)
    full = squared_amplitude("e+ e- > q q~ g", p5, rtol=1e-6)
    eik = 2 * (4 / 3) * mdot(q, qb) / (mdot(q, kg) * mdot(qb, kg))
    approx = eik * 3 * squared_amplitude("e+ e- > mu+ mu-", p4, validate=False)  # conserves only up to k
    np.testing.assert_allclose(full, approx, rtol=1e-3)


def test_average_and_bad_input():
    p = events("g g > g g", 4)
    summed = squared_amplitude("g g > g g", p)
    np.testing.assert_allclose(squared_amplitude("g g > g g", p, average=True), summed / 256)
    with pytest.raises(ValueError, match="unknown process"):
        squared_amplitude("g g > h", p)
    with pytest.raises(ValueError, match="unknown method"):
        squared_amplitude("g g > g g", p, method="magic")
    with pytest.raises(ValueError, match="no closed form"):
        squared_amplitude("g g > g g g g", events("g g > g g g g", 2), method="closed")
    with pytest.raises(ValueError, match="particle count"):
        squared_amplitude("g g > g g g", p)
    bad = p.copy()
    bad[0, 2, 1] += 1.0
    with pytest.raises(ValueError, match="conserve"):
        squared_amplitude("g g > g g", bad)
    zp = events("q q~ > Z g", 2)
    with pytest.raises(ValueError, match="off-shell"):
        squared_amplitude("q q~ > Z g g".replace(" g g", " g"), zp[:, [0, 1, 3, 2]])
    # momenta that went through float32 pass the default tolerance
    np.testing.assert_allclose(squared_amplitude("g g > g g", p.astype(np.float32)), summed, rtol=1e-4)
    # accepts the flat [B, 4n] layout and the 'qbar' spelling
    np.testing.assert_allclose(squared_amplitude("q qbar > Z g", zp.reshape(2, -1)),
                               squared_amplitude("q q~ > Z g", zp))


@pytest.mark.parametrize("method", ["bg", "closed"])
def test_time_reversal_of_gg_to_gg(method):
    # swapping the roles of incoming and outgoing gluons (crossing all four legs) leaves |M|^2 unchanged
    p = events("g g > g g", 8)
    reversed_ = p[:, [2, 3, 0, 1]]
    np.testing.assert_allclose(squared_amplitude("g g > g g", reversed_, method=method),
                               squared_amplitude("g g > g g", p, method=method), rtol=1e-10)

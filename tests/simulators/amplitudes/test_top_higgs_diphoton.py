"""q q~ > t t~ H and q q~ > a a + n g: independent Dirac-trace computation, massive spinors, closed forms,
current conservation / Ward identities, Lorentz invariance, C and Bose symmetry, soft limits, registry."""

import itertools

import numpy as np
import pytest

from scalinglab.simulators.amplitudes import Cuts, generate_events, get_process, list_processes, squared_amplitude
from scalinglab.simulators.amplitudes.berends_giele import bar
from scalinglab.simulators.amplitudes.diphoton import bg_qq_photons_gluons, qq_aa, qq_aag
from scalinglab.simulators.amplitudes.kinematics import apply_lorentz, boost_matrix, mdot, random_lorentz
from scalinglab.simulators.amplitudes.processes import MASS_H, MASS_T
from scalinglab.simulators.amplitudes.top_higgs import (
    bg_qq_tth,
    light_quark_current,
    massive_u_spinors,
    massive_v_spinors,
    qq_tt,
    top_higgs_current,
)

SQRT_S = 1000.0
CUTS = Cuts(min_invariant=400.0)
G = np.diag([1.0, -1.0, -1.0, -1.0])
SIGMA = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
I2, Z2 = np.eye(2), np.zeros((2, 2))


def _gammas(basis):
    """gamma^mu [4, 4, 4] in the Dirac (independent of the code) or the chiral (the code's) representation."""
    if basis == "dirac":
        g0 = np.block([[I2, Z2], [Z2, -I2]])
    else:
        g0 = np.block([[Z2, I2], [I2, Z2]])
    return np.stack([g0.astype(np.complex128)] + [np.block([[Z2, s], [-s, Z2]]) for s in SIGMA])


def _slash(gam, p):
    """pslash = gamma^mu p_mu as [B, 4, 4]."""
    return np.einsum("mij,bm->bij", gam, p * np.array([1.0, -1.0, -1.0, -1.0]))


def _tth_events(num, seed, m_h=MASS_H):
    return generate_events(num, SQRT_S, [MASS_T, MASS_T, m_h], seed=seed).momenta


def _aa_events(n, num, seed):
    return generate_events(num, SQRT_S, [0.0] * (2 + n), seed=seed, cuts=CUTS).momenta


# ------------------------------------------------------------------------ independent trace computation (ttH)


def _trace_tth(p, m):
    """sum |M|^2 of q q~ > t t~ H from Dirac traces in the Dirac representation, no spinors.

    sum |M|^2 = (N^2 - 1)/4 x L^{mu rho} g_{mu a} g_{rho b} T^{a b} / s^2 with
    L = Tr[gamma^mu p1slash gamma^rho p2slash],
    T = Tr[Gamma^mu (p4slash - m) Gammabar^rho (p3slash + m)],
    Gamma^mu = (P1slash + m) gamma^mu / D1 + gamma^mu (P2slash + m) / D2, P1 = p3 + p5, P2 = -(p4 + p5),
    Gammabar^rho = gamma^rho (P1slash + m) / D1 + (P2slash + m) gamma^rho / D2.
    """
    gam = _gammas("dirac")
    b = p.shape[0]
    one = np.broadcast_to(np.eye(4), (b, 4, 4))
    p1, p2, p3, p4, p5 = (_slash(gam, p[:, i]) for i in range(5))
    dot = lambda x, y: np.einsum("bm,m,bm->b", x, np.array([1.0, -1.0, -1.0, -1.0]), y)
    q1, q2 = p[:, 2] + p[:, 4], -(p[:, 3] + p[:, 4])
    d1 = (dot(q1, q1) - m**2)[:, None, None]
    d2 = (dot(q2, q2) - m**2)[:, None, None]
    a1, a2 = p3 + p5 + m * one, -(p4 + p5) + m * one
    gmat = [a1 @ gam[mu] / d1 + gam[mu] @ a2 / d2 for mu in range(4)]
    gbar = [gam[mu] @ a1 / d1 + a2 @ gam[mu] / d2 for mu in range(4)]
    lt = np.zeros((b, 4, 4), dtype=np.complex128)
    tt = np.zeros((b, 4, 4), dtype=np.complex128)
    for mu, rho in itertools.product(range(4), range(4)):
        lt[:, mu, rho] = np.trace(gam[mu] @ p1 @ gam[rho] @ p2, axis1=1, axis2=2)
        tt[:, mu, rho] = np.trace(gmat[mu] @ (p4 - m * one) @ gbar[rho] @ (p3 + m * one), axis1=1, axis2=2)
    s = dot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1])
    val = np.einsum("bmr,ma,rc,bac->b", lt, G, G, tt) / s**2
    assert np.max(np.abs(val.imag)) < 1e-12 * np.max(np.abs(val.real))
    return (8 / 4) * val.real  # (N^2 - 1) / 4 with Tr(t^a t^b) = delta^ab / 2


def _trace_tt(p, m):
    """sum |M|^2 of q q~ > t t~: 2 Tr[gamma^mu p1 gamma^rho p2] Tr[gamma_mu (p4 - m) gamma_rho (p3 + m)] / s^2."""
    gam = _gammas("dirac")
    one = np.broadcast_to(np.eye(4), (p.shape[0], 4, 4))
    p1, p2, p3, p4 = (_slash(gam, p[:, i]) for i in range(4))
    tot = 0.0
    for mu, rho in itertools.product(range(4), range(4)):
        lt = np.trace(gam[mu] @ p1 @ gam[rho] @ p2, axis1=1, axis2=2)
        tt = np.trace(gam[mu] @ (p4 - m * one) @ gam[rho] @ (p3 + m * one), axis1=1, axis2=2)
        tot = tot + G[mu, mu] * G[rho, rho] * lt * tt
    q = p[:, 0] + p[:, 1]
    return 2.0 * tot.real / mdot(q, q) ** 2


def test_tth_agrees_with_dirac_traces():
    p = _tth_events(32, seed=1)
    np.testing.assert_allclose(bg_qq_tth(p, MASS_T), _trace_tth(p, MASS_T), rtol=1e-10)
    # also away from the physical masses (another top mass, a light Higgs)
    p = generate_events(16, 700.0, [40.0, 40.0, 10.0], seed=2).momenta
    np.testing.assert_allclose(bg_qq_tth(p, 40.0), _trace_tth(p, 40.0), rtol=1e-10)


def test_qq_tt_closed_form_agrees_with_traces():
    p = generate_events(16, SQRT_S, [MASS_T, MASS_T], seed=3).momenta
    np.testing.assert_allclose(qq_tt(p, MASS_T), _trace_tt(p, MASS_T), rtol=1e-10)


def test_massive_spinor_sums_and_dirac_equation():
    gam = _gammas("chiral")  # the code's representation
    p = _tth_events(6, seed=4)[:, 2]
    u, v = massive_u_spinors(p, MASS_T), massive_v_spinors(p, MASS_T)
    ps = _slash(gam, p)
    one = np.eye(4)
    uu = np.einsum("sbi,sbj->bij", u, bar(u))
    vv = np.einsum("sbi,sbj->bij", v, bar(v))
    np.testing.assert_allclose(uu, ps + MASS_T * one, atol=1e-9 * SQRT_S)
    np.testing.assert_allclose(vv, ps - MASS_T * one, atol=1e-9 * SQRT_S)
    # (pslash - m) u = 0, (pslash + m) v = 0, ubar u = 2m, vbar v = -2m
    assert np.max(np.abs(np.einsum("bij,sbj->sbi", ps - MASS_T * one, u))) < 1e-9 * SQRT_S
    assert np.max(np.abs(np.einsum("bij,sbj->sbi", ps + MASS_T * one, v))) < 1e-9 * SQRT_S
    np.testing.assert_allclose(np.einsum("sbi,tbi->stb", bar(u), u), 2 * MASS_T * np.eye(2)[..., None] + 0 * p[:, 0],
                               atol=1e-9 * SQRT_S)
    # the massless limit reproduces the massless spinors of berends_giele
    from scalinglab.simulators.amplitudes.berends_giele import u_spinors, v_spinors

    k = _aa_events(0, 4, seed=5)[:, 2]
    np.testing.assert_allclose(massive_u_spinors(k, 0.0), u_spinors(k), atol=1e-12 * SQRT_S)
    np.testing.assert_allclose(massive_v_spinors(k, 0.0), v_spinors(k), atol=1e-12 * SQRT_S)


def test_tth_lorentz_invariance_and_charge_conjugation_symmetry():
    p = _tth_events(16, seed=6)
    ref = bg_qq_tth(p, MASS_T)
    lam = random_lorentz(p.shape[0], np.random.default_rng(7), max_rapidity=1.5)
    np.testing.assert_allclose(bg_qq_tth(apply_lorentz(lam, p), MASS_T), ref, rtol=1e-10)
    # charge conjugation: at tree level (one gluon exchange, one colour structure) the light-quark tensor
    # Tr[gamma^mu p1slash gamma^rho p2slash] is symmetric under p1 <-> p2, and C invariance of the t t~ H current
    # makes the heavy tensor symmetric under p3 <-> p4 (with the Higgs radiated from the exchanged legs): both
    # exchanges, separately and together, leave sum |M|^2 unchanged (the spinor code is not manifestly symmetric:
    # massive u and v spinors enter differently)
    for perm in ([1, 0, 2, 3, 4], [0, 1, 3, 2, 4], [1, 0, 3, 2, 4]):
        np.testing.assert_allclose(bg_qq_tth(p[:, perm], MASS_T), ref, rtol=1e-10)
    # t <-> t~ maps the top-emission diagram onto the antitop-emission one, which differ (the check can fail)
    top_sw = bg_qq_tth(p[:, [0, 1, 3, 2, 4]], MASS_T, diagrams="top")
    np.testing.assert_allclose(top_sw, bg_qq_tth(p, MASS_T, diagrams="antitop"), rtol=1e-10)
    assert np.min(np.abs(top_sw / bg_qq_tth(p, MASS_T, diagrams="top") - 1)) > 1e-3


def test_tth_gluon_current_conservation():
    # replacing the gluon propagator numerator -g^{mu nu} by k^mu k^nu changes A by (J.k)(H.k)/s^2: both
    # the light-quark current and the heavy current with the Higgs radiated from both legs must be conserved
    p = _tth_events(16, seed=8)
    k = p[:, 0] + p[:, 1]
    scale = lambda x: np.linalg.norm(x, axis=-1) * np.linalg.norm(k, axis=-1)
    j = light_quark_current(p)
    h = top_higgs_current(p, MASS_T)
    assert np.max(np.abs(mdot(j, k)) / np.max(scale(j))) < 1e-12
    assert np.max(np.abs(mdot(h, k)) / np.max(scale(h), axis=(0, 1))) < 1e-12
    # each diagram alone violates it (the check can fail)
    for d in ("top", "antitop"):
        hd = top_higgs_current(p, MASS_T, diagrams=d)
        assert np.min(np.max(np.abs(mdot(hd, k)), axis=(0, 1)) / np.max(scale(hd), axis=(0, 1))) > 1e-3
    # the xi option of the gluon propagator: same |M|^2 in Landau and a large-xi gauge
    ref = bg_qq_tth(p, MASS_T)
    for xi in (0.0, 50.0):
        np.testing.assert_allclose(bg_qq_tth(p, MASS_T, xi=xi), ref, rtol=1e-10)


def _recoil_pair(target, direction, mass):
    """Two particles of equal mass, back to back along ``direction`` in the rest frame of ``target``, boosted."""
    m2 = mdot(target, target)
    e = np.sqrt(m2) / 2
    pabs = np.sqrt(e**2 - mass**2)
    n = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    a = np.concatenate([e[:, None], pabs[:, None] * n], axis=1)
    b = np.concatenate([e[:, None], -pabs[:, None] * n], axis=1)
    bm = boost_matrix(target[:, 1:] / target[:, :1])
    return np.einsum("bmn,bn->bm", bm, a), np.einsum("bmn,bn->bm", bm, b)


def _soft_vector(num, lam, seed):
    k = np.random.default_rng(seed).normal(size=(num, 3))
    k = lam * SQRT_S * k / np.linalg.norm(k, axis=1, keepdims=True)
    return np.concatenate([np.linalg.norm(k, axis=1, keepdims=True), k], axis=1)


def test_soft_higgs_limit_factorises_onto_qq_tt():
    # m_H -> 0 and k -> 0: ubar(p3)(p3slash + m) = 2m ubar(p3) and (-p4slash + m) v(p4) = 2m v(p4), so
    # A(ttH) -> m (1/(p3.k) + 1/(p4.k)) A(tt): a scalar eikonal factor, both legs with the same sign (unlike a
    # soft gluon or photon), proportional to m_t^2; exact q q~ > t t~ from its closed form
    base = generate_events(6, SQRT_S, [MASS_T, MASS_T], seed=9).momenta
    kh = _soft_vector(6, 1e-6, seed=10)
    t, tb = _recoil_pair(base[:, 0] + base[:, 1] - kh, base[:, 2, 1:], MASS_T)
    p5 = np.stack([base[:, 0], base[:, 1], t, tb, kh], axis=1)
    p4 = np.stack([base[:, 0], base[:, 1], t, tb], axis=1)
    full = bg_qq_tth(p5, MASS_T)
    eik = MASS_T**2 * (1 / mdot(t, kh) + 1 / mdot(tb, kh)) ** 2
    np.testing.assert_allclose(full, eik * qq_tt(p4, MASS_T), rtol=1e-3)
    # the vector-like (opposite-sign) eikonal factor does not describe it
    wrong = MASS_T**2 * (1 / mdot(t, kh) - 1 / mdot(tb, kh)) ** 2
    assert np.min(np.abs(full / (wrong * qq_tt(p4, MASS_T)) - 1)) > 0.1


# ----------------------------------------------------------------------------------------------- diphoton


@pytest.mark.parametrize("n", [0, 1])
def test_diphoton_berends_giele_agrees_with_closed_forms(n):
    p = _aa_events(n, 32, seed=11 + n)
    closed = qq_aa(p) if n == 0 else qq_aag(p)
    np.testing.assert_allclose(bg_qq_photons_gluons(p), closed, rtol=1e-10)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_diphoton_ward_identities(n):
    p = _aa_events(n, 8, seed=13 + n)
    ref = bg_qq_photons_gluons(p) * SQRT_S**2
    rel = 1e-20  # squared: 1e-10 relative on the amplitude
    for i in range(2):
        k = p[:, 2 + i].astype(np.complex128)[None]
        assert np.all(bg_qq_photons_gluons(p, photon_overrides={i: k}) < rel * ref)
    for g in range(n):
        k = p[:, 4 + g].astype(np.complex128)[None].repeat(2, axis=0)
        assert np.all(bg_qq_photons_gluons(p, overrides={g: k}) < rel * ref)
    # a wrong gauge vector is not annihilated: the check can fail
    wrong = (p[:, 2] * np.array([1, 1, 1, -1])).astype(np.complex128)[None]
    assert np.all(bg_qq_photons_gluons(p, photon_overrides={0: wrong}) > 1e-6 * ref / SQRT_S**2)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_diphoton_lorentz_and_bose_symmetry(n):
    p = _aa_events(n, 8, seed=16 + n)
    ref = bg_qq_photons_gluons(p)
    lam = random_lorentz(p.shape[0], np.random.default_rng(19), max_rapidity=1.5)
    np.testing.assert_allclose(bg_qq_photons_gluons(apply_lorentz(lam, p)), ref, rtol=1e-10)
    perm = list(range(4 + n))
    perm[2], perm[3] = 3, 2
    np.testing.assert_allclose(bg_qq_photons_gluons(p[:, perm]), ref, rtol=1e-10)
    if n == 2:
        np.testing.assert_allclose(bg_qq_photons_gluons(p[:, [0, 1, 2, 3, 5, 4]]), ref, rtol=1e-10)
        np.testing.assert_allclose(bg_qq_photons_gluons(p[:, [0, 1, 3, 2, 5, 4]]), ref, rtol=1e-10)
    # one gluon couples like a photon (abelian: same value after exchanging a photon and the gluon); with two
    # gluons the self-coupling and colour correlations make a photon and a gluon distinguishable (can fail)
    if n >= 1:
        swapped = bg_qq_photons_gluons(p[:, [0, 1, 4, 3, 2] + list(range(5, 4 + n))])
        if n == 1:
            np.testing.assert_allclose(swapped, ref, rtol=1e-10)
        else:
            assert np.max(np.abs(swapped / ref - 1)) > 1e-3


def test_diphoton_time_reversal():
    # |M(q q~ > a a)|^2 depends on t = (p1 - k1)^2 and u = (p1 - k2)^2 only: evaluating with photon and quark
    # momenta exchanged (incoming <-> outgoing) gives the same value in the recursion
    p = _aa_events(0, 8, seed=20)
    np.testing.assert_allclose(bg_qq_photons_gluons(p[:, [2, 3, 0, 1]]), bg_qq_photons_gluons(p), rtol=1e-10)


def _soft_gluon_event(base, lam, seed):
    """Append a soft gluon to a massless event and recoil the final state (scale in the CM frame, boost)."""
    kg = _soft_vector(base.shape[0], lam, seed)
    target = base[:, 0] + base[:, 1] - kg
    fin = base[:, 2:] * (np.sqrt(mdot(target, target)) / SQRT_S)[:, None, None]  # base is in the CM frame
    fin = np.einsum("bmn,bin->bim", boost_matrix(target[:, 1:] / target[:, :1]), fin)
    return np.concatenate([base[:, :2], fin, kg[:, None]], axis=1), np.concatenate([base[:, :2], fin], axis=1)


def test_soft_gluon_limits_factorise():
    # q q~ > a a g with a soft gluon: 2 C_F (p1.p2)/((p1.k)(p2.k)) x closed-form q q~ > a a
    base = _aa_events(0, 6, seed=21)
    full, red = _soft_gluon_event(base, 1e-6, seed=22)
    s = lambda i, j, x: mdot(x[:, i], x[:, j]) / (mdot(x[:, i], x[:, -1]) * mdot(x[:, j], x[:, -1]))
    np.testing.assert_allclose(bg_qq_photons_gluons(full), 2 * (4 / 3) * s(0, 1, full) * qq_aa(red), rtol=1e-3)
    # q q~ > a a g g with the second gluon soft: three coloured partons q, q~, g with
    # T_q.T_q~ = (C_A - 2 C_F)/2 = 1/6 and T_q.T_g = T_q~.T_g = -C_A/2 = -3/2, factor -2 sum_{i<j} T_i.T_j S_ij
    base = _aa_events(1, 6, seed=23)
    full, red = _soft_gluon_event(base, 1e-6, seed=24)
    eik = 3 * s(0, 4, full) + 3 * s(1, 4, full) - s(0, 1, full) / 3
    np.testing.assert_allclose(bg_qq_photons_gluons(full), eik * qq_aag(red), rtol=1e-3)
    # the abelian-like factor 2 C_F S_12 misses the gluon-gluon correlations (the check can fail)
    assert np.min(np.abs(bg_qq_photons_gluons(full) / (2 * (4 / 3) * s(0, 1, full) * qq_aag(red)) - 1)) > 0.05


# ------------------------------------------------------------------------------------------------- registry


def test_registry_and_squared_amplitude():
    names = ["q q~ > t t~ H", "q q~ > a a", "q q~ > a a g", "q q~ > a a g g"]
    assert set(names) <= set(list_processes())
    p = generate_events(8, SQRT_S, get_process("q q~ > t t~ H").masses[2:], seed=25).momenta
    got = squared_amplitude("q q~ > t t~ H", p)
    np.testing.assert_allclose(got, _trace_tth(p, MASS_T), rtol=1e-10)
    np.testing.assert_allclose(squared_amplitude("q qbar > t t~ H", p, average=True), got / 36)
    with pytest.raises(ValueError, match="off-shell"):
        squared_amplitude("q q~ > t t~ H", p[:, [0, 1, 2, 4, 3]])
    with pytest.raises(ValueError, match="no closed form"):
        squared_amplitude("q q~ > t t~ H", p, method="closed")
    for n in range(3):
        name = "q q~ > a a" + " g" * n
        proc = get_process(name)
        assert proc.outgoing == ("a", "a") + ("g",) * n and np.all(proc.masses == 0)
        p = generate_events(8, SQRT_S, proc.masses[2:], seed=26 + n, cuts=CUTS).momenta
        got = squared_amplitude(name, p, method="bg")
        np.testing.assert_allclose(got, bg_qq_photons_gluons(p), rtol=1e-12)
        assert np.all(got > 0)
        if n < 2:
            np.testing.assert_allclose(squared_amplitude(name, p), (qq_aa, qq_aag)[n](p), rtol=1e-12)

"""Electroweak processes u d~ > W+ Z + n g and u u~ > W+ W- Z: an independent Dirac-trace computation, the
cancellation of the growing longitudinal amplitudes (and its failure without a diagram class), photon and gluon
Ward identities, photon gauge-parameter independence, comparison with the unit-coupling q q~ > V + g code, CP,
Bose symmetry, the soft-gluon limit, Lorentz invariance and the registered processes."""

import numpy as np
import pytest

from scalinglab.simulators.amplitudes import Cuts, generate_events, get_process, list_processes, squared_amplitude
from scalinglab.simulators.amplitudes import electroweak as ew
from scalinglab.simulators.amplitudes.berends_giele import massive_polarizations
from scalinglab.simulators.amplitudes.kinematics import apply_lorentz, boost_matrix, mdot, random_lorentz
from scalinglab.simulators.amplitudes.phase_space import _massive_rescale
from scalinglab.simulators.amplitudes.processes import MASS_W, MASS_Z, bg_qq_vector_gluons

SQRT_S = 1000.0
CUTS = Cuts(min_pt=20.0, min_invariant=400.0)
NAMES = ["u d~ > W+ Z", "u d~ > W+ Z g", "u d~ > W+ Z g g", "u u~ > W+ W- Z"]
PAR = ew.default_params()


def events(name, num, seed=0, sqrt_s=SQRT_S):
    proc = get_process(name)
    return generate_events(num, sqrt_s, proc.masses[2:], seed=seed, cuts=CUTS).momenta


def fixed_angle_events(sqrt_s, masses, seed=3, num=2):
    """Events with the same directions and energy fractions at every sqrt_s (massless RAMBO shape, then masses)."""
    base = generate_events(num, 1000.0, [0.0] * len(masses), seed=seed).momenta[:, 2:]
    k, _ = _massive_rescale(base * (sqrt_s / 1000.0), np.array(masses, dtype=float), sqrt_s)
    e = 0.5 * sqrt_s
    beams = np.broadcast_to(np.array([[e, 0, 0, e], [e, 0, 0, -e]]), (num, 2, 4))
    return np.concatenate([beams, k], axis=1)


def longitudinal(p, masses):
    return {i: massive_polarizations(p[:, 2 + i], m)[2:3] for i, m in enumerate(masses)}


# ----------------------------------------------------------------------------- independent Dirac-trace version

G0 = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=complex)
SIG = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
GAMMA = np.stack([G0] + [np.block([[np.zeros((2, 2)), s], [-s, np.zeros((2, 2))]]) for s in SIG])  # gamma^mu
G5 = np.diag([-1, -1, 1, 1]).astype(complex)
PL, PR = (np.eye(4) - G5) / 2, (np.eye(4) + G5) / 2
METRIC = np.diag([1.0, -1.0, -1.0, -1.0])


def sl(p):
    """pslash = gamma^mu p_mu for a contravariant p [4]."""
    return np.einsum("mij,m->ij", GAMMA, METRIC @ p)


def trace_ud_wz(momenta):
    """u d~ > W+ Z from explicit 4x4 gamma matrices, traces and polarisation sums -g + kk/M^2 (own couplings)."""
    sw2 = 1.0 - (MASS_W / MASS_Z) ** 2
    sw, cw = np.sqrt(sw2), MASS_W / MASS_Z
    c_w = 1.0 / (np.sqrt(2.0) * sw)  # W coupling to left-handed quarks, e = 1
    z_u = ((0.5 - 2 / 3 * sw2) * PL + (-2 / 3 * sw2) * PR) / (sw * cw)  # Z coupling matrices of u and d
    z_d = ((-0.5 + 1 / 3 * sw2) * PL + (1 / 3 * sw2) * PR) / (sw * cw)
    g_z = cw / sw  # WWZ coupling
    out = []
    for p1, p2, kw, kz in momenta:
        big_p = p1 + p2
        s = big_p @ METRIC @ big_p
        q1, q2 = p1 - kz, p1 - kw
        amp = np.zeros((4, 4, 4, 4), dtype=complex)  # [alpha, beta] upper indices, spinor matrix
        for a in range(4):
            for b in range(4):
                # Z off the u first (next to u(p1)), then the W; and W first (u -> d), then the Z off the d
                d1 = c_w * GAMMA[a] @ PL @ sl(q1) @ GAMMA[b] @ z_u / (q1 @ METRIC @ q1)
                d2 = GAMMA[b] @ z_d @ sl(q2) @ GAMMA[a] @ PL * c_w / (q2 @ METRIC @ q2)
                # s-channel W*: (i c_w gamma_l P_L)(-i (g^lk - P^l P^k / M^2) / (s - M^2))(-i g_z Gamma_k^{ab})
                # legs of Gamma: W* (W+ field, k, incoming P), W+ out (W- field, a, -kw), Z (b, -kz)
                gk = [GAMMA[k] - sl(big_p) * big_p[k] / MASS_W**2 for k in (a, b)]  # (g^{kl} - P^k P^l/M^2) gamma_l
                x = gk[0] * (big_p + kw)[b] + gk[1] * (-kz - big_p)[a]
                x = x + METRIC[a, b] * (sl(kz - kw) - sl(big_p) * (big_p @ METRIC @ (kz - kw)) / MASS_W**2)
                d3 = c_w * g_z * x @ PL / (s - MASS_W**2)
                # i^3 = -i for the two quark-exchange diagrams, i (-i)(-i) = -i for the s channel: common phase
                amp[a, b] = d1 + d2 + d3
        pw = -METRIC + np.outer(METRIC @ kw, METRIC @ kw) / MASS_W**2  # lower indices
        pz = -METRIC + np.outer(METRIC @ kz, METRIC @ kz) / MASS_Z**2
        abar = np.einsum("ij,abkj,kl->abil", G0, amp.conj(), G0)  # gamma0 A^dagger gamma0
        tr = np.einsum("ij,abjk,kl,cdli->abcd", sl(p2), amp, sl(p1), abar)
        out.append(3.0 * np.einsum("abcd,ac,bd->", tr, pw, pz).real)  # colour: sum_ij |delta_ij|^2 = 3
    return np.array(out)


def test_ud_wz_matches_dirac_traces():
    p = events("u d~ > W+ Z", 12, seed=1)
    np.testing.assert_allclose(ew.bg_ud_wz(p, PAR), trace_ud_wz(p), rtol=1e-10)
    # dropping the s-channel diagram is seen: the comparison can fail
    wrong = ew.EWParams(MASS_W, MASS_Z, PAR.mass_h, tgc=False)
    assert np.max(np.abs(ew.bg_ud_wz(p, wrong) / trace_ud_wz(p) - 1)) > 1e-3


def test_su2_structure_constants_in_the_charged_basis():
    kappa3, quartic = ew._check_su2_structure()
    np.testing.assert_allclose(kappa3, -1j, atol=1e-14)
    np.testing.assert_allclose(quartic, [0, 1, 1], atol=1e-14)


# ------------------------------------------------------------------------------------- high-energy behaviour


def _growth(fn, masses, variant, energies=(1e3, 1e4, 1e5), longi=True):
    par = ew.default_params(**variant)
    vals = []
    for rs in energies:
        p = fixed_angle_events(rs, masses)
        over = longitudinal(p, masses) if longi else None
        vals.append(fn(p, par, boson_overrides=over))
    return np.array(vals)  # [energies, B]


def test_wz_longitudinal_amplitudes_cancel_at_high_energy():
    masses = [MASS_W, MASS_Z]
    full = _growth(ew.bg_ud_wz, masses, {})
    # |M|^2(W_0 Z_0) approaches a constant: 1 -> 10 -> 100 TeV
    np.testing.assert_allclose(full[2], full[1], rtol=1e-2)
    np.testing.assert_allclose(full[1], full[0], rtol=0.2)
    for variant in ({"tgc": False}, {"line": False}):  # quark-exchange diagrams only / s-channel W* only
        part = _growth(ew.bg_ud_wz, masses, variant)
        ratio = part[2] / part[1]  # ~ s^2: 10^4 per decade of sqrt(s)
        assert np.all((ratio > 0.5e4) & (ratio < 2e4))
        assert np.all(part[2] > 1e8 * full[2])


def test_wwz_longitudinal_amplitudes_cancel_at_high_energy():
    masses = [MASS_W, MASS_W, MASS_Z]
    scale = np.array([1e3, 1e4, 1e5])[:, None] ** 2  # s |M|^2 is dimensionless
    full = scale * _growth(ew.bg_uu_wwz, masses, {})
    assert np.all(full[2] < full[1]) and np.all(full[1] < full[0])  # bounded (falls like 1/s)
    no_higgs = scale * _growth(ew.bg_uu_wwz, masses, {"higgs": False})
    ratio = no_higgs[2] / no_higgs[1]  # the Higgs restores unitarity: without it s|M|^2 grows like s
    assert np.all((ratio > 50) & (ratio < 200))
    for variant in ({"quartic": False}, {"tgc": False}, {"line": False}):
        part = scale * _growth(ew.bg_uu_wwz, masses, variant)
        assert np.all(part[2] / part[1] > 1e4)  # like s^2 or faster
    # all helicities: s |M|^2 approaches a constant
    total = scale * _growth(ew.bg_uu_wwz, masses, {}, longi=False)
    np.testing.assert_allclose(total[2], total[1], rtol=2e-2)


# ----------------------------------------------------------------------------------------------- gauge checks


def test_photon_ward_identities():
    # u d~ > W+ a (+ g): replacing the photon by its momentum gives zero (needs Q_u - Q_d = 1 and the WWA vertex);
    # u u~ > W+ W- a: needs in addition the quartic WWAA and WWZA vertices (the latter enters W W Z)
    cases = [(("W+", "a"), [MASS_W, 0.0], {"tgc": False}), (("W+", "a"), [MASS_W, 0.0, 0.0], {"tgc": False}),
             (("W+", "W-", "a"), [MASS_W, MASS_W, 0.0], {"quartic": False}),
             (("W+", "W-", "a"), [MASS_W, MASS_W, 0.0], {"tgc": False})]
    for bosons, masses, broken_variant in cases:
        p = generate_events(6, SQRT_S, masses, seed=7, cuts=CUTS).momenta
        ref = ew.squared(p, bosons, 2, PAR) * SQRT_S**2
        ia = bosons.index("a")
        k = {ia: p[:, 2 + ia].astype(complex)[None]}
        assert np.all(ew.squared(p, bosons, 2, PAR, boson_overrides=k) < 1e-20 * ref)
        broken = ew.squared(p, bosons, 2, ew.default_params(**broken_variant), boson_overrides=k)
        assert np.all(broken > 1e-6 * ref / SQRT_S**2)  # the check can fail


def test_photon_gauge_parameter_drops_out():
    # internal photons: W W Z does not depend on the photon gauge parameter (Feynman xi = 1 vs Landau and xi = 5).
    # A consistency check of the propagator only: here the k^mu k^nu terms vanish diagram by diagram (the photon
    # ends on the bare q q~ current or on W+ W- on shell)
    p = events("u u~ > W+ W- Z", 8, seed=8)
    ref = ew.bg_uu_wwz(p, PAR)
    for xi in (0.0, 5.0):
        np.testing.assert_allclose(ew.bg_uu_wwz(p, ew.default_params(xi_photon=xi)), ref, rtol=1e-10)


@pytest.mark.parametrize("m", [1, 2])
def test_gluon_ward_identity(m):
    p = events("u d~ > W+ Z" + " g" * m, 6, seed=4)
    ref = ew.bg_ud_wz(p, PAR) * SQRT_S**2
    for g in range(m):
        k = p[:, 4 + g].astype(complex)[None].repeat(2, axis=0)
        assert np.all(ew.bg_ud_wz(p, PAR, gluon_overrides={g: k}) < 1e-20 * ref)
    wrong = (p[:, 4] * np.array([1, 1, 1, -1])).astype(complex)[None].repeat(2, axis=0)
    assert np.all(ew.bg_ud_wz(p, PAR, gluon_overrides={0: wrong}) > 1e-6 * ref / SQRT_S**2)


@pytest.mark.parametrize("m", [0, 1, 2])
@pytest.mark.parametrize("boson", ["Z", "W+"])
def test_single_boson_matches_unit_coupling_code(boson, m):
    # u u~ > Z + m g and u d~ > W+ + m g on the electroweak line = the vector-coupling q q~ > V + m g of
    # processes times (c_L^2 + c_R^2) / 2 (helicity-summed left- and right-handed lines are equal)
    mass = MASS_Z if boson == "Z" else MASS_W
    if m:
        p = generate_events(6, SQRT_S, [mass] + [0.0] * m, seed=5, cuts=CUTS).momenta
    else:  # 2 -> 1: a resonance; any on-shell configuration works for the comparison
        k = np.array([mass / 2, 0, 0, mass / 2])
        p = np.broadcast_to(np.stack([k, k * [1, -1, -1, -1], 2 * k * [1, 0, 0, 0]]), (2, 3, 4)).copy()
        p[:, 2, 0] = mass
    c_l, c_r = PAR.quark_couplings("Z" if boson == "Z" else "W", 2)
    mine = ew.squared(p, (boson,), 2, PAR)
    np.testing.assert_allclose(mine, bg_qq_vector_gluons(p, mass) * (c_l**2 + c_r**2) / 2, rtol=1e-10)


def test_wwz_cp_relation():
    # CP (no CKM phase, real couplings, zero widths): |M|^2(u p1, u~ p2 > W+ k1, W- k2, Z k3) equals the same
    # process with u at P p2, u~ at P p1, W+ at P k2, W- at P k1, Z at P k3 (P: parity, p -> -p)
    p = events("u u~ > W+ W- Z", 8, seed=9)
    cp = p[:, [1, 0, 3, 2, 4]] * np.array([1, -1, -1, -1])
    ref = ew.bg_uu_wwz(p, PAR)
    np.testing.assert_allclose(ew.bg_uu_wwz(cp, PAR), ref, rtol=1e-10)
    # exchanging only the W momenta is no symmetry (forward-backward asymmetry of V-A couplings): can fail
    assert np.max(np.abs(ew.bg_uu_wwz(p[:, [0, 1, 3, 2, 4]], PAR) / ref - 1)) > 1e-2


def test_wzgg_bose_symmetry_and_lorentz_invariance():
    p = events("u d~ > W+ Z g g", 6, seed=10)
    ref = ew.bg_ud_wz(p, PAR)
    np.testing.assert_allclose(ew.bg_ud_wz(p[:, [0, 1, 2, 3, 5, 4]], PAR), ref, rtol=1e-10)
    for name in NAMES:
        p = events(name, 6, seed=11)
        lam = random_lorentz(p.shape[0], np.random.default_rng(3), max_rapidity=1.5)
        np.testing.assert_allclose(squared_amplitude(name, apply_lorentz(lam, p)), squared_amplitude(name, p),
                                   rtol=1e-10)


def test_soft_gluon_limit_of_wzg():
    base = generate_events(4, SQRT_S, [MASS_W, MASS_Z], seed=12).momenta
    rng = np.random.default_rng(1)
    lam = 1e-4
    k = rng.normal(size=(4, 3))
    k = lam * SQRT_S * k / np.linalg.norm(k, axis=1, keepdims=True)
    kg = np.concatenate([np.linalg.norm(k, axis=1, keepdims=True), k], axis=1)
    # W and Z recoil: back-to-back along their original direction in the rest frame of P - k
    target = base[:, 0] + base[:, 1] - kg
    m = np.sqrt(mdot(target, target))
    pabs = np.sqrt((m**2 - (MASS_W + MASS_Z) ** 2) * (m**2 - (MASS_W - MASS_Z) ** 2)) / (2 * m)
    direction = base[:, 2, 1:] / np.linalg.norm(base[:, 2, 1:], axis=1, keepdims=True)
    w_rest = np.concatenate([np.sqrt(MASS_W**2 + pabs**2)[:, None], pabs[:, None] * direction], axis=1)
    z_rest = np.concatenate([np.sqrt(MASS_Z**2 + pabs**2)[:, None], -pabs[:, None] * direction], axis=1)
    bm = boost_matrix(target[:, 1:] / target[:, :1])
    w, z = np.einsum("bmn,bn->bm", bm, w_rest), np.einsum("bmn,bn->bm", bm, z_rest)
    p5 = np.stack([base[:, 0], base[:, 1], w, z, kg], axis=1)
    full = squared_amplitude("u d~ > W+ Z g", p5)
    p1, p2 = base[:, 0], base[:, 1]
    eik = 2 * (4 / 3) * mdot(p1, p2) / (mdot(p1, kg) * mdot(p2, kg))  # g_s = 1, C_F = 4/3
    np.testing.assert_allclose(full, eik * squared_amplitude("u d~ > W+ Z", base), rtol=1e-3)


# ---------------------------------------------------------------------------------------------- registration


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_positive(name):
    assert name in list_processes()
    proc = get_process(name)
    assert proc.closed_form is None and proc.bg is not None
    p = events(name, 64, seed=13)
    out = squared_amplitude(name, p)
    assert out.shape == (64,) and np.all(np.isfinite(out)) and np.all(out > 0)
    np.testing.assert_allclose(squared_amplitude(name, p, average=True), out / 36)
    # chunking does not change the values
    np.testing.assert_allclose(np.concatenate([proc.bg(p[:10]), proc.bg(p[10:])]), out, rtol=1e-12)

"""Hadron-collider sampling: PDF sum rules, the weights against an independent quadrature, unweighting,
laboratory-frame kinematics, the phase-space dimension (TwoNN) and the resumable unweighted campaign."""

import numpy as np
import pytest
from scipy import integrate

from scalinglab.analysis.intrinsic_dimension import intrinsic_dimension
from scalinglab.data.store import DatasetStore
from scalinglab.simulators.amplitudes import Cuts, generate_events, invariant_features, squared_amplitude
from scalinglab.simulators.amplitudes.campaign import simulate_amplitudes
from scalinglab.simulators.amplitudes.hadronic import HadronicSampler, parton_channels, unweight
from scalinglab.simulators.amplitudes.pdf import FLAVOURS, DukeOwens1

LOG_X = np.linspace(np.log(1e-12), np.log(1 - 1e-12), 200_001)


def _moment(pdf, flavour, q2, power):
    """int_0^1 x^power f(x) dx, integrated in ln x (the small-x powers are integrable singularities)."""
    x = np.exp(LOG_X)
    return np.trapezoid(x**power * pdf.xf(flavour, x, q2), LOG_X)  # x f = pdf.xf; dx = x dlnx


@pytest.mark.parametrize("q2", [4.0, 100.0, 1e4, 1e6])
def test_quark_number_sum_rules(q2):
    pdf = DukeOwens1()
    assert _moment(pdf, "u", q2, 0) - _moment(pdf, "u~", q2, 0) == pytest.approx(2.0, abs=2e-4)
    assert _moment(pdf, "d", q2, 0) - _moment(pdf, "d~", q2, 0) == pytest.approx(1.0, abs=2e-4)
    for f in ("s", "c"):
        assert _moment(pdf, f, q2, 0) - _moment(pdf, f + "~", q2, 0) == pytest.approx(0.0, abs=1e-12)


def test_momentum_sum_rule_and_positivity():
    pdf = DukeOwens1()
    total = {q2: sum(_moment(pdf, f, q2, 1) for f in FLAVOURS) for q2 in (4.0, 100.0, 1e4)}
    # the 1984 fit conserves momentum at its reference scale; its Q^2 polynomials drift by a few per cent
    # per decade above it (documented in pdf.py)
    assert total[4.0] == pytest.approx(1.0, abs=0.01)
    assert total[100.0] == pytest.approx(1.0, abs=0.03)
    assert total[1e4] == pytest.approx(1.0, abs=0.08)
    x = np.geomspace(1e-5, 0.95, 200)
    for f in FLAVOURS:
        assert np.all(pdf.xf(f, x, 1e4) > 0)
    # the gluon dominates at small x, the u valence at large x
    assert pdf.xf("g", 1e-3, 1e4) > 10 * pdf.xf("u", 1e-3, 1e4)
    assert pdf.xf("u", 0.5, 1e4) > 5 * pdf.xf("g", 0.5, 1e4)
    with pytest.raises(ValueError, match="strictly between"):
        pdf.xf("g", np.array([0.0]), 100.0)


def test_channels():
    assert parton_channels(("q", "q~")) == [("u", "u~"), ("d", "d~"), ("s", "s~"), ("c", "c~")]
    assert parton_channels(("u", "d~")) == [("u", "d~")]
    assert parton_channels(("g", "g")) == [("g", "g")]
    with pytest.raises(ValueError, match="not a parton"):
        parton_channels(("e+", "e-"))


def test_mean_weight_equals_independent_quadrature():
    """With |M|^2 = 1, sigma = sum_f int dx1 dx2 [f(x1) fbar(x2) + fbar(x1) f(x2)] / (2 s_hat) Phi_2,
    Phi_2 = 1 / (8 pi), computed here by 2D quadrature over (x1, x2) directly."""
    energy, m_min = 1000.0, 100.0
    sampler = HadronicSampler(("q", "q~"), np.zeros(2), energy, min_sqrt_s_hat=m_min, scale_factor=0.5)
    ev = sampler.sample(400_000, np.random.default_rng(1))
    mc = ev["weight"].mean()
    err = ev["weight"].std() / np.sqrt(ev["weight"].size)
    pdf = DukeOwens1()
    tau_min = (m_min / energy) ** 2

    def integrand(x2, x1):
        s_hat = x1 * x2 * energy**2
        q2 = 0.25 * s_hat
        lum = sum(pdf.xf(f, x1, q2) * pdf.xf(f + "~", x2, q2) + pdf.xf(f + "~", x1, q2) * pdf.xf(f, x2, q2)
                  for f in ("u", "d", "s", "c"))
        return lum / (x1 * x2) / (2.0 * s_hat) / (8.0 * np.pi)  # f(x) = xf(x) / x

    ref, _ = integrate.dblquad(integrand, tau_min, 1 - 1e-12, lambda x1: tau_min / x1, lambda x1: 1 - 1e-12,
                               epsrel=1e-5)
    assert abs(mc - ref) < 4 * err
    assert err / ref < 0.01


def test_laboratory_frame_kinematics_and_cuts():
    cuts = Cuts(min_pt=20.0, max_abs_eta=2.5)
    sampler = HadronicSampler(("q", "q~"), np.array([91.1876, 0.0]), 13000.0, cuts=cuts)
    ev = sampler.sample(20_000, np.random.default_rng(2))
    p = ev["momenta"]
    np.testing.assert_allclose(p[:, :2].sum(1), p[:, 2:].sum(1), atol=1e-7 * p[:, :2, 0].sum(1).max())
    mass2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, -1)
    # E^2 - |p|^2 cancels in float64 for boosted particles: tolerance relative to E^2
    assert np.all(np.abs(mass2[:, 2] - 91.1876**2) <= 1e-10 * p[:, 2, 0] ** 2)
    assert np.all(np.abs(mass2[:, 3]) <= 1e-10 * p[:, 3, 0] ** 2)
    # incoming partons along the beams with the sampled momentum fractions, quark from either beam
    e = 0.5 * 13000.0
    pa, pb = p[:, 0], p[:, 1]
    assert np.allclose(pa[:, 1:3], 0) and np.allclose(np.abs(pa[:, 3]), pa[:, 0])
    fwd = pa[:, 3] > 0
    np.testing.assert_allclose(np.where(fwd, pa[:, 0], pb[:, 0]), ev["x1"] * e, rtol=1e-12)
    assert 0.4 < fwd.mean() < 0.6
    np.testing.assert_allclose(np.sqrt(2 * (pa[:, 0] * pb[:, 0] - pa[:, 3] * pb[:, 3])), ev["sqrt_s_hat"],
                               rtol=1e-10)
    g = p[ev["passed"], 3]
    pt = np.hypot(g[:, 1], g[:, 2])
    eta = np.arcsinh(g[:, 3] / pt)
    assert np.all(pt >= 20.0) and np.all(np.abs(eta) <= 2.5)
    assert 0.2 < ev["passed"].mean() < 0.99
    # the boosted events are physical: |M|^2 evaluates (validation of on-shell and conservation included)
    assert np.all(squared_amplitude("q q~ > Z g", p[ev["passed"]][:50], rtol=1e-8) > 0)


def test_unweighting_accepts_in_proportion_to_weight():
    rng = np.random.default_rng(3)
    w = rng.exponential(size=200_000)
    keep, over = unweight(w, 4.0, np.random.default_rng(4))
    assert over == np.count_nonzero(w > 4.0)
    # acceptance probability min(1, w / w_max): overall mean(min(w, w_max)) / w_max
    assert keep.mean() == pytest.approx(np.minimum(w, 4.0).mean() / 4.0, abs=0.005)
    # kept events of weight band [1, 1.1] vs [3, 3.1] in the ratio of their weights
    a = keep[(w > 1.0) & (w < 1.1)].mean()
    b = keep[(w > 3.0) & (w < 3.1)].mean()
    assert b / a == pytest.approx(3.05 / 1.05, rel=0.08)
    with pytest.raises(ValueError, match="w_max"):
        unweight(w, 0.0, rng)


@pytest.mark.parametrize("n_f, tol", [(2, 0.3), (3, 0.3), (4, 0.6)])
def test_twonn_reads_three_nf_minus_four_hadronic_and_minus_five_fixed(n_f, tol):
    masses, cuts = np.zeros(n_f), Cuts(min_pt=20.0)
    sampler = HadronicSampler(("g", "g"), masses, 13000.0, cuts=cuts)
    ev = sampler.sample(25_000, np.random.default_rng(n_f))
    had = np.log(invariant_features(ev["momenta"][ev["passed"]][:10_000]))
    fixed = np.log(invariant_features(generate_events(10_000, 1000.0, masses, seed=n_f, cuts=cuts).momenta))
    assert intrinsic_dimension(had) == pytest.approx(3 * n_f - 4, abs=tol)
    assert intrinsic_dimension(fixed[:, 1:]) == pytest.approx(3 * n_f - 5, abs=tol)  # p1.p2 is constant


def test_hadronic_campaign_resumes_identically_and_records_dimension(tmp_path):
    kw = dict(collider_energy=13000.0, seed=7, cuts=Cuts(min_pt=20.0), batch_size=2048, calibration_events=4000,
              quiet=True)
    with simulate_amplitudes(tmp_path / "a", "q q~ > Z g", 150, **kw) as a:
        ref_x, ref_y, ref_w = a.inputs(), a.targets(), a.aux("weight")
        meta, state = a.metadata, a.state
    assert meta["sampling"] == "hadronic" and meta["phase_space_dimension"] == 2
    unw = meta["unweighting"]
    assert unw["w_max"] > 0 and 0 < unw["expected_efficiency"] < 1
    assert 0 < state["efficiency"] < 1 and state["accepted"] >= 150 and state["generated"] > 150
    # the stored |M|^2 is the exact one of the stored (laboratory-frame) momenta
    np.testing.assert_allclose(squared_amplitude("q q~ > Z g", ref_x.reshape(-1, 4, 4), rtol=1e-8),
                               ref_y[:, 0], rtol=1e-12)
    simulate_amplitudes(tmp_path / "b", "q q~ > Z g", 37, **kw).close()  # stops inside a batch
    with simulate_amplitudes(tmp_path / "b", "q q~ > Z g", 150, **kw) as b:
        np.testing.assert_array_equal(b.inputs(), ref_x)
        np.testing.assert_array_equal(b.targets(), ref_y)
        np.testing.assert_array_equal(b.aux("weight"), ref_w)
        assert b.state["generated"] == state["generated"]
    with pytest.raises(ValueError, match="different configuration"):
        simulate_amplitudes(tmp_path / "b", "q q~ > Z g", 150, **{**kw, "collider_energy": 14000.0})


def test_wmax_quantile_trades_overweights_for_efficiency(tmp_path):
    kw = dict(collider_energy=13000.0, seed=1, cuts=Cuts(min_pt=20.0), batch_size=4096, calibration_events=20_000,
              quiet=True)
    with simulate_amplitudes(tmp_path / "exact", "g g > g g", 200, **kw) as a:
        exact = a.metadata["unweighting"], a.state
    with simulate_amplitudes(tmp_path / "q", "g g > g g", 200, wmax_quantile=0.999, **kw) as b:
        fast = b.metadata["unweighting"], b.state
        assert b.metadata["config"]["wmax_quantile"] == 0.999
    assert fast[0]["w_max"] < exact[0]["w_max"]
    assert fast[0]["expected_efficiency"] > 1.5 * exact[0]["expected_efficiency"]
    assert fast[1]["efficiency"] > 1.5 * exact[1]["efficiency"]
    assert 0 < fast[0]["overweight_fraction"] <= 0.0011 and exact[0]["overweight_fraction"] == 0
    assert 0 < fast[0]["sigma_share_above_wmax"] < 0.2 and exact[0]["sigma_share_above_wmax"] == 0
    with pytest.raises(ValueError, match="wmax_quantile"):
        simulate_amplitudes(tmp_path / "x", "g g > g g", 10, wmax_quantile=0.1, **kw)


def test_fixed_store_dimension_and_bad_options(tmp_path):
    with simulate_amplitudes(tmp_path / "f", "g g > g g g", 20, 1000.0, cuts=Cuts(min_pt=20.0), quiet=True) as st:
        assert st.metadata["sampling"] == "fixed" and st.metadata["phase_space_dimension"] == 4
    # records of stores written before the sampling was recorded read as fixed sqrt(s) (report.record_dimension)
    from scalinglab.report.amplitudes import record_dimension

    assert record_dimension({"n_f": 3}) == 4
    with pytest.raises(ValueError, match="exactly one"):
        simulate_amplitudes(tmp_path / "x", "g g > g g", 10, 100.0, collider_energy=13000.0)
    with pytest.raises(ValueError, match="not a parton"):
        simulate_amplitudes(tmp_path / "x", "e+ e- > mu+ mu-", 10, collider_energy=13000.0)
    with pytest.raises(ValueError, match="needs a cut"):
        simulate_amplitudes(tmp_path / "x", "g g > g g", 10, collider_energy=13000.0)
    with pytest.raises(ValueError, match="above the collider energy"):
        simulate_amplitudes(tmp_path / "x", "q q~ > Z g", 10, collider_energy=80.0)
    assert not (tmp_path / "x").exists()
    with DatasetStore.open(tmp_path / "f") as st:
        assert st.num_samples == 20

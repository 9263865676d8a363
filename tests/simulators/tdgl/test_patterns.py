"""Qualitative behaviour of the default TDGL convention (paper 4 Sec. II B, IV A, Fig. 3, Table III) and the
measures it is judged by (chord length, saturated fraction, loop crossings)."""

import numpy as np
import pytest

from scalinglab.simulators.tdgl import (
    DEFAULT_K0,
    TDGLConfig,
    TDGLSimulator,
    chord_length,
    coercive_field,
    field,
    loop_crossings,
    saturated_fraction,
)


def test_chord_length_of_stripes_is_half_the_period():
    x = np.arange(64)
    for period in (4, 8, 16):
        stripes = np.where((x // (period // 2)) % 2 == 0, 1, -1)[None, :].repeat(64, axis=0)
        # Rows: runs of period / 2; columns: no change. Mean over both axes counts changes of both.
        assert chord_length(stripes) == pytest.approx(period)  # 2 * area / (changes along x only)
        checker = stripes * stripes.T
        assert chord_length(checker) == pytest.approx(period / 2)
    assert chord_length(np.ones((8, 8))) == np.inf


def test_saturated_fraction_and_loop_crossings_on_a_synthetic_loop():
    assert saturated_fraction(np.array([0.95, -0.99, 0.5, -0.2])) == 0.5
    T, rec = 10.0, 0.5
    t = np.arange(0, 5 * T + rec / 2, rec)
    h = field(t, 0.3, T)
    # A square loop with coercive field 0.1: m = +1 until h < -0.1 on the way down, -1 until h > 0.1 going up.
    m = np.where(t < T, 1.0, np.where(t <= 3 * T, np.where(h > -0.1, 1.0, -1.0), np.where(h < 0.1, -1.0, 1.0)))
    down, up = loop_crossings(h, m, T, rec)
    assert len(down) == 1 and len(up) == 1
    assert down[0] == pytest.approx(-0.1, abs=0.02) and up[0] == pytest.approx(0.1, abs=0.02)
    assert coercive_field(h, m, T, rec) == pytest.approx(0.1, abs=0.02)
    assert np.isnan(coercive_field(h[: int(3 * T / rec)], m[: int(3 * T / rec)], T, rec))


def _run(pairs, k0=DEFAULT_K0, size=96, ramp_time=200.0, seed=1):
    cfg = TDGLConfig(size=(size, size), ramp_time=ramp_time, k0=k0, record_every=20, check_every=500)
    D = np.array([p[0] for p in pairs])
    J = np.array([p[1] for p in pairs])
    return cfg, TDGLSimulator(cfg).run(D, J, seeds=[seed] * len(pairs))


@pytest.fixture(scope="module")
def default_runs(one_torch_thread_for_module):
    # 96 x 96 (the default's domains reach ~60 px at J = 1, D = 0.1: a 64 x 64 cell caps them), a 500x faster ramp
    # than the paper's (T = 200): ~12 s on one core. Values quoted in the tests below were measured with seeds
    # 1 and 2 (2026-12-01).
    pairs = [(0.1, 2.0), (1.0, 2.0), (2.0, 2.0), (0.1, 1.3), (0.1, 1.0), (0.1, 0.6)]
    cfg, res = _run(pairs)
    return dict(zip(pairs, range(len(pairs)))), cfg, res


def test_domains_saturate_and_the_loop_has_hysteresis_at_J2(default_runs):
    # Paper 4: m_z tends to +-1 at the pattern; Fig. 2: a closed loop. At J = 2, D = 0.1 the "lattice" convention
    # gives median |m| ~ 0 and a linear, hysteresis-free loop; "absorbed_x2.5" |m| > 0.9 on about half the pixels.
    idx, cfg, res = default_runs
    i = idx[(0.1, 2.0)]
    assert res.captured[i] and not res.diverged[i]
    cap = res.capture_m[i]
    # Measured: median |m| 0.991 / 0.987, |m| > 0.9 on 0.75 / 0.73 of the pixels (the rest are domain walls),
    # |m| > 0.5 on 0.91 / 0.91.
    assert np.median(np.abs(cap)) > 0.95
    assert saturated_fraction(cap, 0.9) > 0.6
    assert saturated_fraction(cap, 0.5) > 0.85
    rec = cfg.dt * cfg.record_every
    # Coercive field 0.024 / 0.025 for the clean film (a sheared loop with little pinning), 0.101 / 0.091 at D = 1.
    assert coercive_field(res.loop_h, res.loop_m[i], cfg.ramp_time, rec) > 0.01
    assert coercive_field(res.loop_h, res.loop_m[idx[(1.0, 2.0)]], cfg.ramp_time, rec) > 0.05


def test_lattice_convention_has_no_domains_at_J2(one_torch_thread):
    # The contrast the absorbed conventions are chosen for: with the local part kept, m = 0 is linearly stable at
    # J = 2.
    cfg, res = _run([(0.1, 2.0)], k0="lattice", size=32, ramp_time=100.0)
    assert res.captured[0]
    assert saturated_fraction(res.capture_m[0], 0.9) < 0.05
    assert coercive_field(res.loop_h, res.loop_m[0], cfg.ramp_time, cfg.dt * cfg.record_every) < 0.01


def test_domains_get_finer_with_J_and_with_D(default_runs):
    # Paper 4 Sec. IV A / Fig. 3: "the magnetic domains tend to become finer as D and J increase"; the
    # labyrinth at small D and J ~ 2 breaks into smaller disordered islands as D grows.
    idx, cfg, res = default_runs
    chord = {k: chord_length(res.patterns[i]) for k, i in idx.items() if res.captured[i]}
    # Measured 56.2 > 37.0 > 28.1 px for J = 1.0, 1.3, 2.0 at D = 0.1 (seed 2: 49.0 > 29.1 > 25.7).
    assert chord[(0.1, 1.0)] > chord[(0.1, 1.3)] > chord[(0.1, 2.0)]
    assert chord[(0.1, 1.0)] > 1.5 * chord[(0.1, 2.0)]
    # Measured 28.1 > 20.9 > 13.0 px for D = 0.1, 1, 2 at J = 2 (seed 2: 25.7, 19.1, 13.4).
    assert chord[(0.1, 2.0)] > chord[(1.0, 2.0)] > chord[(2.0, 2.0)]
    assert chord[(0.1, 2.0)] > 1.5 * chord[(2.0, 2.0)]


def test_weak_dipolar_clean_film_never_reverses(default_runs):
    # Table III excludes small D at small J. With the default the clean film at J = 0.6 saturates at h = +H = 0.3,
    # and a saturated film with A0 (1 + D eta) > H everywhere cannot nucleate the reversal.
    idx, cfg, res = default_runs
    i = idx[(0.1, 0.6)]
    assert not res.captured[i] and not res.diverged[i]
    assert res.final_m[i].min() > 0.99


@pytest.mark.slow
def test_clean_film_keeps_reversed_domains_at_plus_H_from_J_1_2(one_torch_thread):
    # Table III keeps every D from J = 1.3 on (and D >= 0.5 at J = 1.2). At the paper's slow ramp the state at
    # h = +H is quasi-static: ramp to +H in t = 400, hold to t = 4400 (128 x 128, ~60 s). Reversed domains must
    # survive from J = 1.2 on (measured mean m 0.815 at J = 1.2, 0.787 at J = 1.3), so the loop can close without
    # nucleation; J = 1.0 saturates (1.000).
    cfg = TDGLConfig(size=(128, 128), ramp_time=400.0, record_every=4000, check_every=1000)
    res = TDGLSimulator(cfg).run(np.array([0.1, 0.1, 0.1]), np.array([1.0, 1.2, 1.3]), seeds=[1, 1, 1],
                                 field_fn=lambda t: 0.3 * min(t / 400.0, 1.0), num_steps=44000)
    mean_m = res.final_m.mean(axis=(1, 2))
    assert mean_m[0] > 0.98
    assert mean_m[1] < 0.9 and mean_m[2] < 0.9


def test_every_capture_is_on_the_ascending_branch(default_runs):
    # Paper 4 Fig. 2: the second zero is on the ascending branch. Counting only crossings that follow the field
    # keeps a mean jittering around zero on the descending branch from being taken for it (seen at 128^2,
    # J = 2, D = 1.9 before the rule: captured at t = 2.5 T).
    idx, cfg, res = default_runs
    T = cfg.ramp_time
    cap = res.captured
    assert cap.sum() >= 4
    assert np.all((res.capture_time[cap] > 3 * T) & (res.capture_time[cap] < 5 * T))

"""Amplitude surrogates: MLP-I (log-invariant features, muP, heteroscedastic head) and LLoCa-Transformer."""

import numpy as np
import pytest
import torch

from scalinglab.models._registry import MODELS
from scalinglab.models.lloca_transformer import lloca_transformer  # noqa: F401  (registers)
from scalinglab.models.mlp_invariants import (
    log_invariants,
    mlp_invariants,
    mlp_invariants_param_count,
    mlp_invariants_shape,
    mup_param_groups,
)
from scalinglab.simulators.amplitudes import Cuts, generate_events
from scalinglab.simulators.amplitudes.kinematics import apply_lorentz, invariant_features, random_lorentz


def momenta(num, n_final=3, seed=0):
    return generate_events(num, 1000.0, [0.0] * n_final, seed=seed, cuts=Cuts(min_invariant=100.0)).momenta


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_log_invariants_feature_transform():
    p = momenta(16)
    z = log_invariants(p)
    np.testing.assert_allclose(z, np.log(invariant_features(p)), rtol=1e-12)
    zt = log_invariants(torch.as_tensor(p.reshape(16, -1)))
    assert zt.dtype == torch.float64 and zt.shape == (16, 10)
    bad = p.copy()
    bad[:, 2, 0] *= -1
    with pytest.raises(ValueError, match="p_i.p_j < 0"):
        log_invariants(bad)


def test_mlp_invariants_shapes_heteroscedastic_and_counts():
    m = MODELS.get("mlp_invariants", in_features=10, width=32, num_layers=3)
    assert m(torch.zeros(5, 10)).shape == (5, 1)
    assert count(m) == mlp_invariants_param_count(10, 32, 3)
    h = MODELS.get("mlp_invariants", num_particles=5, width=16, num_layers=2, heteroscedastic=True)
    assert h.input_shape == (20,) and h.out_features == 2
    assert h(torch.as_tensor(momenta(4).reshape(4, -1), dtype=torch.float32)).shape == (4, 2)
    width, layers = mlp_invariants_shape(100_000, 10, width_per_layer=32)
    assert abs(np.log(mlp_invariants_param_count(10, width, layers) / 100_000)) < 0.3
    with pytest.raises(ValueError, match="in_features"):
        mlp_invariants()
    with pytest.raises(ValueError, match="wrong|expects|features"):
        m(torch.zeros(5, 11))


def test_mlp_momenta_input_is_lorentz_invariant():
    torch.manual_seed(0)
    p = momenta(64)
    m = mlp_invariants(num_particles=5, width=32, num_layers=2).double()
    m.fit_input_standardization(p.reshape(64, -1))
    lam = random_lorentz(64, np.random.default_rng(1))
    a = m(torch.as_tensor(p.reshape(64, -1)))
    b = m(torch.as_tensor(apply_lorentz(lam, p).reshape(64, -1)))
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    z = m.features(torch.as_tensor(p.reshape(64, -1)))
    assert torch.allclose(z.mean(0), torch.zeros(10, dtype=z.dtype), atol=1e-9)


def test_mup_initialisation_and_learning_rates():
    torch.manual_seed(0)
    n = 512
    m = mlp_invariants(in_features=10, width=n, num_layers=3, base_width=1)  # Eq. 21 literally
    assert m.head.weight.std().item() == pytest.approx(1 / n, rel=0.1)  # Eq. 19: N(0, 1/n^2)
    assert m.hidden[2].weight.std().item() == pytest.approx(1 / np.sqrt(n), rel=0.05)
    assert m.hidden[0].weight.std().item() == pytest.approx(1 / np.sqrt(10), rel=0.1)
    assert m.lr_multipliers["hidden.2.weight"] == 1 / n and m.lr_multipliers["head.weight"] == 1 / n
    assert m.lr_multipliers["hidden.0.weight"] == 1 and m.lr_multipliers["head.bias"] == 1
    groups = mup_param_groups(m, 1e-3)
    assert sorted(g["lr"] for g in groups) == pytest.approx([1e-3 / n, 1e-3])
    sp = mlp_invariants(in_features=10, width=n, num_layers=3, mup=False)
    assert set(sp.lr_multipliers.values()) == {1.0}
    # default base width 64: multiplier 1 at width 64, 64 / n elsewhere (the same eta transfers)
    assert mlp_invariants(in_features=10, width=64).lr_multipliers["hidden.2.weight"] == 1.0
    assert mlp_invariants(in_features=10, width=n).lr_multipliers["head.weight"] == 64 / n


def test_target_params_scales_width_and_depth_together():
    sizes = {}
    for target in (1e4, 1e5, 1e6):
        m = mlp_invariants(in_features=10, target_params=target)
        n = count(m)
        assert abs(np.log(n / target)) < 0.75  # integer depth at a fixed ratio: within a factor 2
        widths = [mod.out_features for mod in m.hidden if isinstance(mod, torch.nn.Linear)]
        sizes[target] = (widths[0], len(widths))
        assert widths[0] == pytest.approx(32 * len(widths), rel=0.1)  # width / depth fixed at 32
    # both grow: deeper and wider networks for more parameters
    assert sizes[1e4][0] < sizes[1e5][0] < sizes[1e6][0] and sizes[1e4][1] < sizes[1e6][1]
    with pytest.raises(ValueError, match="width_per_layer"):
        mlp_invariants(in_features=10, target_params=1000, width_per_layer=0)


def _first_step_change(width, mup):
    torch.manual_seed(1)
    x = torch.randn(256, 10)
    y = torch.sin(x[:, :1]) + x[:, 1:2] ** 2
    m = mlp_invariants(in_features=10, width=width, num_layers=3, mup=mup)
    opt = torch.optim.Adam(mup_param_groups(m, 1e-2))
    f0 = m(x).detach()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
    return (m(x).detach() - f0).abs().mean().item()


def test_mup_makes_the_function_update_width_independent():
    # muP (Eqs. 19, 21): the change of the output after a few Adam steps at fixed eta hardly depends on width;
    # in the standard parametrisation it grows roughly linearly with width
    mup_ratio = _first_step_change(1024, True) / _first_step_change(64, True)
    sp_ratio = _first_step_change(1024, False) / _first_step_change(64, False)
    assert 0.4 < mup_ratio < 2.5
    assert sp_ratio > 4


def test_lloca_transformer_is_lorentz_invariant_and_permutation_equivariant():
    torch.manual_seed(0)
    p = momenta(16)
    m = MODELS.get("lloca_transformer", particle_types=[0, 0, 1, 1, 1], hidden_channels=16, num_blocks=2,
                   num_heads=2, attn_reps="4x0n+1x1n", frames_hidden=16, heteroscedastic=True)
    m.eval()
    x = torch.as_tensor(p.reshape(16, -1), dtype=torch.float32)
    m.fit_input_standardization(x)
    out = m(x)
    assert out.shape == (16, 2)
    lam = random_lorentz(16, np.random.default_rng(3), max_rapidity=1.0)
    xb = torch.as_tensor(apply_lorentz(lam, p).reshape(16, -1), dtype=torch.float32)
    torch.testing.assert_close(m(xb), out, rtol=1e-3, atol=1e-4)  # float32 tolerance
    # same-type particles are exchangeable: swapping two outgoing gluons leaves the output unchanged
    xs = torch.as_tensor(p[:, [0, 1, 3, 2, 4]].reshape(16, -1), dtype=torch.float32)
    torch.testing.assert_close(m(xs), out, rtol=1e-3, atol=1e-4)
    # and the invariance is not trivial: a different event gives a different output
    assert (m(torch.as_tensor(momenta(16, seed=9).reshape(16, -1), dtype=torch.float32)) - out).abs().max() > 1e-3
    # float64: invariance to rounding
    m64 = m.double()
    x64 = torch.as_tensor(p.reshape(16, -1))
    ref64 = m64(x64)
    torch.testing.assert_close(m64(torch.as_tensor(apply_lorentz(lam, p).reshape(16, -1))), ref64, rtol=1e-9,
                               atol=1e-9)
    torch.testing.assert_close(m64(torch.as_tensor(p[:, [0, 1, 3, 2, 4]].reshape(16, -1))), ref64, rtol=1e-9,
                               atol=1e-9)


def test_lloca_bad_config():
    with pytest.raises(ValueError, match="particle_types"):
        lloca_transformer(particle_types=[0])
    with pytest.raises(ValueError, match="num_types"):
        lloca_transformer(particle_types=[0, 3], num_types=2)

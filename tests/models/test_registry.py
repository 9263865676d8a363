"""Registry-wide tests: every model builds, runs forward and backward, is deterministic under a seed,
and rejects bad names, bad config keys and wrong input shapes with one-line errors."""

from __future__ import annotations

import math

import pytest
import torch

from scalinglab.models import count_parameters, get_model, list_models
from scalinglab.registry import UnknownConfigKeyError, UnknownNameError

# Tiny configurations and inputs, per model. A model registered without an entry here is tested with its
# defaults and an input built from its ``input_shape`` attribute (free sizes -> 32).
TINY: dict[str, tuple[dict, tuple[int, ...]]] = {
    "fcn": ({"in_features": 12, "num_layers": 2, "width": 8, "out_features": 2}, (3, 3, 4)),
    "two_branch_fcn": ({"image_size": (6, 5), "branch_widths": (8, 4), "trunk_widths": (6, 4)}, (3, 2, 6, 5)),
    "generator_fcn": ({"hidden_widths": (8, 16), "out_shape": (2, 5, 4)}, (3, 3)),
    "resnet18": ({"in_channels": 2, "out_features": 1}, (2, 2, 32, 32)),
    "vit": (
        {"image_size": (20, 10), "patch_size": 5, "embed_dim": 16, "depth": 2, "num_heads": 2, "mlp_dim": 32},
        (3, 2, 20, 10),
    ),
    "cnn_small": ({"in_channels": 1, "out_features": 2}, (3, 1, 16, 16)),
    "mnasnet1_0": ({"in_channels": 2, "out_features": 2}, (2, 2, 32, 32)),
    "mobilenet_v3_large": ({"in_channels": 1, "out_features": 3}, (2, 1, 32, 32)),
    "efficientnet_b3": ({"in_channels": 2, "out_features": 2}, (2, 2, 32, 32)),
    "resnext50_32x4d": ({"in_channels": 1, "out_features": 2}, (2, 1, 32, 32)),
    "regnet_x_16gf": ({"in_channels": 1, "out_features": 2}, (2, 1, 32, 32)),
    # Paper 3's amplitude surrogates (their own tests live in test_amplitude_models.py).
    "mlp_invariants": ({"in_features": 10, "width": 8, "num_layers": 2}, (3, 10)),
    "lloca_transformer": (
        {"particle_types": (0, 0, 1, 1), "hidden_channels": 8, "num_blocks": 1, "num_heads": 2,
         "frames_hidden": 8, "frames_layers": 1},
        (3, 16),
    ),
}


def _momenta(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """On-shell four-momenta [B, 4n] (E, px, py, pz; mass 1): random normals would be spacelike."""
    p = torch.randn(shape[0], shape[1] // 4, 3, generator=generator)
    energy = (p.square().sum(-1, keepdim=True) + 1.0).sqrt()
    return torch.cat([energy, p], dim=-1).reshape(shape)


# Models whose inputs must be physical rather than standard normal.
INPUT_MAKERS = {"lloca_transformer": _momenta}
# The three biggest backbones (11-52 M parameters) are marked slow (run them with ``-m slow``); the default
# run keeps mnasnet1_0 and mobilenet_v3_large.
SLOW = {"efficientnet_b3", "resnext50_32x4d", "regnet_x_16gf"}


# Tiny tensors: one intra-op thread avoids OpenMP barrier spinning, which made these tests 20-50x slower on a
# shared, loaded 2-core machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _case(name: str):
    marks = [pytest.mark.slow] if name in SLOW else []
    return pytest.param(name, marks=marks, id=name)


def _tiny(name: str) -> tuple[dict, tuple[int, ...]]:
    if name in TINY:
        return TINY[name]
    model = get_model(name)
    shape = getattr(model, "input_shape", None)
    if shape is None:
        pytest.fail(f"model {name!r} has neither a TINY entry in {__file__} nor an input_shape attribute")
    return {}, (2, *(32 if s is None else s for s in shape))


def _out_shape(model: torch.nn.Module, batch: int) -> tuple[int, ...]:
    return (batch, model.out_features)  # the registry contract: [B, out_features]


def _build_and_run(name: str, seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    config, in_shape = _tiny(name)
    torch.manual_seed(seed)
    model = get_model(name, **config)
    make = INPUT_MAKERS.get(name, lambda shape, generator: torch.randn(shape, generator=generator))
    x = make(in_shape, torch.Generator().manual_seed(seed + 1))
    return model, x, model(x)


@pytest.mark.parametrize("name", [_case(n) for n in list_models()])
def test_build_forward_backward_deterministic(name: str) -> None:
    model, x, y = _build_and_run(name, seed=3)
    assert y.shape == _out_shape(model, x.shape[0])
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), f"{name}: some parameters got no gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0.0

    # Same seed, same weights and outputs; another seed, other weights.
    model2, _, y2 = _build_and_run(name, seed=3)
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        if a.is_floating_point():
            assert torch.equal(a, b), f"{name}: {k} differs under the same seed"
    torch.testing.assert_close(y, y2, rtol=0, atol=0)
    _, _, y3 = _build_and_run(name, seed=4)
    assert not torch.allclose(y, y3)


@pytest.mark.parametrize("name", ["cnn_small", "resnet18", "mnasnet1_0"])
def test_batch_norm_models_train_and_eval(name: str) -> None:
    model, x, _ = _build_and_run(name, seed=0)
    model.train()
    y_train = model(x)
    model.eval()
    with torch.no_grad():
        y_eval = model(x)
        y_eval_single = model(x[:1])  # eval mode must work with a batch of one
    assert y_eval.shape == y_train.shape
    torch.testing.assert_close(y_eval_single, y_eval[:1], rtol=1e-4, atol=1e-5)
    # Eval uses running statistics, train uses batch statistics: the outputs differ.
    assert not torch.allclose(y_train.detach(), y_eval)


def test_list_models_contains_the_zoo() -> None:
    expected = {
        "fcn", "two_branch_fcn", "generator_fcn", "resnet18", "vit", "cnn_small",
        "regnet_x_16gf", "mobilenet_v3_large", "efficientnet_b3", "mnasnet1_0", "resnext50_32x4d",
    }
    names = list_models()
    assert expected <= set(names)
    assert names == sorted(names)


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown model 'fnc' \(known: .*fcn") as info:
        get_model("fnc")
    assert "\n" not in str(info.value)


def test_unknown_config_key() -> None:
    with pytest.raises(UnknownConfigKeyError, match="does not accept config key.*widht") as info:
        get_model("fcn", widht=16)
    assert "\n" not in str(info.value)
    with pytest.raises(UnknownConfigKeyError, match="hidden"):
        get_model("vit", hidden=16)
    with pytest.raises(UnknownConfigKeyError, match="weights"):
        get_model("mnasnet1_0", weights="IMAGENET1K_V1")


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("fcn", {"activation": "tanh"}),
        ("fcn", {"width": 0}),
        ("fcn", {"num_layers": 2.5}),
        ("vit", {"image_size": 101}),
        ("vit", {"embed_dim": 60, "num_heads": 8}),
        ("vit", {"pool": "max"}),
        ("cnn_small", {"channels": (4, 8), "strides": (1, 2, 1)}),
        ("generator_fcn", {"output_activation": "sigmoid"}),
        ("two_branch_fcn", {"branch_widths": ()}),
    ],
)
def test_bad_config_values(name: str, config: dict) -> None:
    with pytest.raises(ValueError, match=name) as info:
        get_model(name, **config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "config", "bad_shape", "expected"),
    [
        ("fcn", {"in_features": 12}, (2, 13), r"fcn expects input \[B, 12\].*got \[2, 13\]"),
        ("fcn", {"in_features": 12}, (12,), r"got \[12\]"),
        ("two_branch_fcn", TINY["two_branch_fcn"][0], (3, 2, 5, 6), r"input \[B, 2, 6, 5\].*got \[3, 2, 5, 6\]"),
        ("generator_fcn", TINY["generator_fcn"][0], (3, 2), r"generator_fcn expects input \[B, 3\]"),
        ("vit", {}, (2, 2, 100, 90), r"vit expects input \[B, 2, 100, 100\], got \[2, 2, 100, 90\]"),
        ("vit", {}, (2, 1, 100, 100), r"got \[2, 1, 100, 100\]"),
        ("cnn_small", {}, (2, 3, 64, 64), r"cnn_small expects input \[B, 1, \*, \*\], got \[2, 3, 64, 64\]"),
        ("cnn_small", {}, (1, 64, 64), r"got \[1, 64, 64\]"),
        ("resnet18", {}, (2, 3, 32, 32), r"resnet18 expects input \[B, 2, \*, \*\]"),
        ("mnasnet1_0", {"in_channels": 2}, (2, 1, 32, 32), r"mnasnet1_0 expects input \[B, 2, \*, \*\]"),
    ],
)
def test_wrong_input_shape(name: str, config: dict, bad_shape: tuple[int, ...], expected: str) -> None:
    model = get_model(name, **config)
    with pytest.raises(ValueError, match=expected) as info:
        model(torch.zeros(bad_shape))
    assert "\n" not in str(info.value)


def test_integer_input_rejected() -> None:
    model = get_model("fcn", in_features=4)
    with pytest.raises(ValueError, match="floating-point tensor, got dtype torch.int64"):
        model(torch.zeros(2, 4, dtype=torch.int64))


def test_fcn_flattens_any_layout() -> None:
    model = get_model("fcn", in_features=2 * 5 * 5, num_layers=1, width=4)
    x = torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(model(x), model(x.reshape(3, 50)))


def test_two_branch_uses_each_channel_in_its_own_branch() -> None:
    model = get_model("two_branch_fcn", **TINY["two_branch_fcn"][0])
    x = torch.randn(3, 2, 6, 5)
    torch.testing.assert_close(model(x), model(x.reshape(3, 60)))
    # Swapping top and bottom images changes the output: the branches have separate weights.
    assert not torch.allclose(model(x), model(x.flip(1)))
    # Zeroing the bottom branch's first layer makes the output blind to the bottom image.
    with torch.no_grad():
        model.branch_bottom[0].weight.zero_()
    x2 = x.clone()
    x2[:, 1] = torch.randn(3, 6, 5)
    torch.testing.assert_close(model(x), model(x2))


def test_generator_output_shape_and_tanh_bound() -> None:
    model = get_model("generator_fcn", hidden_widths=(4, 8), out_shape=(2, 7, 7), output_activation="tanh")
    assert model.image_shape == (2, 7, 7) and model.out_features == 98
    x = 100 * torch.randn(5, 3)
    y = model(x)
    assert y.shape == (5, 98) and y.abs().max() <= 1.0
    images = model.images(x)
    assert images.shape == (5, 2, 7, 7)
    torch.testing.assert_close(images.reshape(5, -1), y)
    default = get_model("generator_fcn", hidden_widths=(4, 8))
    assert default.image_shape == (2, 197, 197) and default.out_features == 77618  # paper 2


def test_vit_side_by_side_token_layout() -> None:
    """With side_by_side each 10 x 10 token sees one image; paper 1: 200 tokens for a 100 x 100 pair."""
    assert get_model("vit").num_tokens == 200
    assert get_model("vit", side_by_side=False).num_tokens == 100
    model = get_model("vit", **TINY["vit"][0])
    assert model.num_tokens == (20 // 5) * (2 * 10 // 5)
    x = torch.randn(2, 2, 20, 10)
    side = x.permute(0, 2, 1, 3).reshape(2, 1, 20, 20)
    torch.testing.assert_close(side[..., :10], x[:, :1])
    torch.testing.assert_close(side[..., 10:], x[:, 1:])
    # The patch embedding of the side-by-side image equals the module's tokens (before the class token).
    tokens = model.patch_embed(side).flatten(2).transpose(1, 2)
    assert tokens.shape == (2, model.num_tokens, 16)


def test_vit_mean_pool_and_dropout_modes() -> None:
    config = dict(TINY["vit"][0], pool="mean", dropout=0.1)
    model = get_model("vit", **config)
    assert model.cls_token is None
    x = torch.randn(3, 2, 20, 10)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))  # no dropout in eval mode
    assert math.isfinite(float(model.train()(x).detach().sum()))


def test_count_parameters_trainable_only() -> None:
    model = get_model("fcn", in_features=10, num_layers=1, width=3)
    total = count_parameters(model)
    model.net[0].weight.requires_grad_(False)
    assert count_parameters(model) == total - 30
    assert count_parameters(model, trainable_only=False) == total


@pytest.mark.gpu
@pytest.mark.parametrize("name", [n for n in list_models() if n in TINY])
def test_cuda_matches_cpu(name: str) -> None:
    model, x, _ = _build_and_run(name, seed=5)
    model.eval()
    with torch.no_grad():
        y_cpu = model(x)
    model_gpu = model.to("cuda")
    # cuDNN would use TF32 convolutions by default; compare in full float32.
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        y_gpu = model_gpu(x.to("cuda")).cpu()
    torch.testing.assert_close(y_gpu, y_cpu, rtol=1e-3, atol=1e-4)
    model_gpu.train()
    model_gpu(x.to("cuda")).square().mean().backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in model_gpu.parameters() if p.requires_grad)

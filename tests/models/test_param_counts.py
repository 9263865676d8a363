"""Parameter counts against the papers' formulas and stated numbers."""

from __future__ import annotations

import pytest

from scalinglab.models import count_parameters, get_model
from scalinglab.models.cnn_small import cnn_small_param_count
from scalinglab.models.fcn import fcn_param_count
from scalinglab.models.vit import vit_param_count

# Tiny tensors: one intra-op thread avoids OpenMP barrier spinning, which made these tests 20-50x slower on a
# shared, loaded 2-core machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def paper1_n_m(n_i: int, n_l: int, n_n: int) -> int:
    """Paper 1, Methods: N_M = n_n [n_i + (n_l - 1) n_n + 1 + n_l] + 1 (one output)."""
    return n_n * (n_i + (n_l - 1) * n_n + 1 + n_l) + 1


@pytest.mark.parametrize("num_layers", [1, 2, 3, 5])
@pytest.mark.parametrize("width", [4, 16, 64, 129])
def test_fcn_matches_paper1_formula(num_layers: int, width: int) -> None:
    n_i = 300  # the formula holds for any n_i; paper 1's 20,000 is checked below
    model = get_model("fcn", in_features=n_i, num_layers=num_layers, width=width, activation="relu")
    assert count_parameters(model) == paper1_n_m(n_i, num_layers, width)
    assert fcn_param_count(n_i, num_layers, width) == paper1_n_m(n_i, num_layers, width)


def test_fcn_paper1_sizes() -> None:
    # n_l = 3, n_i = 20,000: n_n = 16 gives "approximately 3.2e5 parameters" (paper 1, Results).
    assert count_parameters(get_model("fcn", in_features=20000, num_layers=3, width=16)) == 320577
    # Paper 1, Fig. 5: N_M from about 8e4 (n_n = 4) to about 1e7 (n_n = 512).
    assert 7.5e4 < paper1_n_m(20000, 3, 4) < 8.5e4
    assert 0.9e7 < count_parameters(get_model("fcn", in_features=20000, num_layers=3, width=512)) < 1.1e7


def test_fcn_extra_outputs_and_prelu() -> None:
    base = paper1_n_m(50, 3, 8)
    assert count_parameters(get_model("fcn", in_features=50, num_layers=3, width=8, out_features=3)) == base + 2 * 9
    assert fcn_param_count(50, 3, 8, out_features=3) == base + 2 * 9
    # nn.PReLU() holds one learnable slope per hidden layer.
    assert count_parameters(get_model("fcn", in_features=50, num_layers=3, width=8, activation="prelu")) == base + 3


def test_resnet18_matches_paper1() -> None:
    """Paper 1, Methods: 2 input channels and 1 output give 11,173,889 (11,689,512 for the original)."""
    assert count_parameters(get_model("resnet18", in_channels=2, out_features=1)) == 11_173_889
    assert count_parameters(get_model("resnet18", in_channels=3, out_features=1000)) == 11_689_512


def test_vit_count() -> None:
    """Our standard ViT layout: 219,521 for paper 1's configuration (paper 1 states 225,601; see vit.py)."""
    model = get_model("vit")
    assert count_parameters(model) == vit_param_count() == 219_521
    # Hand count of the default: conv patch embedding 1*10*10*64 + 64, class token 64, positions 201*64,
    # 4 blocks of (2 LayerNorms 256, qkv 12,480, proj 4,160, MLP 16,640 + 16,448), final norm 128, head 65.
    assert 6464 + 64 + 201 * 64 + 4 * (256 + 12480 + 4160 + 16640 + 16448) + 128 + 65 == 219_521
    # The gap to the paper is exactly 95 token-sized vectors of 64 values.
    assert 225_601 - 219_521 == 95 * 64
    for config in [
        {"side_by_side": False},
        {"pool": "mean"},
        {"embed_dim": 32, "num_heads": 4, "depth": 2, "mlp_dim": 64, "out_features": 3},
        {"image_size": (40, 60), "patch_size": 20, "in_channels": 3},
    ]:
        assert count_parameters(get_model("vit", **config)) == vit_param_count(**config), config


def test_cnn_small_about_16k() -> None:
    """Paper 4, Table I: Model0-6 has about 16,000 parameters, 7 conv layers, at most 36 channels."""
    model = get_model("cnn_small", in_channels=1, out_features=2)
    n = count_parameters(model)
    assert n == cnn_small_param_count(1, (4, 8, 8, 16, 16, 24, 36), 2) == 15_886
    assert abs(n - 16_000) / 16_000 < 0.05
    convs = [m for m in model.modules() if m.__class__.__name__ == "Conv2d"]
    assert len(convs) == 7 and max(c.out_channels for c in convs) <= 36


def test_two_branch_paper2_layout() -> None:
    """Paper 2, Appendix B: 2 x (100*100 -> 1024 -> 512), concat 1024 -> 512 -> 512 -> 1."""
    n = count_parameters(get_model("two_branch_fcn"))
    branch = (10000 * 1024 + 1024) + (1024 * 512 + 512)
    trunk = (1024 * 512 + 512) + (512 * 512 + 512) + (512 + 1)
    assert n == 2 * branch + trunk == 22_319_617

"""Pretrained weights for the torchvision backbones: local files and the torch hub cache, never a download.

The "ImageNet" weights here are state dicts the tests create and save themselves.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest
import torch
import torchvision

from scalinglab.models import get_model
from scalinglab.models.backbones import resolve_pretrained

ARCH = "mnasnet1_0"  # the smallest of paper 4's backbones: keeps these tests fast


# Tiny tensors: one intra-op thread avoids OpenMP barrier spinning, which made these tests 20-50x slower on a
# shared, loaded 2-core machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    """A torchvision-layout (3 channels, 1000 classes) state dict with non-default values."""
    torch.manual_seed(123)
    net = torchvision.models.get_model(ARCH, weights=None)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))  # make sure nothing equals a fresh initialization
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _hub_file(arch: str, name: str) -> str:
    url = torchvision.models.get_model_weights(arch)[name].url
    return os.path.basename(urllib.parse.urlparse(url).path)


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor], in_channels: int) -> None:
    """Every tensor equals the file's, except the adapted first conv (RGB mean) and the new head."""
    got = model.net.state_dict()
    first_conv, head_w, head_b = "layers.0.weight", "classifier.1.weight", "classifier.1.bias"
    expected_conv = state[first_conv].mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1)
    torch.testing.assert_close(got[first_conv], expected_conv, rtol=0, atol=0)
    assert got[head_w].shape == (model.out_features, state[head_w].shape[1])
    assert got[head_b].shape == (model.out_features,)
    for k, v in state.items():
        if k not in (first_conv, head_w, head_b):
            assert torch.equal(got[k], v), k


def test_load_from_path_with_channel_adaptation(tmp_path: Path, imagenet_state: dict) -> None:
    path = tmp_path / "imagenet.pth"
    torch.save(imagenet_state, path)
    model = get_model(ARCH, in_channels=2, out_features=3, pretrained=str(path))
    _assert_loaded(model, imagenet_state, in_channels=2)
    # A gray image copied into both channels sees 2/3 of what the RGB kernels give a gray RGB image:
    # the adaptation rule is the plain mean, W' = mean_c W_c.
    conv = model.net.layers[0]
    gray = torch.randn(1, 1, 16, 16)
    rgb_conv = torch.nn.functional.conv2d(gray.expand(-1, 3, -1, -1), imagenet_state["layers.0.weight"],
                                          stride=conv.stride, padding=conv.padding)
    torch.testing.assert_close(conv(gray.expand(-1, 2, -1, -1)), rgb_conv * 2 / 3, rtol=1e-5, atol=1e-5)
    y = model(torch.randn(2, 2, 32, 32))
    assert y.shape == (2, 3)


def test_path_object_and_three_channels_keep_rgb_kernels(tmp_path: Path, imagenet_state: dict) -> None:
    path = tmp_path / "w.pt"
    torch.save({"model": imagenet_state}, path)  # the torchvision reference-script checkpoint wrapper
    model = get_model(ARCH, in_channels=3, out_features=1, pretrained=path)
    assert torch.equal(model.net.layers[0].weight, imagenet_state["layers.0.weight"])


def test_hub_cache_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    # Saved like torchvision's own files: the module's state_dict (an OrderedDict with version metadata).
    torch.manual_seed(5)
    state = torchvision.models.get_model(ARCH, weights=None).state_dict()
    torch.save(state, tmp_path / "checkpoints" / _hub_file(ARCH, "IMAGENET1K_V1"))
    for name in ("IMAGENET1K_V1", "DEFAULT", "MNASNet1_0_Weights.IMAGENET1K_V1"):
        assert resolve_pretrained(ARCH, name).parent == tmp_path / "checkpoints"
    torch.manual_seed(6)  # a different seed: the weights must come from the file, not the initialization
    model = get_model(ARCH, in_channels=1, out_features=2, pretrained="IMAGENET1K_V1")
    _assert_loaded(model, state, in_channels=1)


def test_hub_cache_missing_file_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    expected = tmp_path / "checkpoints" / _hub_file("regnet_x_16gf", "IMAGENET1K_V2")
    with pytest.raises(FileNotFoundError) as info:
        get_model("regnet_x_16gf", pretrained="IMAGENET1K_V2")
    message = str(info.value)
    assert str(expected) in message and "never downloads" in message and "https://download.pytorch.org" in message
    assert "\n" not in message
    assert not expected.exists()  # nothing was downloaded


def test_missing_path_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_model(ARCH, pretrained=str(tmp_path / "absent.pth"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_model(ARCH, pretrained=tmp_path / "absent")
    with pytest.raises(ValueError, match=r"neither an existing file nor a weights name \(known: IMAGENET1K_V1"):
        get_model(ARCH, pretrained="IMAGENET21K")
    with pytest.raises(ValueError, match="neither"):
        get_model(ARCH, pretrained="ResNet50_Weights.IMAGENET1K_V1")  # weights of another network


def test_wrong_state_dict_is_clear(tmp_path: Path, imagenet_state: dict) -> None:
    bad = dict(imagenet_state)
    bad["classifier.1.weight"] = torch.zeros(10, 1280)
    del bad["layers.0.weight"]
    bad["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError, match=r"1 missing keys.*1 unexpected keys.*1 shape mismatches") as info:
        get_model(ARCH, pretrained=str(path))
    assert "\n" not in str(info.value)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        get_model(ARCH, pretrained=str(tmp_path / "list.pth"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "first_conv", "head"),
    [
        ("regnet_x_16gf", "stem.0", "fc"),
        ("mobilenet_v3_large", "features.0.0", "classifier.3"),
        ("efficientnet_b3", "features.0.0", "classifier.1"),
        ("mnasnet1_0", "layers.0", "classifier.1"),
        ("resnext50_32x4d", "conv1", "fc"),
    ],
)
def test_every_backbone_loads_and_adapts(tmp_path: Path, arch: str, first_conv: str, head: str) -> None:
    torch.manual_seed(7)
    state = torchvision.models.get_model(arch, weights=None).state_dict()
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    torch.manual_seed(8)
    model = get_model(arch, in_channels=2, out_features=2, pretrained=str(path))
    got = model.net.state_dict()
    expected_conv = state[f"{first_conv}.weight"].mean(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert torch.equal(got[f"{first_conv}.weight"], expected_conv)
    assert got[f"{head}.weight"].shape[0] == 2
    for k, v in state.items():
        if not k.startswith((f"{first_conv}.", f"{head}.")):
            assert torch.equal(got[k], v), k
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 2, 32, 32)).shape == (1, 2)

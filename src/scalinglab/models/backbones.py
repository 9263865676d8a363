"""torchvision image backbones of paper 4, adapted to any input channels and number of outputs.

Each builder takes ``in_channels``, ``out_features`` and ``pretrained``:

- ``pretrained=None``: random initialization (torchvision's own).
- ``pretrained=PATH``: a local file holding the torchvision model's ImageNet ``state_dict`` (3 input
  channels, 1000 classes), read with ``torch.load(weights_only=True)``.
- ``pretrained=NAME``: a torchvision weights name such as ``"IMAGENET1K_V2"`` or ``"DEFAULT"`` (also the
  long form ``"RegNet_X_16GF_Weights.IMAGENET1K_V2"``), looked up ONLY in the local torch hub cache,
  ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>``, where torchvision itself caches
  downloads. Nothing is ever downloaded; a missing file raises ``FileNotFoundError`` naming the path
  looked at and the URL to fetch it from on a machine with network access.

Adaptation, after the ImageNet weights are loaded:

- Input channels: if ``in_channels != 3`` the first convolution is rebuilt with ``in_channels`` inputs.
  With pretrained weights its kernel is the mean of the three RGB kernels, copied to every input
  channel, ``W'[:, j] = (W[:, 0] + W[:, 1] + W[:, 2]) / 3`` (the usual recipe for grayscale/multichannel
  inputs; the batch norm that follows every one of these first convolutions absorbs the overall scale
  during fine-tuning). Without pretrained weights it gets torchvision's fan-out Kaiming initialization.
- Head: the last linear layer (the 1000-class classifier) is replaced by a freshly initialized
  ``Linear(in, out_features)``; paper 4 replaces the classifier by two neurons (D, J).

Parameter counts with 1 input channel and 2 outputs (``count_parameters``): regnet_x_16gf 52,233,058,
resnext50_32x4d 22,977,730, efficientnet_b3 10,698,586, mobilenet_v3_large 4,204,306, mnasnet1_0
3,104,298. Paper 4 (Table I) lists 3.92e7 parameters and at most 912 channels for its RegNetX-16GF;
torchvision's regnet_x_16gf, which the paper says it used, has 54.3e6 parameters with its ImageNet head and
up to 2048 channels, so that table entry does not describe this network; we follow the named model.

Reference:
    Detection of non-uniformity in parameters for magnetic domain pattern generation
    (``domain-pattern-nonuniform-parameters.txt``), Sect. II C 1 and Appendix B (RegNetX-16GF,
    MobileNetV3-Large, EfficientNet-B3, MNASNet1.0, ResNeXt-50 32x4d; ImageNet weights from torchvision).
"""

from __future__ import annotations

import collections
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

from scalinglab.models._common import ImageRegressor, check_positive_int
from scalinglab.models._registry import register_model

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def _parent_and_attr(root: nn.Module, qualified_name: str) -> tuple[nn.Module, str]:
    parent_name, _, attr = qualified_name.rpartition(".")
    return (root.get_submodule(parent_name) if parent_name else root), attr


def _first_conv_name(net: nn.Module) -> str:
    return next(name for name, m in net.named_modules() if isinstance(m, nn.Conv2d))


def _last_linear_name(net: nn.Module) -> str:
    return [name for name, m in net.named_modules() if isinstance(m, nn.Linear)][-1]


def resolve_pretrained(arch: str, pretrained: str | os.PathLike) -> Path:
    """Turns ``pretrained`` (a file path or a torchvision weights name) into an existing local file.

    Args:
        arch: torchvision model name, e.g. ``"regnet_x_16gf"``.
        pretrained: path of a state-dict file, or a weights name of ``arch`` (``"IMAGENET1K_V2"``,
            ``"DEFAULT"``, ``"RegNet_X_16GF_Weights.IMAGENET1K_V2"``).

    Returns:
        The file to load.

    Raises:
        FileNotFoundError: the file (or the hub-cache file for a weights name) does not exist.
        ValueError: ``pretrained`` is neither a path nor a weights name of ``arch``.
    """
    text = os.fspath(pretrained)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    looks_like_path = isinstance(pretrained, os.PathLike) or os.sep in text or "/" in text
    if looks_like_path or text.lower().endswith(_WEIGHT_SUFFIXES):
        raise FileNotFoundError(f"{arch}: pretrained weights file {path} does not exist")
    enum = torchvision.models.get_model_weights(arch)
    try:
        weights = torchvision.models.get_weight(text) if "." in text else enum[text]
    except (KeyError, ValueError):
        weights = None
    if weights is None or not isinstance(weights, enum):
        known = ", ".join(enum.__members__)
        raise ValueError(f"{arch}: pretrained={text!r} is neither an existing file nor a weights name (known: {known})")
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not cached.is_file():
        raise FileNotFoundError(
            f"{arch}: weights {weights} are not in the local torch hub cache (looked for {cached}); scalinglab "
            f"never downloads: fetch {weights.url} on a machine with network access and copy it to that path, "
            f"or pass pretrained=PATH"
        )
    return cached


def _load_state_dict(arch: str, path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    # Training-script checkpoints wrap the weights; accept the two common wrappers.
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{arch}: {path} does not hold a state_dict (a mapping of names to tensors)")
    return state


def _check_state_dict(
    arch: str, path: Path, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]
) -> None:
    """One-line ValueError unless ``state`` has exactly the keys and shapes of ``expected``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k} {list(state[k].shape)} vs {list(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{arch}: {path} is not a state_dict of torchvision's {arch} (ImageNet layout): "
            f"{len(missing)} missing keys {missing[:2]}, {len(unexpected)} unexpected keys {unexpected[:2]}, "
            f"{len(mismatched)} shape mismatches {mismatched[:2]}"
        )


def adapt_first_conv(conv: nn.Conv2d, in_channels: int, pretrained: bool) -> nn.Conv2d:
    """A copy of ``conv`` with ``in_channels`` inputs.

    Args:
        conv: the network's first convolution, weight ``[C_out, C_in, k, k]``.
        in_channels: new number of input channels.
        pretrained: if True the new kernel is the mean over the old input channels, repeated for every
            new channel (``[C_out, in_channels, k, k]``) and the bias is kept; if False it is initialized
            afresh (Kaiming normal, fan-out, as torchvision does for these networks).
    """
    if conv.groups != 1:
        raise ValueError(f"cannot adapt a grouped first convolution (groups={conv.groups}) to {in_channels} channels")
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        if pretrained:
            mean_kernel = conv.weight.mean(dim=1, keepdim=True)  # (C_out, 1, k, k)
            new.weight.copy_(mean_kernel.expand(-1, in_channels, -1, -1))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        else:
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
    return new


def build_backbone(
    arch: str,
    in_channels: int,
    out_features: int,
    pretrained: str | os.PathLike | None,
) -> ImageRegressor:
    """A torchvision classification network turned into an ``in_channels -> out_features`` regressor.

    Args:
        arch: torchvision builder name (``torchvision.models.get_model`` key).
        in_channels: input channels.
        out_features: outputs.
        pretrained: None, a state-dict path or a weights name (see the module docstring).

    Returns:
        ``ImageRegressor`` wrapping the adapted network as ``.net``.
    """
    in_channels = check_positive_int(arch, "in_channels", in_channels)
    out_features = check_positive_int(arch, "out_features", out_features)
    state = None
    if pretrained is not None:
        if not isinstance(pretrained, str | os.PathLike) or not os.fspath(pretrained):
            raise ValueError(f"{arch}: pretrained must be a file path or a weights name, got {pretrained!r}")
        # Resolve and read the file first: a missing file fails before a large network is built.
        path = resolve_pretrained(arch, pretrained)
        state = _load_state_dict(arch, path)
    net = torchvision.models.get_model(arch, weights=None)  # ImageNet layout: 3 channels, 1000 classes
    if state is not None:
        expected = net.state_dict()
        _check_state_dict(arch, path, expected, state)
        if getattr(state, "_metadata", None) is None:
            # A plain dict carries no per-module versions; some modules (MNASNet) refuse to load without
            # one. Keys and shapes match exactly, so the current layout's versions are the right ones.
            state = collections.OrderedDict(state)
            state._metadata = expected._metadata  # type: ignore[attr-defined]
        net.load_state_dict(state)
    conv_name = _first_conv_name(net)
    parent, attr = _parent_and_attr(net, conv_name)
    conv = getattr(parent, attr)
    if in_channels != conv.in_channels:
        setattr(parent, attr, adapt_first_conv(conv, in_channels, pretrained=pretrained is not None))
    parent, attr = _parent_and_attr(net, _last_linear_name(net))
    setattr(parent, attr, nn.Linear(getattr(parent, attr).in_features, out_features))
    return ImageRegressor(net, arch, in_channels, out_features)


def _builder(arch: str, doc_name: str) -> Callable[..., ImageRegressor]:
    def builder(
        *, in_channels: int = 1, out_features: int = 2, pretrained: str | os.PathLike | None = None
    ) -> ImageRegressor:
        return build_backbone(arch, in_channels, out_features, pretrained)

    builder.__name__ = arch
    builder.__qualname__ = arch
    builder.__doc__ = f"""torchvision {doc_name} for regression (paper 4, Appendix B).

    input_shape: ``[B, in_channels, H, W]`` (paper 4: ``[B, 1, 64, 64]`` patches); the smallest useful
    size is 32 x 32 (total stride 32); batch norm in train mode needs batches of 2 or more.
    Output ``[B, out_features]``.

    Args:
        in_channels: input channels (pretrained RGB kernels are averaged, see the module docstring).
        out_features: regressed values (paper 4: 2, D and J).
        pretrained: None (random init), a local state-dict file, or a torchvision weights name resolved
            only from the torch hub cache (never downloaded).

    Reference:
        Paper 4 (domain-pattern-nonuniform-parameters), Sect. II C 1 and Appendix B.
    """
    return builder


regnet_x_16gf = register_model()(_builder("regnet_x_16gf", "RegNetX-16GF"))
mobilenet_v3_large = register_model()(_builder("mobilenet_v3_large", "MobileNetV3-Large"))
efficientnet_b3 = register_model()(_builder("efficientnet_b3", "EfficientNet-B3"))
mnasnet1_0 = register_model()(_builder("mnasnet1_0", "MNASNet 1.0"))
resnext50_32x4d = register_model()(_builder("resnext50_32x4d", "ResNeXt-50 32x4d"))

"""MLP-I: a multilayer perceptron on the logarithms of the Lorentz invariants p_i.p_j, with muP.

The input features are ``z_ij = log(p_i . p_j)`` for all pairs i < j of external momenta, standardised
(paper 3, Eq. 9). :func:`log_invariants` is the feature transform: apply it to the momenta of a dataset
([N, 4n], float64 for precision), then standardise per feature with the training split as usual. The network
can also take momenta directly (``num_particles`` set): it then computes the log-invariants itself (in float64)
and standardises them with buffers fitted by :meth:`MLPInvariants.fit_input_standardization`.

Maximal update parametrisation (paper 3, Eqs. 18-21), for hidden width n:

- first layer ``W_1 ~ N(0, 1/d_in)``, hidden layers ``W_l ~ N(0, 1/n)``, output layer ``W_out ~ N(0, 1/n^2)``,
  all biases 0;
- Adam learning rates: ``eta`` for W_1 and every bias, ``eta * base_width / n`` for hidden and output weights
  (``base_width = 1`` is Eq. 21 literally; a larger base width only rescales eta so that a learning rate tuned
  at that width transfers unchanged). The default base width is 64: with Eq. 21 literally, a width-64 network
  trains its hidden layers at eta / 64, so a short run (a quick sweep, the small-compute end of a compute curve)
  sits on a plateau before it drops; with 64 the same eta is the standard-parametrisation rate at width 64.

The per-parameter multipliers are exposed as ``model.lr_multipliers`` ({parameter name: factor}) and as
optimizer parameter groups by :func:`mup_param_groups`; a trainer must scale each group's learning rate by its
multiplier (schedules multiply the base rate). With ``mup=False`` the standard parametrisation (Eq. 18, 20) is
used (torch default init rescaled to the same N(0, 1/fan_in) for W_1 and hidden layers, N(0, 1/n) for W_out).

Depth: ``num_layers`` hidden layers; :func:`mlp_invariants_shape` picks (width, num_layers) for a target
parameter count at a fixed width-to-depth ratio, the paper's way of scaling the network size: the model option
``target_params`` (with ``width_per_layer``) does this inside a sweep (``size_key = "target_params"``).

Reference: Bahl, Breso-Pla, Butter, Iturriza Ramirez, "Scaling laws for amplitude surrogates", Sec. 3.1
(MLP-I, Eq. 9), Sec. 3.2 (muP, Eqs. 17-21; heteroscedastic loss, Eq. 15); G. Yang et al., "Tensor Programs V",
arXiv:2203.03466.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from scalinglab.models._common import ACTIVATIONS, check_features, check_positive_int, make_activation
from scalinglab.models._registry import register_model

_METRIC = (1.0, -1.0, -1.0, -1.0)
_MIN_DOT = 1e-12  # floor (GeV^2) so that exactly collinear massless pairs give a finite logarithm


def num_invariants(num_particles: int) -> int:
    """n(n-1)/2 pairwise invariants for n particles."""
    return num_particles * (num_particles - 1) // 2


def log_invariants(momenta, num_particles: int | None = None):
    """``log(p_i . p_j)`` for all pairs i < j (feature transform of MLP-I, paper 3 Eq. 9).

    Args:
        momenta: [B, n, 4] or [B, 4n] momenta (E, px, py, pz) in GeV, numpy array or torch tensor.
        num_particles: n (needed only for the flat layout when it cannot be inferred: always 4n columns).

    Returns:
        [B, n(n-1)/2] log-invariants in row-major (i, j) order, computed in float64; same array type as the
        input (numpy float64, or a torch float64 tensor on the input's device).

    Raises:
        ValueError: wrong shape or a product p_i.p_j <= 0 beyond rounding (unphysical momenta).
    """
    is_torch = isinstance(momenta, torch.Tensor)
    p = momenta.detach().to(torch.float64) if is_torch else torch.as_tensor(np.asarray(momenta, np.float64))
    if p.ndim == 2:
        if p.shape[1] % 4:
            raise ValueError(f"flat momenta must have 4n columns, got {p.shape[1]}")
        p = p.reshape(p.shape[0], -1, 4)
    if p.ndim != 3 or p.shape[-1] != 4:
        raise ValueError(f"momenta must be [B, n, 4] or [B, 4n], got {tuple(p.shape)}")
    if num_particles is not None and p.shape[1] != num_particles:
        raise ValueError(f"expected {num_particles} particles, got {p.shape[1]}")
    metric = torch.tensor(_METRIC, dtype=p.dtype, device=p.device)
    dots = torch.einsum("bim,bjm->bij", p * metric, p)
    iu, ju = torch.triu_indices(p.shape[1], p.shape[1], offset=1, device=p.device)
    d = dots[:, iu, ju]
    scale = p[..., 0].sum(dim=1, keepdim=True) ** 2  # relative rounding scale of the event
    # Under torch.func transforms (the ensemble trainer's vmap) a data-dependent check cannot run; the data were
    # validated when the dataset was written, and a direct call still checks every batch.
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor(d)
    if not wrapped and bool((d < -1e-9 * scale).any()):
        raise ValueError("momenta give p_i.p_j < 0: not physical positive-energy momenta")
    out = torch.log(d.clamp(min=_MIN_DOT))
    return out if is_torch else out.numpy()


class MLPInvariants(nn.Module):
    """MLP-I: (log-invariants or momenta) -> [width] * num_layers -> out_features, muP-initialised.

    Attributes:
        input_shape: ``(in_features,)`` (number of log-invariants, or 4n for momenta input).
        out_features: 1, or 2 with the heteroscedastic head (mean, raw sigma for ``gaussian_nll``).
        lr_multipliers: {parameter name: learning-rate factor} (all 1 without muP).
    """

    def __init__(self, in_features: int, width: int, num_layers: int, activation: str, out_features: int,
                 mup: bool, base_width: int, num_particles: int | None) -> None:
        super().__init__()
        self.num_particles = num_particles
        self.num_features = in_features
        self.input_shape = (4 * num_particles,) if num_particles else (in_features,)
        self.out_features = out_features
        self.width = width
        self.num_layers = num_layers
        self.mup = mup
        # input standardisation for momenta input (identity until fitted); float64 buffers for precision
        self.register_buffer("feature_mean", torch.zeros(in_features, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(in_features, dtype=torch.float64))
        layers: list[nn.Module] = []
        fan_in = in_features
        for _ in range(num_layers):
            layers += [nn.Linear(fan_in, width), make_activation(activation, "mlp_invariants")]
            fan_in = width
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(fan_in, out_features)
        self.lr_multipliers: dict[str, float] = {}
        self._init(base_width)

    @torch.no_grad()
    def _init(self, base_width: int) -> None:
        linears = [m for m in self.hidden if isinstance(m, nn.Linear)]
        n = self.width
        for lin in linears:
            std = 1.0 / math.sqrt(lin.in_features)  # N(0, 1/d_in) for W_1, N(0, 1/n) for hidden (Eqs. 18-19)
            nn.init.normal_(lin.weight, 0.0, std)
            nn.init.zeros_(lin.bias)
        out_std = 1.0 / n if self.mup else 1.0 / math.sqrt(n)  # muP: N(0, 1/n^2), SP: N(0, 1/n)
        nn.init.normal_(self.head.weight, 0.0, out_std)
        nn.init.zeros_(self.head.bias)
        names = dict(self.named_parameters())
        for name in names:
            self.lr_multipliers[name] = 1.0
        if self.mup:
            hidden_names = [f"hidden.{2 * k}.weight" for k in range(1, len(linears))]
            for name in [*hidden_names, "head.weight"]:
                self.lr_multipliers[name] = base_width / n  # Eq. 21: eta n^-1 (times the base width)

    @torch.no_grad()
    def fit_input_standardization(self, momenta) -> None:
        """Set the per-feature mean/std of the log-invariants from training momenta [N, 4n] (momenta input)."""
        z = log_invariants(momenta if isinstance(momenta, torch.Tensor) else np.asarray(momenta))
        z = torch.as_tensor(z, dtype=torch.float64, device=self.feature_mean.device)
        mean, std = z.mean(dim=0), z.std(dim=0)
        # a constant feature (log p1.p2 = log(s/2) at fixed sqrt_s) must not be divided by its ~0 spread,
        # which would turn rounding noise into O(1) inputs: centre it and leave its scale at 1
        std = torch.where(std > 1e-9 * mean.abs().clamp(min=1.0), std, torch.ones_like(std))
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The standardised network input [B, F] (log-invariants computed here for momenta input)."""
        x = check_features("mlp_invariants", x, self.input_shape[0])
        x = x.reshape(x.shape[0], self.input_shape[0])
        if self.num_particles:
            z = log_invariants(x, self.num_particles)
            return ((z - self.feature_mean) / self.feature_std).to(self.head.weight.dtype)
        return x

    def hidden_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Last-hidden-layer activations [B, width] (for the TwoNN intrinsic dimension, paper 3 App. B)."""
        return self.hidden(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_features] -> [B, out_features]."""
        return self.head(self.hidden_activations(x))


def mup_param_groups(model: nn.Module, lr: float) -> list[dict]:
    """Optimizer parameter groups with ``lr * multiplier`` per the model's ``lr_multipliers`` (muP, Eq. 21).

    Args:
        model: a model with ``lr_multipliers`` (others get one group at ``lr``).
        lr: base learning rate eta.

    Returns:
        list of {"params": [...], "lr": eta * m, "lr_multiplier": m}, one per distinct multiplier.
    """
    mult = getattr(model, "lr_multipliers", {})
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(float(mult.get(name, 1.0)), []).append(p)
    return [{"params": ps, "lr": lr * m, "lr_multiplier": m} for m, ps in sorted(groups.items())]


def mlp_invariants_param_count(in_features: int, width: int, num_layers: int, out_features: int = 1) -> int:
    """Weights plus biases of ``mlp_invariants`` (no learnable activations)."""
    return (in_features + 1) * width + (num_layers - 1) * (width + 1) * width + (width + 1) * out_features


def mlp_invariants_shape(num_params: int, in_features: int, width_per_layer: float = 32.0,
                         out_features: int = 1) -> tuple[int, int]:
    """(width, num_layers) with ``width ~ width_per_layer * num_layers`` whose size is closest to num_params.

    Paper 3 (Sec. 3.2, muP) scales MLP-I "keeping the width to length ratio constant".
    """
    best = None
    for layers in range(1, 65):
        width = max(1, round(width_per_layer * layers))
        count = mlp_invariants_param_count(in_features, width, layers, out_features)
        err = abs(math.log(count / num_params))
        if best is None or err < best[0]:
            best = (err, width, layers)
    return best[1], best[2]


@register_model()
def mlp_invariants(
    *,
    in_features: int | None = None,
    num_particles: int | None = None,
    width: int = 128,
    num_layers: int = 4,
    activation: str = "gelu",
    heteroscedastic: bool = False,
    mup: bool = True,
    base_width: int = 64,
    target_params: int | None = None,
    width_per_layer: float = 32.0,
) -> MLPInvariants:
    """MLP-I of paper 3 with muP.

    input_shape: ``[B, n(n-1)/2]`` log-invariant features (``in_features``), or ``[B, 4n]`` momenta when
    ``num_particles`` is given. output: ``[B, 1]``, or ``[B, 2]`` (mean, raw sigma) when heteroscedastic.

    Args:
        in_features: number of input features (default n(n-1)/2 when ``num_particles`` is given).
        num_particles: n; if set, the model takes momenta [B, 4n] and computes standardised log-invariants.
        width: hidden width n.
        num_layers: hidden layers (>= 1).
        activation: one of gelu, relu, elu, prelu, swish.
        heteroscedastic: two outputs for the Gaussian NLL (paper 3 Eq. 15).
        mup: maximal update parametrisation (Eqs. 19, 21) instead of the standard one (Eqs. 18, 20).
        base_width: width at which the hidden/output learning-rate multiplier is 1 (1 = Eq. 21 literally;
            default 64, see the module docstring).
        target_params: scale width and depth together (paper 3): (width, num_layers) from
            :func:`mlp_invariants_shape` with ``width ~ width_per_layer * num_layers`` and the parameter count
            closest to this; replaces ``width`` and ``num_layers``.
        width_per_layer: the width-to-depth ratio of ``target_params``.
    """
    name = "mlp_invariants"
    if num_particles is not None:
        num_particles = check_positive_int(name, "num_particles", num_particles, minimum=2)
        derived = num_invariants(num_particles)
        if in_features is not None and in_features != derived:
            raise ValueError(f"{name}: in_features {in_features} != n(n-1)/2 = {derived} for {num_particles} particles")
        in_features = derived
    if in_features is None:
        raise ValueError(f"{name}: give in_features (log-invariant features) or num_particles (momenta input)")
    in_features = check_positive_int(name, "in_features", in_features)
    if target_params is not None:
        target_params = check_positive_int(name, "target_params", target_params)  # 1e4 (a float) is accepted
        if not (isinstance(width_per_layer, int | float) and width_per_layer > 0):
            raise ValueError(f"{name}: width_per_layer must be a positive number, got {width_per_layer!r}")
        width, num_layers = mlp_invariants_shape(target_params, in_features, float(width_per_layer),
                                                 2 if heteroscedastic else 1)
    width = check_positive_int(name, "width", width)
    num_layers = check_positive_int(name, "num_layers", num_layers)
    base_width = check_positive_int(name, "base_width", base_width)
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name}: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    return MLPInvariants(in_features, width, num_layers, activation, 2 if heteroscedastic else 1, bool(mup),
                         base_width, num_particles)

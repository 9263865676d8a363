"""LLoCa-Transformer amplitude surrogate (Lorentz-invariant output, permutation-equivariant backbone).

Pipeline (all through the ``lloca`` package, which this module does not re-implement):

1. Frames-Net: ``LearnedPDFrames`` with ``MLPVectors`` predicts, from the four-momenta and the particle-type
   one-hot scalars, a local Lorentz frame ``L_i`` per particle (``L_i -> L_i Lambda^-1`` under a global Lambda).
2. The momenta are moved into their local frames, ``p_i -> L_i p_i`` (paper 3, Eq. 10), which is invariant
   (Eq. 11), divided by a fixed energy scale (a global constant keeps the invariance) and concatenated with the
   particle-type tokens.
3. ``lloca.backbone.transformer.Transformer`` (self-attention with frame-to-frame transformations
   ``L_i L_j^-1`` between particles) processes the tokens; its outputs live in the local frames, i.e. are
   invariant scalars.
4. Mean pooling over particles and a linear head give [B, 1] (or [B, 2]: mean, raw sigma for the
   heteroscedastic loss).

The backbone is used with ``preserve_variance=False``: with the default True it needs a reference momentum
``p_ref`` per event. The edge standardisation of the Frames-Net and the energy scale are fitted from data by
:meth:`LLoCaTransformer.fit_input_standardization` (called automatically on the first batch if not done).

Parametrization: the standard one (the ``lloca`` package's and torch's default initialisation), one learning
rate for every parameter; the model exposes no ``lr_multipliers``, so muP (which paper 3 uses for MLP-I only)
does not apply and a learning rate tuned at one size need not transfer to another. Ensembles of realizations
train one member after the other (the ensemble trainer's ``torch.func.vmap`` probe does not pass for this model
and it falls back to the ``sequential`` path, which records as ``"trainer": "sequential"``).

Reference: Bahl et al., "Scaling laws for amplitude surrogates", Sec. 3.1 (Eqs. 10-12); J. Spinner et al.,
arXiv:2505.20280; L. Favaro et al., arXiv:2508.14898.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from scalinglab.models._common import check_features, check_positive_int
from scalinglab.models._registry import register_model


class LLoCaTransformer(nn.Module):
    """Momenta [B, 4n] -> Lorentz-invariant [B, out_features].

    Attributes:
        input_shape: ``(4 n,)`` momenta (E, px, py, pz) per particle, GeV.
        out_features: 1, or 2 with the heteroscedastic head.
        particle_types: [n] integer type of each particle (token index).
    """

    def __init__(self, particle_types: list[int], num_types: int, hidden_channels: int, num_blocks: int,
                 num_heads: int, attn_reps: str, frames_hidden: int, frames_layers: int, out_features: int,
                 dropout: float | None) -> None:
        super().__init__()
        from lloca.backbone.transformer import Transformer
        from lloca.equivectors.mlp import MLPVectors
        from lloca.framesnet.equi_frames import LearnedPDFrames
        from lloca.reps.tensorreps import TensorReps
        from lloca.reps.tensorreps_transform import TensorRepsTransform

        n = len(particle_types)
        self.num_particles = n
        self.input_shape = (4 * n,)
        self.out_features = out_features
        self.particle_types = list(particle_types)
        self.register_buffer("type_onehot",
                             nn.functional.one_hot(torch.tensor(particle_types), num_types).float())  # [n, T]
        self.register_buffer("energy_scale", torch.tensor(1.0))
        self.register_buffer("standardization_fitted", torch.tensor(False))
        self.frames_net = LearnedPDFrames(
            equivectors=partial(MLPVectors, num_scalars=num_types, hidden_channels=frames_hidden,
                                num_layers_mlp=frames_layers),
        )
        self.to_local = TensorRepsTransform(TensorReps("1x1n"))
        self.backbone = Transformer(
            in_channels=4 + num_types, attn_reps=attn_reps, out_channels=hidden_channels, num_blocks=num_blocks,
            num_heads=num_heads, dropout_prob=dropout, preserve_variance=False,
        )
        self.head = nn.Linear(hidden_channels, out_features)

    def _momenta(self, x: torch.Tensor) -> torch.Tensor:
        x = check_features("lloca_transformer", x, self.input_shape[0])
        return x.reshape(x.shape[0], self.num_particles, 4)

    @torch.no_grad()
    def fit_input_standardization(self, momenta: torch.Tensor) -> None:
        """Fit the Frames-Net edge standardisation and the energy scale (mean particle energy) on momenta."""
        p = self._momenta(torch.as_tensor(momenta, dtype=self.type_onehot.dtype, device=self.type_onehot.device))
        self.energy_scale.fill_(p[..., 0].mean().clamp(min=1e-12))
        eq = self.frames_net.equivectors
        eq.block.edge_inited.fill_(False)
        eq.init_standardization(p / self.energy_scale)
        self.standardization_fitted.fill_(True)

    def hidden_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled invariant features [B, hidden_channels] before the head."""
        p = self._momenta(x)
        if not bool(self.standardization_fitted):
            self.fit_input_standardization(p.detach())
        p = p / self.energy_scale
        scalars = self.type_onehot.expand(p.shape[0], -1, -1)  # [B, n, T]
        frames = self.frames_net(p, scalars=scalars)
        local = self.to_local(p, frames)  # [B, n, 4], invariant
        h = self.backbone(torch.cat([local, scalars], dim=-1), frames)  # [B, n, hidden]
        return h.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 4n] momenta -> [B, out_features]."""
        return self.head(self.hidden_activations(x))


@register_model()
def lloca_transformer(
    *,
    particle_types: list[int] | tuple[int, ...] = (0, 0, 1, 1, 1),
    num_types: int | None = None,
    hidden_channels: int = 64,
    num_blocks: int = 4,
    num_heads: int = 4,
    attn_reps: str = "8x0n+2x1n",
    frames_hidden: int = 64,
    frames_layers: int = 2,
    heteroscedastic: bool = False,
    dropout: float | None = None,
) -> LLoCaTransformer:
    """LLoCa-Transformer of paper 3 (Sec. 3.1) for n-particle momenta.

    input_shape: ``[B, 4n]`` momenta (E, px, py, pz per particle) with ``n = len(particle_types)``;
    output: ``[B, 1]``, or ``[B, 2]`` (mean, raw sigma) when heteroscedastic.

    Args:
        particle_types: integer type per particle (e.g. incoming gluons 0, outgoing gluons 1); identical types
            share a token, so the backbone is equivariant under permutations of same-type particles.
        num_types: number of token types (default max(particle_types) + 1).
        hidden_channels: output channels of the transformer per particle.
        num_blocks: transformer blocks.
        num_heads: attention heads.
        attn_reps: lloca TensorReps of one attention head (scalars ``0n`` and four-vectors ``1n``).
        frames_hidden: hidden channels of the Frames-Net MLP.
        frames_layers: hidden layers of the Frames-Net MLP.
        heteroscedastic: two outputs for the Gaussian NLL.
        dropout: dropout probability in the backbone (None: off).
    """
    name = "lloca_transformer"
    types = [int(t) for t in particle_types]
    if len(types) < 2 or min(types) < 0:
        raise ValueError(f"{name}: particle_types must list >= 2 non-negative integers, got {particle_types!r}")
    num_types = max(types) + 1 if num_types is None else check_positive_int(name, "num_types", num_types)
    if max(types) >= num_types:
        raise ValueError(f"{name}: particle type {max(types)} >= num_types {num_types}")
    for key, value in (("hidden_channels", hidden_channels), ("num_blocks", num_blocks), ("num_heads", num_heads),
                       ("frames_hidden", frames_hidden), ("frames_layers", frames_layers)):
        check_positive_int(name, key, value)
    if dropout is not None and not 0 <= dropout < 1:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
    return LLoCaTransformer(types, num_types, hidden_channels, num_blocks, num_heads, attn_reps, frames_hidden,
                            frames_layers, 2 if heteroscedastic else 1, dropout)

"""Vision transformer for image-pair regression (paper 1's ViT).

Paper 1 places the two layer images side by side (``[2, H, W] -> [1, H, 2W]``), cuts 10 x 10 patches
(200 tokens for 100 x 100 images), and uses embedding 64, 8 heads, 4 layers and MLP size 256, without
dropout. The layout here is the standard pre-norm ViT of Dosovitskiy et al. (ICLR 2021), as in
torchvision's ``VisionTransformer`` and timm: convolutional patch embedding with bias, a learned class
token, learned position embeddings (one per token, class token included), per block
``x + Attn(LN(x))`` and ``x + MLP(LN(x))`` with qkv and output projections with bias and a GELU MLP,
a final LayerNorm and a linear head on the class token.

Parameter count of the defaults: 219,521, not the 225,601 that paper 1 states. With embedding d = 64 every
tensor of that layout except the output bias holds a multiple of 64 values, and the paper's number minus
the output bias is 3,525 x 64, so the paper's model has 95 x 64 = 6,080 parameters more than this layout.
We found no standard variant that closes the gap: head dims other than d / heads, qkv/out biases on or
off (lucidrains' ``vit-pytorch``), LayerNorms around the patch embedding, mean pooling, sinusoidal
positions, a pre-logits layer or a pooler (Hugging Face ``ViTModel``) all miss 225,601 for 200 tokens of
100 values. ``vit_param_count`` gives the exact count of this layout for any configuration.

Reference:
    Scaling laws in deep regression (``scaling-laws-deep-regression.txt``), Methods, "Vision transformer";
    A. Dosovitskiy et al., "An image is worth 16x16 words", ICLR 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalinglab.models._common import check_image, check_image_size, check_positive_int
from scalinglab.models._registry import register_model

POOLS = ("cls", "mean")


def vit_param_count(
    image_size: int | tuple[int, int] = (100, 100),
    in_channels: int = 2,
    side_by_side: bool = True,
    patch_size: int = 10,
    embed_dim: int = 64,
    depth: int = 4,
    num_heads: int = 8,
    mlp_dim: int = 256,
    out_features: int = 1,
    pool: str = "cls",
    dropout: float = 0.0,
) -> int:
    """Closed-form parameter count of ``vit`` (independent of the module code, for tests and planning).

    Takes the same arguments as the ``vit`` builder; ``num_heads`` and ``dropout`` do not change the count.

    Returns:
        patch embedding + class token + position table + depth x block + final norm + head.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    channels, width = (1, in_channels * w) if side_by_side else (in_channels, w)
    tokens = (h // patch_size) * (width // patch_size) + (pool == "cls")
    d = embed_dim
    patch = channels * patch_size**2 * d + d
    block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (d * mlp_dim + mlp_dim) + (mlp_dim * d + d)
    return patch + (d if pool == "cls" else 0) + tokens * d + depth * block + 2 * d + d * out_features + out_features


class _EncoderBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, d_head)
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm2(x))))))


class ViT(nn.Module):
    """Vision transformer regressor.

    Attributes:
        input_shape: ``(in_channels, H, W)``.
        out_features: outputs per sample.
        num_tokens: patch tokens (without the class token).
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        in_channels: int,
        side_by_side: bool,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        out_features: int,
        pool: str,
        dropout: float,
    ):
        super().__init__()
        h, w = image_size
        self.image_size = image_size
        self.in_channels = in_channels
        self.side_by_side = side_by_side
        self.input_shape = (in_channels, h, w)
        self.out_features = out_features
        self.pool = pool
        patch_channels, width = (1, in_channels * w) if side_by_side else (in_channels, w)
        self.num_tokens = (h // patch_size) * (width // patch_size)
        self.patch_embed = nn.Conv2d(patch_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens + (pool == "cls"), embed_dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_EncoderBlock(embed_dim, num_heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, out_features)
        self._init_weights()

    def _init_weights(self) -> None:
        # ViT/timm initialization: truncated normal (std 0.02) for the token tables, Xavier for the
        # linear layers with zero bias, fan-in normal for the patch embedding (as torchvision).
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        fan_in = self.patch_embed.in_channels * self.patch_embed.kernel_size[0] * self.patch_embed.kernel_size[1]
        nn.init.trunc_normal_(self.patch_embed.weight, std=(1.0 / fan_in) ** 0.5)
        nn.init.zeros_(self.patch_embed.bias)
        for block in self.blocks:
            for lin in (block.qkv, block.proj, block.fc1, block.fc2):
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_features]``."""
        x = check_image("vit", x, self.input_shape)
        b = x.shape[0]
        if self.side_by_side:
            # [B, C, H, W] -> [B, 1, H, C W]: channel c occupies columns c W ... (c + 1) W - 1.
            x = x.permute(0, 2, 1, 3).reshape(b, 1, self.image_size[0], self.in_channels * self.image_size[1])
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, d)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (B, 1 + N, d)
        tokens = self.pos_drop(tokens + self.pos_embed)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        pooled = tokens[:, 0] if self.cls_token is not None else tokens.mean(dim=1)  # (B, d)
        return self.head(pooled)


@register_model()
def vit(
    *,
    image_size: int | tuple[int, int] = (100, 100),
    in_channels: int = 2,
    side_by_side: bool = True,
    patch_size: int = 10,
    embed_dim: int = 64,
    depth: int = 4,
    num_heads: int = 8,
    mlp_dim: int = 256,
    out_features: int = 1,
    pool: str = "cls",
    dropout: float = 0.0,
) -> ViT:
    """Vision transformer with paper 1's configuration by default.

    input_shape: ``[B, in_channels, H, W]`` (paper 1: ``[B, 2, 100, 100]``, the top/bottom image pair);
    output ``[B, out_features]``.

    Args:
        image_size: ``(H, W)`` of each image; both must be multiples of ``patch_size``.
        in_channels: images per sample (paper 1: 2).
        side_by_side: place the channels next to each other, ``[C, H, W] -> [1, H, C W]`` (paper 1), so
            each token sees one image; otherwise tokens are ``C x p x p`` patches.
        patch_size: square patch side in pixels (paper 1: 10, giving 200 tokens).
        embed_dim: token dimension (paper 1: 64); must be divisible by ``num_heads``.
        depth: transformer layers (paper 1: 4).
        num_heads: attention heads (paper 1: 8).
        mlp_dim: hidden size of each block's MLP (paper 1: 256).
        out_features: regressed values (paper 1: 1).
        pool: "cls" (class token, standard ViT) or "mean" (average over tokens, no class token).
        dropout: dropout rate (paper 1: none).

    Reference:
        Paper 1 (scaling-laws-deep-regression), Methods; Dosovitskiy et al., ICLR 2021.
    """
    size = check_image_size("vit", "image_size", image_size)
    in_channels = check_positive_int("vit", "in_channels", in_channels)
    patch_size = check_positive_int("vit", "patch_size", patch_size)
    embed_dim = check_positive_int("vit", "embed_dim", embed_dim)
    depth = check_positive_int("vit", "depth", depth, minimum=0)
    num_heads = check_positive_int("vit", "num_heads", num_heads)
    mlp_dim = check_positive_int("vit", "mlp_dim", mlp_dim)
    out_features = check_positive_int("vit", "out_features", out_features)
    if size[0] % patch_size or size[1] % patch_size:
        raise ValueError(f"vit: image_size {size} is not a multiple of patch_size {patch_size}")
    if embed_dim % num_heads:
        raise ValueError(f"vit: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    if pool not in POOLS:
        raise ValueError(f"vit: unknown pool {pool!r} (known: {', '.join(POOLS)})")
    if not isinstance(side_by_side, bool):
        raise ValueError(f"vit: config side_by_side must be true or false, got {side_by_side!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"vit: config dropout must lie in [0, 1), got {dropout!r}")
    return ViT(size, in_channels, side_by_side, patch_size, embed_dim, depth, num_heads, mlp_dim, out_features,
               pool, float(dropout))

"""The models plugin's vision transformer (not a plugin itself: no entry point),
with the stacked forms of its own layers; imported when a vit is built, so the
plugin loads without torch.

Patches (of an image, or of a 1-D signal) become tokens by one linear layer
(the same map as a convolution with stride = kernel = patch), plus a learned
position embedding; then ``depth`` blocks of two residual sublayers, attention
and an MLP, each running the block's slot order; then the mean over tokens and
a linear classifier (Dosovitskiy et al., 2021; timm's ``vision_transformer``).

Every norm is called on (N * T, width) features, the shape a norm made for
``dims = 0`` (after a linear layer) takes: batch norm's statistics are then
over the batch and the tokens, per feature, and a third party's norm written
for (N, C) works unchanged (``Tokens``). Dropout layers take the tokens as
they are (any shape), so arms with and without dropout can share a stack.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from ablate.plugins._networks import ACTIVATIONS, Reshape

from ablate import MakeLayer, stacked_layer

if TYPE_CHECKING:
    from ablate.plugins.models import ViT


class Patches(nn.Module):
    """(N, C, L) -> (N, L / p, C * p) or (N, C, H, W) -> (N, HW / p^2, C * p * p):
    non-overlapping patches in row-major order, each flattened channel-first
    (the layout of a convolution's (out, C, p, p) weight)."""

    def __init__(self, patch: int, dims: int):
        super().__init__()
        self.patch, self.dims = patch, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, n, c = self.patch, x.shape[0], x.shape[1]
        if self.dims == 1:
            return x.view(n, c, -1, p).transpose(1, 2).reshape(n, -1, c * p)
        h, w = x.shape[2] // p, x.shape[3] // p
        return x.view(n, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(n, h * w, c * p * p)

    def extra_repr(self) -> str:
        return f"patch={self.patch}, dims={self.dims}"


class PositionEmbedding(nn.Module):
    """x + a learned (tokens, width) embedding (truncated normal, std 0.02, as timm)."""

    def __init__(self, tokens: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(tokens, width), std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}"


class Tokens(nn.Module):
    """A slot layer made for (N, features) inputs, applied to (..., T, features)
    tokens as (N * T, features): batch norm then counts every token of the batch."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x.reshape(-1, x.shape[-1]))
        return out.view(x.shape)


class SelfAttention(nn.Module):
    """Multi-head self-attention over (..., T, width) tokens: one linear layer for
    queries, keys and values, torch's scaled_dot_product_attention, an output
    projection. Any leading dims are batch dims, so the same forward runs stacked."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, t, d = x.shape
        qkv = self.qkv(x).view(-1, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (batch, heads, T, d / heads)
        return self.proj(out.transpose(1, 2).reshape(*lead, t, d))

    def extra_repr(self) -> str:
        return f"heads={self.heads}"


class Residual(nn.Module):
    """One sublayer in its slot order: ``after(x + drop_path(branch(x)))``; the
    slots before "add" form the branch, those after act on the sum."""

    def __init__(self, branch: nn.Module, drop_path: nn.Module, after: nn.Module):
        super().__init__()
        self.branch, self.drop_path, self.after = branch, drop_path, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(x + self.drop_path(self.branch(x)))


class TokenMean(nn.Module):
    """(N, T, width) -> (N, width): the mean over tokens (the head's pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def _slot(slot: str, layer: nn.Module) -> list[nn.Module]:
    if isinstance(layer, nn.Identity):
        return []
    return [Tokens(layer)] if slot == "norm" else [layer]


def _sublayer(vit: ViT, main: nn.Module, make_layer: MakeLayer) -> Residual:
    branch: list[nn.Module] = []
    after: list[nn.Module] = []
    side = branch
    for slot in vit.slots:
        if slot == "sublayer":
            side.append(main)
        elif slot == "add":
            side = after
        else:
            side += _slot(slot, make_layer(slot, vit.width, 0))
    return Residual(nn.Sequential(*branch), make_layer("drop_path", vit.width, 0), nn.Sequential(*after))


def vit_network(vit: ViT, geometry: Any, num_classes: int, make_layer: MakeLayer) -> nn.Module:
    dims, channels, shape = geometry
    tokens = math.prod(n // vit.patch for n in shape[1:])
    layers: list[nn.Module] = [
        Reshape(shape),
        Patches(vit.patch, dims),
        nn.Linear(channels * vit.patch**dims, vit.width),
        PositionEmbedding(tokens, vit.width),
    ]
    hidden = vit.width * vit.mlp_ratio
    for _ in range(vit.depth):
        attention = SelfAttention(vit.width, vit.heads)
        mlp = nn.Sequential(nn.Linear(vit.width, hidden), ACTIVATIONS[vit.activation](), nn.Linear(hidden, vit.width))
        layers += [_sublayer(vit, attention, make_layer), _sublayer(vit, mlp, make_layer)]
    if vit.pre_norm:  # the branches' norms leave the residual stream itself unnormalised: one norm before the head
        layers += _slot("norm", make_layer("norm", vit.width, 0))
    layers += [TokenMean(), nn.Linear(vit.width, num_classes)]
    return nn.Sequential(*layers)


# --- stacked forms (docs/stacking.md): declared as a third-party plugin declares its own ---


class StackedPositionEmbedding(nn.Module):
    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight = weight  # (S, T, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S, N, T, width)
        return x + self.weight.unsqueeze(1)


class StackedTokens(nn.Module):
    """(S, N, T, features) -> the stacked slot layer on (S, N * T, features)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x.reshape(x.shape[0], -1, x.shape[-1]))
        return out.view(x.shape)


def _declare_stacked_forms() -> None:
    from ablate import per_sample, same_forward  # torch: when a model is built, not when the plugin registers

    stacked_layer(Patches, TokenMean)(per_sample)  # per sample: the seeds fold into the batch
    stacked_layer(SelfAttention, Residual)(same_forward)  # their forwards take any leading dims

    @stacked_layer(PositionEmbedding)
    def _position(layers: list[PositionEmbedding], ctx: Any) -> nn.Module:
        weight = ctx.parameter(layers, "weight")
        assert weight is not None
        return StackedPositionEmbedding(weight)

    @stacked_layer(Tokens)
    def _tokens(layers: list[Tokens], ctx: Any) -> nn.Module:
        return StackedTokens(ctx.stack([t.layer for t in layers]))


_declare_stacked_forms()

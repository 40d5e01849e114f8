"""The norms plugin's own layer (not a plugin itself: no entry point), with its
stacked form; imported when a layer is made, so the plugin loads without torch."""

from __future__ import annotations

import torch
import torch.nn as nn

from ablate import stacked_layer


class ChannelRMSNorm(nn.Module):
    """RMS norm over the channels at each position of a conv feature map
    (channels-last RMSNorm, as in ConvNeXt-style layer norms): x / rms_c(x) * g."""

    def __init__(self, features: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(dim=1, keepdim=True).add(self.eps).rsqrt()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * rms * self.weight.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


# --- stacked form (issue 10): declared as a third-party plugin declares its own (docs/stacking.md) ---


class StackedChannelRMSNorm(nn.Module):
    """ChannelRMSNorm for all seeds at once: (S, N, C, ...) inputs, weight (S, C)."""

    def __init__(self, weight: nn.Parameter, eps: float):
        super().__init__()
        self.weight, self.eps = weight, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(dim=2, keepdim=True).add(self.eps).rsqrt()
        shape = (x.shape[0], 1, -1) + (1,) * (x.dim() - 3)
        return x * rms * self.weight.view(shape)


stacked_layer(ChannelRMSNorm)(lambda layers, ctx: StackedChannelRMSNorm(ctx.parameter(layers, "weight"), layers[0].eps))

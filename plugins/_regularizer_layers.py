"""The regularizers plugin's own layers (not a plugin itself: no entry point),
with the stacked form of drop path; imported when a layer is made or a model is
re-parametrised, so the plugin loads without torch."""

from __future__ import annotations

import torch
import torch.nn as nn

from ablate import stacked_layer


class DropPathLayer(nn.Module):
    """Zero a residual branch for a random subset of samples, scaling the kept ones
    by 1/(1-rate); identity in eval (timm's drop_path)."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class SpectralNormalised(nn.Module):
    """The parametrization W -> W / sigma(W), sigma estimated by power iteration
    on W as an (out, rest) matrix, as in torch.nn.utils.parametrizations.spectral_norm
    (Miyato et al., 2018): ``steps`` iterations per training forward pass, the
    vectors kept between steps; eval mode uses them as they are."""

    def __init__(self, weight: torch.Tensor, steps: int, eps: float = 1e-12):
        super().__init__()
        self.steps, self.eps = steps, eps
        mat = weight.detach().flatten(1)
        gen = torch.Generator(device=weight.device).manual_seed(0)
        self.register_buffer("u", self._unit(torch.randn(mat.shape[0], generator=gen, device=weight.device)))
        self.register_buffer("v", self._unit(torch.randn(mat.shape[1], generator=gen, device=weight.device)))
        self.iterate(mat, 15)

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.norm().clamp_min(self.eps)

    @torch.no_grad()
    def iterate(self, mat: torch.Tensor, steps: int) -> None:
        for _ in range(steps):
            self.v.copy_(self._unit(mat.t() @ self.u))
            self.u.copy_(self._unit(mat @ self.v))

    @torch.no_grad()
    def converge(self, mat: torch.Tensor, tol: float = 1e-7, max_steps: int = 10_000) -> None:
        """Iterate until the estimate settles: the final weights then have spectral norm 1."""
        last = 0.0
        for _ in range(max_steps):
            self.iterate(mat, 1)
            est = float(self.u @ mat @ self.v)
            if abs(est - last) <= tol * abs(est):
                return
            last = est

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight.flatten(1)
        if self.training:
            self.iterate(mat.detach(), self.steps)
        return weight / (self.u @ mat @ self.v)


# --- stacked form (issue 10): declared as a third-party plugin declares its own (docs/stacking.md) ---


class StackedDropPath(nn.Module):
    """drop_path for all seeds at once: (S, N, ...) inputs, each seed's masks from
    its own stream, drawn as DropPathLayer draws them."""

    def __init__(self, rate: float, streams):
        super().__init__()
        self.rate, self.streams = rate, streams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = self.streams.bernoulli((x.shape[1],) + (1,) * (x.dim() - 2), keep, x)
        return x * mask / keep


stacked_layer(DropPathLayer)(lambda layers, ctx: StackedDropPath(layers[0].rate, ctx.streams))

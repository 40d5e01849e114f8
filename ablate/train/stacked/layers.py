"""Hand-stacked forms of torch's own layers: batched matmul for linear layers,
grouped convolution, batch norm over S x C channels, per-sample norms with the
seeds folded into the batch, and dropout drawing each seed's masks from its own
generator (the draws of its unstacked run). Every stacked parameter and buffer
keeps its per-seed name and shape behind a leading seed axis.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate.train.stacked.align import align
from ablate.train.stacked.forms import (
    SeedStreams,
    StackContext,
    elementwise,
    per_sample,
    same_forward,
    stacked_layer,
)

stacked_layer(nn.ModuleList, nn.ModuleDict)(same_forward)


@stacked_layer(nn.Sequential)
def _sequential(layers: list[nn.Module], ctx: StackContext) -> nn.Module | None:
    """A Sequential's children stacked in order; where the seeds' networks differ
    only in layers that may be absent (dropout), those seeds get None there."""
    columns = align(layers)
    if columns is None:
        raise TypeError("the seeds' networks differ in more than layers that may be absent")
    if len(columns) == len(layers[0]._modules) and all(m is not None for c in columns for m in c):
        return same_forward(layers, ctx)  # the same layers everywhere: keep the children's names
    return nn.Sequential(*[ctx.stack(column) for column in columns])


stacked_layer(
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
)(elementwise)
stacked_layer(
    nn.Unflatten,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)(per_sample)


def _register(module: nn.Module, name: str, tensor: torch.Tensor | None, parameter: bool) -> None:
    """Register a stacked parameter (from ctx.parameter) or buffer, None included."""
    if parameter:
        module.register_parameter(name, tensor if isinstance(tensor, nn.Parameter) else None)
    else:
        module.register_buffer(name, tensor)


def _seed_view(t: torch.Tensor, x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """A per-seed (S, C...) tensor shaped to broadcast against x (S, N, ...) at ``channel_dim``."""
    shape = [t.shape[0]] + [1] * (x.dim() - 1)
    for i, size in enumerate(t.shape[1:]):
        shape[channel_dim + i] = size
    return t.view(shape)


def _affine(y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
    """y * weight + bias with per-seed affine parameters (either may be absent).
    ``y`` is a fresh normalised tensor: without autograd it is scaled in place, which
    also spares the allocator a second large buffer when evaluating a whole split."""
    if not torch.is_grad_enabled() or not (y.requires_grad or _needs_grad(weight, bias)):
        if weight is not None:
            y.mul_(_seed_view(weight, y, channel_dim))
        return y if bias is None else y.add_(_seed_view(bias, y, channel_dim))
    if weight is not None and bias is not None:
        return torch.addcmul(_seed_view(bias, y, channel_dim), y, _seed_view(weight, y, channel_dim))
    if weight is not None:
        return y * _seed_view(weight, y, channel_dim)
    return y if bias is None else y + _seed_view(bias, y, channel_dim)


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


def _fold_channels(x: torch.Tensor) -> torch.Tensor:
    """(S, N, C, ...) -> (N, S*C, ...): seeds become channel groups."""
    return x.transpose(0, 1).reshape(x.shape[1], -1, *x.shape[3:])


def _unfold_channels(y: torch.Tensor, seeds: int) -> torch.Tensor:
    return y.view(y.shape[0], seeds, -1, *y.shape[2:]).transpose(0, 1)


class StackedFlatten(nn.Module):
    """nn.Flatten one axis later (the seed axis comes first): a view where it can be."""

    def __init__(self, start: int, end: int):
        super().__init__()
        self.start, self.end = start + 1, end + 1 if end >= 0 else end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.start, self.end)


@stacked_layer(nn.Flatten)
def _flatten(layers: list[nn.Flatten], ctx: StackContext) -> nn.Module:
    return StackedFlatten(layers[0].start_dim, layers[0].end_dim)


class _BatchedLinear(torch.autograd.Function):
    """x (S, N, in) @ w (S, out, in)^T + b (S, out), with each gradient computed
    as nn.Linear's backward computes it, so a seed's gradients match its unstacked
    run's bit for bit, not just to rounding: on a CPU grad_w = g^T x is one batched
    matmul where that was checked to give every seed's mm exactly (``_bmm_is_exact``),
    else one mm per seed."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        wt = w.transpose(1, 2)
        return torch.bmm(x, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x, wt)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = torch.bmm(g, w) if need_x else None
        grad_w = None
        if need_w and (g.is_cuda or _bmm_is_exact(tuple(g.shape), tuple(x.shape), g.dtype)):
            grad_w = torch.bmm(g.transpose(1, 2), x)  # on CUDA results agree with a run alone to rounding anyway
        elif need_w:
            grad_w = torch.empty_like(w)
            for gs, xs, out in zip(g.unbind(0), x.unbind(0), grad_w.unbind(0), strict=True):
                torch.mm(gs.t(), xs, out=out)
        return grad_x, grad_w, g.sum(1) if need_b and ctx.has_bias else None


@functools.cache
def _bmm_is_exact(g_shape: tuple[int, ...], x_shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    """Whether this CPU's batched matmul gives g^T x for these shapes bit for bit as
    one mm per seed (a run alone's): checked once per shape on random numbers (a
    BLAS picks its kernels, and so its rounding, by shape, not by value). It did for
    every shape tried here, twice as fast with a stack of 12."""
    generator = torch.Generator().manual_seed(0)
    g = torch.randn(g_shape, generator=generator, dtype=dtype)
    x = torch.randn(x_shape, generator=generator, dtype=dtype)
    per_seed = torch.stack([torch.mm(gs.t(), xs) for gs, xs in zip(g.unbind(0), x.unbind(0), strict=True)])
    return torch.equal(torch.bmm(g.transpose(1, 2), x), per_seed)


class StackedLinear(nn.Module):
    """S linear layers as one batched matmul: weight (S, out, in), bias (S, out)."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter | None):
        super().__init__()
        self.weight = weight
        self.register_parameter("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            out: torch.Tensor = _BatchedLinear.apply(x, self.weight, self.bias)
            return out
        out = _BatchedLinear.apply(x.reshape(x.shape[0], -1, x.shape[-1]), self.weight, self.bias)
        return out.view(*x.shape[:-1], out.shape[-1])


@stacked_layer(nn.Linear)
def _linear(layers: list[nn.Linear], ctx: StackContext) -> nn.Module:
    weight = ctx.parameter(layers, "weight")
    assert weight is not None
    return StackedLinear(weight, ctx.parameter(layers, "bias"))


class StackedConv(nn.Module):
    """S convolutions: on CUDA one grouped convolution over S x C channels; on a
    CPU one convolution per seed (there oneDNN's grouped kernel is no faster, and
    per seed each gradient is bit for bit its unstacked run's, as for linear layers)."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(self, conv: nn.Conv1d | nn.Conv2d | nn.Conv3d, weight: nn.Parameter, bias: nn.Parameter | None):
        super().__init__()
        self.weight = weight
        self.register_parameter("bias", bias)
        self.stride, self.dilation = conv.stride, conv.dilation
        self.padding: Any = conv.padding  # a tuple, or "same"/"valid"
        self.groups, self.dims = conv.groups, len(conv.kernel_size)
        self.grouped: bool | None = None  # None: by device (grouped on CUDA)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.dims - 1]
        grouped = x.is_cuda if self.grouped is None else self.grouped
        if not grouped:
            outs = []
            for s in range(len(x)):
                bias = None if self.bias is None else self.bias[s]
                outs.append(conv(x[s], self.weight[s], bias, self.stride, self.padding, self.dilation, self.groups))
            return torch.stack(outs)
        bias = None if self.bias is None else self.bias.reshape(-1)
        out = conv(
            _fold_channels(x),
            self.weight.flatten(0, 1),
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups * x.shape[0],
        )
        return _unfold_channels(out, x.shape[0])


@stacked_layer(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(layers: list[nn.Conv1d], ctx: StackContext) -> nn.Module | None:
    if layers[0].padding_mode != "zeros":
        return None
    weight = ctx.parameter(layers, "weight")
    assert weight is not None
    return StackedConv(layers[0], weight, ctx.parameter(layers, "bias"))


class StackedBatchNorm(nn.Module):
    """S batch norms as one over S x C channels (each channel's statistics stay its seed's own)."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    num_batches_tracked: torch.Tensor | None

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, ctx: StackContext, norms: Sequence[nn.Module]):
        super().__init__()
        self.eps, self.momentum, self.track = norm.eps, norm.momentum, norm.track_running_stats
        for name in ("weight", "bias"):
            _register(self, name, ctx.parameter(norms, name), True)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            _register(self, name, ctx.buffer(norms, name), False)

    def _factor(self) -> float:
        """The running-statistics update factor, as nn.BatchNorm computes it."""
        if not (self.training and self.track and self.num_batches_tracked is not None):
            return 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked[0])
        return self.momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.running_mean is not None and self.running_var is not None:
            return self._with_running_statistics(x)
        factor = self._factor()
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track
        flat = lambda t: None if t is None else t.view(-1)
        out = F.batch_norm(
            _fold_channels(x),
            flat(self.running_mean) if keep else None,
            flat(self.running_var) if keep else None,
            flat(self.weight),
            flat(self.bias),
            use_batch,
            factor,
            self.eps,
        )
        return _unfold_channels(out, x.shape[0])

    def _with_running_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation: each seed's x * alpha + beta (ATen's own formula) in place on
        (S, N, C, ...), without folding the seeds into channels (no copies)."""
        assert self.running_mean is not None and self.running_var is not None
        alpha = 1 / torch.sqrt(self.running_var + self.eps)
        if self.weight is not None:
            alpha = alpha * self.weight
        beta = -self.running_mean * alpha if self.bias is None else self.bias - self.running_mean * alpha
        return torch.addcmul(_seed_view(beta, x, 2), x, _seed_view(alpha, x, 2))


@stacked_layer(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def _batch_norm(norms: list[nn.modules.batchnorm._BatchNorm], ctx: StackContext) -> nn.Module:
    return StackedBatchNorm(norms[0], ctx, norms)


class StackedLayerNorm(nn.Module):
    """Layer norm is per sample: normalise (S, N, ...) as is, then each seed's affine.
    The normalisation passes a unit weight and zero bias: the same numbers, and torch's
    affine kernel runs twice as fast on a CPU as the one without."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None

    def __init__(self, norm: nn.LayerNorm | nn.RMSNorm, ctx: StackContext, norms: Sequence[nn.Module]):
        super().__init__()
        self.shape, self.eps = tuple(norm.normalized_shape), norm.eps
        self.rms = isinstance(norm, nn.RMSNorm)
        for name in ("weight", "bias"):
            _register(self, name, ctx.parameter(norms, name) if hasattr(norm, name) else None, True)
        self._unit: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rms:
            y = F.rms_norm(x, self.shape, None, self.eps)
        else:
            y = F.layer_norm(x, self.shape, *self._identity(x), float(self.eps or 0.0))
        return _affine(y, self.weight, self.bias, x.dim() - len(self.shape))

    def _identity(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (x.device, x.dtype)
        if key not in self._unit:
            self._unit[key] = (x.new_ones(self.shape), x.new_zeros(self.shape))
        return self._unit[key]


@stacked_layer(nn.LayerNorm, nn.RMSNorm)
def _layer_norm(norms: list[nn.LayerNorm], ctx: StackContext) -> nn.Module:
    return StackedLayerNorm(norms[0], ctx, norms)


class StackedGroupNorm(nn.Module):
    """Group and instance norm are per sample: fold the seeds into the batch, then
    each seed's per-channel affine."""

    weight: torch.Tensor | None
    bias: torch.Tensor | None

    def __init__(
        self, norm: nn.GroupNorm | nn.modules.instancenorm._InstanceNorm, ctx: StackContext, norms: Sequence[nn.Module]
    ):
        super().__init__()
        self.groups = norm.num_groups if isinstance(norm, nn.GroupNorm) else 0
        self.eps = norm.eps
        for name in ("weight", "bias"):
            _register(self, name, ctx.parameter(norms, name), True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = x.flatten(0, 1)
        if self.groups:
            y = F.group_norm(folded, self.groups, None, None, self.eps)
        else:
            y = F.instance_norm(folded, eps=self.eps)
        return _affine(y.view(x.shape), self.weight, self.bias, 2)


@stacked_layer(nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
def _group_norm(norms: list[nn.GroupNorm], ctx: StackContext) -> nn.Module | None:
    if getattr(norms[0], "track_running_stats", False):
        return None
    return StackedGroupNorm(norms[0], ctx, norms)


ALPHA = 1.7580993408473766  # SELU's alpha * lambda, as ATen's alpha dropout uses it


class StackedDropout(nn.Module):
    """Dropout (element-wise or whole channels, plain or alpha) whose masks come
    from each seed's own stream. Plain and channel dropout take a rate per seed
    (arms with different rates, or without dropout: rate 0, share a stack); the
    rate follows the seed's stream as seeds leave the stack. A seed at rate 0
    draws nothing and passes its input through unchanged."""

    def __init__(self, rates: Sequence[float], streams: SeedStreams, feature: bool, alpha: bool):
        super().__init__()
        self.streams, self.feature, self.alpha = streams, feature, alpha
        self.rate_of = {id(g): float(p) for g, p in zip(streams.generators, rates, strict=True)}
        self.p = rates[0] if len(set(rates)) == 1 else None  # one rate for every seed, or None

    def rates(self) -> list[float]:
        """The rate of each seed still in the stack, in stack order."""
        return [self.rate_of[id(g)] for g in self.streams.generators]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.numel() == 0 or self.p == 0:
            return x
        if self.p == 1:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        shape = x.shape[1:3] + (1,) * (x.dim() - 3) if self.feature else x.shape[1:]
        if self.p is not None and self.alpha:  # one rate for every seed: alpha dropout's offsets
            noise = self.streams.bernoulli(shape, 1 - self.p, x)
            a = 1.0 / math.sqrt((ALPHA * ALPHA * self.p + 1) * (1 - self.p))
            b = noise.add(-1).mul_(ALPHA * a).add_(ALPHA * a * self.p)
            return x * noise.mul_(a) + b
        rates = self.rates() if self.p is None else [self.p] * len(self.streams)
        if not any(rates):
            return x
        # each kept element scaled by 1 / (1 - p), as x * mask.div_(1 - p) would; a seed at rate 0 draws nothing
        return x * self.streams.keep_masks(shape, [1 - p for p in rates], x, scaled=True)

    def extra_repr(self) -> str:
        return f"p={self.p if self.p is not None else self.rates()}, feature={self.feature}, alpha={self.alpha}"


@stacked_layer(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, absent=True)
def _dropout(layers: list[nn.Module | None], ctx: StackContext) -> nn.Module | None:
    """Seeds without the layer (None) get rate 0; the others must be of one type."""
    present = [m for m in layers if m is not None]
    layer = present[0]
    if any(type(m) is not type(layer) or getattr(m, "inplace", False) for m in present):
        return None
    rates = [0.0 if m is None else float(vars(m)["p"]) for m in layers]
    if len(set(rates)) > 1 and max(rates) >= 1:
        return None
    feature = isinstance(layer, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d))
    return StackedDropout(rates, ctx.streams, feature, alpha=False)


@stacked_layer(nn.AlphaDropout, nn.FeatureAlphaDropout)
def _alpha_dropout(layers: list[nn.Module], ctx: StackContext) -> nn.Module | None:
    """One rate for every seed (its arm's): alpha dropout's offsets depend on the rate."""
    if getattr(layers[0], "inplace", False):
        return None
    feature = isinstance(layers[0], nn.FeatureAlphaDropout)
    return StackedDropout([float(vars(m)["p"]) for m in layers], ctx.streams, feature, alpha=True)

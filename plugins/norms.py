"""Normalization layers for the "norm" slot, picking the variant for the slot's
``dims`` by itself: 0 after a linear layer (input (N, C)), 1 or 2 after a 1-D or
2-D convolution (input (N, C, L) or (N, C, H, W)).

Torch is imported where a layer is made, not when the plugin loads: a study is
loaded and checked without it (the layer of its own lives in ``_norm_layers``)."""

from __future__ import annotations

from ablate import Param, SlotComponent, hookimpl


class BatchNorm(SlotComponent):
    """Batch statistics in training, running statistics in eval."""

    slot = "norm"

    def __init__(self, momentum: float, eps: float):
        self.momentum, self.eps = momentum, eps

    def layer(self, features, dims):
        from torch import nn

        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        return cls(features, eps=self.eps, momentum=self.momentum)


class LayerNorm(SlotComponent):
    """Per-sample statistics over all features (and positions, after a convolution)."""

    slot = "norm"

    def __init__(self, eps: float):
        self.eps = eps

    def layer(self, features, dims):
        from torch import nn

        if dims == 0:
            return nn.LayerNorm(features, eps=self.eps)
        return nn.GroupNorm(1, features, eps=self.eps)  # one group = layer norm over (C, ...)


class GroupNorm(SlotComponent):
    """Per-sample statistics over groups of channels (and all positions).

    ``groups`` is a wish: when it does not divide the feature count, the
    largest divisor of the feature count not above it is used, so one setting
    fits every layer width. After a linear layer the groups are groups of
    features (nn.GroupNorm accepts (N, C)).
    """

    slot = "norm"

    def __init__(self, groups: int, eps: float):
        self.groups, self.eps = groups, eps

    @staticmethod
    def fit(groups: int, features: int) -> int:
        return max(g for g in range(1, min(groups, features) + 1) if features % g == 0)

    def layer(self, features, dims):
        from torch import nn

        return nn.GroupNorm(self.fit(self.groups, features), features, eps=self.eps)


class InstanceNorm(LayerNorm):
    """Per-sample, per-channel statistics over positions (Ulyanov et al., 2016), with
    a learned per-channel affine; no running statistics, so train and eval agree.

    After a linear layer there are no positions: a feature alone has no variance,
    so the layer falls back to per-sample normalisation over the features
    (identical to layer norm) rather than zeroing every activation.
    """

    def layer(self, features, dims):
        from torch import nn

        if dims == 0:
            return super().layer(features, dims)
        cls = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm1d
        return cls(features, eps=self.eps, affine=True, track_running_stats=False)


class RMSNorm(SlotComponent):
    """Root-mean-square normalisation (Zhang & Sennrich, 2019): no centring, a
    learned gain. After a linear layer, torch's nn.RMSNorm over the features;
    after a convolution, over the channels at each position (per sample, per
    position), the usual channels-last choice."""

    slot = "norm"

    def __init__(self, eps: float):
        self.eps = eps

    def layer(self, features, dims):
        if dims == 0:
            from torch import nn

            return nn.RMSNorm(features, eps=self.eps)
        from ablate.plugins._norm_layers import (
            ChannelRMSNorm,  # torch: when a model is built, not when the plugin registers
        )

        return ChannelRMSNorm(features, self.eps)


EPS = Param(1e-5, low=0.0, low_open=True, high=1.0, help="added to the variance")


@hookimpl
def ablate_register_norms(registry):
    registry.add(
        "batchnorm",
        BatchNorm,
        help="batch normalization (Ioffe & Szegedy, 2015)",
        params={"momentum": Param(0.1, low=0.0, high=1.0, help="running-statistics momentum"), "eps": EPS},
    )
    registry.add("layernorm", LayerNorm, help="layer normalization (Ba et al., 2016)", params={"eps": EPS})
    registry.add(
        "groupnorm",
        GroupNorm,
        help="group normalization (Wu & He, 2018)",
        params={
            "groups": Param(8, low=1, high=4096, help="channel groups (largest divisor of the width not above it)"),
            "eps": EPS,
        },
    )
    registry.add(
        "instancenorm",
        InstanceNorm,
        help="instance normalization per channel over positions (layer norm after a linear layer)",
        params={"eps": EPS},
    )
    registry.add(
        "rmsnorm",
        RMSNorm,
        help="RMS normalization (Zhang & Sennrich, 2019), over channels per position after a conv",
        params={"eps": EPS},
    )

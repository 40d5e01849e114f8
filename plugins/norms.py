"""Normalization layers for the "norm" slot, picking the 1-D/2-D variant by itself."""

from __future__ import annotations

import torch.nn as nn

from ablate import Param, hookimpl


class BatchNorm:
    """Batch statistics in training, running statistics in eval."""

    def __init__(self, momentum: float, eps: float):
        self.momentum, self.eps = momentum, eps

    @hookimpl
    def ablate_make_layer(self, slot, features, dims):
        if slot != "norm":
            return None
        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        return cls(features, eps=self.eps, momentum=self.momentum)


class LayerNorm:
    """Per-sample statistics over all features (and positions, after a convolution)."""

    def __init__(self, eps: float):
        self.eps = eps

    @hookimpl
    def ablate_make_layer(self, slot, features, dims):
        if slot != "norm":
            return None
        if dims == 0:
            return nn.LayerNorm(features, eps=self.eps)
        return nn.GroupNorm(1, features, eps=self.eps)  # one group = layer norm over (C, ...)


EPS = Param(1e-5, low=0.0, low_open=True, high=1.0, help="added to the variance")


@hookimpl
def ablate_register_norms(registry):
    registry.add("batchnorm", BatchNorm, help="batch normalization (Ioffe & Szegedy, 2015)",
                 params={"momentum": Param(0.1, low=0.0, high=1.0, help="running-statistics momentum"),
                         "eps": EPS})
    registry.add("layernorm", LayerNorm, help="layer normalization (Ba et al., 2016)",
                 params={"eps": EPS})

"""Regularizers: dropout fills the "dropout" slot; L2 is a loss penalty;
weight decay is decoupled, applied by the optimizer (AdamW/SGDW style)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ablate import Param, hookimpl


class Dropout:
    def __init__(self, rate: float):
        self.rate = rate

    @hookimpl
    def ablate_make_layer(self, slot, features, dims):
        return nn.Dropout(self.rate) if slot == "dropout" else None


def penalised_parameters(model: nn.Module, include_biases: bool):
    """Weights of linear/conv layers; biases and norm parameters only when asked."""
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    for module in model.modules():
        is_norm = isinstance(module, norm_types)
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if include_biases or (name == "weight" and not is_norm):
                yield p


class L2:
    """Coupled L2: adds coef * sum(w^2) to the loss, so it passes through the optimizer."""

    def __init__(self, coef: float, include_biases: bool):
        self.coef, self.include_biases = coef, include_biases
        self._params: list[torch.Tensor] | None = None

    @hookimpl
    def ablate_loss_penalty(self, model):
        if self._params is None:
            self._params = list(penalised_parameters(model, self.include_biases))
        return self.coef * sum((p * p).sum() for p in self._params)


class WeightDecay:
    """Decoupled weight decay: the optimizer shrinks weights by lr * decay each step."""

    def __init__(self, decay: float):
        self.decay = decay

    @hookimpl
    def ablate_optimizer_options(self, model):
        return {"weight_decay": self.decay, "decoupled_weight_decay": True}


@hookimpl
def ablate_register_regularizers(registry):
    registry.add("dropout", Dropout, help="dropout in the block's dropout slot (Srivastava et al., 2014)",
                 params={"rate": Param(0.5, low=0.0, high=1.0, high_open=True, help="drop probability")})
    registry.add("l2", L2, help="coupled L2 penalty coef * sum(w^2) added to the loss",
                 params={"coef": Param(1e-4, low=0.0, help="penalty coefficient"),
                         "include_biases": Param(False, help="also penalise biases and norm parameters")})
    registry.add("weight_decay", WeightDecay, help="decoupled weight decay (Loshchilov & Hutter, 2019)",
                 params={"decay": Param(1e-2, low=0.0, high=1.0, help="decay factor per unit learning rate")})

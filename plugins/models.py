"""Models built from blocks of named slots, so the order of the slots is a factor."""

from __future__ import annotations

import math

import torch.nn as nn

from ablate import Param, hookimpl

SLOTS = ("linear", "norm", "act", "dropout")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def parse_slots(order: str) -> list[str]:
    """'linear>norm>act>dropout' -> the list; each slot at most once, 'linear' exactly once."""
    slots = [s.strip() for s in order.split(">")]
    unknown = [s for s in slots if s not in SLOTS]
    if unknown:
        raise ValueError(f"unknown slot {unknown[0]!r}; slots are {', '.join(SLOTS)} joined by '>'")
    if len(set(slots)) != len(slots) or "linear" not in slots:
        raise ValueError("each slot at most once, and 'linear' exactly once")
    return slots


class MLP:
    """A multilayer perceptron; each hidden block runs its slots in the given order."""

    def __init__(self, hidden: list[int], activation: str, slots: str):
        self.hidden, self.activation, self.slots = hidden, activation, parse_slots(slots)

    def build(self, input_shape, num_classes, make_layer):
        layers: list[nn.Module] = [nn.Flatten()]
        features = math.prod(input_shape)
        for width in self.hidden:
            for slot in self.slots:
                if slot == "linear":
                    layers.append(nn.Linear(features, width))
                    features = width
                elif slot == "act":
                    layers.append(ACTIVATIONS[self.activation]())
                else:
                    layers.append(make_layer(slot, features, 0))
        layers.append(nn.Linear(features, num_classes))
        return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


@hookimpl
def ablate_register_models(registry):
    registry.add("mlp", MLP, help="multilayer perceptron with ablatable slot order",
                 params={"hidden": Param([128, 128], low=1, high=65536, help="hidden layer widths"),
                         "activation": Param("relu", choices=tuple(ACTIVATIONS), help="activation"),
                         "slots": Param("linear>norm>act>dropout", validator=parse_slots,
                                        help="order of a block's slots, joined by '>'")})

"""Models built from blocks of named slots, so the order of the slots is a factor.

``mlp`` blocks have the slots linear, norm, act, dropout; ``cnn`` blocks conv,
norm, act, dropout; ``resnet`` residual branches have norm and dropout slots and
a "drop_path" slot (stochastic depth) on the branch. Convolutional models take
1-D inputs (L,) or (C, L) -- MNIST-1D's (40,) is treated as (1, 40) -- and 2-D
images (C, H, W), and ask for norm/dropout layers with ``dims`` 1 or 2.
"""

from __future__ import annotations

import math

import torch.nn as nn

from ablate import Param, hookimpl

SLOTS = ("linear", "norm", "act", "dropout")
CONV_SLOTS = ("conv", "norm", "act", "dropout")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def parse_slots(order: str, slots: tuple[str, ...] = SLOTS, main: str = "linear") -> list[str]:
    """'linear>norm>act>dropout' -> the list; each slot at most once, the main one exactly once."""
    found = [s.strip() for s in order.split(">")]
    unknown = [s for s in found if s not in slots]
    if unknown:
        raise ValueError(f"unknown slot {unknown[0]!r}; slots are {', '.join(slots)} joined by '>'")
    if len(set(found)) != len(found) or main not in found:
        raise ValueError(f"each slot at most once, and {main!r} exactly once")
    return found


def parse_conv_slots(order: str) -> list[str]:
    return parse_slots(order, CONV_SLOTS, "conv")


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


def conv_geometry(input_shape) -> tuple[int, int, tuple[int, ...]]:
    """(dims, in_channels, channel-first shape) for a conv model; (L,) -> 1-D with one channel."""
    shape = tuple(input_shape)
    if len(shape) == 1:
        return 1, 1, (1,) + shape
    if len(shape) in (2, 3):
        return len(shape) - 1, shape[0], shape
    raise ValueError(f"convolutional models take (L,), (C, L) or (C, H, W) inputs, not {shape}")


class Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape((len(x),) + self.shape)

    def extra_repr(self) -> str:
        return f"{self.shape}"


CONV = {1: nn.Conv1d, 2: nn.Conv2d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
AVGPOOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


class CNN:
    """A plain convolutional network: per block the slots in the given order
    (conv with 'same' padding), then 2x max-pooling while the map is at least 2
    wide; global average pooling and a linear classifier at the end."""

    def __init__(self, channels: list[int], kernel_size: int, activation: str, slots: str, pool: bool):
        self.channels, self.kernel_size, self.activation = channels, kernel_size, activation
        self.slots, self.pool = parse_conv_slots(slots), pool

    def build(self, input_shape, num_classes, make_layer):
        dims, features, shape = conv_geometry(input_shape)
        size = min(shape[1:])
        layers: list[nn.Module] = [Reshape(shape)]
        for width in self.channels:
            for slot in self.slots:
                if slot == "conv":
                    layers.append(CONV[dims](features, width, self.kernel_size, padding=self.kernel_size // 2))
                    features = width
                elif slot == "act":
                    layers.append(ACTIVATIONS[self.activation]())
                else:
                    layers.append(make_layer(slot, features, dims))
            if self.pool and size >= 2:
                layers.append(MAXPOOL[dims](2))
                size //= 2
        layers += [AVGPOOL[dims](1), nn.Flatten(), nn.Linear(features, num_classes)]
        return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


class BasicBlock(nn.Module):
    """x + drop_path(branch(x)), branch = conv > norm > act > dropout > conv > norm,
    then the activation (He et al., 2016); a 1x1 conv + norm shortcut when the
    shape changes."""

    def __init__(self, dims, cin, cout, stride, activation, make_layer):
        super().__init__()
        conv = CONV[dims]
        self.branch = nn.Sequential(
            conv(cin, cout, 3, stride=stride, padding=1, bias=False), make_layer("norm", cout, dims),
            ACTIVATIONS[activation](), make_layer("dropout", cout, dims),
            conv(cout, cout, 3, padding=1, bias=False), make_layer("norm", cout, dims))
        self.drop_path = make_layer("drop_path", cout, dims)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            conv(cin, cout, 1, stride=stride, bias=False), make_layer("norm", cout, dims))
        self.act = ACTIVATIONS[activation]()

    def forward(self, x):
        return self.act(self.shortcut(x) + self.drop_path(self.branch(x)))


class ResNet:
    """A small residual network (for 32x32 or 28x28 images, and 1-D signals): a
    3x3 stem, then one stage per width of ``blocks`` basic blocks, each stage after
    the first halving the resolution; global average pooling, linear classifier.
    The norm/dropout/drop_path slots sit in every residual branch; the stem's norm
    slot is filled too."""

    def __init__(self, widths: list[int], blocks: int, activation: str):
        self.widths, self.blocks, self.activation = widths, blocks, activation

    def build(self, input_shape, num_classes, make_layer):
        dims, cin, shape = conv_geometry(input_shape)
        conv = CONV[dims]
        layers: list[nn.Module] = [Reshape(shape), conv(cin, self.widths[0], 3, padding=1, bias=False),
                                   make_layer("norm", self.widths[0], dims), ACTIVATIONS[self.activation]()]
        features = self.widths[0]
        for stage, width in enumerate(self.widths):
            for b in range(self.blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BasicBlock(dims, features, width, stride, self.activation, make_layer))
                features = width
        layers += [AVGPOOL[dims](1), nn.Flatten(), nn.Linear(features, num_classes)]
        return nn.Sequential(*layers)


def _odd(value: int) -> None:
    if value % 2 == 0:
        raise ValueError("an odd kernel size (so 'same' padding keeps the size)")


ACTIVATION = Param("relu", choices=tuple(ACTIVATIONS), help="activation")


@hookimpl
def ablate_register_models(registry):
    registry.add("mlp", MLP, help="multilayer perceptron with ablatable slot order",
                 params={"hidden": Param([128, 128], low=1, high=65536, help="hidden layer widths"),
                         "activation": ACTIVATION,
                         "slots": Param("linear>norm>act>dropout", validator=parse_slots,
                                        help="order of a block's slots, joined by '>'")})
    registry.add("cnn", CNN, help="1-D/2-D convolutional network with ablatable slot order",
                 params={"channels": Param([16, 32], low=1, high=4096, help="channels per conv block"),
                         "kernel_size": Param(3, low=1, high=31, validator=_odd, help="odd kernel size"),
                         "activation": ACTIVATION,
                         "slots": Param("conv>norm>act>dropout", validator=parse_conv_slots,
                                        help="order of a block's slots (conv, norm, act, dropout), joined by '>'"),
                         "pool": Param(True, help="2x max-pooling after each block")})
    registry.add("resnet", ResNet, help="small residual network with norm, dropout and drop_path slots",
                 params={"widths": Param([16, 32, 64], low=1, high=4096, help="channels per stage"),
                         "blocks": Param(1, low=1, high=16, help="basic blocks per stage"),
                         "activation": ACTIVATION})


# --- stacked forms (issue 10): how these train when the seeds of an arm are one model ---
# Declared as a third-party plugin declares its own (docs/stacking.md).


def _declare_stacked_forms() -> None:
    from ablate.stacked_forms import per_sample, same_forward, stacked_layer

    stacked_layer(Reshape)(per_sample)  # reshapes each sample: works with the seeds folded into the batch
    stacked_layer(BasicBlock)(same_forward)  # its forward only adds its children's outputs


_declare_stacked_forms()

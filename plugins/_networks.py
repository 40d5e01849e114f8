"""The models plugin's networks (not a plugin itself: no entry point), with the
stacked forms of its own layers; imported when a model is built, so the plugin
loads without torch. Layers are made in a fixed order, so a seed always gives
the same initial weights."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch.nn as nn

from ablate import MakeLayer, stacked_layer

if TYPE_CHECKING:
    from ablate.plugins.models import CNN, MLP, ResNet

Geometry = tuple[int, int, tuple[int, ...]]  # (dims, in_channels, channel-first shape): models.conv_geometry

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
CONV = {1: nn.Conv1d, 2: nn.Conv2d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
AVGPOOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def dense_blocks(
    widths: list[int], slots: list[str], activation: str, features: int, make_layer: MakeLayer
) -> tuple[list[nn.Module], int]:
    """Linear blocks running their slots in order ("conv" counts as the linear slot)."""
    layers: list[nn.Module] = []
    for width in widths:
        for slot in slots:
            if slot in ("linear", "conv"):
                layers.append(nn.Linear(features, width))
                features = width
            elif slot == "act":
                layers.append(ACTIVATIONS[activation]())
            else:
                layers.append(make_layer(slot, features, 0))
    return layers, features


def _without_identities(layers: list[nn.Module]) -> nn.Sequential:
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


def mlp_network(mlp: MLP, input_shape: Any, num_classes: int, make_layer: MakeLayer) -> nn.Module:
    blocks, features = dense_blocks(mlp.hidden, mlp.slots, mlp.activation, math.prod(input_shape), make_layer)
    return _without_identities([nn.Flatten(), *blocks, nn.Linear(features, num_classes)])


class Reshape(nn.Module):
    def __init__(self, shape: Any):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        return x.reshape((len(x),) + self.shape)

    def extra_repr(self) -> str:
        return f"{self.shape}"


def cnn_network(cnn: CNN, input_shape: Any, geometry: Geometry, num_classes: int, make_layer: MakeLayer) -> nn.Module:
    dims, features, shape = geometry
    sizes = cnn.sizes(input_shape)
    layers: list[nn.Module] = [Reshape(shape)]
    for i, (width, k, s) in enumerate(zip(cnn.channels, cnn.kernels, cnn.strides)):
        for slot in cnn.slots:
            if slot == "conv":
                layers.append(CONV[dims](features, width, k, stride=s, padding=k // 2))
                features = width
            elif slot == "act":
                layers.append(ACTIVATIONS[cnn.activation]())
            else:
                layers.append(make_layer(slot, features, dims))
        if cnn.pool and min(cnn._after_conv(sizes[i], k, s)) >= 2:
            layers.append(MAXPOOL[dims](2))
    if cnn.head == "flatten":
        layers.append(nn.Flatten())
        features *= math.prod(sizes[-1])
    else:
        layers += [AVGPOOL[dims](1), nn.Flatten()]
    dense, features = dense_blocks(cnn.hidden, cnn.slots, cnn.activation, features, make_layer)
    return _without_identities([*layers, *dense, nn.Linear(features, num_classes)])


class BasicBlock(nn.Module):
    """x + drop_path(branch(x)), branch = conv > norm > act > dropout > conv > norm,
    then the activation (He et al., 2016); a 1x1 conv + norm shortcut when the
    shape changes."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, activation: str, make_layer: MakeLayer):
        super().__init__()
        conv = CONV[dims]
        self.branch = nn.Sequential(
            conv(cin, cout, 3, stride=stride, padding=1, bias=False),
            make_layer("norm", cout, dims),
            ACTIVATIONS[activation](),
            make_layer("dropout", cout, dims),
            conv(cout, cout, 3, padding=1, bias=False),
            make_layer("norm", cout, dims),
        )
        self.drop_path = make_layer("drop_path", cout, dims)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(conv(cin, cout, 1, stride=stride, bias=False), make_layer("norm", cout, dims))
        )
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: Any) -> Any:
        return self.act(self.shortcut(x) + self.drop_path(self.branch(x)))


def resnet_network(resnet: ResNet, geometry: Geometry, num_classes: int, make_layer: MakeLayer) -> nn.Module:
    dims, cin, shape = geometry
    conv = CONV[dims]
    layers: list[nn.Module] = [
        Reshape(shape),
        conv(cin, resnet.widths[0], 3, padding=1, bias=False),
        make_layer("norm", resnet.widths[0], dims),
        ACTIVATIONS[resnet.activation](),
    ]
    features = resnet.widths[0]
    for stage, (width, blocks) in enumerate(zip(resnet.widths, resnet.blocks)):
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(BasicBlock(dims, features, width, stride, resnet.activation, make_layer))
            features = width
    layers += [AVGPOOL[dims](1), nn.Flatten(), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


# --- stacked forms (issue 10): declared as a third-party plugin declares its own (docs/stacking.md) ---


def _declare_stacked_forms() -> None:
    from ablate import per_sample, same_forward  # torch: when a model is built, not when the plugin registers

    stacked_layer(Reshape)(per_sample)  # reshapes each sample: works with the seeds folded into the batch
    stacked_layer(BasicBlock)(same_forward)  # its forward only adds its children's outputs


_declare_stacked_forms()

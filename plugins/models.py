"""Models built from blocks of named slots, so the order of the slots is a factor.

``mlp`` blocks have the slots linear, norm, act, dropout (no blocks at all,
``hidden = []``, is logistic regression); ``cnn`` blocks conv, norm, act,
dropout, then a head (global average pooling or flattening) and optional dense
blocks; ``resnet`` (and ``cifar_resnet``, ResNet-18's shape) residual branches
have norm and dropout slots and a "drop_path" slot (stochastic depth) on the
branch; ``vit`` sublayers (attention, MLP) run the slots norm, sublayer,
dropout and add in the given order, so pre- against post-norm is a factor. Convolutional models take
1-D inputs (L,) or (C, L) -- MNIST-1D's (40,) is treated as (1, 40) -- and 2-D
images (C, H, W), and ask for norm/dropout layers with ``dims`` 1 or 2.

The networks themselves are built in ``_networks``, imported when a model is
built: the plugin loads, and a study is checked, without torch.
"""

from __future__ import annotations

from typing import Any

from ablate import DataInfo, Param, UserError, hookimpl

SLOTS = ("linear", "norm", "act", "dropout")
CONV_SLOTS = ("conv", "norm", "act", "dropout")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid")
VIT_SLOTS = ("norm", "sublayer", "dropout", "add")


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


def parse_vit_slots(order: str) -> list[str]:
    """A transformer sublayer's order: "norm>sublayer>dropout>add" (pre-norm),
    "sublayer>dropout>add>norm" (post-norm); the sublayer inside the residual branch."""
    found = parse_slots(order, VIT_SLOTS, "sublayer")
    if "add" not in found or found.index("add") < found.index("sublayer"):
        raise ValueError("'add' exactly once, after 'sublayer' (the slots before it form the residual branch)")
    return found


class Sizes(Param):
    """A list of integers that may be empty (``hidden = []``: no hidden layer)."""

    def describe(self) -> str:
        return "a list of integers" + self._range_words() + ", possibly empty"

    def check(self, value: Any, key: str) -> Any:
        if value == []:
            return []
        try:
            return Param([1], low=self.low, high=self.high).check(value, key)
        except UserError as err:
            err.expected = self.describe()
            raise


class PerLayer(Param):
    """An integer for every block, or a list of integers, one per block."""

    def describe(self) -> str:
        return super().describe() + ", or a list of them with one per conv block"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, list):
            return super().check(value, key)
        if not value:
            raise self._bad(value, key)
        return [Param.check(self, v, f"{key}[{i}]") for i, v in enumerate(value)]


class MLP:
    """A multilayer perceptron; each hidden block runs its slots in the given order.
    With no hidden layers it is multinomial logistic regression."""

    def __init__(self, hidden: list[int], activation: str, slots: str):
        self.hidden, self.activation, self.slots = hidden, activation, parse_slots(slots)

    def build(self, input_shape, num_classes, make_layer):
        from ablate.plugins._networks import mlp_network  # torch: when a model is built, not when the plugin registers

        return mlp_network(self, input_shape, num_classes, make_layer)


def conv_geometry(input_shape) -> tuple[int, int, tuple[int, ...]]:
    """(dims, in_channels, channel-first shape) for a conv model; (L,) -> 1-D with one channel."""
    shape = tuple(input_shape)
    if len(shape) == 1:
        return 1, 1, (1,) + shape
    if len(shape) in (2, 3):
        return len(shape) - 1, shape[0], shape
    raise ValueError(f"convolutional models take (L,), (C, L) or (C, H, W) inputs, not {shape}")


class CNN:
    """A plain convolutional network: per block the slots in the given order (conv
    with padding kernel_size // 2, so a stride-1 block keeps the size), then 2x
    max-pooling while the map is at least 2 wide (``pool``). ``kernel_size`` and
    ``stride`` are one value for every block or a list, block i taking item i
    (items beyond the last block are unused, so one list serves a factor over
    ``channels``). The head is global average pooling (``head = "avgpool"``) or flattening every
    position (``"flatten"``), then optional dense blocks of ``hidden`` widths
    (the same slots, the conv slot as a linear layer), then a linear classifier.
    With ``channels = []``, ``head = "flatten"`` it is an MLP (or, with
    ``hidden = []``, logistic regression) on the raw input."""

    def __init__(
        self,
        channels: list[int],
        kernel_size: int | list[int],
        activation: str,
        slots: str,
        pool: bool,
        stride: int | list[int],
        head: str,
        hidden: list[int],
    ):
        self.channels, self.activation = channels, activation
        self.kernels, self.strides = self._per_block(kernel_size), self._per_block(stride)
        self.slots, self.pool, self.head, self.hidden = parse_conv_slots(slots), pool, head, hidden

    def _per_block(self, value: int | list[int]) -> list[int]:
        return list(value) if isinstance(value, list) else [value] * len(self.channels)

    @staticmethod
    def _after_conv(size: tuple[int, ...], k: int, s: int) -> tuple[int, ...]:
        return tuple((n + 2 * (k // 2) - k) // s + 1 for n in size)

    def sizes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The map's spatial size after each block (the input's first)."""
        _, _, shape = conv_geometry(input_shape)
        out = [tuple(shape[1:])]
        for k, s in zip(self.kernels, self.strides):
            size = self._after_conv(out[-1], k, s)
            out.append(tuple(n // 2 for n in size) if self.pool and min(size) >= 2 else size)
        return out

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        for what, values in (("kernel_size", self.kernels), ("stride", self.strides)):
            if len(values) < len(self.channels):
                raise UserError(
                    f"cnn: {len(values)} {what} values for {len(self.channels)} conv blocks",
                    key=f"model.{what}",
                    expected=f"one value, or a list of at least {len(self.channels)}",
                )
        try:
            conv_geometry(info.input_shape)
        except ValueError as exc:
            raise UserError(f"cnn: {exc}", key="model.name", expected="a 1-D or 2-D data set") from None

    def build(self, input_shape, num_classes, make_layer):
        from ablate.plugins._networks import cnn_network  # torch: when a model is built, not when the plugin registers

        return cnn_network(self, input_shape, conv_geometry(input_shape), num_classes, make_layer)


class ResNet:
    """A small residual network (for 32x32 or 28x28 images, and 1-D signals): a
    3x3 stem (no max-pooling), then one stage per width of ``blocks`` basic blocks
    (one number for every stage, or one per stage), each stage after the first
    halving the resolution; global average pooling, linear classifier. The
    norm/dropout/drop_path slots sit in every residual branch; the stem's norm
    slot is filled too."""

    def __init__(self, widths: list[int], blocks: int | list[int], activation: str):
        self.widths, self.activation = widths, activation
        self.blocks = list(blocks) if isinstance(blocks, list) else [blocks] * len(widths)

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        if len(self.blocks) < len(self.widths):
            raise UserError(
                f"resnet: {len(self.blocks)} blocks values for {len(self.widths)} stages",
                key="model.blocks",
                expected=f"one value, or a list of at least {len(self.widths)}",
            )
        try:
            conv_geometry(info.input_shape)
        except ValueError as exc:
            raise UserError(f"resnet: {exc}", key="model.name", expected="a 1-D or 2-D data set") from None

    def build(self, input_shape, num_classes, make_layer):
        from ablate.plugins._networks import (
            resnet_network,  # torch: when a model is built, not when the plugin registers
        )

        return resnet_network(self, conv_geometry(input_shape), num_classes, make_layer)


def cifar_resnet(width: int, blocks: list[int], activation: str) -> ResNet:
    """ResNet-18 as trained on 32x32 CIFAR images (He et al., 2016; the widely used
    kuangliu/pytorch-cifar shape): a 3x3 stem without max-pooling, stages of
    width x 1, 2, 4, 8 channels with ``blocks`` basic blocks each ([2, 2, 2, 2]:
    ResNet-18, 11.2M parameters at width 64; [3, 4, 6, 3]: ResNet-34)."""
    return ResNet([width * 2**i for i in range(len(blocks))], blocks, activation)


class ViT:
    """A small vision transformer for images (C, H, W) and 1-D signals (L,) or
    (C, L): patches of ``patch`` (x ``patch``) become tokens of ``width``, then
    ``depth`` blocks of attention (``heads``) and an MLP (``mlp_ratio`` x width),
    each a residual sublayer running the slot order ``slots``; the mean token,
    a linear classifier. Pre-norm ("norm>sublayer>dropout>add") adds a norm
    before the head; post-norm ("sublayer>dropout>add>norm") normalises the sum."""

    def __init__(self, width: int, depth: int, heads: int, patch: int, mlp_ratio: int, activation: str, slots: str):
        self.width, self.depth, self.heads, self.patch = width, depth, heads, patch
        self.mlp_ratio, self.activation, self.slots = mlp_ratio, activation, parse_vit_slots(slots)

    @property
    def pre_norm(self) -> bool:
        return "norm" in self.slots and self.slots.index("norm") < self.slots.index("add")

    @hookimpl
    def ablate_check_data(self, info: DataInfo) -> None:
        if self.width % self.heads:
            divisors = [h for h in range(1, self.width + 1) if self.width % h == 0]
            raise UserError(
                f"vit: {self.heads} heads do not divide the width {self.width}",
                key="model.heads",
                expected="one of " + ", ".join(map(str, divisors)),
            )
        try:
            _, _, shape = conv_geometry(info.input_shape)
        except ValueError as exc:
            raise UserError(f"vit: {exc}", key="model.name", expected="a 1-D or 2-D data set") from None
        for n in shape[1:]:
            if n % self.patch:
                fits = [p for p in range(1, min(shape[1:]) + 1) if all(m % p == 0 for m in shape[1:])]
                raise UserError(
                    f"vit: patches of {self.patch} do not tile inputs of size {'x'.join(map(str, shape[1:]))}",
                    key="model.patch",
                    expected="one of " + ", ".join(map(str, fits)),
                )

    def build(self, input_shape, num_classes, make_layer):
        from ablate.plugins._transformer import (
            vit_network,  # torch: when a model is built, not when the plugin registers
        )

        return vit_network(self, conv_geometry(input_shape), num_classes, make_layer)


def _odd(value: int) -> None:
    if value % 2 == 0:
        raise ValueError("an odd kernel size (so 'same' padding keeps the size)")


ACTIVATION = Param("relu", choices=ACTIVATIONS, help="activation")


@hookimpl
def ablate_register_models(registry):
    registry.add(
        "mlp",
        MLP,
        help="multilayer perceptron with ablatable slot order",
        params={
            "hidden": Sizes([128, 128], low=1, high=65536, help="hidden layer widths ([] is logistic regression)"),
            "activation": ACTIVATION,
            "slots": Param(
                "linear>norm>act>dropout", validator=parse_slots, help="order of a block's slots, joined by '>'"
            ),
        },
    )
    registry.add(
        "cnn",
        CNN,
        help="1-D/2-D convolutional network with ablatable slot order",
        params={
            "channels": Sizes([16, 32], low=1, high=4096, help="channels per conv block"),
            "kernel_size": PerLayer(
                3, low=1, high=31, validator=_odd, help="odd kernel size, for every block or per block"
            ),
            "activation": ACTIVATION,
            "slots": Param(
                "conv>norm>act>dropout",
                validator=parse_conv_slots,
                help="order of a block's slots (conv, norm, act, dropout), joined by '>'",
            ),
            "pool": Param(True, help="2x max-pooling after each block"),
            "stride": PerLayer(1, low=1, high=16, help="conv stride, for every block or per block"),
            "head": Param(
                "avgpool", choices=("avgpool", "flatten"), help="global average pooling, or flatten every position"
            ),
            "hidden": Sizes([], low=1, high=65536, help="widths of dense blocks after the head (default: none)"),
        },
    )
    registry.add(
        "resnet",
        ResNet,
        help="small residual network with norm, dropout and drop_path slots",
        params={
            "widths": Param([16, 32, 64], low=1, high=4096, help="channels per stage"),
            "blocks": PerLayer(1, low=1, high=64, help="basic blocks per stage, or a list with one per stage"),
            "activation": ACTIVATION,
        },
    )
    _register_deep(registry)


def _register_deep(registry) -> None:
    """ResNet-18 in its CIFAR shape and a vision transformer."""
    registry.add(
        "cifar_resnet",
        cifar_resnet,
        help="ResNet-18 for 32x32 images (3x3 stem, no max-pool); width and blocks per stage",
        params={
            "width": Param(64, low=1, high=4096, help="channels of the first stage (then x2, x4, x8)"),
            "blocks": Param([2, 2, 2, 2], low=1, high=64, help="basic blocks per stage ([3, 4, 6, 3]: ResNet-34)"),
            "activation": ACTIVATION,
        },
    )
    registry.add(
        "vit",
        ViT,
        help="vision transformer for images and 1-D signals, pre- or post-norm by slot order",
        params={
            "width": Param(64, low=1, high=8192, help="token width"),
            "depth": Param(4, low=1, high=64, help="transformer blocks"),
            "heads": Param(4, low=1, high=256, help="attention heads (dividing the width)"),
            "patch": Param(4, low=1, high=1024, help="patch size (dividing each spatial size)"),
            "mlp_ratio": Param(2, low=1, high=16, help="MLP hidden width / width"),
            "activation": Param("gelu", choices=ACTIVATIONS, help="the MLP's activation"),
            "slots": Param(
                "norm>sublayer>dropout>add",
                validator=parse_vit_slots,
                help="order of each sublayer's slots (norm, sublayer, dropout, add): "
                "pre-norm norm>sublayer>dropout>add, post-norm sublayer>dropout>add>norm",
            ),
        },
    )

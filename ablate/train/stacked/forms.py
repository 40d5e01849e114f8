"""How a layer or a component declares its stacked form: the public API for plugins.

A stacked model trains the S runs of an arm that differ only in seed as ONE
network: every parameter and buffer gains a leading seed dimension, activations
are (S, N, ...), and each seed keeps its own numbers (initial weights, batch
order, random draws, optimizer state). docs/stacking.md is the guide.

- ``stacked_layer(LayerType)`` registers a function ``form(layers, ctx) ->
  nn.Module`` that turns the S per-seed copies of a layer into one module taking
  (S, N, ...) inputs. Return None to decline (the generic torch.func path is
  used instead). A layer type with no form is stacked by the generic path.
  ``stacked_layer(LayerType, absent=True)`` says the form also takes None for a
  seed whose network lacks the layer (it passes that seed's input through
  unchanged) and copies whose settings differ (dropout's rate): arms whose
  networks differ only in such layers can then share a stack (stacked_align).
- ``stacked_component(ComponentType)`` registers ``form(instances, ctx) ->
  object`` for a component's per-step hooks that see the whole model
  (``ablate_loss_penalty``, ``ablate_after_step``): the object implements the
  same hook names and is called once per step with the stacked model.

Lookups use the exact type: a subclass may change ``forward``, so it declares its own.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from ablate.train.stacked.form_registry import (
    ComponentForm,
    LayerForm,
    component_form,
    layer_form,
    stacked_component,
    stacked_layer,
    takes_absent,
)

__all__ = [
    "ComponentForm",
    "LayerForm",
    "SeedStreams",
    "StackContext",
    "component_form",
    "elementwise",
    "layer_form",
    "per_sample",
    "same_forward",
    "stacked_component",
    "stacked_layer",
    "takes_absent",
]


class SeedStreams:
    """One random stream per seed of the stack, in stack order, for random layers.

    Each starts from the device's default generator as it stood after that seed's
    model was built (where its unstacked run's dropout draws from), so a seed's
    draws depend on its seed alone, never on the group it trained in. On a CPU the
    stream is a NumPy SFC64 bit generator seeded by that torch generator's first
    draw: a keep mask is its raw 32-bit words compared with a threshold, three times
    as fast as drawing normals from torch's Mersenne Twister (P(keep) exact to 2^-32);
    on a GPU it is the torch generator itself.
    """

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = list(generators)
        self._bits: list[np.random.SFC64] = [
            np.random.SFC64(int(torch.randint(0, 2**62, (1,), generator=g, device=g.device)))
            for g in self.generators
            if g.device.type == "cpu"
        ]
        self._divisors: dict[tuple[object, ...], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.generators)

    def select(self, keep: Sequence[int]) -> None:
        """Keep the seeds at these stack positions (the others have stopped)."""
        self.generators = [self.generators[i] for i in keep]
        if self._bits:
            self._bits = [self._bits[i] for i in keep]

    def bernoulli(self, shape: Sequence[int], p: float, like: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """(S, *shape) of 0/1 draws with P(1) = p, each seed's slice from its own stream."""
        return self.keep_masks(shape, [p] * len(self.generators), like, scaled)

    def keep_masks(
        self, shape: Sequence[int], keep: Sequence[float], like: torch.Tensor, scaled: bool = False
    ) -> torch.Tensor:
        """(S, *shape) of 0/1 draws, seed i's with P(1) = keep[i]; a seed whose
        ``keep`` is 0 or 1 draws nothing (its slice is all 0 or all 1). ``scaled``:
        a kept element is 1 / keep[i] instead of 1 (dropout's mask), the number
        torch's division of the 0/1 mask by keep gives, made while the seed's slice
        is in cache instead of in another pass over the whole stack."""
        out = torch.empty((len(self.generators), *shape), dtype=like.dtype, device=like.device)
        draw = [i for i, p in enumerate(keep) if 0 < p < 1]
        for i, p in enumerate(keep):
            if not 0 < p < 1:
                out[i].fill_(float(p >= 1))
        if like.device.type == "cpu" and like.dtype in _NUMPY_FLOATS and len(self._bits) == len(keep):
            for i in draw:
                flat = out[i].numpy().reshape(-1)
                _below(self._bits[i], keep[i], flat)
                if scaled:
                    flat *= flat.dtype.type(1) / flat.dtype.type(keep[i])
            return out
        for i in draw:  # a standard normal below its p-quantile
            torch.randn(tuple(shape), generator=self.generators[i], dtype=like.dtype, device=like.device, out=out[i])
        if len(draw) == len(keep) and len(set(keep)) == 1:
            out.lt_(NormalDist().inv_cdf(keep[0]))  # one rate: one comparison for the whole stack
            return out.div_(keep[0]) if scaled else out
        for i in draw:
            out[i] = out[i] < NormalDist().inv_cdf(keep[i])
        return out.div_(self._divisor(keep, out)) if scaled else out

    def _divisor(self, keep: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """(S, 1, ...) keep probabilities (1 for a seed that draws nothing), made once
        per set of rates and device: no host-to-device copy a step."""
        key = (tuple(keep), like.device, like.dtype, like.dim())
        if key not in self._divisors:
            values = [p if 0 < p < 1 else 1.0 for p in keep]
            self._divisors[key] = torch.tensor(values, dtype=like.dtype, device=like.device).view(
                (len(keep),) + (1,) * (like.dim() - 1)
            )
        return self._divisors[key]


_NUMPY_FLOATS = (torch.float32, torch.float64, torch.float16)


def _below(bits: np.random.SFC64, p: float, out: np.ndarray) -> None:
    """Fill ``out`` with 1 where a fresh 32-bit word is below p * 2^32, else 0."""
    words = bits.random_raw((out.size + 1) // 2).view(np.uint32)[: out.size]
    np.less(words, np.uint32(min(max(round(p * 2**32), 1), 2**32 - 1)), out=out, casting="unsafe")


class StackContext:
    """What a form is built with: the seed streams, the per-seed models
    (``models``, in stack order), and a record pairing each stacked tensor with
    the per-seed tensors it holds (to copy a seed's weights out for its stopping
    rules and final measurement). ``stacked(t)`` finds the stacked tensor of a
    per-seed tensor: a component form selects parameters on ``models[0]`` and
    works on their stacked tensors. ``seat_values(values, like)`` gives a form
    its instances' own values (one per seed, in build order) for the seeds still
    in the stack: a component that declares ``per_seat`` parameters reads them so."""

    def __init__(
        self, streams: SeedStreams, fallback: LayerForm, models: Sequence[nn.Module] = (), generic: bool = False
    ):
        self.streams, self.fallback, self.generic = streams, fallback, generic
        self.models = list(models)
        self.pairs: list[tuple[torch.Tensor, list[torch.Tensor]]] = []
        self._stacked: dict[int, torch.Tensor] = {}
        self.positions = list(range(len(self.models)))  # the build index of each seed still in the stack
        self._values: dict[tuple[object, ...], torch.Tensor] = {}

    def select(self, keep: Sequence[int]) -> None:
        """Keep the seeds at these stack positions (the others have stopped)."""
        self.positions = [self.positions[i] for i in keep]
        self.streams.select(keep)

    def seat_values(self, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """(S,) the values of the seeds still in the stack, from one per seed in
        build order, in ``like``'s dtype and device (each rounded once, as a number
        passed to torch is in the run alone); made once per set of seeds."""
        key = (tuple(values), tuple(self.positions), like.dtype, like.device)
        if key not in self._values:
            chosen = [float(values[i]) for i in self.positions]
            self._values[key] = torch.tensor(chosen, dtype=like.dtype, device=like.device)
        return self._values[key]

    def stack(self, layers: Sequence[nn.Module | None]) -> nn.Module:
        """The stacked form of S per-seed copies of a layer (its form, else the
        generic path). None stands for a seed without the layer (see ``absent``)."""
        present = [m for m in layers if m is not None]
        kind = type(present[0])
        if len(present) < len(layers) and (self.generic or not takes_absent(kind)):
            raise TypeError(f"{kind.__name__} has no stacked form for seeds without it")
        form = None if self.generic else layer_form(kind)
        module = form(list(layers), self) if form is not None else None
        return module if module is not None else self._checked(self.fallback(list(layers), self))

    @staticmethod
    def _checked(module: nn.Module | None) -> nn.Module:
        if module is None:
            raise TypeError("the generic stacked form declined a layer")
        return module

    def parameter(self, layers: Sequence[nn.Module], name: str) -> nn.Parameter | None:
        """The layers' parameter ``name`` stacked along a new first axis (None if they have none)."""
        tensors = [getattr(layer, name) for layer in layers]
        return None if tensors[0] is None else self.parameter_of(tensors)

    def parameter_of(self, tensors: Sequence[torch.Tensor]) -> nn.Parameter:
        stacked = nn.Parameter(torch.stack([t.detach() for t in tensors]), requires_grad=tensors[0].requires_grad)
        self._record(stacked, tensors)
        return stacked

    def buffer(self, layers: Sequence[nn.Module], name: str) -> torch.Tensor | None:
        tensors = [getattr(layer, name) for layer in layers]
        return None if tensors[0] is None else self.buffer_of(tensors)

    def buffer_of(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([t.detach() for t in tensors])
        self._record(stacked, tensors)
        return stacked

    def _record(self, stacked: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
        self.pairs.append((stacked, list(tensors)))
        for t in tensors:
            self._stacked[id(t)] = stacked

    def stacked(self, tensor: torch.Tensor) -> torch.Tensor:
        """The stacked tensor holding this per-seed tensor (any seed's copy) as one slice."""
        return self._stacked[id(tensor)]


def elementwise(layers: list[nn.Module], ctx: StackContext) -> nn.Module:
    """Form of a layer with no state that works on any shape (activations): reused as is."""
    return layers[0]


class PerSample(nn.Module):
    """A stateless layer that treats dim 0 as the batch (pooling, flatten, reshape),
    applied with the seeds folded into the batch."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x.flatten(0, 1))
        return out.unflatten(0, x.shape[:2])


def per_sample(layers: list[nn.Module], ctx: StackContext) -> nn.Module:
    """Form of a stateless per-sample layer."""
    return PerSample(layers[0])


def same_forward(layers: list[nn.Module], ctx: StackContext) -> nn.Module | None:
    """Form of a container whose own forward works on stacked tensors once its
    children are stacked (it only calls them and combines their outputs element-wise):
    a copy with every child replaced by its stacked form. Declines a container with
    parameters or buffers of its own."""
    first = layers[0]
    if first._parameters or first._buffers:
        return None
    clone = copy.copy(first)
    clone._modules = {
        name: None if child is None else ctx.stack([m.get_submodule(name) for m in layers])
        for name, child in first._modules.items()
    }
    return clone

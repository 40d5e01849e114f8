"""The generic stacked form: any module, stacked by torch.func.

The seeds' parameters and buffers are stacked (``stack_module_state``'s layout)
and the module runs under ``vmap(functional_call(...), randomness="different")``,
so it needs no per-layer work; batch norm's running statistics are batched
buffers updated in place. Random layers draw from torch's global generator (one
draw per seed, different across seeds) rather than from each seed's stream, so
with this form a random layer's draws depend on the group a seed trained in.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from ablate.train.stacked.forms import StackContext


class VmapStack(nn.Module):
    """S copies of a module run as one under vmap; tensors named p0.., b0.. in
    the template's order (the context pairs them with the per-seed tensors)."""

    def __init__(self, modules: list[nn.Module], ctx: StackContext):
        super().__init__()
        template = copy.deepcopy(modules[0])
        object.__setattr__(self, "template", template)  # not a submodule: its own tensors are never used
        self.param_names = [n for n, _ in template.named_parameters()]
        self.buffer_names = [n for n, b in template.named_buffers() if b is not None]
        for i, name in enumerate(self.param_names):
            self.register_parameter(f"p{i}", ctx.parameter_of([m.get_parameter(name) for m in modules]))
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"b{i}", ctx.buffer_of([m.get_buffer(name) for m in modules]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        template: nn.Module = self.__dict__["template"]
        template.train(self.training)
        params = {n: getattr(self, f"p{i}") for i, n in enumerate(self.param_names)}
        buffers = {n: getattr(self, f"b{i}") for i, n in enumerate(self.buffer_names)}

        def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], inp: torch.Tensor) -> Any:
            return functional_call(template, (p, b), (inp,))

        out: torch.Tensor = vmap(call, randomness="different")(params, buffers, x)
        return out

    def extra_repr(self) -> str:
        return f"vmap over {type(self.__dict__['template']).__name__}"


def vmap_form(modules: list[nn.Module], ctx: StackContext) -> nn.Module:
    """The fallback for a layer with no stacked form of its own."""
    return VmapStack(modules, ctx)

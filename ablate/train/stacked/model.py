"""One stacked model from S per-seed models, and what a stack does as seeds stop:
drop their slices (weights, buffers, optimizer state, random streams) and copy a
seed's weights out to its own model (or back in)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import ablate.train.stacked.layers  # noqa: F401  (registers the forms of torch's layers)
from ablate.train.optimizers import FlatOptimizer, Optimizer
from ablate.train.stacked.forms import SeedStreams, StackContext
from ablate.train.stacked.generic import vmap_form


def stack_models(
    models: Sequence[nn.Module], streams: SeedStreams, generic: bool = False
) -> tuple[nn.Module, StackContext]:
    """The stacked model and its context; ``generic`` stacks everything through
    torch.func (the fallback path, forced for measurement and tests)."""
    ctx = StackContext(streams, vmap_form, models, generic)
    with torch.no_grad():
        model = ctx.stack(list(models))
    return model, ctx


def uses_generic(model: nn.Module) -> bool:
    """Whether any part of a stacked model runs through the generic torch.func path."""
    return any(type(m).__name__ == "VmapStack" for m in model.modules())


@torch.no_grad()
def select_seeds(model: nn.Module, optimizer: Optimizer, keep: Sequence[int]) -> None:
    """Keep only the seeds at these stack positions. Tensors are sliced in place
    (``.data``), so everything holding them (the optimizer, a component's cached
    parameter list, the context's pairs) stays valid."""
    if not keep:
        return
    for b in model.buffers():
        b.data = b.data[torch.as_tensor(list(keep), device=b.device)]
    if isinstance(optimizer, FlatOptimizer):
        optimizer.select(keep)
        return
    index = None
    for p in model.parameters():
        index = torch.as_tensor(list(keep), device=p.device) if index is None else index
        seeds = p.shape[0]
        p.grad = None
        p.data = p.data[index]
        state = optimizer.state.get(p, {})
        for key, value in list(state.items()):
            if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == seeds:
                state[key] = value[index]


@torch.no_grad()
def copy_out(ctx: StackContext, position: int, seed_index: int) -> None:
    """Copy the weights at stack ``position`` into seed ``seed_index``'s own model."""
    for stacked, per_seed in ctx.pairs:
        per_seed[seed_index].copy_(stacked[position])


@torch.no_grad()
def copy_in(ctx: StackContext, position: int, seed_index: int) -> None:
    """Copy seed ``seed_index``'s own model back into the stack at ``position``."""
    for stacked, per_seed in ctx.pairs:
        stacked[position].copy_(per_seed[seed_index])

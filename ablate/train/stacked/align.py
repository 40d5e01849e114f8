"""Networks of different arms in one stack. Arms whose networks are the same but
for layers whose stacked form takes absent seeds (``stacked_layer(...,
absent=True)``: the dropout family) share a stack: in a Sequential, a seed
without such a layer gets None at its place and passes its input through, and
copies may differ in their settings (dropout's rate). Everything else must match:
layer types, their settings and parameter shapes."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ablate.train.stacked.forms import takes_absent

Column = list[nn.Module | None]


def align(containers: Sequence[nn.Module]) -> list[Column] | None:
    """The children of S Sequentials, position by position (one entry per seed),
    None where a seed lacks a layer that may be absent; identity layers left out.
    None when they do not line up: other layers differ in number, or seeds
    differ in how many absent-capable layers sit between two others."""
    rows = [_anchors_and_gaps(c) for c in containers]
    count = len(rows[0][0])
    if any(len(anchors) != count for anchors, _ in rows):
        return None
    columns: list[Column] = []
    for i in range(count + 1):
        gaps = [gaps[i] for _, gaps in rows]
        width = max(len(g) for g in gaps)
        if any(0 < len(g) < width for g in gaps):
            return None
        columns += [[g[k] if g else None for g in gaps] for k in range(width)]
        if i < count:
            columns.append([anchors[i] for anchors, _ in rows])
    return columns


def _anchors_and_gaps(container: nn.Module) -> tuple[list[nn.Module], list[list[nn.Module]]]:
    """The layers that must be present (anchors) and, around them, the runs of absent-capable ones."""
    anchors: list[nn.Module] = []
    gaps: list[list[nn.Module]] = [[]]
    for child in container.children():
        if isinstance(child, nn.Identity):
            continue
        if takes_absent(type(child)):
            gaps[-1].append(child)
        else:
            anchors.append(child)
            gaps.append([])
    return anchors, gaps


def network_problem(models: Sequence[nn.Module]) -> str | None:
    """Why these networks (one per arm) cannot share a stack, or None."""
    return None if _same(list(models)) else "the arms build different networks"


def _same(layers: Column) -> bool:
    present = [m for m in layers if m is not None]
    if not present:
        return True
    first = present[0]
    if any(_kind(m) != _kind(first) for m in present):
        return False
    if takes_absent(type(first)):  # its stacked form takes per-seed settings and absent seeds
        return not any(m._modules for m in present)
    if len(present) < len(layers):
        return False
    if type(first) is nn.Sequential:
        columns = align(present)
        return columns is not None and all(_same(c) for c in columns)
    if any(m.extra_repr() != first.extra_repr() or _shapes(m) != _shapes(first) for m in present):
        return False
    names = list(first._modules)
    if any(list(m._modules) != names for m in present):
        return False
    return all(_same([m._modules[n] for m in present]) for n in names)


def _kind(module: nn.Module) -> tuple[str, str]:
    """A layer's class by name: a parametrized layer (spectral norm) gets a class of its own per instance."""
    return type(module).__module__, type(module).__qualname__


def _shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """The module's own parameters and buffers, by name and shape."""
    own = [*module._parameters.items(), *module._buffers.items()]
    return [(name, tuple(t.shape)) for name, t in own if t is not None]

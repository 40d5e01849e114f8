"""`ablate plugins [--study FILE] [NAME]`: every component by kind with the
plugin that provides it and every parameter's default, accepted values and
help; with NAME, one component in detail; with --study, the plugin files that
study names are loaded too."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import UserError, did_you_mean
from ablate.plugin.hookcheck import MARKER, TRIAL, component_class
from ablate.plugin.naming import dist_key, split
from ablate.plugin.registry import KINDS
from ablate.study.study_file import study_registry

if TYPE_CHECKING:  # the registry imports torch: only when the command runs
    from ablate.plugin.registry import Component, Registry


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `plugins` sub-command's arguments."""
    p = sub.add_parser("plugins", help="list every component by kind with its parameters, or one in detail")
    p.add_argument(
        "name",
        nargs="?",
        default=None,
        help="one component in detail: NAME, DIST:NAME, KIND:NAME or KIND:DIST:NAME "
        "(e.g. dropout, ablate:dropout, norm:batchnorm)",
    )
    p.add_argument("--study", type=Path, default=None, help="also load the plugin files this study names")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """List the components (or detail one); exit 0."""

    registry = study_registry(args.study)
    if args.name:
        for comp in find(registry, args.name):
            detail(comp, out)
        return 0
    listing(registry, out)
    return 0


def find(registry: Registry, wanted: str) -> list[Component]:
    """The components called NAME or DIST:NAME (of any kind), optionally after KIND:,
    or a UserError with the nearest. A short name lists every plugin's component of that name."""

    head, _, rest = wanted.partition(":")
    kind = head.strip() if rest and head.strip() in KINDS else ""
    dist, name = split(rest if kind else wanted)
    found = [
        c
        for c in registry.all()
        if c.name == name and (not kind or c.kind == kind) and (not dist or dist_key(dist) == dist_key(c.dist))
    ]
    if not found:
        if kind:
            registry.find(kind, rest, key="NAME")  # names the nearest of that kind
        every = sorted({c.name for c in registry.all()} | {c.qualified for c in registry.all()})
        raise UserError(
            f"no component is named {wanted!r}",
            key="NAME",
            expected="a name `ablate plugins` lists, DIST:NAME or KIND:NAME",
            hint=did_you_mean(f"{dist_key(dist)}:{name}" if dist else name, every),
        )
    return found


def param_lines(comp: Component, indent: str) -> list[str]:
    """One line per parameter: name = default, the accepted values, the help."""
    lines = []
    for pname, spec in comp.params.items():
        text = f"{indent}{pname} = {spec.default!r}  ({spec.describe()})"
        lines.append(text + (f"  {spec.help}" if spec.help else ""))
    return lines


def listing(registry: Registry, out: Callable[[str], None]) -> None:
    """Every component by kind, its parameters indented under it."""

    comps = registry.all()
    width = max((len(registry.shown(c)) for c in comps), default=4)
    for kind in KINDS:
        out(f"{kind}:")
        for c in (c for c in comps if c.kind == kind):
            out(f"  {registry.shown(c):<{width}}  [{c.plugin}]  {c.help}".rstrip())
            for line in param_lines(c, " " * 6):
                out(line)
    _clashes(registry, out)
    _not_loaded(registry, out)


def _clashes(registry: Registry, out: Callable[[str], None]) -> None:
    """Short names several plugins register: a study must write them qualified."""
    shared = sorted({(c.kind, c.name) for c in registry.all() if registry.shown(c) != c.name})
    for kind, name in shared:
        qualified = " or ".join(c.qualified for c in registry.providers(kind, name))
        out(f"{kind} {name!r} is registered by several plugins: a study names it {qualified}")


def _not_loaded(registry: Registry, out: Callable[[str], None]) -> None:
    for plugin, why in registry.failed.items():
        out(f"not loaded: {plugin}: {why.splitlines()[0]}")
    for plugin in registry.disabled:
        out(f"switched off: {plugin}")


def hooks_of(comp: Component) -> list[str]:
    """The trial hooks the component's class implements."""

    cls = component_class(comp.factory)
    if cls is None:
        return []
    return [n for n in TRIAL if getattr(getattr(cls, n, None), MARKER, None) is not None]


def detail(comp: Component, out: Callable[[str], None]) -> None:
    """One component: where it comes from, what it does, its parameters and hooks."""
    out(f"{comp.kind} {comp.name}  [{comp.plugin}]")
    out(f"  qualified name: {comp.qualified}")
    if comp.help:
        out(f"  {comp.help}")

    factory = comp.factory
    out(f"  factory: {getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', factory)!s}")
    cls = component_class(factory)
    doc = inspect.getdoc(cls) if cls is not None else inspect.getdoc(factory)
    if doc:
        out("")
        for line in doc.splitlines():
            out(f"  {line}".rstrip())
    out("")
    out("  parameters:" if comp.params else "  parameters: none")
    for line in param_lines(comp, " " * 4):
        out(line)
    hooks = hooks_of(comp)
    if hooks:
        out("  hooks: " + ", ".join(hooks))

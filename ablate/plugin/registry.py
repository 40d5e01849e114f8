"""Components by kind and name, with did-you-mean errors.

Each component has a short name and a qualified one, ``DIST:NAME``
(ablate.plugin.naming). Two plugins may register one short name: both load, and the
short name is an error only where a study uses it (ablate.plugin.ambiguity)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ablate.components import Param
from ablate.errors import UserError, did_you_mean
from ablate.plugin.ambiguity import ambiguous
from ablate.plugin.hookcheck import check_component
from ablate.plugin.naming import BUILTIN, dist_key, dist_of, normalise, split

# kind -> the registration hook that fills it
KINDS: dict[str, str] = {
    "norm": "ablate_register_norms",
    "regularizer": "ablate_register_regularizers",
    "augmentation": "ablate_register_augmentations",
    "stopping": "ablate_register_stopping_rules",
    "dataset": "ablate_register_datasets",
    "model": "ablate_register_models",
}

# Kinds where "none" means "no component": every such kind's off value.
SWITCHABLE = ("norm", "regularizer", "augmentation", "stopping")
OFF = "none"


__all__ = ["KINDS", "OFF", "SWITCHABLE", "Component", "Registrar", "Registry", "normalise"]


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)
    help: str = ""
    plugin: str = ""

    @property
    def dist(self) -> str:
        """The distribution that provides it, as its qualified name shows it."""
        return dist_of(self.plugin)

    @property
    def qualified(self) -> str:
        """'DIST:NAME', e.g. 'ablate:spectral_norm', 'ablate-extras:spectral_norm'."""
        return f"{self.dist}:{self.name}"

    @property
    def ref(self) -> str:
        """The name a run stores, so part of its identity: qualified, so a run trained
        with one provider is never reused for another; bare for ablate's own, which is
        what runs stored before qualified names hold."""
        return self.name if self.dist == BUILTIN else self.qualified


class Registrar:
    """Handed to one plugin's registration hook for one kind of component."""

    def __init__(self, registry: Registry, kind: str, plugin: str):
        self._registry = registry
        self.kind = kind
        self.plugin = plugin

    def add(
        self, name: str, factory: Callable[..., Any], *, params: dict[str, Param] | None = None, help: str = ""
    ) -> None:
        """Register ``factory`` under ``name``; its keyword arguments are ``params``.

        Checked here, so an author's mistake shows when the plugin loads: the
        hooks of the class the factory makes, each parameter's default against
        its own range and choices, and the factory's signature against the params.
        """
        comp = Component(self.kind, normalise(name), factory, dict(params or {}), help, self.plugin)
        where = f"plugin {self.plugin!r}: {self.kind} {comp.name!r}"
        if ":" in comp.name or not comp.name:
            raise UserError(
                f"plugin {self.plugin!r}: {self.kind} name {name!r} is not a short name",
                expected="a non-empty name without ':' (ablate puts the distribution before ':')",
            )
        for pname, spec in comp.params.items():
            if not isinstance(spec, Param):
                raise UserError(
                    f"{where}: parameter {pname!r} is declared as {spec!r}", expected="an ablate.Param(default, ...)"
                )
            problem = default_problem(spec)
            if problem:
                raise UserError(
                    f"{where}: the default of parameter {pname!r} ({spec.default!r}) is {problem}",
                    expected=spec.describe(),
                )
        check_signature(factory, comp.params, where)
        check_component(factory, where, self.kind)
        self._registry._add(comp)


def default_problem(spec: Param) -> str | None:
    """Why a parameter's default breaks its own range or choices, or None."""
    values = spec.default if isinstance(spec.default, list) else [spec.default]
    for v in values:
        if spec.choices is not None and not isinstance(spec.default, list) and v not in spec.choices:
            return "not one of its own choices"
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (not math.isfinite(v) or not spec._in_range(v)):
            return "outside its own range"
    return None


def check_signature(factory: Callable[..., Any], params: dict[str, Param], where: str) -> None:
    """The factory must accept every declared parameter by keyword and need no other."""
    if not callable(factory):
        raise UserError(
            f"{where}: the factory {factory!r} is not callable",
            expected="a class or function taking the declared params as keyword arguments",
        )
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check
    accepted = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    extra = [n for n in params if n not in accepted and not takes_any]
    missing = [
        n
        for n, p in sig.parameters.items()
        if p.default is p.empty
        and n not in params
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
    ]
    if extra or missing:
        name = getattr(factory, "__qualname__", repr(factory))
        parts = [f"does not accept declared parameter(s) {', '.join(map(repr, extra))}"] if extra else []
        parts += [f"needs {', '.join(map(repr, missing))}, which no Param declares"] if missing else []
        hint = did_you_mean(extra[0], accepted) if extra else did_you_mean(missing[0], params)
        raise UserError(
            f"{where}: {name}{sig} " + " and ".join(parts),
            expected="the factory's keyword arguments = the declared params: " + (", ".join(params) or "none"),
            hint=hint,
        )


class Registry:
    """All components known to one plugin manager, by kind and by ``Component.ref``."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.failed: dict[str, str] = {}  # plugin -> why it did not load (its components are missing)
        self.disabled: list[str] = []  # plugins switched off by the user
        self.file_versions: dict[str, str] = {}  # "file:NAME.py" -> its name and a digest of its text

    def drop_plugin(self, plugin: str) -> None:
        """Forget every component a plugin added (it failed part-way through loading)."""
        for items in self._items.values():
            for ref in [r for r, c in items.items() if c.plugin == plugin]:
                del items[ref]

    def _add(self, comp: Component) -> None:
        if comp.name == OFF:
            raise UserError(f"plugin {comp.plugin!r} registers a {comp.kind} named 'none', which is reserved for 'off'")
        have = self._items[comp.kind].get(comp.ref)
        if have is not None:  # one distribution (or file) twice: another's same short name is fine
            raise UserError(
                f"{comp.kind} {comp.qualified!r} is registered twice: by plugin "
                f"{have.plugin!r} and by plugin {comp.plugin!r}",
                expected="a name of its own for each component of one distribution",
            )
        self._items[comp.kind][comp.ref] = comp

    def providers(self, kind: str, name: str) -> list[Component]:
        """Every component of ``kind`` whose short name is ``name``."""
        return [c for c in self._items[kind].values() if c.name == name]

    def shown(self, comp: Component) -> str:
        """The name to write in a study: the short one where no other plugin has it, else qualified."""
        return comp.name if len(self.providers(comp.kind, comp.name)) == 1 else comp.qualified

    def names(self, kind: str) -> list[str]:
        names = sorted({self.shown(c) for c in self._items[kind].values()})
        return names + [OFF] if kind in SWITCHABLE else names

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in sorted(self._items[kind].values(), key=lambda c: (c.name, c.dist))]

    def get(self, kind: str, name: str, key: str | None = None) -> Component:
        """The component a run's stored name (``Component.ref``) stands for: a bare name of
        ablate's is ablate's even where a plugin has one like it. Any other name is
        looked up as a study's would be (``find``)."""
        if kind in self._items and isinstance(name, str) and name in self._items[kind]:
            return self._items[kind][name]
        return self.find(kind, name, key)

    def find(
        self,
        kind: str,
        name: str,
        key: str | None = None,
        given: Collection[str] | None = None,
        change: Callable[[str], str] | None = None,
    ) -> Component:
        """The component a study's name means: 'DIST:NAME', or a short name only one
        plugin registers. Else a UserError naming the nearest valid name, or (a short
        name of several plugins) naming them all; ``given`` and ``change`` tell that
        error the parameters the study gives it and how to rewrite the study's line."""
        if kind not in self._items:
            raise UserError(
                f"unknown component kind {kind!r}",
                key=key,
                expected="one of " + ", ".join(KINDS),
                hint=did_you_mean(kind, KINDS),
            )
        if not isinstance(name, str):
            raise UserError(
                f"{name!r} is not a {kind} name", key=key, expected="a string, one of " + ", ".join(self.names(kind))
            )
        dist, short = split(name)
        found = [c for c in self.providers(kind, short) if not dist or dist_key(dist) == dist_key(c.dist)]
        if len(found) == 1:
            return found[0]
        if found:
            raise ambiguous(kind, short, found, key, given, change)
        raise self._unknown(kind, name, dist, short, key)

    def _unknown(self, kind: str, name: str, dist: str, short: str, key: str | None) -> UserError:
        if dist:
            choices = [c.qualified for c in self._items[kind].values()]
            hints = [did_you_mean(f"{dist_key(dist)}:{short}", choices)]
            hints += [f"{c.qualified} is registered" for c in self.providers(kind, short)]
        else:
            hints = [did_you_mean(short, self.names(kind))]
        hints += [
            f"plugin {p!r} failed to load, so its components are missing: {why}" for p, why in self.failed.items()
        ]
        return UserError(
            f"unknown {kind} {name!r}",
            key=key,
            expected="one of " + ", ".join(self.names(kind)),
            hint="\n  ".join(h for h in hints if h) or None,
        )

    def resolve_params(self, kind: str, name: str, given: dict[str, Any], key: str) -> dict[str, Any]:
        """Check ``given`` against the component's params and fill in defaults."""
        comp = self.get(kind, name, key)
        out: dict[str, Any] = {}
        for pname, value in given.items():
            spec = comp.params.get(pname)
            if spec is None:
                accepted = ", ".join(comp.params) or "no parameters"
                raise UserError(
                    f"{kind} {self.shown(comp)!r} has no parameter {pname!r}",
                    key=f"{key}.{pname}",
                    expected=f"one of: {accepted}",
                    hint=did_you_mean(pname, comp.params),
                )
            out[pname] = spec.check(value, f"{key}.{pname}")
        for pname, spec in comp.params.items():
            out.setdefault(pname, spec.default)
        return out

    def create(self, kind: str, name: str, params: dict[str, Any]) -> Any:
        """Instantiate a component with already-resolved params."""
        return self.get(kind, name).factory(**params)

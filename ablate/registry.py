"""Components by kind and short name, with did-you-mean errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ablate.components import Param
from ablate.errors import UserError, did_you_mean

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


def normalise(name: str) -> str:
    """Names are short, lower case, with underscores: 'Batch-Norm' -> 'batch_norm'."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)
    help: str = ""
    plugin: str = ""


class Registrar:
    """Handed to one plugin's registration hook for one kind of component."""

    def __init__(self, registry: "Registry", kind: str, plugin: str):
        self._registry = registry
        self.kind = kind
        self.plugin = plugin

    def add(self, name: str, factory: Callable[..., Any], *, params: dict[str, Param] | None = None,
            help: str = "") -> None:
        """Register ``factory`` under ``name``; its keyword arguments are ``params``."""
        self._registry._add(Component(self.kind, normalise(name), factory, dict(params or {}),
                                      help, self.plugin))


class Registry:
    """All components known to one plugin manager."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def _add(self, comp: Component) -> None:
        if comp.name == OFF:
            raise UserError(f"plugin {comp.plugin!r} registers a {comp.kind} named 'none', "
                            "which is reserved for 'off'")
        have = self._items[comp.kind].get(comp.name)
        if have is not None:
            raise UserError(f"{comp.kind} {comp.name!r} is registered twice: by plugin "
                            f"{have.plugin!r} and by plugin {comp.plugin!r}")
        self._items[comp.kind][comp.name] = comp

    def names(self, kind: str) -> list[str]:
        names = sorted(self._items[kind])
        return names + [OFF] if kind in SWITCHABLE else names

    def all(self) -> list[Component]:
        return [c for kind in KINDS for _, c in sorted(self._items[kind].items())]

    def get(self, kind: str, name: str, key: str | None = None) -> Component:
        """The component, or a UserError naming the nearest valid name."""
        if kind not in self._items:
            raise UserError(f"unknown component kind {kind!r}", key=key,
                            expected="one of " + ", ".join(KINDS), hint=did_you_mean(kind, KINDS))
        if not isinstance(name, str):
            raise UserError(f"{name!r} is not a {kind} name", key=key,
                            expected="a string, one of " + ", ".join(self.names(kind)))
        comp = self._items[kind].get(normalise(name))
        if comp is None:
            raise UserError(f"unknown {kind} {name!r}", key=key,
                            expected="one of " + ", ".join(self.names(kind)),
                            hint=did_you_mean(normalise(name), self.names(kind)))
        return comp

    def resolve_params(self, kind: str, name: str, given: dict[str, Any], key: str) -> dict[str, Any]:
        """Check ``given`` against the component's params and fill in defaults."""
        comp = self.get(kind, name, key)
        out: dict[str, Any] = {}
        for pname, value in given.items():
            spec = comp.params.get(pname)
            if spec is None:
                accepted = ", ".join(comp.params) or "no parameters"
                raise UserError(f"{kind} {comp.name!r} has no parameter {pname!r}",
                                key=f"{key}.{pname}", expected=f"one of: {accepted}",
                                hint=did_you_mean(pname, comp.params))
            out[pname] = spec.check(value, f"{key}.{pname}")
        for pname, spec in comp.params.items():
            out.setdefault(pname, spec.default)
        return out

    def create(self, kind: str, name: str, params: dict[str, Any]) -> Any:
        """Instantiate a component with already-resolved params."""
        return self.get(kind, name).factory(**params)

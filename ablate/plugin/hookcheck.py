"""Load-time checks of hook implementations, so a plugin author's mistake is an
error naming the plugin, the hook and the nearest valid name when the plugin is
loaded, instead of a hook that is silently never called or a run that crashes.

pluggy checks the argument names of a plugin's hooks when the plugin is
registered, and ``check_pending()`` finds hooks with no spec; component
classes are only registered (as instances) inside a run, so their hooks are
checked here when the component is registered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from ablate import PROJECT, hookspecs
from ablate.errors import UserError, did_you_mean

MARKER = PROJECT + "_impl"  # the attribute pluggy's HookimplMarker sets


def _spec_args() -> dict[str, tuple[str, ...]]:
    """Every hook's name and argument names, from the hookspecs module."""
    return {
        name: tuple(inspect.signature(fn).parameters)
        for name, fn in vars(hookspecs).items()
        if name.startswith(PROJECT + "_") and inspect.isfunction(fn)
    }


SPECS = _spec_args()
REGISTRATION = tuple(n for n in SPECS if n.startswith("ablate_register_"))
TRIAL = tuple(n for n in SPECS if n not in REGISTRATION)


def _routine(attr: Any) -> Callable[..., Any] | None:
    """The function behind a plain, static or class method attribute, else None."""
    if isinstance(attr, (staticmethod, classmethod)):
        attr = attr.__func__
    return attr if inspect.isroutine(attr) else None


def _hook_attrs(obj: Any) -> Iterator[tuple[str, Callable[..., Any], bool, bool]]:
    """(name, function, marked as a hookimpl, takes self/cls first) for each routine."""
    for name in dir(obj):
        try:
            raw = inspect.getattr_static(obj, name)
        except AttributeError:
            continue
        fn = _routine(raw)
        if fn is None:
            continue
        bound = inspect.isclass(obj) and not isinstance(raw, staticmethod)
        yield name, fn, getattr(fn, MARKER, None) is not None, bound


def _required_args(fn: Callable[..., Any], bound: bool) -> list[str]:
    """The arguments pluggy would pass by name: positional ones without a default."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    if bound and params:
        params = params[1:]
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_one(
    where: str,
    name: str,
    fn: Callable[..., Any],
    marked: bool,
    bound: bool,
    valid: tuple[str, ...],
    other: tuple[str, ...],
    other_place: tuple[str, str],
) -> None:
    if not marked:
        if name in valid:
            raise UserError(
                f"{where}: {name} is not marked with @hookimpl, so it would never be called",
                expected="@hookimpl (from ablate import hookimpl) on the line above it",
            )
        return
    if name in other:
        raise UserError(f"{where}: {name} is never called here: {other_place[0]}", expected=other_place[1])
    if name not in valid:
        raise UserError(
            f"{where}: {name} is not an ablate hook",
            expected="one of " + ", ".join(valid) if valid else "no hooks here",
            hint=did_you_mean(name, valid + other),
        )
    for arg in _required_args(fn, bound):
        if arg not in SPECS[name]:
            spec = ", ".join(SPECS[name])
            raise UserError(
                f"{where}: argument {arg!r} of hook {name} is not one the hook passes",
                expected=f"{name}({spec}) or a subset of those names",
                hint=did_you_mean(arg, SPECS[name]),
            )


def check_module(module: Any, plugin: str) -> None:
    """A plugin module may implement registration hooks only, each with valid arguments."""
    for name, fn, marked, bound in _hook_attrs(module):
        if getattr(fn, "__module__", None) != getattr(module, "__name__", None):
            continue  # imported from elsewhere (e.g. another plugin): checked where it is defined
        _check_one(
            f"plugin {plugin!r}",
            name,
            fn,
            marked,
            bound,
            REGISTRATION,
            TRIAL,
            (
                "trial hooks are called on the component instances of a run, never on a plugin module",
                "it as a method of the component class your ablate_register_* hook adds",
            ),
        )


def component_class(factory: Callable[..., Any]) -> type | None:
    """The class a factory makes: itself, or a function's annotated return class."""
    if inspect.isclass(factory):
        return factory
    try:
        hint = inspect.signature(factory).return_annotation
    except (TypeError, ValueError):
        return None
    return hint if inspect.isclass(hint) else None


# Data sets and models are not registered in a run: a model builder's instance
# only receives ablate_check_data (before training), a data set's none.
CALLED_ON = {"model": ("ablate_check_data",), "dataset": ()}


def check_component(factory: Callable[..., Any], where: str, kind: str = "") -> None:
    """A component class may implement the trial hooks its kind receives, each with valid arguments."""
    cls = component_class(factory)
    if cls is None or cls.__module__ == "builtins":
        return
    valid = CALLED_ON.get(kind, TRIAL)
    never = REGISTRATION + tuple(n for n in TRIAL if n not in valid)
    why = (
        f"a {kind}'s instance receives {', '.join(valid) or 'no hooks'}"
        if kind in CALLED_ON
        else "registration hooks are called on plugin modules, never on a component"
    )
    for name, fn, marked, bound in _hook_attrs(cls):
        _check_one(
            f"{where} ({cls.__name__})",
            name,
            fn,
            marked,
            bound,
            valid,
            never,
            (
                why,
                "registration hooks as module-level functions of the plugin; trial hooks on "
                "a norm, regularizer, augmentation or stopping rule",
            ),
        )

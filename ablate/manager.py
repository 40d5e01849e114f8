"""Build a plugin manager: built-ins and installed plugins via entry points,
plus plugin files a study names. A factory, never a module global, so tests
and concurrent studies never share state."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

import pluggy

from ablate import PROJECT, hookspecs
from ablate.errors import UserError
from ablate.registry import KINDS, Registrar, Registry


def make_plugin_manager(plugin_files: Iterable[str | Path] = ()) -> pluggy.PluginManager:
    """A manager with every installed ``ablate`` entry point and the given files loaded."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    load_entry_points(pm)
    for path in plugin_files:
        pm.register(load_plugin_file(path), name=f"file:{Path(path).name}")
    return pm


def load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every module in the ``ablate`` entry-point group.

    Plugins are named ``distribution:entry-point`` so two packages may both
    call an entry point "norms" (pluggy's own loader would silently skip the
    second). A module that fails to import is reported with its package.
    """
    for ep in sorted(metadata.entry_points(group=PROJECT), key=lambda e: (_dist_name(e), e.name)):
        name = f"{_dist_name(ep)}:{ep.name}"
        if pm.has_plugin(name):
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
        except Exception as exc:
            raise UserError(f"plugin {name!r} ({ep.value}) failed to import: "
                            f"{type(exc).__name__}: {exc}",
                            hint="uninstall or fix that package") from exc
        if pm.is_registered(module):
            continue
        pm.register(module, name=name)


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "unknown"


def load_plugin_file(path: str | Path):
    """Import a plugin module from a .py file a study names."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plugin file {str(path)!r} does not exist", key="study.plugins",
                        expected="a path to a .py file, relative to the study file")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"ablate_local_plugin_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken user file is a user error, shown briefly
        del sys.modules[mod_name]
        raise UserError(f"plugin file {str(path)!r} failed to import: "
                        f"{type(exc).__name__}: {exc}", key="study.plugins") from exc
    return module


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook once, telling each registrar which plugin speaks."""
    registry = Registry()
    for kind, hook_name in KINDS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            registrar = Registrar(registry, kind, impl.plugin_name)
            impl.function(**{name: registrar for name in impl.argnames})
    return registry


def trial_manager(instances: dict[str, object]) -> pluggy.PluginManager:
    """A per-run manager holding only the active component instances."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, obj in instances.items():
        pm.register(obj, name=name)
    return pm





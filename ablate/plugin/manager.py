"""Build a plugin manager: built-ins and installed plugins via entry points,
plus plugin files a study names. A factory, never a module global, so tests
and concurrent studies never share state."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pluggy

from ablate import PROJECT, hookspecs
from ablate.errors import UserError, did_you_mean
from ablate.plugin.disabling import ENV_DISABLE, aliases, disabled_names
from ablate.plugin.hookcheck import check_module
from ablate.plugin.registry import KINDS, Registrar, Registry


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus what did not load: ``failed`` maps a plugin to the
    reason, ``disabled`` lists the plugins the user switched off."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.failed: dict[str, str] = {}
        self.disabled: list[str] = []


def warn(message: str) -> None:
    """A problem that does not stop the command, printed once on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def make_plugin_manager(plugin_files: Iterable[str | Path] = (), disable: Iterable[str] = ()) -> PluginManager:
    """A manager with every installed ``ablate`` entry point and the given files loaded.

    An installed plugin that fails to import or fails the load-time checks is
    left out with a warning (its components are then unknown, and an error
    names it only where a study needs them); a broken plugin file a study names
    is an error. Plugins named in ``disable`` (or switched off by
    ``ABLATE_DISABLE_PLUGINS`` / ``--disable-plugin``) are not loaded at all.
    """
    pm = PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    off = disabled_names(disable)
    load_entry_points(pm, off)
    named: dict[str, Path] = {}
    for path in map(Path, plugin_files):
        name = f"file:{path.name}"
        if name in named:
            _refuse_twice(path, named[name])
        named[name] = path
        if aliases(name) & set(off):
            pm.disabled.append(name)
            continue
        module = load_plugin_file(path)
        _register(pm, module, name)
    _check_pending(pm)
    _warn_unmatched(pm, off)
    return pm


def _refuse_twice(path: Path, first: Path) -> None:
    """A plugin is known by its file's name: the same file twice, or two files of one
    name, would register one name twice."""
    if path.resolve() == first.resolve():
        raise UserError(f"plugin file {str(path)!r} is listed twice", key="study.plugins", expected="each file once")
    raise UserError(
        f"plugin files {str(first)!r} and {str(path)!r} have the same name",
        key="study.plugins",
        expected="plugin files with distinct file names",
    )


def load_entry_points(pm: PluginManager, off: Iterable[str] = ()) -> None:
    """Register every module in the ``ablate`` entry-point group.

    Plugins are named ``distribution:entry-point`` so two packages may both
    call an entry point "norms" (pluggy's own loader would silently skip the
    second). A module that fails to import or to pass the checks is left out
    with a warning naming its package and how to switch it off.
    """
    off = set(off)
    for ep in sorted(metadata.entry_points(group=PROJECT), key=lambda e: (_dist_name(e), e.name)):
        name = f"{_dist_name(ep)}:{ep.name}"
        if pm.has_plugin(name) or name in pm.disabled or name in pm.failed:
            continue  # the same distribution seen twice on sys.path
        if aliases(name) & off:
            pm.disabled.append(name)
            continue
        try:
            module = ep.load()
            if pm.is_registered(module):
                continue
            _register(pm, module, name)
        except UserError as exc:
            fail(pm, name, _reason(exc, name))
        except Exception as exc:
            fail(pm, name, f"{ep.value} failed to import: {_brief(exc)}")


def fail(pm: PluginManager, name: str, why: str) -> None:
    """Leave an installed plugin out, with a warning saying how to switch it off."""
    pm.failed[name] = why
    if pm.has_plugin(name):
        pm.unregister(name=name)
    dist = name.partition(":")[0]
    warn(
        f"plugin {name!r} failed to load: {why}\n  its components are unavailable; to switch it off: "
        f"--disable-plugin {dist} or {ENV_DISABLE}={dist}"
    )


def _reason(exc: UserError, plugin: str) -> str:
    """A load-time check's message on one line, without repeating the plugin's name."""
    text = exc.message.removeprefix(f"plugin {plugin!r}: ")
    return text + (f" ({exc.hint})" if exc.hint else "")


def _brief(exc: BaseException) -> str:
    """'Type: message (at file:line)': the exception and where in plugin code it arose."""
    if isinstance(exc, SyntaxError) and exc.filename:  # its place is the file's, not the importer's frame
        return f"{type(exc).__name__}: {exc.msg} (at {exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _register(pm: PluginManager, module: ModuleType, name: str) -> None:
    """Check a plugin module's hooks, then register it."""
    check_module(module, name)
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:  # pluggy's own check, should ours miss one
        raise UserError(f"plugin {name!r}: {exc}") from None


DIGEST = "__ablate_digest__"  # a plugin file module's digest of its text, taken as it was imported


def _check_pending(pm: PluginManager) -> None:
    """pluggy's check that every hook implementation has a spec (a misspelt hook)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        if name.startswith("file:"):
            raise UserError(f"plugin {name!r}: {exc}", key="study.plugins") from None
        fail(pm, name, str(exc))


def _warn_unmatched(pm: PluginManager, off: list[str]) -> None:
    """A name to switch off that matches no plugin is likely misspelt."""
    known = [n for n in pm.disabled + list(pm.failed) + [p for p, _ in pm.list_name_plugin()] if n]
    every = set().union(*(aliases(n) for n in known)) if known else set()
    for token in dict.fromkeys(off):
        if token not in every:
            warn(
                f"--disable-plugin/{ENV_DISABLE}: no plugin is named {token!r}"
                + (f"; {did_you_mean(token, sorted(every))}" if did_you_mean(token, every) else "")
            )


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "unknown"


def load_plugin_file(path: str | Path) -> ModuleType:
    """Import a plugin module from a .py file a study names.

    It runs as Python with the user's rights (like pytest's conftest.py): the
    study file's author is trusted. Anything but a readable .py file is refused.
    """
    path = Path(path)
    expected = "a path to a readable .py file, relative to the study file"
    if not path.exists():
        raise UserError(f"plugin file {str(path)!r} does not exist", key="study.plugins", expected=expected)
    if not path.is_file() or path.suffix != ".py":
        what = "a folder" if path.is_dir() else "not a .py file"
        raise UserError(f"plugin file {str(path)!r} is {what}", key="study.plugins", expected=expected)
    if not os.access(path, os.R_OK):
        raise UserError(f"plugin file {str(path)!r} is not readable", key="study.plugins", expected=expected)
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"ablate_local_plugin_{path.stem}_{digest}"
    text_digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    loaded = sys.modules.get(mod_name)
    if loaded is not None and loaded.__dict__.get(DIGEST) == text_digest:  # imported already, unedited since
        return loaded
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"plugin file {str(path)!r} cannot be imported", key="study.plugins", expected=expected)
    module = importlib.util.module_from_spec(spec)
    module.__dict__[DIGEST] = text_digest  # of the text that runs
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # a broken user file is a user error, shown briefly
        del sys.modules[mod_name]
        why = f"it called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else _brief(exc)
        raise UserError(f"plugin file {str(path)!r} failed to import: {why}", key="study.plugins") from exc
    return module


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook once, telling each registrar which plugin speaks.

    An installed plugin whose registration fails (a bad Param default, a
    mismatched factory, a name another plugin took, an exception) is left out
    with a warning; a plugin file a study names fails the command.
    """
    registry = Registry()
    if isinstance(pm, PluginManager):
        registry.failed.update(pm.failed)
        registry.disabled.extend(pm.disabled)
    registry.file_versions.update(_file_versions(pm))
    for kind, hook_name in KINDS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order: installed plugins, then the study's files
            if impl.plugin_name in registry.failed:
                continue
            registrar = Registrar(registry, kind, impl.plugin_name)
            try:
                impl.function(**{name: registrar for name in impl.argnames})
            except Exception as exc:
                _registration_failed(pm, registry, impl.plugin_name, hook_name, exc)
    return registry


def _file_versions(pm: pluggy.PluginManager) -> dict[str, str]:
    """A plugin file has no version number: its text's digest stands for one, so runs
    stored before an edit of the file are told apart (as an upgraded plugin's are)."""
    return {
        name: f"{name} sha256:{module.__dict__[DIGEST]}"
        for name, module in pm.list_name_plugin()
        if name and name.startswith("file:") and DIGEST in getattr(module, "__dict__", {})
    }


def _registration_failed(pm: pluggy.PluginManager, registry: Registry, plugin: str, hook: str, exc: Exception) -> None:
    why = _reason(exc, plugin) if isinstance(exc, UserError) else f"{hook} raised {_brief(exc)}"
    if plugin.startswith("file:"):
        if isinstance(exc, UserError):
            exc.key = exc.key or "study.plugins"
            raise exc
        raise UserError(f"plugin {plugin!r}: {why}", key="study.plugins") from exc
    registry.drop_plugin(plugin)
    registry.failed[plugin] = why
    if isinstance(pm, PluginManager):
        fail(pm, plugin, why)
    else:
        warn(f"plugin {plugin!r} failed to load: {why}")


def trial_manager(instances: dict[str, object]) -> pluggy.PluginManager:
    """A per-run manager holding only the active component instances."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, obj in instances.items():
        pm.register(obj, name=name)
    return pm

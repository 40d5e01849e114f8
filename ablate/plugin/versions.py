"""Versions a run's numbers depend on: ablate, torch, and the distribution of
every plugin that provided one of its components."""

from __future__ import annotations

import platform
from importlib import metadata

from ablate import __version__
from ablate.plugin.registry import Registry
from ablate.spec import RunSpec


def plugin_version(plugin: str, registry: Registry | None = None) -> str:
    """'dist:entrypoint' -> 'dist version'; a local plugin file -> its name and the
    digest of its text (where the registry loaded it)."""
    dist = plugin.split(":", 1)[0]
    if dist == "file":
        return registry.file_versions.get(plugin, plugin) if registry is not None else plugin
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return plugin


def plugin_versions(spec: RunSpec, registry: Registry) -> dict[str, str]:
    """{"plugin:KIND:NAME": "dist version"} for each component of the run (no torch needed)."""
    return {
        f"plugin:{comp.kind}:{comp.name}": plugin_version(registry.get(comp.kind, comp.name).plugin, registry)
        for comp in (spec.data, spec.model, *spec.components)
    }


def run_versions(spec: RunSpec, registry: Registry) -> dict[str, str]:
    """{"ablate": ..., "torch": ..., "python": ..., "plugin:KIND:NAME": "dist version"}."""
    import torch

    out = {"ablate": __version__, "torch": str(torch.__version__), "python": platform.python_version()}
    return out | plugin_versions(spec, registry)

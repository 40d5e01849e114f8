"""Which plugins the user switched off: ``ABLATE_DISABLE_PLUGINS=a,b`` and the
global ``--disable-plugin NAME`` option (as pytest's ``-p no:NAME``). Kept free
of heavy imports, since the command line sets it before anything loads."""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextvars import ContextVar

ENV_DISABLE = "ABLATE_DISABLE_PLUGINS"
_CLI_DISABLED: ContextVar[tuple[str, ...]] = ContextVar("ablate_cli_disabled_plugins", default=())


def set_disabled(names: Iterable[str]) -> None:
    """Plugins switched off by the command line; every `ablate` command sets it anew."""
    _CLI_DISABLED.set(tuple(names))


def norm(name: str) -> str:
    """Plugin names compare like package names: case and '-'/'_' do not matter."""
    return name.strip().lower().replace("_", "-")


def disabled_names(extra: Iterable[str] = ()) -> list[str]:
    """Names switched off: the environment variable, the command line, then ``extra``."""
    names = os.environ.get(ENV_DISABLE, "").split(",") + list(_CLI_DISABLED.get()) + list(extra)
    return [norm(n) for n in names if n.strip()]


def aliases(plugin: str) -> set[str]:
    """The names a plugin can be switched off by: 'dist:entry' or 'dist'; 'file:x.py', 'x.py' or 'x'."""
    dist, _, rest = plugin.partition(":")
    names = {plugin, rest, rest.removesuffix(".py")} if dist == "file" else {plugin, dist}
    return {norm(n) for n in names}

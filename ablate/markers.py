"""The pluggy markers every plugin uses, in a module that imports nothing of
ablate's, so any module can use them without an import cycle."""

from __future__ import annotations

import pluggy

PROJECT = "ablate"

hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

"""One failure policy: any exception raised while a run trains fails that run
(never the study), recorded with the component that raised it, the exception
type, its message and the traceback."""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import Any

from ablate.plugin.registry import Registry
from ablate.train.build import RunFailed


def blamed_component(exc: BaseException, registry: Registry) -> str:
    """'kind:name' of the innermost component instance in the traceback, else
    the innermost plugin module's name, else ''."""
    classes: dict[type, str] = {}
    modules = set()
    for comp in registry.all():
        modules.add(getattr(comp.factory, "__module__", ""))
        if isinstance(comp.factory, type):
            classes[comp.factory] = f"{comp.kind}:{comp.ref}"
    found = module_found = ""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        for cls in type(owner).__mro__ if owner is not None else ():
            if cls in classes:
                found = classes[cls]
                break
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module in modules:
            module_found = module
        tb = tb.tb_next
    return found or module_found


def describe(exc: BaseException, registry: Registry) -> dict[str, Any]:
    """The failure record stored with the run."""
    component = blamed_component(exc, registry)
    message = str(exc).strip() or type(exc).__name__
    first = message.splitlines()[0][:500]
    reason = first if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {first}"
    if component:
        reason = f"{component}: {reason}"
    return {
        "reason": reason,
        "component": component,
        "type": type(exc).__name__,
        "message": message[:2000],
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:],
    }

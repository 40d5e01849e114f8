"""The error for a bare name that more than one plugin registers: it names every
provider by its qualified name, says which of them accepts the parameters the
study gives, and shows the one line to change."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ablate.errors import UserError

if TYPE_CHECKING:
    from ablate.plugin.registry import Component


def ambiguous(
    kind: str,
    name: str,
    providers: list[Component],
    key: str | None,
    given: Collection[str] | None = None,
    change: Callable[[str], str] | None = None,
) -> UserError:
    """``given``: the parameter names the study gives this component (None: unknown here);
    ``change``: the study's line rewritten to use a qualified name."""
    names = [c.qualified for c in providers]
    fits = providers if given is None else [c for c in providers if set(given) <= set(c.params)]
    hints = [_fit(providers, fits, given)] if given is not None else []
    meant = fits or providers
    for comp in meant:
        line = change(comp.qualified) if change is not None else repr(comp.qualified)
        hints.append(f"change it to: {line}" if len(meant) == 1 else f"for {comp.qualified}: {line}")
    return UserError(
        f"{kind} {name!r} is registered by {len(providers)} plugins: " + " and ".join(names),
        key=key,
        expected="the qualified name DIST:NAME of the one meant: " + " or ".join(names),
        hint="\n  ".join(hints),
    )


def _fit(providers: list[Component], fits: list[Component], given: Collection[str]) -> str:
    """Which providers accept the parameters given, in words."""
    takes = "; ".join(f"{c.qualified} takes {', '.join(c.params) or 'no parameters'}" for c in providers)
    if not given:
        return f"no parameters are given here ({takes})"
    shown = ", ".join(given)
    if len(fits) == 1:
        return f"only {fits[0].qualified} accepts the parameters given here ({shown})"
    if not fits:
        return f"none of them accepts all the parameters given here ({shown}): {takes}"
    each = "both" if len(fits) == 2 else "all"
    return f"{' and '.join(c.qualified for c in fits)} {each} accept the parameters given here ({shown})"

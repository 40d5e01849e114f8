"""A component factor's per-level parameter tables, matched to its levels: a table
may be keyed by the level as written, by its short name or by its qualified name
(``"ablate-extras:spectral_norm" = { ... }``), so qualifying a level is a one-line
change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ablate.errors import UserError, did_you_mean
from ablate.plugin.naming import dist_key, split, tidy
from ablate.plugin.registry import OFF

if TYPE_CHECKING:
    from ablate.plugin.registry import Registry


def level_tables(
    registry: Registry | None,
    kind: str,
    table: dict[str, Any],
    levels: list[str],
    names: list[str],
    key: str,
    reserved: tuple[str, ...],
) -> dict[str, tuple[str, Any]]:
    """ref -> (the key the study wrote, its table), for each key of ``table`` not in ``reserved``.

    ``levels`` are the levels as written, ``names`` the components they stand for
    (``Component.ref``). A short key that two levels share must be qualified.
    """
    on = [(ref, written) for ref, written in zip(names, levels, strict=True) if ref != OFF]
    out: dict[str, tuple[str, Any]] = {}
    for k, value in table.items():
        if k in reserved:
            continue
        matches = [ref for ref, written in on if _denotes(registry, kind, ref, written, k)]
        if not matches:
            allowed = list(reserved) + [tidy(w) for _, w in on]
            raise UserError(
                f"unknown key {k!r}",
                key=f"{key}.{k}",
                expected="one of: " + ", ".join(allowed),
                hint=did_you_mean(k, allowed),
            )
        if len(matches) > 1:
            raise UserError(
                f"{k!r} could be the parameters of any of the levels " + ", ".join(matches),
                key=f"{key}.{k}",
                expected=f'a table keyed by the level\'s qualified name, e.g. "{matches[-1]}" = {{ ... }}',
            )
        ref = matches[0]
        if ref in out:
            raise UserError(
                f"{out[ref][0]!r} and {k!r} both give the parameters of level {ref!r}",
                key=f"{key}.{k}",
                expected="one table per level",
            )
        out[ref] = (k, value)
    return out


def _denotes(registry: Registry | None, kind: str, ref: str, written: str, k: str) -> bool:
    """Whether table key ``k`` names the level written ``written`` (component ``ref``)."""
    if tidy(k) in (tidy(written), tidy(ref)):
        return True
    if registry is None:
        return False
    comp = registry.get(kind, ref)
    dist, short = split(k)
    return short == comp.name and (not dist or dist_key(dist) == dist_key(comp.dist))

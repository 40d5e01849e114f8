"""The settings that define a study's arms, as the page shows them.

A reader must be able to rebuild each arm from the page: the fixed data, model
and training settings, and per arm the factor levels and component parameters
(dropout rate, patience, slot order). Settings that do nothing under the
others (momentum under Adam) are left out, so the page does not suggest they
mattered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ablate.engine.store.record import StudyRecord
from ablate.report.fmt import DASH, value
from ablate.report.stats import is_present

# setting -> (the setting it depends on, the values under which it has an effect)
RELEVANT_ONLY_WHEN: dict[str, tuple[str, frozenset[str]]] = {
    "momentum": ("optimizer", frozenset({"sgd"})),
}


def relevant(settings: Mapping[str, Any], context: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Drop settings with no effect given the others; ``context`` are further settings
    (the arms') under which one might still matter."""
    out = {}
    for key, setting in settings.items():
        rule = RELEVANT_ONLY_WHEN.get(key.rsplit(".", 1)[-1])
        if rule is not None:
            dep, values = rule
            seen = {str(v) for s in (settings, *context) for k, v in s.items() if k.rsplit(".", 1)[-1] == dep}
            if seen and not seen & values:
                continue
        out[key] = setting
    return out


def fixed_settings(record: StudyRecord) -> list[tuple[str, str]]:
    """(name, value) of every setting shared by all arms: data, split, model, training."""
    rows = [("data", record.dataset or DASH)]
    rows += [(f"data.{k}", value(v)) for k, v in record.data_params.items()]
    rows += [
        ("data.split_seed", value(record.split_seed)),
        ("data.resplit", "a new split per seed" if record.resplit else "one split for every seed"),
        ("model", record.model or DASH),
    ]
    rows += [(f"model.{k}", value(v)) for k, v in record.model_params.items()]
    arms = list(record.arm_settings.values())
    rows += [(f"train.{k}", value(v)) for k, v in relevant(record.train, arms).items()]
    return rows


def arm_settings(
    record: StudyRecord, histories: Sequence[Mapping[str, Any]], levels: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[tuple[str, str]]]:
    """{arm: [(setting, value)]}: the arm's factor levels (``levels``: {arm: {column: value}}),
    then what the record says defines it, else the components of its runs' resolved configs."""
    out: dict[str, list[tuple[str, str]]] = {}
    configs = {str(h.get("arm")): h.get("config") or {} for h in histories}
    for arm, factor_values in levels.items():
        known = record.arm_settings.get(arm)
        given = {
            **{k: v for k, v in factor_values.items() if is_present(v)},
            **(known if known is not None else _from_config(configs.get(arm, {}))),
        }
        keep = relevant({**{f"train.{k}": v for k, v in record.train.items()}, **given})
        out[arm] = [(str(k), value(v)) for k, v in given.items() if k in keep and not _shared(record, k, v)]
    return out


def _shared(record: StudyRecord, key: str, setting: Any) -> bool:
    """True for a model or training setting every arm has (shown once, in the fixed table)."""
    group, _, name = key.partition(".")
    fixed = {"model": record.model_params, "train": record.train}.get(group, {})
    return name in fixed and fixed[name] == setting


def _from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Components and their parameters from a run's resolved config (older records)."""
    out: dict[str, Any] = {}
    for comp in config.get("components") or []:
        kind, name = comp.get("kind", "?"), comp.get("name", "?")
        params = {k: v for k, v in comp.items() if k not in ("kind", "name")}
        out[kind] = name + (f"({', '.join(f'{k}={value(v)}' for k, v in params.items())})" if params else "")
    if "slots" in (config.get("model") or {}):
        out["model.slots"] = config["model"]["slots"]
    return out

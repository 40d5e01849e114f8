"""Check a study against its data before anything trains: every component
configuration the study uses (and the model) sees the data's shape, classes
and split sizes through ``ablate_check_data`` and may reject the study with a
``UserError``, so a mismatch (cutout on 1-D signals, early stopping without a
validation split) is exit 2 naming the component, not a failed run after
others trained. The data is described by whichever process will train
(ablate.engine.environment), so this module needs no torch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ablate.components import DataInfo
from ablate.engine.environment import data_key
from ablate.errors import UserError
from ablate.plugin.manager import trial_manager
from ablate.plugin.registry import Registry
from ablate.spec import RunSpec, canonical_json
from ablate.study.config import StudyConfig
from ablate.study.design import Arm, run_spec


def data_specs(config: StudyConfig, arms: list[Arm]) -> list[RunSpec]:
    """One spec per distinct data setting the study trains on (what ``check_study`` needs loaded)."""
    found: dict[str, RunSpec] = {}
    for spec, _, _, _ in _uses(config, arms):
        found.setdefault(data_key(spec), spec)
    return list(found.values())


def check_study(config: StudyConfig, registry: Registry, arms: list[Arm], infos: dict[str, DataInfo]) -> None:
    """Call every component's data check on each data setting it trains on
    (``infos``: ``data_key`` -> its DataInfo, from ``ablate.engine.environment.probe``)."""
    checked: set[str] = set()
    for spec, kind, name, params in _uses(config, arms):
        key = canonical_json([data_key(spec), kind, name, params])
        if key in checked:
            continue
        checked.add(key)
        _check(registry, kind, name, params, infos[data_key(spec)], _key(config, kind, name))
    if config.design.sampled and any(info.val_size == 0 for info in infos.values()):
        raise UserError(
            f"the {config.design.kind} design chooses arms on the validation split, and this study has none",
            key="data.val_fraction",
            expected="val_fraction above 0, or an enumerated design (e.g. factorial)",
        )


def _uses(config: StudyConfig, arms: list[Arm]) -> Iterator[tuple[RunSpec, str, str, dict[str, Any]]]:
    """(a spec with the data, kind, name, params) of every component and model the study runs."""
    seed = config.seeds[0]
    if not arms:  # a sampled design: every option of every factor, on each listed data setting
        data_levels: list[dict[str, Any]] = [{}] + [
            {f.setting: lv} for f in config.factors if f.setting and f.setting.startswith("data.") for lv in f.levels
        ]
        comps = [
            (str(f.kind), o.component, o.params)
            for f in config.factors
            if f.kind
            for o in f.options
            if o.level != "none"
        ]
        for settings in data_levels:
            spec = run_spec(config, Arm("check", {}, (), settings), seed)
            yield spec, "model", spec.model.name, dict(spec.model.params)
            for kind, name, params in comps:
                yield spec, kind, name, params
        return
    for arm in arms:
        spec = run_spec(config, arm, seed)
        yield spec, "model", spec.model.name, dict(spec.model.params)
        for comp in spec.components:
            yield spec, comp.kind, comp.name, dict(comp.params)


def _key(config: StudyConfig, kind: str, name: str) -> str:
    """Where the study file names the component."""
    if kind == "model":
        return "model.name"
    found = next(
        (f.name for f in config.factors if f.kind == kind and any(o.component == name for o in f.options)), None
    )
    return f"factors.{found}" if found else "factors"


def _check(registry: Registry, kind: str, name: str, params: dict[str, Any], info: DataInfo, key: str) -> None:
    """One component's check on a fresh instance; a rejection names the component."""
    instance = registry.create(kind, name, params)
    shown = registry.shown(registry.get(kind, name))  # as a study names it: short where no other plugin has it
    hook = trial_manager({f"{kind}:{name}": instance}).hook.ablate_check_data
    if not hook.get_hookimpls():
        return
    try:
        hook(info=info)
    except UserError as err:
        shape = "x".join(map(str, info.input_shape))
        err.message = (
            f"{kind} {shown!r} rejects data set {info.name!r} (input {shape}, "
            f"{info.num_classes} classes, {info.train_size}/{info.val_size}/{info.test_size} "
            f"train/validation/test samples): {err.message}"
        )
        err.key = err.key or key
        raise err from None
    except Exception as exc:
        exc.add_note(f"raised by the ablate_check_data hook of {kind} {shown!r}")
        raise

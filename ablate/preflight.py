"""Check a study against its data before anything trains: every component
configuration the study uses (and the model) sees the data's shape, classes
and split sizes through ``ablate_check_data`` and may reject the study with a
``UserError``, so a mismatch (cutout on 1-D signals, early stopping without a
validation split) is exit 2 naming the component, not a failed run after
others trained."""

from __future__ import annotations

import json
from typing import Any, Iterator

from ablate.components import DataInfo
from ablate.config import StudyConfig
from ablate.design import Arm
from ablate.errors import UserError
from ablate.manager import trial_manager
from ablate.registry import Registry


def check_study(config: StudyConfig, registry: Registry, arms: list[Arm]) -> None:
    """Load the data once per distinct data setting; call every component's check on it."""
    infos: dict[str, DataInfo] = {}
    checked: set[str] = set()
    for settings, kind, name, params in _uses(config, arms):
        data_key = json.dumps(settings, sort_keys=True, default=str)
        if data_key not in infos:
            infos[data_key] = _data_info(config, registry, settings)
        key = json.dumps([data_key, kind, name, params], sort_keys=True, default=str)
        if key in checked:
            continue
        checked.add(key)
        _check(registry, kind, name, params, infos[data_key], _key(config, kind, name))
    if config.design.sampled and any(info.val_size == 0 for info in infos.values()):
        raise UserError(f"the {config.design.kind} design chooses arms on the validation split, "
                        "and this study has none", key="data.val_fraction",
                        expected="val_fraction above 0, or an enumerated design (e.g. factorial)")


def _uses(config: StudyConfig, arms: list[Arm]) -> Iterator[tuple[dict[str, Any], str, str, dict[str, Any]]]:
    """(data settings, kind, name, params) of every component and model the study runs."""
    if not arms:  # a sampled design: every option of every factor, on each listed data setting
        data_levels: list[dict[str, Any]] = [{}] + [{f.setting: lv} for f in config.factors
                              if f.setting and f.setting.startswith("data.") for lv in f.levels]
        comps = [(f.kind, lv, params) for f in config.factors if f.kind
                 for lv, _, params in f.options if lv != "none"]
        for settings in data_levels:
            yield settings, "model", config.model.name, config.model.params
            for kind, name, params in comps:
                yield settings, str(kind), str(name), params
        return
    for arm in arms:
        settings = {k: v for k, v in arm.settings.items() if k.startswith("data.")}
        model = {**config.model.params, **{k.split(".", 1)[1]: v for k, v in arm.settings.items()
                                           if k.startswith("model.")}}
        yield settings, "model", config.model.name, model
        for kind, name, params in arm.components:
            yield settings, kind, name, params


def _data_info(config: StudyConfig, registry: Registry, settings: dict[str, Any]) -> DataInfo:
    """Load the data as a run would (the training code's per-process cache is filled too)."""
    from ablate.training import load_data, pick_device

    data = load_data(config, registry, settings, pick_device(config.train["device"]))
    return DataInfo.of(data, config.data.name)


def _key(config: StudyConfig, kind: str, name: str) -> str:
    """Where the study file names the component."""
    if kind == "model":
        return "model.name"
    found = next((f.name for f in config.factors if f.kind == kind and name in f.levels), None)
    return f"factors.{found}" if found else "factors"


def _check(registry: Registry, kind: str, name: str, params: dict[str, Any], info: DataInfo,
           key: str) -> None:
    """One component's check on a fresh instance; a rejection names the component."""
    instance = registry.create(kind, name, params)
    hook = trial_manager({f"{kind}:{name}": instance}).hook.ablate_check_data
    if not hook.get_hookimpls():
        return
    try:
        hook(info=info)
    except UserError as err:
        shape = "x".join(map(str, info.input_shape))
        err.message = (f"{kind} {name!r} rejects data set {info.name!r} (input {shape}, "
                       f"{info.num_classes} classes, {info.train_size}/{info.val_size}/{info.test_size} "
                       f"train/validation/test samples): {err.message}")
        err.key = err.key or key
        raise err from None
    except Exception as exc:
        exc.add_note(f"raised by the ablate_check_data hook of {kind} {name!r}")
        raise

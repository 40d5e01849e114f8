"""ablate: ablation studies of neural-network training, driven by Optuna.

Plugins import only the names exported here. They are loaded on first use
(PEP 562), so ``import ablate`` and ``ablate --help`` stay fast: torch is
imported only when a name that needs it is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ablate.markers import PROJECT, hookimpl, hookspec

__version__ = "0.1.0"

_LAZY = {
    "Param": "ablate.params",
    "SlotComponent": "ablate.components",
    "Batch": "ablate.components",
    "DataSplits": "ablate.components",
    "EpochState": "ablate.components",
    "UserError": "ablate.errors",
    "make_splits": "ablate.data.splits",
    "stratified_split": "ablate.data.stratified",
    "DataInfo": "ablate.components",
    "DatasetLoader": "ablate.components",
    "ModelBuilder": "ablate.components",
    "MakeLayer": "ablate.components",
    "Registrar": "ablate.plugin.registry",
    "stacked_layer": "ablate.train.stacked.form_registry",
    "stacked_component": "ablate.train.stacked.form_registry",
    "per_sample": "ablate.train.stacked.forms",
    "same_forward": "ablate.train.stacked.forms",
    "SplitError": "ablate.data.stratified",
}

if TYPE_CHECKING:
    from ablate.components import (
        Batch,
        DataInfo,
        DatasetLoader,
        DataSplits,
        EpochState,
        MakeLayer,
        ModelBuilder,
        SlotComponent,
    )
    from ablate.data.splits import make_splits
    from ablate.data.stratified import SplitError, stratified_split
    from ablate.errors import UserError
    from ablate.params import Param
    from ablate.plugin.registry import Registrar
    from ablate.train.stacked.form_registry import stacked_component, stacked_layer
    from ablate.train.stacked.forms import per_sample, same_forward


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ablate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PROJECT",
    "Batch",
    "DataInfo",
    "DataSplits",
    "DatasetLoader",
    "EpochState",
    "MakeLayer",
    "ModelBuilder",
    "Param",
    "Registrar",
    "SlotComponent",
    "SplitError",
    "UserError",
    "__version__",
    "hookimpl",
    "hookspec",
    "make_splits",
    "per_sample",
    "same_forward",
    "stacked_component",
    "stacked_layer",
    "stratified_split",
]

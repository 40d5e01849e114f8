"""ablate: ablation studies of neural-network training, driven by Optuna.

Plugins import only the names exported here.
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "ablate"

hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

from ablate.components import (  # noqa: E402
    Batch, DataInfo, DatasetLoader, DataSplits, EpochState, MakeLayer, ModelBuilder, Param, SlotComponent,
)
from ablate.errors import UserError  # noqa: E402
from ablate.registry import Registrar  # noqa: E402
from ablate.splits import make_splits  # noqa: E402

__all__ = [
    "__version__",
    "hookimpl",
    "hookspec",
    "Param",
    "SlotComponent",
    "Batch",
    "DataSplits",
    "EpochState",
    "DataInfo",
    "DatasetLoader",
    "ModelBuilder",
    "MakeLayer",
    "Registrar",
    "UserError",
    "make_splits",
]

"""The small public types plugins build on: hook payloads and the slot base.

``Param`` lives in ablate.params (no torch) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ablate.markers import hookimpl
from ablate.params import Param

__all__ = ["Batch", "DataSplits", "EpochState", "Param", "SlotComponent"]


class SlotComponent:
    """A component that fills one named slot of a model block ("norm",
    "dropout", ...): subclasses set ``slot`` and implement ``layer``."""

    slot = ""

    def layer(self, features: int, dims: int) -> torch.nn.Module:
        """The layer for ``features`` channels; ``dims`` 0 after a linear layer,
        1 or 2 after a 1-D or 2-D convolution."""
        raise NotImplementedError

    @hookimpl
    def ablate_make_layer(self, slot: str, features: int, dims: int) -> torch.nn.Module | None:
        return self.layer(features, dims) if slot == self.slot else None


@dataclass
class DataSplits:
    """A data set split three ways, as tensors ready to move to the device.

    ``x_*`` are float tensors of shape (n, *input_shape); ``y_*`` are int64
    class indices. The validation split chooses (early stopping, the Optuna
    objective); the test split is only reported.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> "DataSplits":
        moved = {k: getattr(self, k).to(device) for k in
                 ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return DataSplits(**moved, num_classes=self.num_classes, name=self.name)


@dataclass
class Batch:
    """One training batch. Augmentation hooks may replace ``x`` and ``y``.

    ``generator`` is the run's seeded random source on the batch's device;
    draw from it (not the global RNG) so runs are reproducible.
    """

    x: torch.Tensor
    y: torch.Tensor
    generator: torch.Generator


@dataclass
class EpochState:
    """What stopping rules see at the end of each epoch.

    ``epoch`` counts from 1 (the first epoch is 1, the last ``max_epochs``).
    ``metrics`` holds this epoch's ``train_loss`` and ``train_accuracy`` (eval
    mode, full training split), ``val_loss`` and ``val_accuracy`` (eval mode,
    full validation split; NaN without one), and ``running_loss`` and
    ``running_accuracy`` (train mode, averaged over the epoch's batches: what
    the optimiser saw). ``history`` is the list of epochs' metrics so far, this
    one last; ``elapsed`` the run's seconds so far.
    """

    epoch: int
    max_epochs: int
    model: torch.nn.Module
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0

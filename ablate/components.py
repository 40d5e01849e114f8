"""The small public types plugins build on: hook payloads and the slot base.

``Param`` lives in ablate.params and is re-exported here. Nothing here imports
torch: the command that coordinates a study loads and checks it without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ablate.markers import hookimpl
from ablate.params import Param

if TYPE_CHECKING:  # annotations only: a study is loaded and checked without torch
    import torch

__all__ = [
    "Batch",
    "DataSplits",
    "EpochState",
    "OptimizerComponent",
    "Param",
    "ScheduleComponent",
    "SlotComponent",
    "StepState",
]


class SlotComponent:
    """A component that fills one named slot of a model block ("norm",
    "dropout", ...): subclasses set ``slot`` and implement ``layer``."""

    slot = ""
    # True when the layer's stacked form takes seeds without it and a setting per
    # seed (``stacked_layer(..., absent=True)``, the dropout family): arms that
    # differ only in this component then share one stack (docs/stacking.md)
    shares_stacks = False

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

    def to(self, device: torch.device) -> DataSplits:
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return DataSplits(**moved, num_classes=self.num_classes, name=self.name)


@dataclass
class Batch:
    """One training batch. Augmentation hooks may replace ``x`` and ``y``.

    ``generator`` is the run's seeded random source on the batch's device;
    draw from it (not the global RNG) so runs are reproducible. ``state`` is
    where training stands (the step, of how many, the batch size, the learning
    rate), as ``ablate_before_step`` sees it: a policy may depend on progress.
    """

    x: torch.Tensor
    y: torch.Tensor
    generator: torch.Generator
    state: StepState | None = None


@dataclass
class EpochState:
    """What stopping rules see at the end of each epoch.

    ``epoch`` counts from 1 (the first epoch is 1, the last ``max_epochs``).
    ``metrics`` holds this epoch's ``train_loss`` and ``train_accuracy`` (eval
    mode, full training split), ``val_loss`` and ``val_accuracy`` (eval mode,
    full validation split; NaN without one), and ``running_loss`` and
    ``running_accuracy`` (train mode, averaged over the epoch's batches: what
    the optimiser saw). ``history`` is the list of epochs' metrics so far, this
    one last; ``elapsed`` the run's wall time in seconds so far (data loading and
    model building included); ``steps``, ``steps_per_epoch``, ``total_steps`` and
    ``batch_size`` count the optimizer's steps as ``StepState`` does.
    """

    epoch: int
    max_epochs: int
    model: torch.nn.Module
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0
    steps: int = 0  # optimizer steps taken so far
    steps_per_epoch: int = 0
    total_steps: int = 0  # at max_epochs
    batch_size: int = 0


# --- the typed contract of data sets, models and data checks ----------------

MakeLayer = Callable[[str, int, int], "torch.nn.Module"]
"""``make_layer(slot, features, dims)``: the active component's layer for a slot,
``torch.nn.Identity()`` when no component fills it."""


@dataclass(frozen=True)
class DataInfo:
    """What ``ablate_check_data`` sees of a data set before anything trains.

    ``input_shape`` is one sample's shape (e.g. ``(40,)`` or ``(1, 8, 8)``);
    the sizes count samples per split (``val_size`` is 0 when the study uses
    ``val_fraction = 0``).
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    train_size: int
    val_size: int
    test_size: int

    @classmethod
    def of(cls, splits: DataSplits, name: str = "") -> DataInfo:
        """The description of loaded splits (``name`` defaults to the splits' own)."""
        return cls(
            name or splits.name,
            tuple(splits.input_shape),
            int(splits.num_classes),
            len(splits.x_train),
            len(splits.x_val),
            len(splits.x_test),
        )


@runtime_checkable
class DatasetLoader(Protocol):
    """What a data set factory returns."""

    def load(self, split_seed: int) -> DataSplits:
        """The three splits; ``split_seed`` fixes the split across run seeds."""
        ...


@runtime_checkable
class ModelBuilder(Protocol):
    """What a model factory returns."""

    def build(self, input_shape: tuple[int, ...], num_classes: int, make_layer: MakeLayer) -> torch.nn.Module:
        """A fresh, untrained network mapping (n, *input_shape) to (n, num_classes) logits."""
        ...


# The training recipe's kinds (docs/plugins.md, "Optimizers and schedules"): an
# optimizer component makes the run's optimizer; its learning rate is [train] lr,
# set before every step by the run's schedule, a pure function of the step.


class OptimizerComponent:
    """Base of an optimizer component.

    ``make(params, lr)`` returns a ``torch.optim.Optimizer``. ``elementwise``: each
    element's step depends on that element's own gradient and state only (Adam,
    SGD); only then can the seeds of an arm train as one stacked model with it,
    else its arm's seeds train alone (and ``ablate plan`` says so). ablate's own
    optimizers also give ``flat`` and ``settings()``, which the flat optimizer
    (ablate.train.optimizers) carries out, bit for bit as torch's own class.
    """

    elementwise = False
    flat = ""  # "adam", "sgd" or "rmsprop" for the built-ins: the flat optimizer's rule
    torch_class = ""  # the torch.optim class the built-in equals
    accepts: tuple[str, ...] = ()  # the optimizer options (ablate_optimizer_options) it takes

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``torch_class`` besides ``lr`` (built-ins)."""
        return {}

    def make(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        import torch

        return getattr(torch.optim, self.torch_class)(params, lr=lr, **self.settings())


class ScheduleComponent:
    """Base of a schedule: ``warmup_epochs`` of linear warmup (per step, from
    lr/W to lr over the first W steps), then ``main`` over the remaining steps."""

    def __init__(self, warmup_epochs: float = 0.0):
        self.warmup_epochs = warmup_epochs

    def lr(self, step: int, base_lr: float, steps_per_epoch: int, total_steps: int) -> float:
        warmup = min(round(self.warmup_epochs * steps_per_epoch), total_steps)
        if step < warmup:
            return base_lr * (step + 1) / warmup
        return self.main(step - warmup, base_lr, steps_per_epoch, total_steps - warmup)

    def main(self, step: int, base_lr: float, steps_per_epoch: int, total_steps: int) -> float:
        """The learning rate ``step`` steps after the warmup, of ``total_steps`` after it."""
        raise NotImplementedError


@dataclass(frozen=True)
class StepState:
    """Where training stands at one optimizer step (``ablate_before_step``): the
    epoch (from 1), the step (from 0, counted over the whole run), the steps per
    epoch and in all, the batch size and the learning rate of this step."""

    epoch: int
    step: int
    steps_per_epoch: int
    total_steps: int
    batch_size: int
    lr: float

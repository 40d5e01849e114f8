"""The small public types plugins build on: parameter specs and hook payloads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import torch

from ablate import hookimpl
from ablate.errors import UserError, did_you_mean


_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a component: default, type, accepted range, help.

    The type is the default's type (a list default means a list of its first
    item's type). ``low``/``high`` bound numbers (or list items); set
    ``low_open``/``high_open`` for strict bounds, e.g. a dropout rate in [0, 1).
    """

    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    validator: Callable[[Any], None] | None = None  # raises ValueError with a reason

    @property
    def type(self) -> type:
        return type(self.default)

    def describe(self) -> str:
        """Human words for what values are accepted, used in error messages."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if isinstance(self.default, list):
            item = type(self.default[0]).__name__ if self.default else "value"
            return f"a list of {item}{self._range_words()}"
        name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            self.type, self.type.__name__
        )
        return name + self._range_words()

    def _range_words(self) -> str:
        if self.low is None and self.high is None:
            return ""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f" in {left}{lo}, {hi}{right}"

    def check(self, value: Any, key: str) -> Any:
        """Return the value converted to this parameter's type, or raise UserError."""
        if isinstance(self.default, list):
            if not isinstance(value, list) or not value:
                raise self._bad(value, key)
            proto = self.default[0] if self.default else value[0]
            return [Param(proto, low=self.low, high=self.high, low_open=self.low_open,
                          high_open=self.high_open).check(v, f"{key}[{i}]") for i, v in enumerate(value)]
        value = self._convert(value, key)
        if self.choices is not None and value not in self.choices:
            raise UserError(
                f"{value!r} is not a valid value",
                key=key,
                expected=self.describe(),
                hint=did_you_mean(str(value), [str(c) for c in self.choices]),
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or not self._in_range(value):
                raise self._bad(value, key)
        if self.validator is not None:
            try:
                self.validator(value)
            except ValueError as exc:
                raise UserError(f"{value!r} is not valid: {exc}", key=key) from None
        return value

    def _convert(self, value: Any, key: str) -> Any:
        want = self.type
        if want is bool:
            if isinstance(value, bool):
                return value
        elif want is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif want is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif isinstance(value, want):
            return value
        raise self._bad(value, key)

    def _in_range(self, v: float) -> bool:
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
            return False
        return True

    def _bad(self, value: Any, key: str) -> UserError:
        return UserError(f"{value!r} is not valid", key=key, expected=self.describe())


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

    ``epoch`` counts from 1: it is 1 at the end of the first epoch and
    ``max_epochs`` at the end of the last one the study allows. ``elapsed`` is
    the run's wall time in seconds so far (data loading and model building included).
    ``metrics`` holds this epoch's ``train_loss``, ``train_accuracy`` (running
    averages over the epoch's batches), ``val_loss`` and ``val_accuracy``
    (eval mode, full validation split; NaN when the study has no validation
    split). ``history`` is the list of this run's epochs' metrics so far, this
    one last.
    """

    epoch: int
    max_epochs: int
    model: torch.nn.Module
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0


# --- the typed contract of data sets, models and data checks ----------------

MakeLayer = Callable[[str, int, int], torch.nn.Module]
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
    def of(cls, splits: DataSplits, name: str = "") -> "DataInfo":
        """The description of loaded splits (``name`` defaults to the splits' own)."""
        return cls(name or splits.name, tuple(splits.input_shape), int(splits.num_classes),
                   len(splits.x_train), len(splits.x_val), len(splits.x_test))


@runtime_checkable
class DatasetLoader(Protocol):
    """What a data set factory returns."""

    def load(self, split_seed: int) -> DataSplits:
        """The three splits; ``split_seed`` fixes the split across run seeds."""
        ...


@runtime_checkable
class ModelBuilder(Protocol):
    """What a model factory returns."""

    def build(self, input_shape: tuple[int, ...], num_classes: int,
              make_layer: MakeLayer) -> torch.nn.Module:
        """A fresh, untrained network mapping (n, *input_shape) to (n, num_classes) logits."""
        ...

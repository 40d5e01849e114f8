"""Parameter specs of components: default, type, accepted range, help.

No torch import: study validation and `ablate plugins` use it before (or
without) any training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ablate.errors import UserError, did_you_mean


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
            return [
                Param(proto, low=self.low, high=self.high, low_open=self.low_open, high_open=self.high_open).check(
                    v, f"{key}[{i}]"
                )
                for i, v in enumerate(value)
            ]
        value = self._convert(value, key)
        if self.choices is not None and value not in self.choices:
            raise UserError(
                f"{value!r} is not a valid value",
                key=key,
                expected=self.describe(),
                hint=did_you_mean(str(value), [str(c) for c in self.choices]),
            )
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (not math.isfinite(value) or not self._in_range(value))
        ):
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
        return not (self.high is not None and (v > self.high or (self.high_open and v == self.high)))

    def _bad(self, value: Any, key: str) -> UserError:
        return UserError(f"{value!r} is not valid", key=key, expected=self.describe(), hint=_nearest_bool(self, value))


TRUE_WORDS = ("true", "yes", "on", "1", "y", "t")


def _nearest_bool(param: Param, value: Any) -> str:
    """For a true/false setting given something else, the TOML boolean it likely meant."""
    if param.type is not bool:
        return ""
    meant = "true" if str(value).strip().lower() in TRUE_WORDS else "false"
    return f"did you mean {meant} (a TOML boolean, unquoted)?"

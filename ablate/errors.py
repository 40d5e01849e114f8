"""One family of user errors, printed as a few lines without a traceback (exit 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid choice to a misspelt word, or None."""
    found = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


class UserError(Exception):
    """A mistake the user can fix: bad study file, unknown component, bad value.

    ``where`` is the file, ``key`` the TOML key path, ``expected`` what would
    have been valid, ``hint`` a suggestion such as the nearest valid name.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        key: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.where = where
        self.key = key
        self.expected = expected
        self.hint = hint

    def located(self, where: str) -> UserError:
        """Attach the file name if the error did not know it yet."""
        if self.where is None:
            self.where = where
        return self

    def __str__(self) -> str:
        head = ": ".join(p for p in (self.where, self.key) if p)
        first = f"{head}: {self.message}" if head else self.message
        lines = [first]
        if self.expected:
            lines.append(f"  expected {self.expected}")
        if self.hint:
            lines.append(f"  {self.hint}")
        return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' line for an unknown name, or None if nothing is close."""
    match = nearest(word, choices)
    return f"did you mean '{match}'?" if match else None

"""Why a data set cannot be split with its fractions, as a user error.

Each of ``val_fraction`` and ``test_fraction`` may be in range while together
they leave a split empty, or too small to hold a sample of every class (digits
with 0.5 and 0.5; 20 samples of 10 classes). ``make_splits`` hands its labels
here on a failed split; the error names the data keys, the sizes the fractions
leave and which values would work, found from the per-class counts alone
(``ablate.data.stratified.split_counts``: the same arithmetic as the split, no indices).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ablate.data.stratified import SplitError, split_counts, val_share
from ablate.errors import UserError

# the values tried for "what would work": the bundled data sets allow fractions up to 0.5
GRID = tuple(round(0.01 * i, 2) for i in range(1, 51))


def fits(counts: np.ndarray, val_fraction: float, test_fraction: float, *, seed: int, test_given: bool) -> bool:
    """Whether ``make_splits`` splits labels with these class counts (sorted by class)."""
    val_size = val_share(val_fraction, test_fraction, test_given)
    try:
        if not test_given:
            counts, _ = split_counts(counts, seed=seed, test_size=test_fraction)
            counts = counts[counts > 0]
        if val_size > 0:
            split_counts(counts, seed=seed, test_size=val_size)
    except SplitError:
        return False
    return True


def split_error(
    y: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    *,
    seed: int,
    name: str = "",
    test_given: bool = False,
    size_key: str | None = None,
) -> UserError:
    """The user error for labels ``y`` that these fractions cannot split: the values
    that would split them, or, if none would, how many samples it would take."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    n, k = len(y), len(counts)
    message = _message(name, n, counts, val_fraction, test_fraction, test_given)
    splits = "training and validation" if test_given else "training, validation and test"
    expected = (
        "a val_fraction" if test_given else "a val_fraction and a test_fraction"
    ) + f" that leave the {splits} splits at least one sample of each of the {k} classes"
    keys, options = _options(counts, val_fraction, test_fraction, seed, test_given)
    if options:
        return UserError(message, key=keys, expected=expected, hint=options)
    need = _samples_needed(k, lambda m: works_balanced(m, k, val_fraction, test_fraction, seed, test_given))
    fraction_keys = "data.val_fraction" if test_given else "data.val_fraction, data.test_fraction"
    smallest = int(counts.min()) if k else 0
    hint = _too_small(n, k, smallest, need, size_key, test_given)
    without_val = [] if test_given else [t for t in GRID if fits(counts, 0.0, t, seed=seed, test_given=False)]
    if without_val:  # two changes at once: no validation split, and another test share
        hint += (
            f"; or val_fraction = 0 (no validation split, when no component needs one) with "
            f"test_fraction {_span(without_val)}"
        )
    return UserError(message, key=size_key or fraction_keys, expected=expected, hint=hint)


def _message(name: str, n: int, counts: np.ndarray, val_fraction: float, test_fraction: float, test_given: bool) -> str:
    """What cannot be split with what, and the sizes that leaves."""
    what = f"data set {name!r}" if name else "the data set"
    fractions = f"val_fraction = {val_fraction:g}"
    if not test_given:
        fractions += f" and test_fraction = {test_fraction:g}"
    reason = _sizes(n, val_fraction, test_fraction, test_given)
    smallest = int(counts.min()) if len(counts) else 0
    if smallest < 3:
        reason += f"; its smallest class has only {smallest} sample{'s' if smallest != 1 else ''}"
    return f"{what} ({n} samples, {len(counts)} classes) cannot be split with {fractions}: {reason}"


def _options(
    counts: np.ndarray, val_fraction: float, test_fraction: float, seed: int, test_given: bool
) -> tuple[str, str]:
    """(the keys to change, the values that work), changing one fraction at a time; empty if none do."""

    def works(val: float, test: float) -> bool:
        return fits(counts, val, test, seed=seed, test_given=test_given)

    vals = [v for v in GRID if works(v, test_fraction)]
    tests = [] if test_given else [t for t in GRID if works(val_fraction, t)]
    without_val = val_fraction > 0 and works(0.0, test_fraction)
    options, keys = [], []
    if vals or without_val:
        given = "" if test_given else f"with test_fraction = {test_fraction:g}, "
        some = f"val_fraction {_span(vals)} works" if vals else "only val_fraction = 0 works"
        tail = " (or 0: no validation split, when no component needs one)" if vals and without_val else ""
        options.append(given + some + tail)
        keys.append("data.val_fraction")
    if tests:
        options.append(f"with val_fraction = {val_fraction:g}, test_fraction {_span(tests)} works")
        keys.append("data.test_fraction")
    return ", ".join(keys), "; ".join(options)


def _sizes(n: int, val_fraction: float, test_fraction: float, test_given: bool) -> str:
    """The split sizes the fractions ask for (as the split rounds them: held-out parts up)."""
    n_test = 0 if test_given else min(math.ceil(test_fraction * n), n)
    rest = n - n_test
    n_val = min(math.ceil(val_share(val_fraction, test_fraction, test_given) * rest), rest) if val_fraction > 0 else 0
    n_train = rest - n_val
    if test_given:
        return f"that leaves {n_train} for training and {n_val} for validation"
    return f"that leaves {n_train} for training, {n_val} for validation and {n_test} for test"


def _span(values: list[float]) -> str:
    """'from 0.01 to 0.49' for a run of grid values without gaps, else the extremes as examples."""
    lo, hi = values[0], values[-1]
    if lo == hi:
        return f"= {lo:g}"
    if len(values) == GRID.index(hi) - GRID.index(lo) + 1:
        return f"from {lo:g} to {hi:g}"
    return f"= {lo:g} or {hi:g} (not every value between)"


def _too_small(n: int, k: int, smallest: int, need: int | None, size_key: str | None, test_given: bool) -> str:
    """What a data set this small lacks: the samples the fractions need with balanced classes."""
    which = "val_fraction" if test_given else "val_fraction or test_fraction alone"
    head = f"no {which} up to {GRID[-1]:g} can split these {n} samples"
    if need is None:
        return head
    text = (
        f"{head}: with these fractions {k} classes of equal size take at least {need} samples, "
        f"about {math.ceil(need / k)} of each (the smallest class here has {smallest})"
    )
    return text + (f"; {size_key} sets the data set's size" if size_key else "")


def works_balanced(m: int, k: int, val_fraction: float, test_fraction: float, seed: int, test_given: bool) -> bool:
    """Whether ``m`` samples of ``k`` classes as equal as can be would split."""
    counts = np.full(k, m // k) + (np.arange(k) < m % k)
    return fits(counts, val_fraction, test_fraction, seed=seed, test_given=test_given)


def _samples_needed(k: int, works: Callable[[int], bool]) -> int | None:
    """The fewest samples of ``k`` classes that ``works`` (doubling, then bisecting)."""
    if k < 1:
        return None
    lo, hi = k, 2 * k
    while not works(hi):
        lo, hi = hi, hi * 2
        if hi > 10**9:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi

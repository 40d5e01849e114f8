"""Seeded, stratified train/test index splits, computed step for step as
scikit-learn's ``train_test_split(..., stratify=y, random_state=seed)`` computes
them: the same indices for the same inputs (the tests compare the two).

Why not call scikit-learn: importing it takes over a second in every process
that loads data (the command and each worker), and a run's split is part of
what determines its numbers, so it should not move with scikit-learn's version.
"""

from __future__ import annotations

import math

import numpy as np

from ablate.data.seeds import numpy_seed


class SplitError(ValueError):
    """Sizes or classes that no stratified split can honour (too few samples, a
    class of one); ``ablate.data.splits`` turns it into a user error naming the study's keys."""


def val_share(val_fraction: float, test_fraction: float, test_given: bool) -> float:
    """The share of what is left after the test split that goes to validation, as
    ``make_splits`` composes its splits: ``val_fraction`` is of the whole when the
    test split is carved out of the same data."""
    if test_given:
        return val_fraction
    return val_fraction / (1.0 - test_fraction) if test_fraction < 1 else 1.0


def split_sizes(n: int, test_size: float | int | None, train_size: float | int | None) -> tuple[int, int]:
    """(train, test) sample counts: a float is a fraction (test rounded up, train
    down), an int a count, None the rest."""
    if test_size is None and train_size is None:
        raise ValueError("give test_size, train_size or both")  # a caller's mistake, not the data's
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else test_size
    n_train = math.floor(train_size * n) if isinstance(train_size, float) else train_size
    if n_train is None:
        n_train = n - int(n_test or 0)
    if n_test is None:
        n_test = n - n_train
    if n_train + n_test > n or n_train <= 0:
        raise SplitError(f"cannot split {n} samples into {n_train} for training and {n_test} for testing")
    return int(n_train), int(n_test)


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per class, how many of ``draws`` samples it gets: its share rounded down, the
    remainder given to the largest leftover shares, ties broken at random."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            take = min(len(tied), need)
            floored[rng.choice(tied, size=take, replace=False)] += 1
            need -= take
            if need == 0:
                break
    return floored.astype(int)


def _class_counts(
    counts: np.ndarray,
    classes: list[object],
    test_size: float | int | None,
    train_size: float | int | None,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, its (training, test) sample counts; a SplitError if no stratified split fits."""
    n_train, n_test = split_sizes(int(counts.sum()), test_size, train_size)
    if counts.min() < 2:
        rare = [c for c, k in zip(classes, counts, strict=True) if k < 2]
        raise SplitError(f"classes with a single sample cannot be split in proportion: {rare}")
    if n_train < len(counts) or n_test < len(counts):
        raise SplitError(
            f"a split of {n_train} training and {n_test} test samples cannot hold each of {len(counts)} classes"
        )
    train_counts = _approximate_mode(counts, n_train, rng)
    return train_counts, _approximate_mode(counts - train_counts, n_test, rng)


def split_counts(
    counts: np.ndarray, *, seed: int, test_size: float | int | None = None, train_size: float | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the (training, test) counts ``stratified_indices`` gives labels
    with these class ``counts`` (sorted by class), without making the indices:
    a cheap check of whether a split fits (a SplitError says why not)."""
    counts = np.asarray(counts)
    return _class_counts(
        counts, list(range(len(counts))), test_size, train_size, np.random.RandomState(numpy_seed(seed))
    )


def stratified_indices(
    y: np.ndarray, *, seed: int, test_size: float | int | None = None, train_size: float | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each class in proportion, in a seeded random order."""
    y = np.asarray(y)
    classes, y_indices, counts = np.unique(y, return_inverse=True, return_counts=True)
    rng = np.random.RandomState(numpy_seed(seed))
    train_counts, test_counts = _class_counts(counts, classes.tolist(), test_size, train_size, rng)
    by_class = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    train: list[int] = []
    test: list[int] = []
    for members, k_train, k_test in zip(by_class, train_counts, test_counts, strict=True):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        train.extend(shuffled[:k_train])
        test.extend(shuffled[k_train : k_train + k_test])
    return rng.permutation(train), rng.permutation(test)


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test), as ``train_test_split(x, y, stratify=y)`` returns them."""
    train, test = stratified_indices(y, seed=seed, test_size=test_size, train_size=train_size)
    return x[train], x[test], np.asarray(y)[train], np.asarray(y)[test]

"""Seeded, stratified train/validation/test splits for data sets that ship as
one array (digits, CSV files) or with only a train/test split (MNIST-1D)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ablate.components import DataSplits
from ablate.data.split_errors import split_error
from ablate.data.stratified import SplitError, stratified_split, val_share


def _standardiser(x_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Per-feature standardisation with training statistics only (no test leakage)."""
    mean = x_train.mean(axis=0, keepdims=True)
    std = x_train.std(axis=0, keepdims=True)
    std[std < 1e-8] = 1.0
    return lambda x: (x - mean) / std


def _three_ways(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[np.ndarray, ...]:
    """(x_train, x_val, x_test, y_train, y_val, y_test); a SplitError if a split cannot hold every class."""
    val_size = val_share(val_fraction, test_fraction, test_given=x_test is not None)
    if x_test is None:
        x, x_test, y, y_test = stratified_split(x, y, test_size=test_fraction, seed=seed)
    if val_size > 0:
        x_train, x_val, y_train, y_val = stratified_split(x, y, test_size=val_size, seed=seed)
    else:  # val_fraction = 0: train on everything; no component may need validation
        x_train, x_val, y_train, y_val = x, x[:0], y, y[:0]
    return x_train, x_val, x_test, y_train, y_val, np.asarray(y_test)


def make_splits(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    name: str = "",
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    standardise: bool = True,
    size_key: str | None = None,
) -> DataSplits:
    """Split stratified by class with ``seed``; a given test split is kept as is.

    Without ``x_test``, ``test_fraction`` of the data becomes the test split;
    ``val_fraction`` of the rest (of the whole, when the test split is carved
    out here) becomes the validation split. Fractions that leave a split too
    small for the classes raise a ``UserError`` on ``data.val_fraction`` and
    ``data.test_fraction`` that says which values work; ``size_key`` names the
    data key that sets the number of samples (e.g. ``data.n_samples``), for
    data too small for any fractions.
    """
    y = np.asarray(y).astype(np.int64)
    try:
        x_train, x_val, x_test, y_train, y_val, y_test = _three_ways(
            x, y, x_test, y_test, val_fraction, test_fraction, seed
        )
    except SplitError:  # fractions in range that together leave a split too small
        given = x_test is not None
        raise split_error(
            y, val_fraction, test_fraction, seed=seed, name=name, test_given=given, size_key=size_key
        ) from None
    import torch  # here, not at import: data set plugins load without torch

    if standardise:
        scale = _standardiser(x_train.astype(np.float64))
        x_train, x_val, x_test = scale(x_train), scale(x_val), scale(x_test)
    as_x = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)
    as_y = lambda a: torch.as_tensor(np.asarray(a).astype(np.int64))
    num_classes = int(np.concatenate([y_train, y_val, np.asarray(y_test)]).max() + 1)
    return DataSplits(
        as_x(x_train),
        as_y(y_train),
        as_x(x_val),
        as_y(y_val),
        as_x(x_test),
        as_y(y_test),
        num_classes=num_classes,
        name=name,
    )

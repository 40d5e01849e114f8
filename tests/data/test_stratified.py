"""ablate's stratified split gives exactly scikit-learn's train_test_split
indices (stratified, seeded), and the digits loader reads scikit-learn's
bundled file without importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ablate.data.stratified import split_sizes, stratified_split


@pytest.mark.parametrize("test_size", [0.2, 0.25, 0.1, 1 / 3, 0.5, 37])
def test_digits_splits_equal_scikit_learns_for_every_seed(test_size):
    x, y = load_digits(return_X_y=True)
    for seed in range(12):
        ours = stratified_split(x, y, test_size=test_size, seed=seed)
        theirs = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_uneven_classes_with_tied_remainders_and_train_sizes_equal_scikit_learns():
    rng = np.random.default_rng(0)
    for seed in range(20):
        y = np.concatenate([np.arange(7), np.arange(7), rng.integers(0, 7, size=int(rng.integers(20, 200)))])
        x = np.arange(len(y))
        for sizes in ({"train_size": 15}, {"train_size": 0.5}, {"test_size": 9}, {"test_size": 0.3}):
            ours = stratified_split(x, y, seed=seed, **sizes)
            theirs = train_test_split(x, y, stratify=y, random_state=seed, **sizes)
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a, b)


def test_each_class_keeps_its_share():
    y = np.repeat(np.arange(4), [40, 20, 20, 20])
    _, _, y_train, y_test = stratified_split(np.arange(100), y, test_size=0.25, seed=3)
    assert np.bincount(y_test).tolist() == [10, 5, 5, 5]
    assert np.bincount(y_train).tolist() == [30, 15, 15, 15]


def test_impossible_splits_say_why():
    with pytest.raises(ValueError, match="single sample"):
        stratified_split(np.arange(5), np.array([0, 0, 1, 1, 2]), test_size=0.4, seed=0)
    with pytest.raises(ValueError, match="cannot hold each of 3 classes"):
        stratified_split(np.arange(6), np.array([0, 0, 1, 1, 2, 2]), test_size=1, seed=0)
    with pytest.raises(ValueError, match="cannot split 10 samples"):
        split_sizes(10, 0.5, 0.8)


def test_digits_load_without_importing_scikit_learn_and_equal_its_copy(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from ablate.plugins.datasets import digits_arrays\n"
        "x, y = digits_arrays()\n"
        "assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules, 'scikit-learn was imported'\n"
        "np.save(sys.argv[1], np.concatenate([x, y[:, None]], axis=1))\n"
    )
    saved = tmp_path / "digits.npy"
    out = subprocess.run([sys.executable, "-c", code, str(saved)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    table = np.load(saved)
    x, y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(table[:, :-1], x)
    np.testing.assert_array_equal(table[:, -1], y)

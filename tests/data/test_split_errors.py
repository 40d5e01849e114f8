"""Fractions each in range that together leave a split too small, and data sets
too small for any split, are user errors (exit 2) naming the study file and the
data keys and saying what would work, before anything trains; `ablate plan` and
`ablate run --dry-run` say so too."""

from __future__ import annotations

import numpy as np
import pytest
from support import DROPOUT_FACTOR, one_epoch_study

from ablate import UserError, make_splits
from ablate.data.split_errors import GRID, fits

DIGITS_HALVES = 'name = "digits"\nval_fraction = 0.5\ntest_fraction = 0.5'
TOO_FEW_FOR_CLASSES = 'name = "make_classification"\nn_samples = 20\nn_classes = 10'


def _digits_like() -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(10), 180)[:1797]
    return np.random.default_rng(0).normal(size=(len(y), 4)), y


def _study(write_study, data: str):
    return write_study(one_epoch_study("splits", data=data) + DROPOUT_FACTOR)


def _is_user_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("command", [("plan", "--no-calibrate"), ("run", "--dry-run")])
def test_halves_of_digits_for_validation_and_test_name_both_keys_and_what_works(
    write_study, run_cli, tmp_path, command
):
    path = _study(write_study, DIGITS_HALVES)
    code, _out, err = run_cli(command[0], path, command[1])
    _is_user_error(code, err)
    first = err.splitlines()[0]
    assert first.startswith(f"error: {path}: data.val_fraction, data.test_fraction: data set 'digits'")
    assert "val_fraction = 0.5 and test_fraction = 0.5" in first
    assert "0 for training" in first
    assert "with test_fraction = 0.5, val_fraction from 0.01 to 0.49 works" in err
    assert "with val_fraction = 0.5, test_fraction from 0.01 to 0.49 works" in err


def test_run_stops_before_training_or_creating_the_study(write_study, run_cli, tmp_path):
    path = _study(write_study, DIGITS_HALVES)
    code, _out, err = run_cli("run", path, "--out", tmp_path / "out")
    _is_user_error(code, err)
    assert f"error: {path}: data.val_fraction, data.test_fraction:" in err
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_two_row_csv_names_the_file_key_and_the_samples_a_split_needs(write_study, run_cli, tmp_path):
    table = tmp_path / "two.csv"
    table.write_text("a,b,label\n1,2,0\n3,4,1\n")
    path = _study(write_study, f'name = "csv"\npath = "{table}"\nlabel_column = "label"')
    code, _out, err = run_cli("plan", path, "--no-calibrate")
    _is_user_error(code, err)
    assert err.startswith(f"error: {path}: data.path: data set 'csv' (2 samples, 2 classes)")
    assert "its smallest class has only 1 sample" in err
    assert "no val_fraction or test_fraction alone up to 0.5 can split these 2 samples" in err
    assert "data.path sets the data set's size" in err


def test_too_few_generated_samples_for_the_classes_name_n_samples_and_how_many_would_do(write_study, run_cli):
    path = _study(write_study, TOO_FEW_FOR_CLASSES)
    code, _out, err = run_cli("run", path, "--dry-run")
    _is_user_error(code, err)
    assert err.startswith(f"error: {path}: data.n_samples: data set 'make_classification' (20 samples, 10 classes)")
    assert "that leaves 12 for training, 4 for validation and 4 for test" in err
    assert "10 classes of equal size take at least 47 samples, about 5 of each" in err
    assert "data.n_samples sets the data set's size" in err
    # two changes at once do it too, and the advice says so (found by trying them)
    assert (
        "or val_fraction = 0 (no validation split, when no component needs one) with test_fraction from 0.46 to 0.5"
        in err
    )
    y = np.arange(20) % 10
    make_splits(np.zeros((20, 2)), y, val_fraction=0.0, test_fraction=0.46, seed=0)
    with pytest.raises(UserError):
        make_splits(np.zeros((20, 2)), y, val_fraction=0.0, test_fraction=0.45, seed=0)


def test_the_suggested_size_is_the_smallest_that_splits_with_those_fractions():
    """The make_classification advice above: 47 samples of 10 classes split with
    the default fractions; 46 do not (though other fractions would split them)."""
    y = np.arange(47) % 10
    make_splits(np.zeros((47, 2)), y, val_fraction=0.2, test_fraction=0.2, seed=0)
    with pytest.raises(UserError, match=r"cannot be split with val_fraction = 0\.2 and test_fraction = 0\.2"):
        make_splits(np.zeros((46, 2)), y[:46], val_fraction=0.2, test_fraction=0.2, seed=0)


def test_what_the_error_says_works_does_and_the_rest_does_not():
    """The per-class count check behind the advice agrees with real splits on every grid value."""
    x, y = _digits_like()
    counts = np.bincount(y)
    for val in GRID[::7] + (0.49, 0.5):
        works = fits(counts, val, 0.5, seed=3, test_given=False)
        try:
            make_splits(x, y, val_fraction=val, test_fraction=0.5, seed=3)
            split = True
        except UserError:
            split = False
        assert works == split, val
    with pytest.raises(UserError) as caught:
        make_splits(x, y, val_fraction=0.5, test_fraction=0.5, seed=3)
    assert caught.value.key == "data.val_fraction, data.test_fraction"
    assert caught.value.hint is not None and "val_fraction from 0.01 to 0.49" in caught.value.hint
    make_splits(x, y, val_fraction=0.49, test_fraction=0.5, seed=3)


def test_with_a_given_test_split_only_val_fraction_is_named():
    x, y = np.zeros((30, 2)), np.arange(30) % 10
    with pytest.raises(UserError) as caught:
        make_splits(x, y, x_test=x, y_test=y, val_fraction=0.1, test_fraction=0.0, seed=0, size_key="data.n")
    err = caught.value
    assert err.key == "data.val_fraction"
    assert "cannot be split with val_fraction = 0.1:" in err.message
    assert "that leaves 27 for training and 3 for validation" in err.message
    # ceil(0.31 * 30) = 10 validation samples for 10 classes
    assert err.hint == "val_fraction from 0.31 to 0.5 works (or 0: no validation split, when no component needs one)"


def test_a_stratified_subset_too_small_for_its_classes_names_train_samples():
    from ablate.plugins.datasets import subsample

    x, y = np.zeros((100, 2)), np.arange(100) % 10
    with pytest.raises(UserError) as caught:
        subsample(x, y, 5, seed=0)
    assert caught.value.key == "data.train_samples"
    assert caught.value.expected is not None and "from 10 to 90" in caught.value.expected
    assert len(subsample(x, y, 10, seed=0)[1]) == 10


def test_splits_that_fit_are_unchanged():
    """A split that fits is made as before the check was added: the test split first, then
    validation from the rest (stratified_split itself is checked against scikit-learn in
    test_stratified.py)."""
    from ablate.data.stratified import stratified_split

    x, y = _digits_like()
    splits = make_splits(x, y, val_fraction=0.2, test_fraction=0.2, seed=5, standardise=False)
    rest_x, test_x, rest_y, _ = stratified_split(x, y, test_size=0.2, seed=5)
    train_x, val_x, _, _ = stratified_split(rest_x, rest_y, test_size=0.25, seed=5)
    np.testing.assert_allclose(splits.x_test.numpy(), test_x.astype(np.float32))
    np.testing.assert_allclose(splits.x_val.numpy(), val_x.astype(np.float32))
    np.testing.assert_allclose(splits.x_train.numpy(), train_x.astype(np.float32))

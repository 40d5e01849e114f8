"""New components reject unknown parameters and out-of-range values at
validation, before anything trains (exit 2, naming component, parameter and
range); a data set whose files are missing stops the study with a clean
message, not a traceback and not a column of failed runs."""

from __future__ import annotations

import pytest
from support import TINY


@pytest.mark.slow
@pytest.mark.parametrize(
    "factor,expect",
    [
        (
            'kind = "regularizer"\nlevels = ["none", "max_norm"]\nmax_norm = { max_norm = 0.0 }',
            ["factors.f.max_norm.max_norm", "0.0", "(0, inf)"],
        ),
        (
            'kind = "regularizer"\nlevels = ["none", "label_smoothing"]\nlabel_smoothing = { eps = 1.0 }',
            ["label_smoothing.eps", "[0, 1)"],
        ),
        ('kind = "augmentation"\nlevels = ["none", "mixup"]\nmixup = { alpha = -1 }', ["mixup.alpha", "(0, 100]"]),
        ('kind = "augmentation"\nlevels = ["none", "crop"]\ncrop = { mode = "mirror" }', ["crop.mode", "'reflect'"]),
        (
            'kind = "norm"\nlevels = ["groupnorm"]\ngroupnorm = { group = 4 }',
            ["no parameter 'group'", "did you mean 'groups'"],
        ),
        (
            'kind = "stopping"\nlevels = ["none", "plateau"]\nplateau = { patience = 0 }',
            ["plateau.patience", "[1, inf)"],
        ),
        ('kind = "stopping"\nlevels = ["time_budget"]\ntime_budget = { seconds = 0 }', ["time_budget.seconds"]),
    ],
)
def test_bad_parameters_of_new_components_fail_before_training(write_study, run_cli, tmp_path, factor, expect):
    code, out, err = run_cli("run", write_study(TINY + "\n[factors.f]\n" + factor), "--out", tmp_path / "o")
    assert code == 2, err
    assert "Traceback" not in err and "runs on" not in out  # nothing trained
    for word in expect:
        assert word in err, (word, err)


@pytest.mark.slow
def test_bad_model_and_dataset_parameters_fail_before_training(write_study, run_cli, tmp_path):
    text = TINY.replace('name = "mlp"\nhidden = [32]', 'name = "cnn"\nkernel_size = 4')
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "o")
    assert code == 2 and "model.kernel_size" in err and "odd" in err
    text = TINY.replace('name = "digits"', 'name = "csv"\npath = "nowhere.csv"')
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "o")
    assert code == 2 and "data.path" in err and "no such file" in err


@pytest.mark.slow
def test_missing_dataset_files_stop_the_study_with_a_clean_user_error(write_study, run_cli, tmp_path):
    """The data set is loaded inside the first run; its UserError ends the study (exit 2)
    with one message naming the files and folder, instead of failing every run."""
    text = TINY.replace('name = "digits"', f'name = "mnist"\nroot = "{tmp_path / "data"}"')
    code, out, err = run_cli("run", write_study(text), "--out", tmp_path / "o")
    assert code == 2
    assert "internal error" not in err
    messages = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(messages) == 1  # one message, not one per run
    tail = err[err.index(messages[0]) :]
    assert "Traceback" not in tail
    assert "train-images-idx3-ubyte" in tail and str(tmp_path / "data" / "MNIST" / "raw") in tail
    assert "download = true" in tail
    assert "FAILED" not in out  # not recorded as failed runs

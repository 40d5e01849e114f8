"""Bad study files: a short error naming file, key, expectation and the nearest
valid name; exit 2; no traceback; nothing in the output folder lost."""

from __future__ import annotations

import pytest
from support import TINY

CASES = {
    "invalid_toml": (TINY.replace('name = "digits"', 'name = "digits'), ["invalid TOML", "line 8"]),
    "unknown_section": (TINY + "\n[trian]\nepochs = 3\n", ["[trian]", "did you mean 'train'"]),
    "unknown_key": (TINY.replace("epochs = 4", "epocs = 4"), ["train.epocs", "did you mean 'epochs'"]),
    "unknown_component": (
        TINY.replace('"batchnorm"]', '"batchnrom"]'),
        ["factors.norm.levels[1]", "unknown norm 'batchnrom'", "did you mean 'batchnorm'"],
    ),
    "unknown_model": (TINY.replace('name = "mlp"', 'name = "mpl"'), ["model.name", "did you mean 'mlp'"]),
    "wrong_type": (TINY.replace("batch_size = 128", 'batch_size = "big"'), ["train.batch_size", "an integer"]),
    "negative_epochs": (TINY.replace("epochs = 4", "epochs = -3"), ["train.epochs", "-3", "[1, 100000]"]),
    "dropout_out_of_range": (
        TINY.replace("rate = 0.2", "rate = 1.5"),
        ["factors.dropout.dropout.rate", "1.5", "[0, 1)"],
    ),
    "unknown_param": (
        TINY.replace("rate = 0.2", "rat = 0.2"),
        ["factors.dropout.dropout.rat", "has no parameter 'rat'", "did you mean 'rate'"],
    ),
    "missing_dataset": (TINY.replace('[data]\nname = "digits"\n', ""), ["missing data set", "digits", "mnist1d"]),
    "unknown_dataset": (TINY.replace('name = "digits"', 'name = "digts"'), ["data.name", "did you mean 'digits'"]),
    "bad_slot_order": (
        TINY.replace("hidden = [32]", 'hidden = [32]\nslots = "linear>nrom>act"'),
        ["model.slots", "unknown slot 'nrom'"],
    ),
    "bad_seeds": (TINY.replace("seeds = 2", "seeds = 0"), ["study.seeds"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_study_file_is_a_short_clear_error(case, write_study, run_cli, tmp_path):
    text, needles = CASES[case]
    study = write_study(text)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("precious earlier results\n")
    code, stdout, stderr = run_cli("run", study, "--out", out)
    assert code == 2
    assert "Traceback" not in stderr + stdout
    lines = stderr.strip().splitlines()
    assert 1 <= len(lines) <= 3, stderr
    assert str(study) in lines[0]
    for needle in needles:
        assert needle in stderr, (needle, stderr)
    assert (out / "results.csv").read_text() == "precious earlier results\n"
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]


@pytest.mark.slow
def test_missing_study_file(run_cli, tmp_path):
    code, _, stderr = run_cli("run", tmp_path / "nope.toml")
    assert code == 2 and "study file not found" in stderr and "nope.toml" in stderr


@pytest.mark.slow
def test_bad_storage_url_is_a_user_error(write_study, run_cli, tmp_path):
    code, _, stderr = run_cli("run", write_study(), "--out", tmp_path / "o", "--storage", "nosuchdb://x")
    assert code == 2 and "storage" in stderr and "Traceback" not in stderr


@pytest.mark.slow
def test_unknown_baseline_arm_names_the_nearest(write_study, run_cli):
    code, _, stderr = run_cli("run", write_study(TINY.replace("seeds = 2", 'seeds = 2\nbaseline = "batchnrom"')))
    assert code == 2 and "study.baseline" in stderr and "did you mean 'batchnorm'" in stderr

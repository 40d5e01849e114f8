"""Seeds and split seeds from 0 to 2^63 - 1 train (NumPy's 32-bit generators get
a large seed as its two words; a small seed is passed unchanged), larger ones are
a user error before training, and a study whose runs all failed still gets its report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ablate.data.seeds import MAX_SEED, numpy_seed

STUDY = """
[study]
name = "bigseeds"
seeds = [4294967296, {top}, 7]
[data]
name = "digits"
split_seed = 4294967296
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
batch_size = 256
stack = "{stack}"
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
"""


def test_numpy_gets_small_seeds_unchanged_and_large_ones_as_two_words():
    assert numpy_seed(0) == 0 and numpy_seed(2**32 - 1) == 2**32 - 1
    assert numpy_seed(2**32) == [0, 1] and numpy_seed(MAX_SEED) == [2**32 - 1, 2**31 - 1]
    draws = {s: np.random.RandomState(numpy_seed(s)).randint(0, 2**31, 4).tolist() for s in (0, 1, 2**32, 2**32 + 1)}
    assert len({tuple(d) for d in draws.values()}) == 4  # one stream per seed


def test_seeds_and_split_seed_past_2_to_the_32_train_the_same_stacked_and_alone(write_study, run_cli, tmp_path):
    tables = {}
    for stack in ("auto", "off"):
        path = write_study(STUDY.format(top=MAX_SEED, stack=stack), name=f"{stack}.toml")
        code, out, err = run_cli("run", path, "--out", tmp_path / stack)
        assert code == 0, out + err
        assert "Traceback" not in err and "FAILED" not in out
        tables[stack] = pd.read_csv(tmp_path / stack / "results.csv").sort_values(["arm", "seed"])
    auto, off = tables["auto"], tables["off"]
    assert sorted(set(auto["seed"])) == [7, 4294967296, MAX_SEED] and (auto["status"] == "complete").all()
    assert np.allclose(auto["test_accuracy"], off["test_accuracy"], atol=1e-6)
    big = auto[auto["seed"] == 4294967296]["test_accuracy"].to_numpy()
    assert not np.allclose(big, auto[auto["seed"] == 7]["test_accuracy"].to_numpy())  # its own draws


def test_a_seed_past_2_to_the_63_is_refused_before_training(write_study, run_cli, tmp_path):
    path = write_study(STUDY.format(top=2**63, stack="auto"))
    code, _, err = run_cli("run", path, "--out", tmp_path / "out")
    assert code == 2 and "study.seeds" in err and "2^63-1" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "study.db").exists()
    text = STUDY.format(top=5, stack="auto").replace("split_seed = 4294967296", f"split_seed = {2**63}")
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 2 and "data.split_seed" in err and "Traceback" not in err


FAILING = """
[study]
name = "allfail"
seeds = 2
plugins = ["stacking_plugin.py"]
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
batch_size = 256
[factors.augment]
kind = "augmentation"
levels = ["fail_batch", "poison_batch"]
fail_batch = { p = 1.0 }
poison_batch = { p = 1.0 }
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
"""


def test_a_study_whose_runs_all_failed_gets_its_report(write_study, run_cli, tmp_path):
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "stacking_plugin.py", tmp_path)
    code, out, err = run_cli("run", write_study(FAILING), "--out", tmp_path / "out")
    assert code == 3, out + err  # finished, with failed runs
    assert "Traceback" not in err and (tmp_path / "out" / "index.html").is_file()
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(table) == 8 and (table["status"] == "failed").all()

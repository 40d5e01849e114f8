"""Third-party plugins: an installed distribution and a local file a study names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import TINY, ablate, pip_install

from ablate.errors import UserError
from ablate.plugin.manager import build_registry, make_plugin_manager

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "extra_plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    return pip_install(FIXTURE, tmp_path_factory.mktemp("pip"))


@pytest.mark.slow
def test_installed_distribution_is_listed_and_usable(installed_plugin, write_study, tmp_path):
    listing = ablate(installed_plugin, "plugins")
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if "scalenorm" in row)
    assert "ablate-extra-plugin:norms" in line
    assert "batchnorm" in listing.stdout  # built-ins still there beside it
    study = write_study(TINY.replace('"batchnorm"]', '"scalenorm"]').replace("seeds = 2", "seeds = 1"))
    done = ablate(installed_plugin, "run", study, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(table["norm"]) == {"none", "scalenorm"} and (table["status"] == "complete").all()


@pytest.mark.slow
def test_without_the_distribution_the_name_is_unknown(write_study, run_cli):
    code, _, stderr = run_cli("run", write_study(TINY.replace('"batchnorm"]', '"scalenorm"]')))
    assert code == 2 and "unknown norm 'scalenorm'" in stderr


LOCAL = '''
import torch
from ablate import Param, hookimpl

class Shrink:
    """Multiplies every weight by (1 - amount) after each step: a visible effect."""
    def __init__(self, amount):
        self.amount = amount

    @hookimpl
    def ablate_after_step(self, model):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 - self.amount)

@hookimpl
def ablate_register_regularizers(registry):
    registry.add("shrink", Shrink, params={"amount": Param(0.1, low=0.0, high=1.0)})
'''


@pytest.mark.slow
def test_study_names_a_local_plugin_file(write_study, run_cli, tmp_path):
    (tmp_path / "my_plugin.py").write_text(LOCAL)
    text = TINY.replace("seeds = 2", 'seeds = 1\nplugins = ["my_plugin.py"]').replace(
        '"dropout"]\ndropout = { rate = 0.2 }', '"shrink"]\nshrink = { amount = 0.5 }'
    )
    code, _stdout, stderr = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("arm")
    # shrinking every weight by half each step cripples the network: the effect is real
    assert table.loc["shrink", "train_accuracy"] < table.loc["baseline", "train_accuracy"] - 0.3


@pytest.mark.slow
def test_missing_local_plugin_file_is_a_user_error(write_study, run_cli):
    code, _, stderr = run_cli("run", write_study(TINY.replace("seeds = 2", 'seeds = 2\nplugins = ["gone.py"]')))
    assert code == 2 and "gone.py" in stderr and "does not exist" in stderr


def test_two_plugins_of_one_component_name_both_load_and_the_short_name_is_ambiguous(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.py").write_text(
            "from ablate import hookimpl\n@hookimpl\ndef ablate_register_norms(registry):\n"
            f"    registry.add('twin', object, help={name!r})\n"
        )
    registry = build_registry(make_plugin_manager([tmp_path / "one.py", tmp_path / "two.py"]))
    assert registry.find("norm", "one.py:twin").help == "one" and registry.find("norm", "two.py:twin").help == "two"
    assert {"one.py:twin", "two.py:twin"} <= set(registry.names("norm")) and "twin" not in registry.names("norm")
    with pytest.raises(UserError) as err:
        registry.find("norm", "twin")
    assert "norm 'twin' is registered by 2 plugins: one.py:twin and two.py:twin" in str(err.value)


KINDS_PLUGIN = """
import numpy as np
import torch.nn as nn
from ablate import Param, hookimpl, make_splits


class Blobs:
    def __init__(self, centers):
        self.centers = centers

    def load(self, split_seed):
        from sklearn.datasets import make_blobs
        x, y = make_blobs(n_samples=300, centers=self.centers, n_features=5, random_state=0)
        return make_splits(x, y, val_fraction=0.2, test_fraction=0.2, seed=split_seed, name="blobs")


class Linear:
    def __init__(self):
        pass

    def build(self, input_shape, num_classes, make_layer):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))


class StopAt:
    def __init__(self, epoch):
        self.epoch = epoch

    @hookimpl
    def ablate_epoch_end(self, state):
        return "stop_at" if state.epoch >= self.epoch else None


@hookimpl
def ablate_register_datasets(registry):
    registry.add("blobs", Blobs, params={"centers": Param(3, low=2, high=20)})


@hookimpl
def ablate_register_models(registry):
    registry.add("linear", Linear)


@hookimpl
def ablate_register_stopping_rules(registry):
    registry.add("stop_at", StopAt, params={"epoch": Param(2, low=1)})
"""


@pytest.mark.slow
def test_local_file_can_add_a_dataset_a_model_and_a_stopping_rule(write_study, run_cli, tmp_path):
    (tmp_path / "kinds.py").write_text(KINDS_PLUGIN)
    study = write_study("""
        [study]
        seeds = 2
        plugins = ["kinds.py"]
        [data]
        name = "blobs"
        centers = 4
        [model]
        name = "linear"
        [train]
        epochs = 6
        lr = 0.05
        [factors.stop]
        kind = "stopping"
        levels = ["none", "stop_at"]
        stop_at = { epoch = 2 }
        """)
    code, _, stderr = run_cli("run", study, "--out", tmp_path / "out")
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("arm")
    assert list(table.loc["stop_at", "epochs"]) == [2, 2]
    assert set(table.loc["stop_at", "stop_reason"]) == {"stop_at"}
    assert list(table.loc["baseline", "epochs"]) == [6, 6]
    assert table.loc["baseline", "test_accuracy"].min() > 0.8  # separated blobs are learnable

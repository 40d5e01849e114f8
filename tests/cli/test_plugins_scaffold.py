"""`ablate new-plugin NAME` writes a package that pip-installs, passes its own
generated test (built on ``ablate.testing``) and is listed by `ablate plugins`."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from support import ablate, pip_install

from ablate.testing import run_tiny_study, tiny_study


def test_new_plugin_installs_passes_its_test_and_is_listed(tmp_path, run_cli):
    code, _out, err = run_cli("new-plugin", "demo", "--dir", tmp_path)
    assert code == 0, err
    package = tmp_path / "ablate-demo"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "ablate_demo/__init__.py",
        "pyproject.toml",
        "tests/test_ablate_demo.py",
    ]
    assert '[project.entry-points.ablate]\ndemo = "ablate_demo"' in (package / "pyproject.toml").read_text()

    env = pip_install(package, tmp_path / "pip")

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout

    listing = ablate(env, "plugins")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.split()[:1] == ["demo"])
    assert "[ablate-demo:demo]" in line and "warning" not in listing.stderr
    assert "amount = 0.01  (a number in [0, 1))" in listing.stdout


@pytest.mark.parametrize(
    "name, words", [("9lives", "not a usable component name"), ("none", "not a usable component name")]
)
def test_new_plugin_refuses_a_bad_name(tmp_path, run_cli, name, words):
    code, _, err = run_cli("new-plugin", name, "--dir", tmp_path)
    assert code == 2 and words in err


def test_new_plugin_never_overwrites_a_folder(tmp_path, run_cli):
    (tmp_path / "ablate-demo").mkdir()
    (tmp_path / "ablate-demo" / "mine.txt").write_text("keep")
    code, _, err = run_cli("new-plugin", "demo", "--dir", tmp_path)
    assert code == 2 and "already exists" in err
    assert (tmp_path / "ablate-demo" / "mine.txt").read_text() == "keep"


LOCAL = '''
from ablate import Param, hookimpl


class Sets:
    """A data set of one's own: scikit-learn's wine, 3 classes."""

    def __init__(self, scale: float):
        self.scale = scale

    def load(self, split_seed: int):
        from sklearn.datasets import load_wine
        from ablate import make_splits
        x, y = load_wine(return_X_y=True)
        return make_splits(x * self.scale, y, val_fraction=0.2, test_fraction=0.2, seed=split_seed,
                           name="wine")


@hookimpl
def ablate_register_datasets(registry):
    registry.add("wine", Sets, params={"scale": Param(1.0, low=0.0, low_open=True)})
'''


@pytest.mark.slow
def test_run_tiny_study_runs_a_local_data_set(tmp_path):
    (tmp_path / "wine.py").write_text(LOCAL)
    table = run_tiny_study("dataset", "wine", {"scale": 2.0}, tmp_path, plugin_file=tmp_path / "wine.py", epochs=30)
    assert isinstance(table, pd.DataFrame) and len(table) == 1
    assert table["status"].tolist() == ["complete"] and table["test_accuracy"].iloc[0] > 0.8


@pytest.mark.slow
def test_run_tiny_study_reports_what_ablate_refused(tmp_path):
    refused = "(?s)exited with 2.*has no parameter 'rat'.*did you mean 'rate'"
    with pytest.raises(AssertionError, match=refused):
        run_tiny_study("regularizer", "dropout", {"rat": 0.1}, tmp_path)


def test_tiny_study_text_is_a_valid_study_with_the_component_on_and_off(tmp_path, run_cli):
    (tmp_path / "s.toml").write_text(tiny_study("augmentation", "gaussian_noise", {"std": 0.3}))
    code, out, err = run_cli("plan", tmp_path / "s.toml", "--no-calibrate")
    assert code == 0, err
    assert "runs: 2 arms x 1 seeds = 2" in out and "gaussian_noise" in out


@pytest.mark.slow
def test_the_guides_data_set_and_model_example_works(tmp_path, registry):
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", guide, re.S) if "class Wine" in block)
    (tmp_path / "guide_example.py").write_text(code)
    table = run_tiny_study(
        "model", "wide", {"width": 64}, tmp_path, plugin_file=tmp_path / "guide_example.py", epochs=10
    )
    assert table["status"].tolist() == ["complete"] and table["test_accuracy"].iloc[0] > 0.8
    from ablate.plugin.manager import build_registry, make_plugin_manager

    wine = (
        build_registry(make_plugin_manager([tmp_path / "guide_example.py"]))
        .create("dataset", "wine", {"val_fraction": 0.0})
        .load(0)
    )
    assert wine.num_classes == 3 and len(wine.x_val) == 0 and wine.input_shape == (13,)

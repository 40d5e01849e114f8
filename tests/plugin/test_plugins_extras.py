"""An installed package written before ablate had a spectral_norm, with its own
spectral_norm (other parameters) and its other components in the same module: all
of it loads beside ablate's, a study chooses a provider by its qualified name, and
a study that uses the short name is told both (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import ablate, pip_install

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "extras_plugin"

STUDY = """
[study]
seeds = 2

[data]
name = "wine"

[model]
name = "linear"

[train]
epochs = 6
lr = 0.01
stack = "off"

[factors.sn]
kind = "regularizer"
levels = {levels}
{tables}

[factors.stop]
kind = "stopping"
levels = ["none", "target_accuracy"]
target_accuracy = {{ target = 0.3 }}

[factors.cut]
kind = "augmentation"
levels = ["cutout"]
cutout = {{ size = 2 }}
"""


@pytest.fixture(scope="module")
def extras(tmp_path_factory):
    return pip_install(FIXTURE, tmp_path_factory.mktemp("pip"))


@pytest.mark.slow
def test_every_component_of_the_package_loads_and_both_spectral_norms_are_listed(extras):
    listing = ablate(extras, "plugins")
    assert listing.returncode == 0, listing.stderr
    assert "warning" not in listing.stderr and "not loaded" not in listing.stdout
    rows = {r.split()[0]: r.split()[1] for r in listing.stdout.splitlines() if r.startswith("  ") and r[2] != " "}
    assert rows["ablate:spectral_norm"] == "[ablate:regularizers]"
    assert rows["ablate-extras:spectral_norm"] == "[ablate-extras:extras]"
    for name in ("scalenorm", "cutout", "target_accuracy", "wine", "linear", "shallow"):
        assert rows[name] == "[ablate-extras:extras]", name
    detail = ablate(extras, "plugins", "spectral_norm")
    assert "qualified name: ablate:spectral_norm" in detail.stdout
    assert "qualified name: ablate-extras:spectral_norm" in detail.stdout and "include_output = False" in detail.stdout


@pytest.mark.slow
def test_a_study_runs_the_packages_spectral_norm_by_its_qualified_name(extras, tmp_path):
    levels = '["none", "ablate:spectral_norm", "ablate-extras:spectral_norm"]'
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(levels=levels, tables='"ablate-extras:spectral_norm" = { include_output = true }'))
    done = ablate(extras, "run", study, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (table["status"] == "complete").all() and len(table) == 12
    by = table.set_index(["sn", "stop", "seed"]).sort_index()
    off = by.loc["none"]
    # ablate's leaves a one-layer model's classifier alone: the numbers of no spectral norm
    assert by.loc["ablate:spectral_norm"]["train_loss"].to_numpy() == pytest.approx(off["train_loss"].to_numpy())
    # the package's, told to, normalises the only layer: other numbers, so it is the one that ran
    theirs = by.loc["ablate-extras:spectral_norm"]["train_loss"].to_numpy()
    assert abs(theirs - off["train_loss"].to_numpy()).min() > 1e-3
    stopped = table[table["stop"] == "target_accuracy"]
    assert set(stopped["stop_reason"]) == {"target_accuracy"} and (stopped["epochs"] < 6).all()


@pytest.mark.slow
def test_a_study_using_the_short_name_is_told_both_qualified_names(extras, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(
        STUDY.format(levels='["none", "spectral_norm"]', tables="spectral_norm = { include_output = true }")
    )
    done = ablate(extras, "plan", study)
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (
        f"error: {study}: factors.sn.levels[1]: regularizer 'spectral_norm' is registered by 2 plugins: "
        "ablate:spectral_norm and ablate-extras:spectral_norm"
    )
    assert "only ablate-extras:spectral_norm accepts the parameters given here (include_output)" in done.stderr
    assert 'change it to: levels = ["none", "ablate-extras:spectral_norm"]' in done.stderr
    assert "Traceback" not in done.stderr

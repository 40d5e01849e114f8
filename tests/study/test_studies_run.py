"""The real-workload studies run to a report in the suite, shrunk: their own
design and factors, tiny sizes, and cifar10_recipe's data replaced by a small
generated folder in CIFAR-10's format."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from data_files import write_cifar10

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def shrunk(text: str, **settings: object) -> str:
    """The study text with ``section__key = value`` set (a key not there is added under its section)."""
    lines = text.splitlines()
    for name, value in settings.items():
        section, key = name.split("__")
        start = lines.index(f"[{section}]")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        found = [i for i in range(start + 1, end) if re.match(rf"{key}\s*=", lines[i])]
        line = f"{key} = {value}"
        if found:
            lines[found[0]] = line
        else:
            lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


def run_study(run_cli, path: Path, out: Path) -> pd.DataFrame:
    code, _, err = run_cli("run", path, "--out", out)
    assert code == 0, err
    assert (out / "index.html").is_file()
    return pd.read_csv(out / "results.csv")


@pytest.mark.slow
def test_cifar10_recipe_runs_to_a_report_on_generated_cifar_files(run_cli, tmp_path):
    write_cifar10(tmp_path / "data", per_batch=12, n_test=20)  # root = "data", relative to the study file
    text = shrunk(
        (STUDIES / "cifar10_recipe.toml").read_text(),
        study__seeds=1,
        model__width=2,
        model__blocks="[1, 1]",
        train__epochs=1,
        train__batch_size=32,
        data__val_fraction=0.2,
    )
    (tmp_path / "cifar10_recipe.toml").write_text(text)
    table = run_study(run_cli, tmp_path / "cifar10_recipe.toml", tmp_path / "out")
    assert len(table) == 16 and (table["status"] == "complete").all()
    assert {"norm", "dropout", "label_smoothing", "mixup"} <= set(table.columns)


@pytest.mark.slow
def test_transformer_norms_runs_to_a_report_with_none_once(run_cli, tmp_path):
    text = shrunk(
        (STUDIES / "transformer_norms.toml").read_text(),
        study__seeds=2,
        data__num_samples=500,
        model__width=8,
        model__depth=1,
        model__heads=2,
        train__epochs=1,
    )
    (tmp_path / "transformer_norms.toml").write_text(text)
    table = run_study(run_cli, tmp_path / "transformer_norms.toml", tmp_path / "out")
    # 5 norm x order arms (none runs once, not per order), each with and without warmup
    assert len(table) == 5 * 2 * 2 and (table["status"] == "complete").all()
    assert sorted(table["norm"].unique()) == ["layernorm", "none", "rmsnorm"]
    assert sorted(table["warmup.warmup_epochs"].unique()) == [0, 2]


def test_shrunk_sets_and_adds_keys():
    text = "[a]\nx = 1\n\n[b]\ny = 2\n"
    assert shrunk(text, a__x=3, b__z=4) == "[a]\nx = 3\n\n[b]\nz = 4\ny = 2\n"

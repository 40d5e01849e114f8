"""`ablate report` rebuilds a finished study's tables byte for byte from storage alone;
`ablate compare` puts several studies side by side; user mistakes exit 2 with a clear line."""

from __future__ import annotations

import shutil
import sqlite3

import optuna
import pandas as pd
import pytest

from ablate.cli.report_commands import COMMANDS, open_stored_study

TABLES = ["results.csv", "results.json", "leaderboard.md", "leaderboard.tex", "summary.md"]


def report_cli(*argv) -> int:
    """The real command line: `ablate report ...` / `ablate compare ...`."""
    from ablate.cli import main

    assert str(argv[0]) in COMMANDS
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A TINY study trained once by `ablate run` (about 3 s) and shared by this module's tests."""
    from support import TINY

    from ablate.cli import main

    root = tmp_path_factory.mktemp("finished")
    study = root / "study.toml"
    study.write_text(TINY)
    out = root / "out"
    assert main(["run", str(study), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_report_reproduces_the_tables_byte_for_byte(finished, tmp_path, capsys):
    original = {name: (finished / name).read_bytes() for name in TABLES}
    assert report_cli("report", finished, "--out", tmp_path / "rebuilt") == 0
    for name in TABLES:
        assert (tmp_path / "rebuilt" / name).read_bytes() == original[name], name
    assert (tmp_path / "rebuilt" / "index.html").is_file()
    # In place, from the folder alone (its study.db), after the old files are gone.
    for name in TABLES:
        (finished / name).unlink()
    assert report_cli("report", finished) == 0
    for name in TABLES:
        assert (finished / name).read_bytes() == original[name], name
    assert "written from stored runs" in capsys.readouterr().out


@pytest.mark.slow
def test_report_from_a_storage_url_and_study_choice(finished, tmp_path, capsys):
    db = tmp_path / "copy.db"
    shutil.copy(finished / "study.db", db)
    url = f"sqlite:///{db}"
    assert report_cli("report", url, "--out", tmp_path / "a") == 0
    assert (tmp_path / "a" / "results.csv").read_bytes() == (finished / "results.csv").read_bytes()
    optuna.create_study(storage=url, study_name="other")
    capsys.readouterr()
    assert report_cli("report", url, "--out", tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "holds 2 studies: other, tiny" in err and "--study" in err
    assert open_stored_study(url, "tiny").study_name == "tiny"  # what --study tiny reports
    assert report_cli("report", url, "--study", "tyni") == 2
    assert "did you mean 'tiny'?" in capsys.readouterr().err
    assert report_cli("report", url, "--study", "other") == 2
    assert "has no record or plan stored" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing written on a mistake


@pytest.mark.parametrize(
    "source, message",
    [
        ("{tmp}/nowhere", "not a folder or a storage URL"),
        ("{tmp}", "no study.db in this folder"),
        ("sqlite:///{tmp}/missing.db", "no SQLite database at"),
        ("sqlite:///{tmp}/empty.db", "cannot open storage"),
    ],
)
def test_report_user_mistakes_exit_2(tmp_path, capsys, source, message):
    sqlite3.connect(tmp_path / "empty.db").close()  # an SQLite file without Optuna's tables
    assert report_cli("report", source.format(tmp=tmp_path)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # reading never creates a database


@pytest.mark.slow
def test_compare_puts_studies_side_by_side(finished, tmp_path, capsys):
    second = tmp_path / "second"
    second.mkdir()
    for name in ("results.csv", "results.json"):  # compare needs only these two
        shutil.copy(finished / name, second / name)
    out = tmp_path / "cmp"
    assert report_cli("compare", finished, second, "--out", out) == 0
    board = pd.read_csv(out / "compare.csv")
    arms = pd.read_csv(finished / "results.csv")["arm"].nunique()
    assert len(board) == 2 * arms
    assert sorted(board["study"].unique()) == sorted([f"tiny ({finished})", f"tiny ({second})"])
    assert list(board["val_mean"]) == sorted(board["val_mean"], reverse=True)  # chosen on validation
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert html.count('<tr class="arm-row"') == 2 * arms and (out / "fig_compare.png").is_file()
    capsys.readouterr()
    assert report_cli("compare", finished, tmp_path / "empty", "--out", out) == 2
    assert "no results.csv" in capsys.readouterr().err

"""SQLite storages in folders whose names a URL would misread ("%", "?", quotes, "="):
the URL ablate builds, SQLAlchemy's reading of it and ablate's own name the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ablate.engine.store.storage_url import for_people, sqlite_path, sqlite_url

ODD = ['out x ="off"', "out%41 ?q", "a#b@c:d", "plain"]


@pytest.mark.parametrize("name", ODD)
def test_the_url_of_a_file_names_that_file_to_sqlalchemy_and_to_ablate(tmp_path, name):
    db = tmp_path / name / "study.db"
    url = sqlite_url(db)
    assert make_url(url).database == str(db)
    assert sqlite_path(url) == db
    assert sqlite_path(for_people(url)) == db  # SQLAlchemy's rendering %-escapes; read back the same


def test_a_non_sqlite_url_has_no_path():
    assert sqlite_path("postgresql://u@h/db") is None


@pytest.mark.parametrize("name", ODD[:2])
def test_run_and_report_in_an_oddly_named_folder(tmp_path, monkeypatch, run_cli, write_study, name):
    study = write_study(
        """
        [study]
        name = "odd"
        seeds = 1
        [data]
        name = "digits"
        [model]
        name = "mlp"
        [train]
        epochs = 1
        """
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("run", study, "--out", name)
    assert code == 0, err
    code, _, err = run_cli("report", name, "--out", "again")
    assert code == 0, err
    code, _, err = run_cli("report", sqlite_url(Path(name) / "study.db"), "--out", "by_url")
    assert code == 0, err
    assert (tmp_path / "by_url" / "results.csv").read_text() == (tmp_path / name / "results.csv").read_text()

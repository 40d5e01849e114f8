"""Optuna's private internals are touched in one module, and that module fails
loudly here (not silently slower or wrong in a study) when Optuna moves them."""

from __future__ import annotations

import re

import optuna
import pytest

import ablate
from ablate.engine.store import optuna_internals
from ablate.engine.store.storage import open_for_reading, open_storage

PACKAGE = ablate.__file__.rsplit("/", 1)[0]
PRIVATE = re.compile(r"optuna\.storages\._|\._storage\b|\._backend\b|_init_alembic|\._study_id\b|\._trial_id\b")


def test_only_one_module_uses_optunas_private_names():
    from pathlib import Path

    users = sorted(
        str(p.relative_to(Path(PACKAGE).parent))
        for p in Path(PACKAGE).rglob("*.py")
        if PRIVATE.search(p.read_text(encoding="utf-8"))
    )
    assert users == ["ablate/engine/store/optuna_internals.py"]


def test_the_internals_relied_on_are_there(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    assert optuna_internals.batchable(study), "Optuna moved the internals of bulk trial writes"
    assert optuna_internals.engine_of(study).url.database == str(tmp_path / "study.db")
    trial = study.ask()
    assert optuna_internals.trial_id_of(trial) == study.get_trials()[0]._trial_id
    assert optuna_internals.study_id_of(study) == study._study_id
    optuna_internals.load_models()
    quick = optuna_internals.open_without_migrations(url)
    assert quick is not None, "Optuna moved _VersionManager._init_alembic: reading a storage loads alembic again"
    assert [s.study_name for s in quick.get_all_studies()] == ["s"]


def test_a_storage_opens_for_reading_where_the_quick_open_fails(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=open_storage(url), study_name="s")
    monkeypatch.setattr(optuna_internals, "open_without_migrations", lambda url: None)
    assert [s.study_name for s in open_for_reading(url).get_all_studies()] == ["s"]


@pytest.mark.parametrize("moved", ["_VersionManager"])
def test_the_quick_open_says_none_where_optuna_moved_it(tmp_path, monkeypatch, moved):
    from optuna.storages._rdb import storage as rdb

    monkeypatch.delattr(rdb, moved)
    assert optuna_internals.open_without_migrations(f"sqlite:///{tmp_path / 'x.db'}") is None

"""A database password never leaves the command that needs it: not on the terminal,
not in the report folder, not in what the study stores; and ways to give it that keep
it off the command line (ABLATE_STORAGE, PGPASSWORD, ~/.pgpass), against a real
PostgreSQL server that asks for passwords."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import optuna
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from support import DROPOUT_FACTOR, one_epoch_study

from ablate.cli import main
from ablate.engine.store.storage import normalise_url
from ablate.engine.store.storage_url import ENV, for_people, scrub, without_password

URLS = [
    "postgresql://ablate:S3cret@db-host/ablate",
    "postgresql+psycopg://ablate:p%40ss%2Fw%3Ard@db-host:5433/ablate?sslmode=require",
    "postgres://u:pw@[::1]:5432/db",
    "mysql+pymysql://user:pw@host/db?charset=utf8mb4",
    "postgresql://ablate@db-host/ablate",
    "postgresql://ablate:@db-host/ablate",
    "sqlite:////tmp/reports/a:b@c/study.db",
    "sqlite:///relative.db",
]


@pytest.mark.parametrize("url", URLS)
def test_urls_read_as_sqlalchemy_renders_them(url):
    parsed = make_url(url)  # SQLAlchemy's hide_password=True: the password as ***, all else the same
    assert make_url(for_people(url)) == (parsed if parsed.password is None else parsed.set(password="***"))
    if "%" not in url and "@c/" not in url:  # the same text where SQLAlchemy quotes nothing anew
        assert for_people(url) == parsed.render_as_string(hide_password=True)
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query)
    assert make_url(without_password(url)) == bare


def test_a_password_with_a_bare_at_sign_is_hidden_whole():
    url = "postgresql://ablate:p@ss@db-host/ablate"  # SQLAlchemy would show "ss@db-host" as the host
    assert for_people(url) == "postgresql://ablate:***@db-host/ablate"
    assert without_password(url) == "postgresql://ablate@db-host/ablate"
    said = scrub(f"cannot reach {url}: password p@ss refused (p%40ss)", url)
    assert "p@ss" not in said and "p%40ss" not in said and "ablate:***@db-host" in said


def _study(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(one_epoch_study(name) + "\n" + DROPOUT_FACTOR)
    return path


@pytest.fixture
def cli(capfd, monkeypatch, tmp_path):
    """Run the CLI in this process with no storage or libpq settings of the caller's;
    return (status, everything it wrote to stdout and stderr, C libraries' included)."""
    for var in (ENV, "PGPASSWORD", "PGPASSFILE", "PGUSER", "PGHOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.pgpass but the test's own
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)

    def run(*args: object) -> tuple[int, str]:
        code = main([str(a) for a in args])
        said = capfd.readouterr()
        return code, said.out + said.err

    return run


def _hidden(secret: str, *texts: str, folders: tuple[Path, ...] = (), url: str | None = None) -> None:
    """The secret appears in none of the texts, no file under the folders, no row of the database."""
    forms = {secret, quote(secret, safe="")}
    for text in texts:
        assert not any(f in text for f in forms), text
    for folder in folders:
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files
        for path in files:
            assert not any(f.encode() in path.read_bytes() for f in forms), path
    if url is not None:
        engine = sa.create_engine(normalise_url(url))
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                assert not any(f in repr(rows) for f in forms), table
        engine.dispose()


def _stored_attrs(url: str, name: str) -> str:
    """The study's and its trials' user and system attributes, as stored."""
    storage = optuna.storages.RDBStorage(normalise_url(url))
    study_id = storage.get_study_id_from_name(name)
    trials = [(t.user_attrs, t.system_attrs) for t in storage.get_all_trials(study_id, deepcopy=False)]
    assert len(trials) == 2
    attrs = [storage.get_study_user_attrs(study_id), storage.get_study_system_attrs(study_id), trials]
    storage.engine.dispose()
    return json.dumps(attrs, default=str)


def test_password_in_the_url_reaches_no_output_file_or_stored_attribute(cli, tmp_path, postgres_password):
    server = postgres_password
    url = server.url(server.password)
    code, ran = cli("run", _study(tmp_path, "pwflag"), "--storage", url, "--out", tmp_path / "out")
    assert code == 0, ran
    assert f"storage postgresql://abl:***@127.0.0.1:{server.port}/abl" in ran
    code, reported = cli("report", url, "--study", "pwflag", "--out", tmp_path / "again")
    assert code == 0, reported
    attrs = _stored_attrs(url, "pwflag")
    assert f'"storage": "{server.url()}"' in attrs  # the record keeps the URL, without its password
    _hidden(server.password, ran, reported, attrs, folders=(tmp_path / "out", tmp_path / "again"), url=url)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["study"]["storage"] == server.url()


def test_a_wrong_password_fails_with_status_2_and_is_never_shown(cli, tmp_path, postgres_password):
    server = postgres_password
    wrong = server.url("WrongPW-zq81")
    study = _study(tmp_path, "pwwrong")
    for args in (("run", study, "--storage", wrong), ("worker", study, "--storage", wrong), ("report", wrong)):
        code, said = cli(*args)
        assert code == 2, said
        assert "password authentication failed" in said and "abl:***@127.0.0.1" in said, said
        _hidden("WrongPW-zq81", said)
    assert not list(tmp_path.rglob("*.db"))


def test_ablate_storage_and_pgpassword_put_worker_run_and_report_on_postgresql(
    cli, tmp_path, monkeypatch, postgres_password
):
    server = postgres_password
    monkeypatch.setenv(ENV, server.url())
    monkeypatch.setenv("PGPASSWORD", server.password)
    study = _study(tmp_path, "pwenv")
    code, worked = cli("worker", study)
    assert code == 0, worked
    assert f"storage {server.url()}" in worked and "[2/2]" in worked
    code, ran = cli("run", study)  # its report goes to reports/pwenv; its runs are on the server
    assert code == 0 and "2 of 2 runs already stored; 0 to train" in ran, ran
    code, reported = cli("report", "--study", "pwenv", "--out", tmp_path / "rebuilt")
    assert code == 0 and "report of pwenv written from stored runs" in reported, reported
    assert not list(tmp_path.rglob("*.db"))  # nothing went to a default SQLite file
    assert "pwenv" in optuna.get_all_study_names(normalise_url(server.url(server.password)))
    folders = (tmp_path / "reports" / "pwenv", tmp_path / "rebuilt")
    _hidden(server.password, worked, ran, reported, folders=folders, url=server.url(server.password))


def test_pgpass_gives_the_password_of_a_url_without_one(cli, tmp_path, postgres_password):
    server = postgres_password
    pgpass = tmp_path / "home" / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:{server.database}:{server.user}:{server.password}\n")
    pgpass.chmod(0o600)  # libpq ignores a password file others can read
    code, ran = cli("run", _study(tmp_path, "pwpass"), "--storage", server.url(), "--out", tmp_path / "out")
    assert code == 0, ran
    _hidden(server.password, ran, folders=(tmp_path / "out",))


def test_an_older_report_that_holds_the_password_is_rewritten_without_it(cli, tmp_path, monkeypatch, postgres_password):
    server = postgres_password
    secret_url = server.url(server.password)
    monkeypatch.setenv("PGPASSWORD", server.password)
    study = _study(tmp_path, "pwold")
    assert cli("run", study, "--storage", server.url(), "--out", tmp_path / "out")[0] == 0
    # As an older ablate left them: the password in the stored record and in results.json.
    stored = optuna.load_study(study_name="pwold", storage=normalise_url(secret_url))
    stored.set_user_attr("record", {**stored.user_attrs["record"], "storage": secret_url})
    old = json.loads((tmp_path / "out" / "results.json").read_text())
    (tmp_path / "out" / "results.json").write_text(
        json.dumps({**old, "study": {**old["study"], "storage": secret_url}})
    )
    code, reported = cli("report", server.url(), "--study", "pwold", "--out", tmp_path / "out")
    assert code == 0, reported
    _hidden(server.password, reported, folders=(tmp_path / "out",))
    assert json.loads((tmp_path / "out" / "results.json").read_text())["study"]["storage"] == server.url()
    # and the next run stores its record without it
    code, ran = cli("run", study, "--storage", server.url(), "--out", tmp_path / "out")
    assert code == 0 and "0 to train" in ran, ran
    _hidden(server.password, ran, _stored_attrs(secret_url, "pwold"))


def test_worker_and_report_without_a_storage_say_where_to_give_one(cli, tmp_path):
    for args, says in ((("worker", _study(tmp_path, "nowhere")), "no storage to share"), (("report",), "no study")):
        code, said = cli(*args)
        assert code == 2 and says in said and "ABLATE_STORAGE" in said and "Traceback" not in said, said

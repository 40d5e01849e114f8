"""The claim table that lets many workers train every run once."""

import threading
import time

import sqlalchemy as sa

from ablate.engine.store.run_claims import CLAIMS, ClaimStore
from ablate.engine.store.storage import begin_immediate, normalise_url


def sqlite_engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    begin_immediate(engine)
    return engine


def test_a_claimed_run_is_nobody_elses_until_its_heartbeat_stops(tmp_path):
    engine = sqlite_engine(tmp_path)
    first = ClaimStore(engine, "s", "a", grace=0.3)
    second = ClaimStore(engine, "s", "b", grace=0.3)
    assert first.claim("k") == "new"
    assert second.claim("k") is None
    time.sleep(0.4)
    assert second.claim("k") == "takeover"
    assert first.claim("k") is None
    assert first.states()["k"][2] == "b"


def test_done_runs_are_never_taken_and_released_runs_are_free(tmp_path):
    engine = sqlite_engine(tmp_path)
    first = ClaimStore(engine, "s", "a", grace=0.0)
    second = ClaimStore(engine, "s", "b", grace=0.0)
    first.claim("done")
    first.finish("done")
    assert second.claim("done") is None
    first.claim("given-back")
    first.release(["given-back"])
    assert second.claim("given-back") == "new"


def test_losing_an_insert_race_on_postgresql_means_taken_not_a_crash(postgres_url):
    """At READ COMMITTED both workers can read "no row"; the loser's INSERT
    waits on the winner's and then violates the key. Reproduced by holding the
    winner's transaction open while the loser claims."""
    engine = sa.create_engine(normalise_url(postgres_url), poolclass=sa.pool.NullPool)
    loser = ClaimStore(engine, "race", "loser", grace=30)
    engine_winner = sa.create_engine(normalise_url(postgres_url), poolclass=sa.pool.NullPool)
    got: list[str | None] = []
    with engine_winner.connect() as conn:
        trans = conn.begin()
        conn.execute(
            sa.insert(CLAIMS).values(study="race", run_key="k", state="running", worker="winner", heartbeat=time.time())
        )
        thread = threading.Thread(target=lambda: got.append(loser.claim("k")))
        thread.start()
        time.sleep(0.5)  # the loser has read "no row" and now blocks on the INSERT
        trans.commit()
    thread.join(timeout=10)
    assert got == [None]
    assert loser.states()["k"][2] == "winner"


def test_claiming_many_at_once_answers_each_as_claiming_one_would(tmp_path):
    engine = sqlite_engine(tmp_path)
    first = ClaimStore(engine, "s", "a", grace=0.3)
    second = ClaimStore(engine, "s", "b", grace=0.3)
    first.claim("alive")
    first.claim("stale")
    first.claim("done")
    first.finish("done")
    time.sleep(0.4)
    first.beat(["alive"])
    got = second.claim_many(["fresh", "alive", "stale", "done"])
    assert got == {"fresh": "new", "alive": None, "stale": "takeover", "done": None}
    assert list(got) == ["fresh", "alive", "stale", "done"]
    states = second.states()
    assert states["fresh"][2] == states["stale"][2] == "b" and states["alive"][2] == "a"
    second.finish("fresh", "stale")
    assert {k: v[0] for k, v in second.states().items()} == {k: "done" for k in ("fresh", "stale", "done")} | {
        "alive": "running"
    }


def test_a_batch_that_loses_one_insert_race_on_postgresql_keeps_the_others(postgres_url):
    """The winner inserts one key of the batch while the loser's batch waits on it:
    the loser's whole insert fails, and claiming one by one gives it every other key."""
    engine = sa.create_engine(normalise_url(postgres_url), poolclass=sa.pool.NullPool)
    loser = ClaimStore(engine, "batch-race", "loser", grace=30)
    engine_winner = sa.create_engine(normalise_url(postgres_url), poolclass=sa.pool.NullPool)
    got: list[dict[str, str | None]] = []
    with engine_winner.connect() as conn:
        trans = conn.begin()
        conn.execute(
            sa.insert(CLAIMS).values(
                study="batch-race", run_key="k2", state="running", worker="winner", heartbeat=time.time()
            )
        )
        thread = threading.Thread(target=lambda: got.append(loser.claim_many(["k1", "k2", "k3"])))
        thread.start()
        time.sleep(0.5)
        trans.commit()
    thread.join(timeout=10)
    assert got == [{"k1": "new", "k2": None, "k3": "new"}]
    assert {k: v[2] for k, v in loser.states().items()} == {"k1": "loser", "k2": "winner", "k3": "loser"}

"""The local worker pool (`--jobs N`): started in the background, stoppable at any time."""

from ablate.pool import ProcessPool


def test_a_pool_closed_at_once_stops_what_it_starts():
    pool = ProcessPool(2, [], [])
    pool.close()  # a fresh fork server is still importing torch then: close does not wait for it
    pool._starting.join(timeout=120)
    assert len(pool._children) == 2
    assert not any(child.process.is_alive() for child in pool._children)


def test_a_started_pool_trains_nothing_until_asked_and_closes():
    pool = ProcessPool(2, [], [])
    assert pool.busy() == 0 and pool.capacity == 2  # waits for the workers
    assert all(child.process.is_alive() for child in pool.children)
    assert pool.poll(0.1) == []
    pool.close()
    assert not any(child.process.is_alive() for child in pool.children)

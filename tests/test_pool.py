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


def test_only_a_study_that_never_stacks_preloads_torch_dynamo(tmp_path):
    """Stacked groups make no torch optimizer, so the workers need no torch._dynamo (seconds)."""
    from ablate.pool import UNSTACKED_PRELOAD, start_early

    for stack, expected in (("auto", False), ("off", True)):
        study = tmp_path / f"{stack}.toml"
        study.write_text(f'[study]\nname = "s"\n[train]\nstack = "{stack}"\n')
        pool = start_early(str(study), 2)
        assert pool is not None
        pool.close()
        assert (set(UNSTACKED_PRELOAD) <= set(pool.preload)) is expected

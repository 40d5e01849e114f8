"""A search's plan counts the arms it can try: a finite space caps the budget (a
proposal made again trains nothing) and only tried arms can be confirmed. It said
"runs: 3 + 10 x 1 seeds = 13" for a 4-arm space where the run trained 6 at most."""

from __future__ import annotations

from support import DROPOUT_FACTOR, one_epoch_study

from ablate.engine.estimate import run_count, sampled_counts
from ablate.study.config import load_study

SEARCH = (
    one_epoch_study(seeds=2)
    + '[design]\nkind = "search"\n{design}\n[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\n'
    + DROPOUT_FACTOR
    + "{rate}\n"
)


def config_of(write_study, registry, design: str, rate: str = ""):
    return load_study(write_study(SEARCH.format(design=design, rate=rate)), registry)


def test_only_tried_arms_are_confirmed(write_study, registry, run_cli):
    config = config_of(write_study, registry, "budget = 3\nconfirm_top = 10")
    assert sampled_counts(config) == (3, 3) and run_count(config, []) == 3 + 3 * 2
    code, stdout, _ = run_cli("plan", config.path, "--no-calibrate")
    assert code == 0 and "runs: 3 + 3 x 2 seeds = 9" in stdout
    assert "the top 3 arms are confirmed" in stdout


def test_a_finite_space_caps_the_budget(write_study, registry, run_cli):
    config = config_of(write_study, registry, "budget = 20\nconfirm_top = 2")
    assert sampled_counts(config) == (4, 2)
    code, stdout, _ = run_cli("plan", config.path, "--no-calibrate")
    assert code == 0
    assert "the space holds 4 arms: a proposal made again trains nothing new" in stdout
    assert "runs: 4 + 2 x 2 seeds = 8" in stdout


def test_a_continuous_range_leaves_the_budget_as_given(write_study, registry):
    config = config_of(write_study, registry, "budget = 20", rate="dropout = { rate = { low = 0.1, high = 0.5 } }")
    assert sampled_counts(config) == (20, 0)

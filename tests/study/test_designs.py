"""Designs beyond the full factorial: exact arm sets, searches with
confirmation, pruning, two objectives, and the plan."""

from __future__ import annotations

import itertools

import optuna
import pandas as pd
import pytest

from ablate.engine.planned import study_arms
from ablate.engine.store import attrs
from ablate.study.config import load_study
from ablate.study.design import baseline_arm, factorial

HEAD = """
[study]
seeds = 2
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 3
batch_size = 256
"""

FOUR = """
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = 0.2 }
[factors.l2]
kind = "regularizer"
levels = ["none", "l2"]
[factors.stop]
kind = "stopping"
levels = ["none", "early_stopping"]
"""


def arms_of(write_study, registry, text):
    return study_arms(load_study(write_study(HEAD + text), registry), registry)


def component_names(arm):
    return {c.name for c in arm.components}


def test_leave_one_out_over_four_components_is_exactly_five_arms(write_study, registry):
    arms = arms_of(write_study, registry, '[design]\nkind = "leave_one_out"\n' + FOUR)
    everything = {"batchnorm", "dropout", "l2", "early_stopping"}
    assert [a.name for a in arms] == ["all", "all - norm", "all - dropout", "all - l2", "all - stop"]
    assert component_names(arms[0]) == everything
    assert [everything - component_names(a) for a in arms[1:]] == [
        {"batchnorm"},
        {"dropout"},
        {"l2"},
        {"early_stopping"},
    ]
    config = load_study(write_study(HEAD + '[design]\nkind = "leave_one_out"\n' + FOUR, "again.toml"), registry)
    assert baseline_arm(config, arms) == "all"  # each arm reads as the cost of removing one


def test_add_one_in_over_four_components_is_exactly_five_arms(write_study, registry):
    arms = arms_of(write_study, registry, '[design]\nkind = "add_one_in"\n' + FOUR)
    assert [a.name for a in arms] == [
        "baseline",
        "baseline + norm",
        "baseline + dropout",
        "baseline + l2",
        "baseline + stop",
    ]
    assert [component_names(a) for a in arms] == [set(), {"batchnorm"}, {"dropout"}, {"l2"}, {"early_stopping"}]
    assert len({a.key for a in arms}) == 5


def test_factorial_of_three_two_level_factors_with_a_conditional_rate(write_study, registry):
    text = FOUR.replace("rate = 0.2", "rate = [0.1, 0.5]").replace(
        '[factors.l2]\nkind = "regularizer"\nlevels = ["none", "l2"]\n', ""
    )
    arms = arms_of(write_study, registry, text)
    # norm 2 x (dropout off | rate 0.1 | rate 0.5) 3 x stop 2 = 12
    assert len(arms) == 12 and len({a.key for a in arms}) == 12
    expected = {
        (n, d, s) for n in ("none", "batchnorm") for d in ("none", 0.1, 0.5) for s in ("none", "early_stopping")
    }
    got = {(a.values["norm"], a.values.get("dropout.rate", "none"), a.values["stop"]) for a in arms}
    assert got == expected


def test_orderings_run_each_distinct_network_once(write_study, registry):
    text = """
[design]
kind = "orderings"
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
[factors.order]
setting = "model.slots"
levels = "permutations"
"""
    arms = arms_of(write_study, registry, text)
    # filled slots per (norm, dropout): linear+act always, plus the components that are on
    # -> 2! + 3! + 3! + 4! = 38 distinct networks out of 4 x 24 = 96 combinations
    assert len(arms) == 38
    by_cell = {}
    for a in arms:
        by_cell.setdefault((a.values["norm"], a.values["dropout"]), set()).add(a.values["order"])
    assert {k: len(v) for k, v in by_cell.items()} == {
        ("none", "none"): 2,
        ("none", "dropout"): 6,
        ("batchnorm", "none"): 6,
        ("batchnorm", "dropout"): 24,
    }
    all_orders = {">".join(p) for p in itertools.permutations(["linear", "norm", "act", "dropout"])}
    assert by_cell[("batchnorm", "dropout")] == all_orders


def test_orderings_listed_subset_drops_equivalent_orders(write_study, registry):
    text = """
[design]
kind = "orderings"
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.order]
setting = "model.slots"
levels = ["linear>norm>act>dropout", "norm>linear>act>dropout", "linear>act>norm>dropout"]
"""
    arms = arms_of(write_study, registry, text)
    # without a norm (and no dropout) all three orders build linear>act: one arm
    assert sorted((a.values["norm"], a.values["order"]) for a in arms) == sorted(
        [
            ("none", "linear>norm>act>dropout"),
            ("batchnorm", "linear>norm>act>dropout"),
            ("batchnorm", "norm>linear>act>dropout"),
            ("batchnorm", "linear>act>norm>dropout"),
        ]
    )


SEARCH = """
[design]
kind = "search"
budget = 12
confirm_top = 3
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = { low = 0.05, high = 0.6 } }
[factors.lr]
setting = "train.lr"
range = { low = 0.0005, high = 0.05, log = true }
"""


@pytest.mark.slow
def test_search_runs_budget_then_confirms_top_arms_over_fresh_seeds(write_study, run_cli, tmp_path):
    study = write_study(HEAD.replace("seeds = 2", "seeds = 5") + SEARCH)
    code, stdout, stderr = run_cli("run", study, "--out", tmp_path / "out")
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    search, confirm = table[table["stage"] == "search"], table[table["stage"] == "confirm"]
    assert len(search) == 12 and (search["seed"] == 10_000).all()
    assert len(confirm) == 15 and set(confirm["seed"]) == {0, 1, 2, 3, 4}
    top3 = search.sort_values("val_accuracy", ascending=False)["arm"].head(3)
    assert set(confirm["arm"]) == set(top3)
    assert search["lr"].between(0.0005, 0.05).all()
    assert "[27/27]" in stdout
    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}").trials
    stacked = {t.user_attrs[attrs.STAGE]: set() for t in trials if attrs.RESULT in t.user_attrs}
    for t in trials:
        if attrs.RESULT in t.user_attrs:
            stacked[t.user_attrs[attrs.STAGE]].add(t.user_attrs[attrs.RESULT]["stacked_with"])
    assert stacked == {"search": {1}, "confirm": {5}}  # a confirmed arm's seeds train as one stacked model
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count('class="search-row"') == 12  # the search stage, listed apart
    assert html.count('class="arm-row"') == 3  # the leaderboard: confirmed arms only
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert all(arm in summary for arm in set(confirm["arm"]))
    code, stdout, _ = run_cli("run", study, "--out", tmp_path / "out")  # resumes: nothing new
    assert code == 0 and "seed=" not in stdout


@pytest.mark.slow
def test_search_with_pruning_records_pruned_runs_with_their_epoch(write_study, run_cli, tmp_path):
    text = (
        HEAD.replace("epochs = 3", "epochs = 8").replace("seeds = 2", "seeds = 2")
        + """
[design]
kind = "search"
budget = 10
sampler = "random"
pruner = "median"
[factors.lr]
setting = "train.lr"
range = { low = 0.00001, high = 0.05, log = true }
"""
    )
    code, _, stderr = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(table) == 10
    pruned = table[table["status"] == "pruned"]
    assert len(pruned) >= 1
    assert (pruned["epochs"] < 8).all() and (pruned["stop_reason"] == "pruned").all()
    assert pruned["test_accuracy"].isna().all()  # a censored run is never reported as finished


@pytest.mark.slow
def test_pareto_exhaustive_and_nsga2(write_study, run_cli, tmp_path):
    exhaustive = HEAD + '[design]\nkind = "pareto"\n' + FOUR.split("[factors.l2]")[0]
    code, _, stderr = run_cli("run", write_study(exhaustive), "--out", tmp_path / "a")
    assert code == 0, stderr
    assert len(pd.read_csv(tmp_path / "a" / "results.csv")) == 4 * 2
    nsga = (
        HEAD
        + """
[design]
kind = "pareto"
sampler = "nsga2"
budget = 5
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = { low = 0.05, high = 0.6 } }
"""
    )
    code, _, stderr = run_cli("run", write_study(nsga, "b.toml"), "--out", tmp_path / "b")
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "b" / "results.csv")
    assert len(table) == 5 and (table["stage"] == "search").all()


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,needles",
    [
        ('[design]\nkind = "leave_one_uot"\n', ["design.kind", "did you mean 'leave_one_out'"]),
        (
            '[design]\nkind = "search"\nbudget = 0\n' + SEARCH.split("confirm_top = 3")[1],
            ["design.budget", "[1, 100000]"],
        ),
        (
            '[design]\nkind = "orderings"\n[factors.order]\nsetting = "model.slots"\n'
            'levels = ["linear>norm>act", "linear>nrom>act"]\n',
            ["factors.order.levels[1]", "unknown slot 'nrom'"],
        ),
        ('[design]\nkind = "factorial"\npruner = "median"\n', ["design.pruner", "search design only"]),
        (FOUR.replace("rate = 0.2", "rate = { low = 0.1, high = 0.5 }"), ["sampled by a search"]),
        (
            '[design]\nkind = "leave_one_out"\n' + FOUR.replace('levels = ["none", "l2"]', 'levels = ["none"]'),
            ["factors.l2", "one 'on' option"],
        ),
    ],
)
def test_bad_designs_fail_at_validation(write_study, run_cli, tmp_path, text, needles):
    code, _stdout, stderr = run_cli("run", write_study(HEAD + text), "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in stderr and not (tmp_path / "out").exists()
    for needle in needles:
        assert needle in stderr, (needle, stderr)


@pytest.mark.slow
def test_plan_prints_arms_runs_and_a_calibrated_estimate(write_study, run_cli, tmp_path):
    study = write_study(HEAD + '[design]\nkind = "leave_one_out"\n' + FOUR)
    code, stdout, stderr = run_cli("plan", study)
    assert code == 0, stderr
    assert "design leave_one_out" in stdout and "arms (5):" in stdout
    assert "runs: 5 arms x 2 seeds = 10" in stdout
    assert "estimated wall time" in stdout and "calibrated on" in stdout
    code, dry, _ = run_cli("run", study, "--dry-run", "--out", tmp_path / "out")
    assert code == 0 and "runs: 5 arms x 2 seeds = 10" in dry and not (tmp_path / "out").exists()
    code, quick, _ = run_cli("plan", study, "--no-calibrate")
    assert code == 0 and "estimated" not in quick


FACTORIAL = """
[data]
name = "digits"
[factors.norm]
kind = "norm"
levels = ["none", "batchnorm"]
[factors.dropout]
kind = "regularizer"
levels = ["none", "dropout"]
dropout = { rate = [0.1, 0.5] }
[factors.stop]
kind = "stopping"
levels = ["none", "early_stopping"]
early_stopping = { patience = 3 }
[factors.order]
setting = "model.slots"
levels = ["linear>norm>act>dropout", "linear>dropout>norm>act"]
"""


def test_factorial_with_conditional_rate_counts_by_hand(write_study, registry):
    config = load_study(write_study(FACTORIAL), registry)
    arms = factorial(config)
    # norm 2 x dropout (off, 0.1, 0.5) 3 x stop 2 x order 2 = 24; no rate where dropout is off
    assert len(arms) == 24
    assert len({a.key for a in arms}) == 24 and len({a.name for a in arms}) == 24
    off = [a for a in arms if a.values["dropout"] == "none"]
    on = [a for a in arms if a.values["dropout"] == "dropout"]
    assert len(off) == 8 and all("dropout.rate" not in a.values for a in off)
    assert sorted({a.values["dropout.rate"] for a in on}) == [0.1, 0.5]
    stop = next(a for a in arms if a.values["stop"] == "early_stopping")
    (params,) = [c.params for c in stop.components if c.name == "early_stopping"]
    assert params["patience"] == 3 and params["monitor"] == "val_loss"  # fixed value, defaults filled
    baseline = next(a for a in arms if a.name.startswith("order=linear>norm"))
    assert baseline.components == () and baseline.settings == {"model.slots": "linear>norm>act>dropout"}


def test_single_level_factor_is_constant_and_not_in_names(write_study, registry):
    config = load_study(
        write_study(FACTORIAL.replace('levels = ["none", "batchnorm"]', 'levels = ["batchnorm"]')), registry
    )
    arms = factorial(config)
    assert len(arms) == 12
    assert all((a.components[0].kind, a.components[0].name) == ("norm", "batchnorm") for a in arms)
    assert not any("batchnorm" in a.name for a in arms)


def test_arm_key_changes_with_what_runs_but_not_with_its_name(write_study, registry):
    a = factorial(load_study(write_study(FACTORIAL), registry))
    b = factorial(load_study(write_study(FACTORIAL.replace("patience = 3", "patience = 4"), "b.toml"), registry))
    keys_a, keys_b = {x.name: x.key for x in a}, {x.name: x.key for x in b}
    assert keys_a.keys() == keys_b.keys()
    changed = {n for n in keys_a if keys_a[n] != keys_b[n]}
    assert changed == {n for n in keys_a if "early_stopping" in n}

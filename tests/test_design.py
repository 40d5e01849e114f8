"""The factorial design yields exactly the arms a hand count gives."""

from __future__ import annotations

from ablate.config import load_study
from ablate.design import factorial

STUDY = """
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
    config = load_study(write_study(STUDY), registry)
    arms = factorial(config)
    # norm 2 x dropout (off, 0.1, 0.5) 3 x stop 2 x order 2 = 24; no rate where dropout is off
    assert len(arms) == 24
    assert len({a.key for a in arms}) == 24 and len({a.name for a in arms}) == 24
    off = [a for a in arms if a.values["dropout"] == "none"]
    on = [a for a in arms if a.values["dropout"] == "dropout"]
    assert len(off) == 8 and all("dropout.rate" not in a.values for a in off)
    assert sorted({a.values["dropout.rate"] for a in on}) == [0.1, 0.5]
    stop = next(a for a in arms if a.values["stop"] == "early_stopping")
    (params,) = [p for kind, name, p in stop.components if name == "early_stopping"]
    assert params["patience"] == 3 and params["monitor"] == "val_loss"  # fixed value, defaults filled
    baseline = next(a for a in arms if a.name.startswith("order=linear>norm"))
    assert baseline.components == () and baseline.settings == {"model.slots": "linear>norm>act>dropout"}


def test_single_level_factor_is_constant_and_not_in_names(write_study, registry):
    config = load_study(write_study(STUDY.replace('levels = ["none", "batchnorm"]', 'levels = ["batchnorm"]')),
                        registry)
    arms = factorial(config)
    assert len(arms) == 12
    assert all(("norm", "batchnorm") == a.components[0][:2] for a in arms)
    assert not any("batchnorm" in a.name for a in arms)


def test_arm_key_changes_with_what_runs_but_not_with_its_name(write_study, registry):
    a = factorial(load_study(write_study(STUDY), registry))
    b = factorial(load_study(write_study(STUDY.replace("patience = 3", "patience = 4"), "b.toml"), registry))
    keys_a, keys_b = {x.name: x.key for x in a}, {x.name: x.key for x in b}
    assert keys_a.keys() == keys_b.keys()
    changed = {n for n in keys_a if keys_a[n] != keys_b[n]}
    assert changed == {n for n in keys_a if "early_stopping" in n}

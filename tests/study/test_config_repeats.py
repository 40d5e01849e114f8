"""Levels and values that mean the same thing: refused, since their arms would train
the same runs, share them in storage and count each run twice in the report."""

from __future__ import annotations

import dataclasses

import pytest
from support import one_epoch_study

from ablate.engine.planned import study_arms
from ablate.errors import UserError
from ablate.study.config import load_study
from ablate.study.design import check_distinct_runs

HEAD = one_epoch_study(seeds=2)

REFUSED = {
    "a repeated component value": (
        '[factors.dropout]\nkind = "regularizer"\nlevels = ["none", "dropout"]\ndropout = { rate = [0.2, 0.2] }\n',
        "factors.dropout.dropout.rate",
        "values repeat",
    ),
    "an int and a float for a float parameter": (
        '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\nbatchnorm = { momentum = [1, 1.0] }\n',
        "factors.norm.batchnorm.momentum",
        "(1 and 1.0 are the same value)",
    ),
    "an int and a float for a setting": (
        '[factors.lr]\nsetting = "train.lr"\nlevels = [1, 1.0]\n',
        "factors.lr.levels",
        "(1 and 1.0 are the same value)",
    ),
    "a component named twice in two spellings": (
        '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm", "BatchNorm"]\n',
        "factors.norm.levels",
        "('batchnorm' and 'BatchNorm' are the same value)",
    ),
    "a level listed twice": (
        '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm", "batchnorm"]\n',
        "factors.norm.levels",
        "levels repeat ('batchnorm' twice)",
    ),
    "slot orders the same but for spaces": (
        '[factors.order]\nsetting = "model.slots"\n'
        'levels = ["linear>norm>act>dropout", "linear > norm > act > dropout"]\n',
        "factors.order.levels",
        "are the same value",
    ),
    "an empty list of values": (
        '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\nbatchnorm = { momentum = [] }\n',
        "factors.norm.batchnorm.momentum",
        "momentum = [] gives the factor no batchnorm to try",
    ),
    "a factor over where runs execute": (
        '[factors.device]\nsetting = "train.device"\nlevels = ["cpu", "auto"]\n',
        "factors.device.setting",
        "not what they train",
    ),
    "momentum under adam": (
        '[factors.momentum]\nsetting = "train.momentum"\nlevels = [0.5, 0.9]\n',
        "factors.momentum.setting",
        "momentum only moves SGD",
    ),
    "a factor over the stacking switch": (
        '[factors.stack]\nsetting = "train.stack"\nlevels = ["auto", "off"]\n',
        "factors.stack.setting",
        "not what they train",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_levels_that_would_train_the_same_runs_are_refused(case, write_study, registry):
    text, key, words = REFUSED[case]
    path = write_study(HEAD + text)
    with pytest.raises(UserError) as caught:
        study_arms(load_study(path, registry), registry)
    assert caught.value.key == key
    assert words in str(caught.value)


def test_distinct_values_that_look_alike_still_make_their_arms(write_study, registry):
    text = '[factors.dropout]\nkind = "regularizer"\nlevels = ["none", "dropout"]\ndropout = { rate = [0.2, 0.25] }\n'
    arms = study_arms(load_study(write_study(HEAD + text), registry), registry)
    assert [a.name for a in arms] == ["baseline", "dropout(rate=0.2)", "dropout(rate=0.25)"]


def test_two_arms_with_one_configuration_are_refused_naming_the_factor(write_study, registry):
    """The last guard, after the design: whatever made them, two arms with the same
    runs never reach storage (here an arm renamed, as a plugin or design could)."""
    text = '[factors.norm]\nkind = "norm"\nlevels = ["none", "batchnorm"]\n'
    config = load_study(write_study(HEAD + text), registry)
    arms = study_arms(config, registry)
    twin = dataclasses.replace(arms[1], name="batchnorm again", values={"norm": "batchnorm-again"})
    with pytest.raises(UserError) as caught:
        check_distinct_runs(config, [*arms, twin])
    assert caught.value.key == "factors.norm"
    assert "'batchnorm' and 'batchnorm again' train the same runs" in str(caught.value)
    assert caught.value.where == str(config.path)


def test_momentum_varies_where_sgd_trains(write_study, registry):
    text = '[factors.momentum]\nsetting = "train.momentum"\nlevels = [0.5, 0.9]\n'
    sgd = HEAD.replace("epochs = 1", 'epochs = 1\noptimizer = "sgd"')
    assert len(study_arms(load_study(write_study(sgd + text), registry), registry)) == 2
    both = text + '[factors.optimizer]\nsetting = "train.optimizer"\nlevels = ["adam", "sgd"]\n'
    with pytest.raises(UserError, match="momentum only moves SGD"):  # its two adam arms would be one
        load_study(write_study(HEAD + both), registry)
    ranged = (
        '[design]\nkind = "search"\n[factors.momentum]\nsetting = "train.momentum"\nrange = { low = 0.1, high = 0.9 }\n'
    )
    with pytest.raises(UserError, match="momentum only moves SGD"):
        load_study(write_study(HEAD + ranged), registry)


def test_leave_one_out_needs_an_off_level_to_switch_to(write_study, registry):
    text = '[design]\nkind = "leave_one_out"\n[factors.dropout]\nkind = "regularizer"\nlevels = ["dropout"]\n'
    with pytest.raises(UserError) as caught:
        load_study(write_study(HEAD + text), registry)
    assert caught.value.key == "factors.dropout.levels" and "has no 'none' level" in str(caught.value)
    assert 'levels = ["none", "dropout"]' in str(caught.value)

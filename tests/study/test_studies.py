"""Every example study validates, states its question, and plans its arms."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.engine.estimate import run_count
from ablate.engine.planned import study_arms
from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.study.config import load_study
from ablate.study.design import baseline_arm
from ablate.study.study_file import plugin_files_of

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))


def test_there_are_example_studies():
    assert {"quickstart.toml", "bn_dropout_order.toml"} <= {p.name for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_example_study_is_valid_and_asks_a_question(path):
    registry = build_registry(make_plugin_manager(plugin_files_of(path)))
    config = load_study(path, registry)
    assert len(config.question) > 40, "each study states its question"
    arms = study_arms(config, registry)
    baseline_arm(config, arms)
    assert run_count(config, arms) >= 2
    assert config.design.sampled or len({a.name for a in arms}) == len(arms)

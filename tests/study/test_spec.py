"""A RunSpec is a run's identity: it round-trips, ignores where a run executes,
and changes with anything that changes the run's numbers."""

from __future__ import annotations

import json
import pickle

import pytest

from ablate.engine.planned import study_arms
from ablate.spec import ComponentSpec, Option, RunSpec
from ablate.study.config import load_study
from ablate.study.design import run_spec


@pytest.fixture
def spec_of(write_study, registry, tiny):
    """(study text edits) -> the first arm's spec for seed 0, written to its own file."""
    counter = iter(range(1000))

    def make(*edits: tuple[str, str], seed: int = 0) -> RunSpec:
        text = tiny
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new)
        config = load_study(write_study(text, f"s{next(counter)}.toml"), registry)
        arms = study_arms(config, registry)
        return run_spec(config, arms[-1], seed)

    return make


def test_a_spec_round_trips_through_pickle_and_json(spec_of):
    spec = spec_of()
    assert pickle.loads(pickle.dumps(spec)) == spec
    again = RunSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec and again.key == spec.key


def test_threads_device_and_output_folder_are_not_part_of_a_runs_identity(spec_of):
    base = spec_of()
    assert spec_of(("epochs = 4", "epochs = 4\nthreads = 2")).key == base.key
    assert spec_of(("epochs = 4", 'epochs = 4\ndevice = "cpu"')).key == base.key
    assert spec_of(('name = "tiny"', 'name = "elsewhere"')).key == base.key  # the output folder's name


@pytest.mark.parametrize(
    "edit",
    [
        ("rate = 0.2", "rate = 0.25"),  # a component parameter
        ("batch_size = 128", "batch_size = 128\nlr = 0.002"),  # the learning rate
        ('name = "digits"', 'name = "digits"\nval_fraction = 0.25'),  # the data's parameters
        ('name = "digits"', 'name = "digits"\nsplit_seed = 1'),  # the split
        ("hidden = [32]", "hidden = [33]"),  # the model
        ("epochs = 4", "epochs = 5"),
    ],
)
def test_any_training_relevant_change_makes_a_new_run(spec_of, edit):
    assert spec_of(edit).key != spec_of().key


def test_seeds_of_one_arm_differ_only_in_the_seed(spec_of):
    one, two = spec_of(seed=0), spec_of(seed=1)
    assert one.key != two.key and one.with_seed(1) == two


def test_resplit_draws_a_split_per_seed(spec_of):
    fixed = [spec_of(seed=s).split_seed for s in (0, 1, 2)]
    drawn = [spec_of(('name = "digits"', 'name = "digits"\nresplit = true'), seed=s).split_seed for s in (0, 1, 2)]
    assert fixed == [0, 0, 0] and drawn == [0, 1, 2]


def test_option_and_component_are_plain_values():
    assert Option("dropout", {"rate": 0.1}, {"rate": 0.1}) == Option("dropout", {"rate": 0.1}, {"rate": 0.1})
    comp = ComponentSpec("regularizer", "dropout", {"rate": 0.1})
    assert ComponentSpec.from_json(comp.to_json()) == comp

"""No built-in component's effect is lost in a stack: for each one whose runs
draw nothing from the random layers' streams (the dropout family draws per seed
from streams of its own when stacked), the seeds trained stacked and alone agree
per epoch to 1e-5 relative, or the stack says why they trained alone."""

from __future__ import annotations

import pytest
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.training import train_run

REGISTRY = build_registry(make_plugin_manager())
RANDOM_STREAMS = {"dropout", "dropout2d", "alpha_dropout", "drop_path"}  # their draws differ stacked, by design
CLOCKED = {"time_budget"}  # stops on wall time
IMAGE_ONLY = {"autoaugment", "crop", "cutmix", "flip", "randaugment", "random_erasing", "shift", "trivialaugment"}
BUILTINS = [
    (kind, name)
    for kind in ("norm", "regularizer", "stopping", "augmentation", "optimizer", "schedule")
    for name in REGISTRY.names(kind)
    if name != "none" and name not in RANDOM_STREAMS | CLOCKED
]


@pytest.mark.parametrize(("kind", "name"), BUILTINS)
def test_each_builtin_trains_the_same_stacked_and_alone(kind, name):
    image = name in IMAGE_ONLY
    specs = seeds_of(make_spec(REGISTRY, (kind, name, {}), epochs=3, image=image), [0, 1])
    together = stacked(specs, REGISTRY)
    for spec, result in zip(specs, together, strict=True):
        assert not isinstance(result, BaseException), result
        assert result.stack == 2 or result.unstacked, (kind, name)
        assert_same_run(result, train_run(spec, REGISTRY, CPU), rtol=1e-5)

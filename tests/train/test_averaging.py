"""ema and swa: the run is measured with torch's AveragedModel weights (EMA per
step; SWA per epoch, batch-norm statistics recomputed with update_bn), the same
stacked and alone."""

from __future__ import annotations

import copy

import pytest
import torch
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.build import build_run
from ablate.train.training import train_epochs, train_run

REGISTRY = build_registry(make_plugin_manager())


@pytest.mark.parametrize(
    "component", [("regularizer", "ema", {"decay": 0.9}), ("regularizer", "swa", {"start_epoch": 2})]
)
def test_averaging_trains_the_same_stacked_and_alone_and_changes_the_measurement(component):
    specs = seeds_of(make_spec(REGISTRY, ("norm", "batchnorm", {}), component, epochs=4, lr=0.01), [0, 1])
    plain = train_run(make_spec(REGISTRY, ("norm", "batchnorm", {}), epochs=4, lr=0.01), REGISTRY, CPU)
    together = stacked(specs, REGISTRY)
    alone = [train_run(spec, REGISTRY, CPU) for spec in specs]
    for result, reference in zip(together, alone, strict=True):
        assert result.stack == 2
        assert_same_run(result, reference, rtol=1e-5)
    assert alone[0].history == plain.history  # the weights trained are the same: only the measurement differs
    assert alone[0].metrics["test_loss"] != pytest.approx(plain.metrics["test_loss"], rel=1e-4)


def test_ema_is_averaged_models_ema_of_the_trained_weights():
    """The run's final weights equal an AveragedModel(get_ema_multi_avg_fn) fed the
    same trajectory (recorded here through a plain run's after-step)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    spec = make_spec(REGISTRY, ("norm", "batchnorm", {}), ("regularizer", "ema", {"decay": 0.8}), epochs=2)
    parts = build_run(spec, REGISTRY, torch.device("cpu"))
    reference = AveragedModel(copy.deepcopy(parts.model), multi_avg_fn=get_ema_multi_avg_fn(0.8), use_buffers=True)
    steps = []
    original = parts.optimizer.step

    def step():
        original()
        steps.append(1)
        reference.update_parameters(parts.model)

    parts.optimizer.step = step  # type: ignore[method-assign]
    _, reason = train_epochs(parts, None, 0.0)
    parts.hooks.ablate_train_end(model=parts.model, stop_reason=reason, data=parts.data)
    assert steps
    for mine, theirs in zip(parts.model.state_dict().values(), reference.module.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)


def test_swa_is_averaged_models_mean_of_epoch_end_weights_with_update_bn():
    from ablate.plugins.regularizers import UPDATE_BN_BATCH
    from torch.optim.swa_utils import AveragedModel, update_bn

    spec = make_spec(REGISTRY, ("norm", "batchnorm", {}), ("regularizer", "swa", {"start_epoch": 2}), epochs=4)
    parts = build_run(spec, REGISTRY, torch.device("cpu"))
    reference = AveragedModel(copy.deepcopy(parts.model))

    def on_epoch(metrics):  # the epoch-end weights, as the stopping hooks see them
        if metrics["epoch"] >= 2:
            reference.update_parameters(parts.model)

    _, reason = train_epochs(parts, on_epoch, 0.0)
    parts.hooks.ablate_train_end(model=parts.model, stop_reason=reason, data=parts.data)
    assert int(reference.n_averaged) == 3
    update_bn(parts.data.x_train.split(UPDATE_BN_BATCH), reference.module)
    for mine, theirs in zip(parts.model.state_dict().values(), reference.module.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)

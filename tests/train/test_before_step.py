"""The before-step hook (after backward, before the optimizer step) with the
step's state, the training split at train end, and grad_clip on them: the same
as torch's clip_grad_norm_ / clip_grad_value_, stacked and alone."""

from __future__ import annotations

import sys

import pytest
import torch
from stacking_support import CPU, assert_same_run, make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.train.training import train_run

RECORDER = """
from ablate import hookimpl

SEEN = []

class Watch:
    @hookimpl
    def ablate_before_step(self, model, state):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        SEEN.append(("step", state, bool(grads) and any(g.abs().sum() > 0 for g in grads)))

    @hookimpl
    def ablate_train_end(self, model, stop_reason, data):
        SEEN.append(("end", len(data.x_train), stop_reason))

@hookimpl
def ablate_register_regularizers(registry):
    registry.add("watch", Watch)
"""


def test_before_step_sees_gradients_and_the_steps_state_and_train_end_the_training_split(tmp_path):
    plugin = tmp_path / "watch.py"
    plugin.write_text(RECORDER)
    registry = build_registry(make_plugin_manager([plugin]))
    watch = sys.modules[registry.get("regularizer", "watch").factory.__module__]  # the plugin module
    watch.SEEN.clear()
    train_run(make_spec(registry, ("regularizer", "watch", {}), epochs=2, batch_size=256), registry, CPU)
    steps = [s for s in watch.SEEN if s[0] == "step"]
    per_epoch = -(-1077 // 256)  # digits' 1,077 training samples
    assert [s[1].step for s in steps] == list(range(2 * per_epoch))
    assert [s[1].epoch for s in steps] == [1] * per_epoch + [2] * per_epoch
    assert {(s[1].steps_per_epoch, s[1].total_steps, s[1].batch_size, s[1].lr) for s in steps} == {
        (per_epoch, 2 * per_epoch, 256, 1e-3)
    }
    assert all(s[2] for s in steps)  # the gradients are there
    assert watch.SEEN[-1] == ("end", 1077, "max_epochs")


def test_grad_clip_is_torchs_clip_grad_norm():
    """The plain form calls clip_grad_norm_; the stacked form's per-seed scale
    equals it applied to each seed's own gradients."""
    from ablate.plugins.regularizers import StackedGradClip

    class Ctx:
        def __init__(self, models, stacked):
            self.models, self._stacked = models, stacked

        def stacked(self, t):
            return self._stacked[id(t)]

    torch.manual_seed(0)
    seeds = [torch.nn.Linear(4, 3) for _ in range(3)]
    grads = [[torch.randn_like(p) * (i + 1) for p in m.parameters()] for i, m in enumerate(seeds)]
    stacked_params = [
        torch.nn.Parameter(torch.stack([list(m.parameters())[k] for m in seeds]).detach()) for k in (0, 1)
    ]
    for k, p in enumerate(stacked_params):
        p.grad = torch.stack([g[k] for g in grads])
    ctx = Ctx(seeds, {id(p): s for p, s in zip(seeds[0].parameters(), stacked_params, strict=True)})
    rule = type("Rule", (), {"max_norm": 2.0, "by_value": False})()
    StackedGradClip([rule], ctx).ablate_before_step(model=None, state=None)
    for i, m in enumerate(seeds):
        for p, g in zip(m.parameters(), grads[i], strict=True):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(list(m.parameters()), 2.0)
        for k, p in enumerate(m.parameters()):
            torch.testing.assert_close(stacked_params[k].grad[i], p.grad, rtol=1e-6, atol=0)


@pytest.mark.parametrize("params", [{"max_norm": 0.05}, {"max_norm": 1e-3, "by_value": True}])
def test_grad_clip_trains_the_same_stacked_and_alone_and_acts(params):
    registry = build_registry(make_plugin_manager())
    specs = seeds_of(make_spec(registry, ("regularizer", "grad_clip", params), epochs=3, lr=0.01), [0, 1])
    together = stacked(specs, registry)
    unclipped = train_run(seeds_of(make_spec(registry, epochs=3, lr=0.01), [0])[0], registry, CPU)
    for spec, result in zip(specs, together, strict=True):
        assert result.stack == 2
        assert_same_run(result, train_run(spec, registry, CPU), rtol=1e-5)
    assert together[0].history[-1]["train_loss"] != pytest.approx(unclipped.history[-1]["train_loss"], rel=1e-3)


PROGRESS = """
from ablate import hookimpl

SEEN = []

class Progress:
    @hookimpl
    def ablate_transform_batch(self, batch):
        SEEN.append(("batch", batch.generator.initial_seed(), batch.state.step, batch.state.total_steps))

    @hookimpl
    def ablate_epoch_end(self, state):
        SEEN.append(("epoch", state.epoch, state.steps, state.steps_per_epoch, state.total_steps, state.batch_size))

@hookimpl
def ablate_register_augmentations(registry):
    registry.add("progress", Progress)
"""


def test_augmentations_and_epoch_ends_see_the_step_state_stacked_as_alone(tmp_path):
    plugin = tmp_path / "progress.py"
    plugin.write_text(PROGRESS)
    registry = build_registry(make_plugin_manager([plugin]))
    seen = sys.modules[registry.get("augmentation", "progress").factory.__module__].SEEN
    spec = make_spec(registry, ("augmentation", "progress", {}), epochs=2, batch_size=256)
    seen.clear()
    for s in seeds_of(spec, [0, 1]):
        train_run(s, registry, CPU)
    alone = sorted(seen)
    seen.clear()
    results = stacked(seeds_of(spec, [0, 1]), registry)
    assert all(r.stack == 2 for r in results)
    assert sorted(seen) == alone
    per_epoch = -(-1077 // 256)
    batches = [s for s in alone if s[0] == "batch"]
    assert len(batches) == 2 * 2 * per_epoch and {s[3] for s in batches} == {2 * per_epoch}
    assert sorted({s[2] for s in batches}) == list(range(2 * per_epoch))
    assert [s[1:] for s in alone if s[0] == "epoch"][:2] == [(1, per_epoch, per_epoch, 2 * per_epoch, 256)] * 2

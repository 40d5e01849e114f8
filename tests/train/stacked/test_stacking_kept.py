"""A component that changes the model in ablate_configure_model in a way a
stacked model would not keep (gradient hooks, forward hooks, a replaced forward,
compile) makes its arm's seeds train alone, saying why; its numbers are then the
same with stack = "auto" as with "off" (before, the clipping was silently lost)."""

from __future__ import annotations

import json

import pytest
from stacking_support import make_spec, seeds_of, stacked

from ablate.plugin.manager import build_registry, make_plugin_manager

CLIPPING = """
from ablate import Param, hookimpl

class GradHookClip:
    def __init__(self, value):
        self.value = value

    @hookimpl
    def ablate_configure_model(self, model):
        for p in model.parameters():
            p.register_hook(lambda g: g.clamp(-self.value, self.value))

class ForwardHook:
    @hookimpl
    def ablate_configure_model(self, model):
        model.register_forward_hook(lambda m, i, out: out * 0.5)

class NewForward:
    @hookimpl
    def ablate_configure_model(self, model):
        plain = model.forward
        model.forward = lambda x: plain(x) * 0.5

@hookimpl
def ablate_register_regularizers(registry):
    registry.add("hook_clip", GradHookClip, params={"value": Param(1e-3, low=0.0)})
    registry.add("forward_hook", ForwardHook)
    registry.add("new_forward", NewForward)
"""

STUDY = """
[study]
name = "clip"
seeds = 2
plugins = ["clipping.py"]
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 3
batch_size = 256
stack = "{stack}"
[factors.clip]
kind = "regularizer"
levels = ["none", "hook_clip"]
"""


@pytest.mark.parametrize(
    ("name", "words"),
    [("hook_clip", "a gradient hook on parameter"), ("forward_hook", "a forward hook"), ("new_forward", "forward")],
)
def test_a_model_change_a_stack_would_drop_keeps_the_arm_alone_and_says_why(tmp_path, name, words):
    (tmp_path / "clipping.py").write_text(CLIPPING)
    registry = build_registry(make_plugin_manager([tmp_path / "clipping.py"]))
    specs = seeds_of(make_spec(registry, ("regularizer", name, {}), epochs=1), [0, 1])
    for result in stacked(specs, registry):
        assert result.stack == 1
        assert words in result.unstacked and "would not keep" in result.unstacked


def _numbers(tmp_path, run_cli, stack: str) -> dict:
    study = tmp_path / f"clip_{stack}.toml"
    study.write_text(STUDY.format(stack=stack))
    code, _, err = run_cli("run", study, "--out", tmp_path / stack)
    assert code == 0, err
    runs = json.loads((tmp_path / stack / "results.json").read_text())["runs"]
    return {(r["arm"], r["seed"]): (r["history"], r["test_loss"]) for r in runs}


def test_gradient_hook_clipping_gives_the_same_numbers_stacked_and_off(tmp_path, run_cli):
    (tmp_path / "clipping.py").write_text(CLIPPING)
    auto, off = _numbers(tmp_path, run_cli, "auto"), _numbers(tmp_path, run_cli, "off")
    assert auto.keys() == off.keys() and len(auto) == 4
    for seed in (0, 1):  # the clipped arm trains alone either way: the same numbers, bit for bit
        assert auto[("hook_clip", seed)] == off[("hook_clip", seed)]
        stacked_history, alone_history = auto[("baseline", seed)][0], off[("baseline", seed)][0]
        for a, b in zip(stacked_history, alone_history, strict=True):  # stacked: equal to rounding
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    assert auto[("hook_clip", 0)] != auto[("baseline", 0)]  # the clipping acts
    code, out, _ = run_cli("plan", tmp_path / "clip_auto.toml", "--no-calibrate")
    assert code == 0 and "gradient hook" in out

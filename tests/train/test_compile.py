"""[train] compile = true: the training forward pass through torch.compile, with
eager's numbers (each epoch's losses within EPOCH_TOLERANCE, accuracies within
ACCURACY_TOLERANCE), so not part of a
run's identity; each seed trains alone (a stacked model is not compiled); a
component whose effect compile would not keep makes the run train eager, and its
record says why. Compiling takes seconds per model on a CPU: these tests are few."""

from __future__ import annotations

import pytest
from stacking_support import CPU, make_spec, seeds_of

from ablate.plugin.manager import build_registry, make_plugin_manager
from ablate.spec import COMPILE_ALONE, Execution
from ablate.train.compiled import ACCURACY_TOLERANCE, EPOCH_TOLERANCE
from ablate.train.stacked.training import train_group
from ablate.train.training import train_run

REGISTRY = build_registry(make_plugin_manager())
COMPILED = Execution("cpu", 1, compile=True)
LOSSES = ("train_loss", "val_loss", "running_loss")

EAGER_ONLY = """
import torch
from ablate import hookimpl

class EagerOnly(torch.nn.Module):
    '''Scales its input, but not when compiled (as code that skips itself under compile does).'''
    def forward(self, x):
        return x if torch.compiler.is_compiling() else 0.5 * x

class Halve:
    @hookimpl
    def ablate_make_layer(self, slot, features, dims):
        return EagerOnly() if slot == "dropout" else None

@hookimpl
def ablate_register_regularizers(registry):
    registry.add("eager_only", Halve)
"""


@pytest.mark.slow
def test_compiled_runs_give_eagers_numbers_each_seed_alone():
    spec = make_spec(REGISTRY, ("regularizer", "dropout", {"rate": 0.2}), ("norm", "batchnorm", {}), epochs=3)
    specs = seeds_of(spec.__class__(**{**spec.__dict__, "train": {**spec.train, "batch_size": 359}}), [0, 1])
    for result, one in zip(train_group(specs, REGISTRY, COMPILED), specs, strict=True):
        eager = train_run(one, REGISTRY, CPU)
        assert result.compile == "compiled" and result.stack == 1 and result.unstacked == COMPILE_ALONE
        for mine, theirs in zip(result.history, eager.history, strict=True):
            for key in LOSSES:
                assert mine[key] == pytest.approx(theirs[key], rel=EPOCH_TOLERANCE["fp32"])
            for key in ("train_accuracy", "val_accuracy"):
                assert mine[key] == pytest.approx(theirs[key], abs=ACCURACY_TOLERANCE)
        assert result.metrics["test_loss"] == pytest.approx(eager.metrics["test_loss"], rel=EPOCH_TOLERANCE["fp32"])


@pytest.mark.slow
def test_a_layer_compile_would_change_makes_the_run_train_eager_and_say_why(tmp_path):
    (tmp_path / "eager_only.py").write_text(EAGER_ONLY)
    registry = build_registry(make_plugin_manager([tmp_path / "eager_only.py"]))
    spec = make_spec(registry, ("regularizer", "eager_only", {}), epochs=2, batch_size=359)
    result, eager = train_run(spec, registry, COMPILED), train_run(spec, registry, CPU)
    assert result.compile.startswith("eager: ") and "differs from eager" in result.compile
    assert result.history == eager.history  # the first batch's state was put back: eager's run, to the bit
    assert eager.compile == ""


STUDY = """
[study]
seeds = 2
[data]
name = "digits"
[model]
hidden = [16]
[train]
epochs = 1
batch_size = 256
{extra}
"""


def test_compile_is_not_part_of_a_runs_identity_and_bad_values_exit_2(tmp_path, run_cli):
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(extra=""))
    assert run_cli("run", study, "--out", tmp_path / "out")[0] == 0
    study.write_text(STUDY.format(extra="compile = true"))
    code, out, err = run_cli("run", study, "--out", tmp_path / "out")
    assert code == 0 and "2 of 2 runs already stored" in out, err  # eager's runs stand for compiled ones
    code, out, _ = run_cli("plan", study, "--no-calibrate")
    assert code == 0 and "compile = true trains each seed alone" in out
    study.write_text(STUDY.format(extra='compile = "yes"'))
    code, _, err = run_cli("plan", study, "--no-calibrate")
    assert code == 2 and "study.toml" in err and "train.compile" in err
    assert "true or false" in err and "did you mean true" in err and "Traceback" not in err
    study.write_text(STUDY.format(extra="") + '[factors.c]\nsetting = "train.compile"\nlevels = [false, true]\n')
    code, _, err = run_cli("plan", study, "--no-calibrate")
    assert code == 2 and "train.compile" in err


@pytest.mark.slow
def test_each_compiled_run_compiles_its_own_graph(monkeypatch):
    """Past dynamo's recompile limit a new architecture would run eager unsaid;
    each run starts dynamo afresh, so it compiles (limit 1 here: the second arm)."""
    import torch._dynamo.config
    from torch._dynamo.utils import counters

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    for components in [(), (("norm", "layernorm", {}),)]:
        spec = make_spec(REGISTRY, *components, epochs=1)
        spec = spec.__class__(**{**spec.__dict__, "train": {**spec.train, "batch_size": 359}})
        before = counters["stats"]["unique_graphs"]
        assert train_run(spec, REGISTRY, COMPILED).compile == "compiled"
        assert counters["stats"]["unique_graphs"] > before

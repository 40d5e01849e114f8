"""Spectral norm, a built-in regularizer through ``ablate_configure_model``: the
hook runs once per run after the model is built and before the optimizer is
made, and every wrapped layer ends training with largest singular value 1."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch
import torch.nn as nn
from support import TINY

from ablate.plugin.manager import trial_manager

RECORDER = '''
from ablate import hookimpl

RUNS = []


class Keep:
    """Keeps each run's model: when it was configured and how it ended."""

    def __init__(self):
        pass

    @hookimpl
    def ablate_configure_model(self, model):
        RUNS.append({"configured": model, "params_at_configure": len(list(model.parameters()))})

    @hookimpl
    def ablate_optimizer_options(self, model):
        RUNS[-1]["optimizer_sees_same_model"] = model is RUNS[-1]["configured"]

    @hookimpl
    def ablate_train_end(self, model, stop_reason):
        RUNS[-1]["trained"] = model


@hookimpl
def ablate_register_stopping_rules(registry):
    registry.add("keep", Keep)
'''


def sigma(layer: nn.Module) -> float:
    """The largest singular value of the layer's weight as used (out x rest matrix)."""
    with torch.no_grad():
        w = layer.weight
        return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ablate.cli import main

    folder = tmp_path_factory.mktemp("spectral")
    (folder / "keep.py").write_text(RECORDER)
    study = TINY.replace("seeds = 2", 'seeds = 2\nplugins = ["keep.py"]')
    study = study.replace("hidden = [32]", "hidden = [64, 32]")
    # stack = "off": only the two runs' own hook calls are recorded (stacking's probe builds a model too)
    study = study.replace("epochs = 4", 'epochs = 15\nstack = "off"').split("[factors.norm]")[0] + (
        '[factors.sn]\nkind = "regularizer"\nlevels = ["spectral_norm"]\n'
        '[factors.keep]\nkind = "stopping"\nlevels = ["keep"]\n'
    )
    (folder / "study.toml").write_text(study)
    assert main(["run", str(folder / "study.toml"), "--out", str(folder / "out")]) == 0
    module = next(m for n, m in sys.modules.items() if n.startswith("ablate_local_plugin_keep"))
    return module.RUNS, pd.read_csv(folder / "out" / "results.csv")


def test_every_wrapped_layer_has_spectral_norm_one_after_training(trained):
    runs, table = trained
    assert len(runs) == 2 and (table["status"] == "complete").all()
    for run in runs:
        model = run["trained"].eval()
        linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
        wrapped = [m for m in linear if nn.utils.parametrize.is_parametrized(m, "weight")]
        assert wrapped == linear[:-1] and len(wrapped) == 2  # both hidden layers; the classifier left alone
        for layer in wrapped:
            raw = layer.parametrizations.weight.original
            raw_sigma = torch.linalg.matrix_norm(raw.detach(), ord=2).item()
            assert abs(raw_sigma - 1.0) > 0.1  # the weight it learns is not normalised: the wrapper does it
            assert sigma(layer) == pytest.approx(1.0, abs=1e-2)
        assert abs(sigma(linear[-1]) - 1.0) > 0.1


def test_configure_model_runs_once_per_run_before_the_optimizer(trained):
    runs, table = trained
    assert all(r["optimizer_sees_same_model"] and r["trained"] is r["configured"] for r in runs)
    # the model learned through the re-parametrised weights: far above chance (10%)
    assert table["train_accuracy"].min() > 0.8


def test_head_option_and_conv_layers():
    from ablate.plugin.manager import build_registry, make_plugin_manager

    registry = build_registry(make_plugin_manager())
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    comp = registry.create("regularizer", "spectral_norm", {"n_power_iterations": 30, "head": True})
    trial_manager({"sn": comp}).hook.ablate_configure_model(model=model)
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 1, 8, 8))  # a forward pass in training mode runs the power iterations
    model.eval()
    for layer in (model[0], model[3]):
        assert nn.utils.parametrize.is_parametrized(layer, "weight")
        assert sigma(layer) == pytest.approx(1.0, abs=1e-3)

"""Models the MNIST-1D paper needs, written with built-ins: a linear model
(``hidden = []``), training on all data (``val_fraction = 0``), and a cnn with
strides, per-block kernel sizes and a flattening head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
from support import TINY

from ablate import DataInfo, UserError, make_splits
from ablate.plugin.manager import trial_manager
from ablate.testing import run_tiny_study

ROOT = Path(__file__).resolve().parents[2]


def build(registry, name, shape=(40,), classes=10, **params):
    resolved = registry.resolve_params("model", name, params, "model")
    return registry.create("model", name, resolved).build(shape, classes, lambda *a: nn.Identity())


@pytest.mark.slow
def test_mlp_without_hidden_layers_is_logistic_regression(registry, tmp_path):
    model = build(registry, "mlp", hidden=[])
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear] and model[1].in_features == 40
    table = run_tiny_study("model", "mlp", {"hidden": []}, tmp_path, epochs=20)
    assert table["test_accuracy"].iloc[0] > 0.85  # digits are nearly linearly separable


def test_cnn_reproduces_the_mnist1d_papers_convbase(registry):
    model = build(
        registry,
        "cnn",
        channels=[25, 25, 25],
        kernel_size=[5, 3, 3],
        stride=2,
        pool=False,
        head="flatten",
        slots="conv>act",
    )
    convs = [m for m in model if isinstance(m, nn.Conv1d)]
    assert [(c.kernel_size[0], c.stride[0]) for c in convs] == [(5, 2), (3, 2), (3, 2)]
    assert model[-1].in_features == 125  # 25 channels x 5 positions, flattened
    assert sum(p.numel() for p in model.parameters()) == 5210  # as the paper's ConvBase
    assert model(torch.randn(7, 40)).shape == (7, 10)


def test_cnn_with_no_conv_blocks_is_an_mlp_on_the_raw_input(registry):
    model = build(registry, "cnn", channels=[], head="flatten", hidden=[100, 100], slots="conv>act")
    linear = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(40, 100), (100, 100), (100, 10)]
    assert not any(isinstance(m, nn.Conv1d) for m in model)


def test_cnn_default_is_unchanged_global_average_pooling(registry):
    model = build(registry, "cnn", shape=(1, 8, 8))
    assert isinstance(model[-3], nn.AdaptiveAvgPool2d) and model[-1].in_features == 32


def test_cnn_flatten_head_on_images_counts_every_position(registry):
    model = build(registry, "cnn", shape=(1, 8, 8), channels=[4], stride=2, pool=False, head="flatten")
    assert model[-1].in_features == 4 * 4 * 4
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_cnn_mistakes_fail_before_training(write_study, run_cli):
    base = TINY.replace('name = "mlp"\nhidden = [32]', 'name = "cnn"\nchannels = [8, 8, 8]')
    cases = {
        "kernel_size = [3, 5]": ("model.kernel_size", "2 kernel_size values for 3 conv blocks"),
        "kernel_size = [3, 4, 3]": ("model.kernel_size[1]", "odd kernel size"),
    }
    for extra, words in cases.items():
        study = write_study(base.replace("channels = [8, 8, 8]", f"channels = [8, 8, 8]\n{extra}"))
        code, out, err = run_cli("plan", study, "--no-calibrate")
        assert code == 2 and all(w in err for w in words), (extra, err)
        assert "seed=" not in out


def test_cnn_rejects_data_it_cannot_convolve(registry):
    cnn = registry.create("model", "cnn", registry.resolve_params("model", "cnn", {}, "model"))
    hook = trial_manager({"model": cnn}).hook.ablate_check_data
    hook(info=DataInfo("images", (3, 32, 32), 10, 100, 10, 10))  # accepted
    with pytest.raises(UserError, match=r"\(L,\), \(C, L\) or \(C, H, W\) inputs, not \(2, 3, 4, 5\)"):
        hook(info=DataInfo("volumes", (2, 3, 4, 5), 10, 100, 10, 10))


def test_make_splits_without_validation_trains_on_everything():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)), np.arange(200) % 4
    splits = make_splits(x, y, val_fraction=0.0, test_fraction=0.25, seed=0, name="toy")
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (150, 0, 50)
    assert splits.x_val.shape == (0, 5) and splits.num_classes == 4
    assert DataInfo.of(splits) == DataInfo("toy", (5,), 4, 150, 0, 50)


@pytest.mark.slow
def test_a_study_without_validation_runs_and_reports_no_validation_numbers(write_study, run_cli, tmp_path):
    text = TINY.replace('name = "digits"', 'name = "digits"\nval_fraction = 0.0')
    text = text.replace("seeds = 2", "seeds = 1")
    text = text.split("[factors.norm]")[0] + (
        '[factors.stop]\nkind = "stopping"\nlevels = ["none", "plateau", "divergence"]\n'
    )
    code, _, err = run_cli("run", write_study(text), "--out", tmp_path / "out")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("arm")
    assert (table["status"] == "complete").all()
    assert table["val_accuracy"].isna().all() and (table["test_accuracy"] > 0.7).all()
    assert table.loc["divergence", "stop_reason"] == "max_epochs"  # NaN validation metrics are not divergence
    assert table.loc["divergence", "epochs"] == 4


def test_search_without_validation_is_refused(write_study, run_cli):
    text = TINY.replace('name = "digits"', 'name = "digits"\nval_fraction = 0.0') + (
        '\n[design]\nkind = "search"\nbudget = 2\n'
    )
    code, _, err = run_cli("plan", write_study(text), "--no-calibrate")
    assert code == 2 and "chooses arms on the validation split" in err


def test_the_mnist1d_paper_study_plans(run_cli):
    code, out, err = run_cli("plan", ROOT / "studies" / "mnist1d_paper.toml", "--no-calibrate")
    assert code == 0, err
    assert "runs: 4 arms x 3 seeds = 12" in out
    header = (ROOT / "studies" / "mnist1d_paper.toml").read_text().split("[study]")[0]
    for published in ("32%", "68%", "94%"):
        assert published in header
    assert "measured" in header.lower()

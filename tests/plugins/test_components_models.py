"""cnn and resnet: 1-D and 2-D inputs, slots in the asked order with the right
norm variant, drop_path on the residual branch, activation as a parameter,
and they learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from support import make, run_arm

from ablate.plugin.manager import trial_manager


def builder(registry, **components):
    tpm = trial_manager({k: make(registry, kind, name, **params) for k, (kind, name, params) in components.items()})
    return lambda slot, f, d: tpm.hook.ablate_make_layer(slot=slot, features=f, dims=d) or nn.Identity()


@pytest.mark.parametrize(
    "shape,norm",
    [((40,), nn.BatchNorm1d), ((2, 40), nn.BatchNorm1d), ((1, 8, 8), nn.BatchNorm2d), ((3, 32, 32), nn.BatchNorm2d)],
)
def test_cnn_takes_1d_and_2d_inputs_and_picks_the_norm_variant(registry, shape, norm):
    make_layer = builder(registry, n=("norm", "batchnorm", {}), d=("regularizer", "dropout2d", {}))
    model = make(registry, "model", "cnn", channels=[4, 8]).build(shape, 10, make_layer)
    assert model(torch.randn((5,) + shape)).shape == (5, 10)
    assert [type(m) for m in model if isinstance(m, nn.modules.batchnorm._NormBase)] == [norm, norm]
    drop = nn.Dropout2d if len(shape) == 3 else nn.Dropout1d
    assert sum(isinstance(m, drop) for m in model) == 2


@pytest.mark.parametrize(
    "slots,expected",
    [
        ("conv>norm>act>dropout", [nn.Conv2d, nn.BatchNorm2d, nn.GELU, nn.Dropout]),
        ("conv>dropout>norm>act", [nn.Conv2d, nn.Dropout, nn.BatchNorm2d, nn.GELU]),
        ("norm>conv>act", [nn.BatchNorm2d, nn.Conv2d, nn.GELU]),
    ],
)
def test_cnn_block_follows_its_slot_order_and_activation(registry, slots, expected):
    make_layer = builder(registry, n=("norm", "batchnorm", {}), d=("regularizer", "dropout", {}))
    model = make(registry, "model", "cnn", channels=[6], slots=slots, activation="gelu").build((1, 8, 8), 3, make_layer)
    types = [type(m) for m in model if not isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear))][
        1:
    ]  # after the reshape
    assert types == expected
    norm = next(m for m in model if isinstance(m, nn.BatchNorm2d))
    assert norm.num_features == (1 if slots.startswith("norm") else 6)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (40,)])
def test_resnet_fits_32_and_28_pixel_images_and_1d_signals(registry, shape):
    make_layer = builder(registry, n=("norm", "groupnorm", {"groups": 4}))
    model = make(registry, "model", "resnet", widths=[8, 16], activation="silu").build(shape, 10, make_layer)
    assert model(torch.randn((2,) + shape)).shape == (2, 10)
    assert any(isinstance(m, nn.SiLU) for m in model.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in model.modules()) == 1 + 2 + 2 + 1  # stem, branches, shortcut


def test_drop_path_randomises_the_residual_branch_in_training_only(registry):
    make_layer = builder(registry, p=("regularizer", "drop_path", {"rate": 0.5}))
    model = make(registry, "model", "resnet", widths=[4, 8]).build((1, 8, 8), 3, make_layer)
    paths = [m.drop_path for m in model.modules() if hasattr(m, "drop_path")]
    assert len(paths) == 2 and all(p.rate == 0.5 for p in paths)
    x = torch.randn(16, 1, 8, 8)
    model.train()
    torch.manual_seed(0)
    a, b = model(x), model(x)
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x), model(x))
    # in an mlp (no residual branch) the drop_path slot does not exist: nothing is added
    mlp = make(registry, "model", "mlp", hidden=[8]).build((64,), 10, make_layer)
    assert not any(type(m).__name__ == "DropPathLayer" for m in mlp.modules())


@pytest.mark.parametrize("model", ['name = "cnn"\nchannels = [8, 16]', 'name = "resnet"\nwidths = [8, 16]'])
def test_conv_models_learn_digits_images(registry, write_study, model):
    path = write_study(f"""
        [study]
        name = "m"
        seeds = 1
        [data]
        name = "digits"
        image = true
        [model]
        {model}
        [train]
        epochs = 4
        batch_size = 64
        lr = 0.01
        """)
    result = run_arm(path, registry, ("norm", "batchnorm", {}))
    assert result.metrics["test_accuracy"] > 0.8


@pytest.mark.parametrize(
    "slots,expected",
    [
        ("linear>norm>act>dropout", [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]),
        ("linear>dropout>norm>act", [nn.Linear, nn.Dropout, nn.BatchNorm1d, nn.ReLU, nn.Linear]),
        ("norm>linear>act", [nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.Linear]),
    ],
)
def test_mlp_block_follows_its_slot_order(registry, slots, expected):
    comps = {"n": make(registry, "norm", "batchnorm"), "d": make(registry, "regularizer", "dropout")}
    tpm = trial_manager(comps)
    make_layer = lambda slot, f, d: tpm.hook.ablate_make_layer(slot=slot, features=f, dims=d) or nn.Identity()
    model = make(registry, "model", "mlp", hidden=[16], slots=slots).build((8, 8), 10, make_layer)
    layers = [type(m) for m in model if not isinstance(m, nn.Flatten)]
    assert layers == expected
    assert model(torch.randn(4, 8, 8)).shape == (4, 10)
    assert [m.num_features for m in model if isinstance(m, nn.BatchNorm1d)] == (
        [64] if slots.startswith("norm") else [16]
    )

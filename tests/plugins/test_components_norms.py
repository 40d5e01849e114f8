"""The new norm layers: right variant for each slot dims, per-sample where they
claim it, and they normalise what they say they normalise."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from support import make

NORMS = ["batchnorm", "layernorm", "groupnorm", "instancenorm", "rmsnorm"]
SHAPES = {0: (6, 16), 1: (6, 16, 10), 2: (6, 16, 5, 5)}


@pytest.mark.parametrize("name", NORMS)
@pytest.mark.parametrize("dims", [0, 1, 2])
def test_every_norm_fits_every_dims_and_keeps_the_shape(registry, name, dims):
    layer = make(registry, "norm", name).ablate_make_layer(slot="norm", features=16, dims=dims)
    x = torch.randn(SHAPES[dims]) * 3 + 2
    assert layer(x).shape == x.shape
    layer.eval()
    assert layer(x).shape == x.shape
    assert make(registry, "norm", name).ablate_make_layer(slot="dropout", features=16, dims=dims) is None


def _alone_equals_in_batch(layer, x):
    """A per-sample layer gives a sample the same output alone and among wild others."""
    others = torch.randn((7,) + x.shape[1:]) * 50 - 20
    return torch.allclose(layer(x), layer(torch.cat([x, others]))[:1], atol=1e-5)


@pytest.mark.parametrize("name", ["groupnorm", "instancenorm", "rmsnorm", "layernorm"])
@pytest.mark.parametrize("dims", [0, 1, 2])
def test_group_instance_and_rms_norms_are_per_sample(registry, name, dims):
    layer = make(registry, "norm", name).ablate_make_layer(slot="norm", features=16, dims=dims)
    layer.train()
    assert _alone_equals_in_batch(layer, torch.randn((1,) + SHAPES[dims][1:]) * 4 + 1)


def test_batchnorm_is_not_per_sample(registry):
    """The control for the per-sample test: it can fail."""
    layer = make(registry, "norm", "batchnorm").ablate_make_layer(slot="norm", features=16, dims=2)
    layer.train()
    assert not _alone_equals_in_batch(layer, torch.randn(1, 16, 5, 5))


def test_groupnorm_normalises_each_group_and_fits_groups_to_the_width(registry):
    norm = make(registry, "norm", "groupnorm", groups=4)
    layer = norm.ablate_make_layer(slot="norm", features=8, dims=2)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 4
    x = torch.randn(3, 8, 4, 4) * torch.arange(1, 9).view(1, 8, 1, 1) + 5
    y = layer(x).view(3, 4, -1)
    assert y.mean(-1).abs().max() < 1e-5 and (y.std(-1, unbiased=False) - 1).abs().max() < 1e-3
    assert norm.ablate_make_layer(slot="norm", features=6, dims=0).num_groups == 3  # 4 does not divide 6


def test_instancenorm_normalises_each_channel_of_each_sample(registry):
    layer = make(registry, "norm", "instancenorm").ablate_make_layer(slot="norm", features=4, dims=2)
    assert isinstance(layer, nn.InstanceNorm2d)
    y = layer(torch.randn(2, 4, 6, 6) * 7 + 3).flatten(2)
    assert y.mean(-1).abs().max() < 1e-5 and (y.std(-1, unbiased=False) - 1).abs().max() < 1e-3
    assert isinstance(
        make(registry, "norm", "instancenorm").ablate_make_layer(slot="norm", features=4, dims=1), nn.InstanceNorm1d
    )


@pytest.mark.parametrize("dims", [0, 1, 2])
def test_rmsnorm_gives_unit_rms_over_channels_without_centring(registry, dims):
    layer = make(registry, "norm", "rmsnorm").ablate_make_layer(slot="norm", features=16, dims=dims)
    torch.manual_seed(0)
    x = torch.randn(SHAPES[dims]) * 3 + 2
    y = layer(x)
    axis = -1 if dims == 0 else 1
    assert torch.allclose(y.pow(2).mean(axis), torch.ones(()), atol=1e-3)
    assert y.mean() > 0.3  # not centred: the inputs' mean of 2 survives (centred would be 0)


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval(registry):
    layer = make(registry, "norm", "batchnorm").ablate_make_layer(slot="norm", features=3, dims=0)
    x = torch.randn(64, 3) * 5 + 10
    layer.train()
    out = layer(x)
    assert out.mean(0).abs().max() < 1e-4  # normalised with this batch's mean
    layer.eval()
    out_eval = layer(x)  # running stats moved only 10% towards the batch's
    assert out_eval.mean(0).abs().min() > 1.0
    assert (
        make(registry, "norm", "batchnorm").ablate_make_layer(slot="norm", features=3, dims=2).__class__
        is nn.BatchNorm2d
    )
    assert make(registry, "norm", "batchnorm").ablate_make_layer(slot="dropout", features=3, dims=0) is None


def test_layernorm_is_per_sample(registry):
    layer = make(registry, "norm", "layernorm").ablate_make_layer(slot="norm", features=8, dims=0)
    a, others = torch.randn(1, 8), torch.randn(5, 8) * 100
    alone = layer(a)
    in_batch = layer(torch.cat([a, others]))[:1]
    assert torch.allclose(alone, in_batch, atol=1e-6)
    conv = make(registry, "norm", "layernorm").ablate_make_layer(slot="norm", features=4, dims=1)
    y = conv(torch.randn(2, 4, 10) * 3 + 1)
    assert y[0].mean().abs() < 1e-5 and (y[0].std(unbiased=False) - 1).abs() < 1e-3

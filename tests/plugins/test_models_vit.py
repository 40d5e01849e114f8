"""vit: pre- and post-norm build different networks from one slot order
setting; every norm works on its (batch, tokens, width) activations; it takes
images and 1-D signals; its stacked seeds train as they do alone; cifar_resnet
is ResNet-18's shape."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from ablate.plugins._transformer import Residual, SelfAttention, Tokens
from stacking_support import alone, assert_same_run, make_spec, seeds_of, stacked
from support import make

from ablate.errors import UserError
from ablate.plugin.manager import trial_manager

NORMS = ["batchnorm", "layernorm", "rmsnorm", "groupnorm", "instancenorm"]


def builder(registry, norm="layernorm", **more):
    parts = {"norm": make(registry, "norm", norm)} if norm != "none" else {}
    parts.update({k: make(registry, kind, name) for k, (kind, name) in more.items()})
    hooks = trial_manager(parts).hook
    return lambda slot, f, d: hooks.ablate_make_layer(slot=slot, features=f, dims=d) or nn.Identity()


def vit(registry, shape=(1, 8, 8), norm="layernorm", **params):
    params = {"width": 16, "depth": 2, "heads": 2, **params}
    return make(registry, "model", "vit", **params).build(shape, 10, builder(registry, norm))


def order(residual: Residual) -> list[str]:
    """The sublayer's modules in the order they act: branch, then the add, then after."""
    name = lambda m: "norm" if isinstance(m, Tokens) else "attn" if isinstance(m, SelfAttention) else type(m).__name__
    return [name(m) for m in residual.branch] + ["add"] + [name(m) for m in residual.after]


def test_pre_and_post_norm_put_the_norm_inside_the_branch_or_after_the_add(registry):
    pre = vit(registry, slots="norm>sublayer>dropout>add")
    post = vit(registry, slots="sublayer>dropout>add>norm")
    pre_blocks = [m for m in pre if isinstance(m, Residual)]
    post_blocks = [m for m in post if isinstance(m, Residual)]
    assert len(pre_blocks) == len(post_blocks) == 4  # attention and MLP sublayers of 2 blocks
    assert order(pre_blocks[0]) == ["norm", "attn", "add"] and order(post_blocks[0]) == ["attn", "add", "norm"]
    assert order(pre_blocks[1]) == ["norm", "Sequential", "add"]
    # pre-norm leaves the residual stream unnormalised: one more norm before the head, as in ViT
    assert isinstance(pre[-3], Tokens) and not isinstance(post[-3], Tokens)
    assert repr(pre) != repr(post)
    # without a norm both orders are one network (the orderings design runs it once)
    assert repr(vit(registry, norm="none", slots="norm>sublayer>dropout>add")) == repr(
        vit(registry, norm="none", slots="sublayer>dropout>add>norm")
    )


@pytest.mark.parametrize("norm", NORMS)
def test_every_norm_runs_on_tokens_with_statistics_of_the_right_axes(registry, norm):
    model = vit(registry, norm=norm)
    x = torch.randn(6, 1, 8, 8)
    assert model(x).shape == (6, 10)
    model.eval()
    assert model(x).shape == (6, 10)
    if norm == "batchnorm":  # statistics over batch x tokens per feature: 16 features, not 4 tokens
        bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
        assert bn.running_mean.shape == (16,)


def test_batch_norm_over_tokens_normalises_each_feature_over_batch_and_tokens():
    tokens = Tokens(nn.BatchNorm1d(4, affine=False))
    x = torch.randn(3, 5, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0]) + 7
    y = tokens(x)
    assert torch.allclose(y.mean((0, 1)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.var((0, 1), unbiased=False), torch.ones(4), atol=1e-3)


@pytest.mark.parametrize("shape,patch,tokens", [((40,), 4, 10), ((2, 40), 8, 5), ((3, 32, 32), 8, 16)])
def test_vit_takes_signals_and_images_as_patches(registry, shape, patch, tokens):
    model = vit(registry, shape=shape, patch=patch)
    assert model(torch.randn((2,) + shape)).shape == (2, 10)
    assert model[3].weight.shape == (tokens, 16)  # the position embedding: one row per patch


def test_patches_are_a_strided_convolution(registry):
    """Patch embedding by a linear layer over flattened patches = Conv2d(kernel = stride = patch)."""
    model = vit(registry, shape=(3, 8, 8), patch=4)
    linear = model[2]
    conv = nn.Conv2d(3, 16, 4, stride=4)
    conv.weight.data = linear.weight.data.view(16, 3, 4, 4)
    conv.bias.data = linear.bias.data
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(linear(model[1](x)), conv(x).flatten(2).transpose(1, 2), atol=1e-6)


def test_vit_mistakes_name_the_valid_choices(registry, tmp_path):
    from ablate.components import DataInfo

    info = DataInfo(input_shape=(1, 8, 8), num_classes=10, train_size=10, val_size=2, test_size=2, name="digits")
    with pytest.raises(UserError, match="3 heads do not divide the width 16") as err:
        make(registry, "model", "vit", width=16, heads=3).ablate_check_data(info=info)
    assert "1, 2, 4, 8, 16" in str(err.value)
    with pytest.raises(UserError, match="do not tile") as err:
        make(registry, "model", "vit", patch=3).ablate_check_data(info=info)
    assert "1, 2, 4, 8" in str(err.value)
    with pytest.raises(UserError, match="after 'sublayer'"):
        registry.resolve_params("model", "vit", {"slots": "add>sublayer>norm"}, "model")


def test_cifar_resnet_is_resnet18s_shape(registry):
    model = make(registry, "model", "cifar_resnet").build((3, 32, 32), 10, builder(registry, "batchnorm"))
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # ResNet-18 for CIFAR-10
    stem = model[1]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    small = make(registry, "model", "cifar_resnet", width=4, blocks=[1, 1]).build((3, 32, 32), 10, builder(registry))
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


STACKED = {
    "pre layernorm": ("norm>sublayer>dropout>add", ("layernorm", {}), "adam"),
    "post layernorm": ("sublayer>dropout>add>norm", ("layernorm", {}), "adam"),
    "pre rmsnorm": ("norm>sublayer>dropout>add", ("rmsnorm", {}), "adam"),
    "post rmsnorm": ("sublayer>dropout>add>norm", ("rmsnorm", {}), "adam"),
    "pre groupnorm": ("norm>sublayer>dropout>add", ("groupnorm", {"groups": 2}), "adam"),
    "post instancenorm": ("sublayer>dropout>add>norm", ("instancenorm", {}), "adam"),
    "post batchnorm": ("sublayer>dropout>add>norm", ("batchnorm", {}), "sgd"),
    "pre batchnorm": ("norm>sublayer>dropout>add", ("batchnorm", {}), "sgd"),
    "none": ("sublayer>dropout>add>norm", None, "adam"),
}


@pytest.mark.parametrize("arm", STACKED)
def test_stacked_vit_trains_each_seed_as_alone(registry, arm):
    """Nothing random is drawn (no dropout): per-epoch losses agree to 1e-5 relative.

    Batch norm trains with SGD here: the bias of the linear layer just before a
    batch norm has a gradient that is zero but for rounding (the norm removes any
    shift), and Adam scales that noise up to full-size steps, alone as stacked, so
    two evaluation orders drift apart by 1e-4 in two epochs without any difference
    in the model. Group norm with groups of two features (the default 8 groups of
    width 16) divides by a variance often near eps, and drifts the same way."""
    slots, norm, optimizer = STACKED[arm]
    components = [("norm", *norm)] if norm else []
    lr = 3e-3 if optimizer == "adam" else 0.05
    spec = make_spec(
        registry, *components, model="vit", image=True, epochs=2, batch_size=128, lr=lr, optimizer=optimizer,
        width=16, depth=2, heads=2, patch=4, slots=slots,
    )  # fmt: skip
    specs = seeds_of(spec, range(3))
    for a, b in zip(alone(specs, registry), stacked(specs, registry), strict=True):
        assert b.stack == 3
        assert_same_run(a, b, rtol=1e-5)


def test_stacked_vit_uses_hand_forms_only(registry):
    """Every layer of the vit has a stacked form of its own: none runs through torch.func."""
    from ablate.train.stacked.forms import SeedStreams
    from ablate.train.stacked.model import stack_models, uses_generic

    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        models.append(vit(registry, norm="batchnorm"))
    model, _ = stack_models(models, SeedStreams([torch.Generator() for _ in models]))
    assert not uses_generic(model)
    x = torch.randn(2, 5, 1, 8, 8)
    assert torch.allclose(model(x), torch.stack([m(x[i]) for i, m in enumerate(models)]), atol=1e-6)
